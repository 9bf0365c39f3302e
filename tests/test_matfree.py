"""Matrix-free AIR, dynamics, ridge and R3 limits equal the dense closed forms; estimates."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from ntk_air import dynamics, eigen, kernels, matfree, operators, resources, topk


def _cluster_problem(n=360, n_test=40, centres=6, flip=0.2, seed=0, d=12):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d))
    c /= np.linalg.norm(c, axis=1, keepdims=True)

    def pts(m):
        cl = rng.integers(0, centres, m)
        x = c[cl] + 0.8 * rng.standard_normal((m, d)) / np.sqrt(d)
        return x / np.linalg.norm(x, axis=1, keepdims=True), cl

    x, cl = pts(n)
    xt, clt = pts(n_test)
    label = np.where(np.arange(centres) % 2 == 0, 1.0, -1.0)
    y_clean = label[cl]
    y = np.where(rng.random(n) < flip, -y_clean, y_clean)
    return x, y, y_clean, xt, label[clt], cl


@pytest.fixture(scope="module")
def setup():
    import jax

    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    x, y, yc, xt, yt, cl = _cluster_problem()
    fn = kernels.two_layer_relu_kernel_fn()
    K = np.asarray(fn(x).ntk)
    eig = eigen.eigensystem(K)
    op = operators.kernel_operator(fn, x, tile_size=50)
    test_op = operators.kernel_operator(fn, xt, x, tile_size=50)
    k = 30
    # Tight residuals: these tests compare with the dense closed forms to ~1e-8.
    top = topk.topk_eigensystem(op, k, labels=-y, block_size=32, tol=1e-11)
    yield {
        "x": x, "y": y, "yc": yc, "xt": xt, "cl": cl, "K": K, "eig": eig, "op": op,
        "test_op": test_op, "k_test": np.asarray(fn(xt, x).ntk), "top": top, "k": k,
    }  # fmt: skip
    jax.config.update("jax_enable_x64", prev)


# ---------------------------------------------------------------------------------------------
# AIR
# ---------------------------------------------------------------------------------------------


def test_air_energies_and_tail_equal_dense(x64, setup):
    s, eig, k = setup, setup["eig"], setup["k"]
    air = matfree.topk_air_spectra(s["top"], s["yc"], s["y"])
    for name, z in (("clean", s["yc"]), ("noise", s["y"] - s["yc"]), ("noisy", s["y"])):
        dense = np.asarray((eig.eigenvectors.T @ z) ** 2 / np.sum(z**2))
        spec = getattr(air, name)
        np.testing.assert_allclose(np.asarray(spec.energy), dense[:k], atol=1e-10)
        np.testing.assert_allclose(float(spec.tail), dense[k:].sum(), rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(float(spec.cumulative[-1] + spec.tail), 1.0, atol=1e-12)
        np.testing.assert_allclose(float(spec.norm), np.linalg.norm(z), rtol=1e-14)
    # AIR itself: the clean labels live in the top modes far more than the noise does.
    assert float(air.clean.tail) < 0.5 * float(air.noise.tail)


def test_one_hot_labels(x64, setup):
    s, eig, k = setup, setup["eig"], setup["k"]
    onehot = np.eye(3)[s["cl"] % 3]
    spec = matfree.topk_label_spectrum(s["top"], onehot)
    dense = np.sum(np.asarray(eig.eigenvectors.T @ onehot) ** 2, axis=1) / np.sum(onehot**2)
    np.testing.assert_allclose(np.asarray(spec.energy), dense[:k], atol=1e-10)
    np.testing.assert_allclose(float(spec.tail), dense[k:].sum(), rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# Dynamics
# ---------------------------------------------------------------------------------------------


def test_closed_form_factors_match_dynamics(x64, setup):
    eig = setup["eig"]
    eta = 1.3 / float(eig.eigenvalues[0])  # includes ηλ > 1 (negative base)
    steps = jnp.asarray([0.0, 1, 2, 7, 50, 1000])
    ref = dynamics.gd_mode_factors(eig, steps, eta=eta)
    r, w = matfree._gd_factors(eig.eigenvalues, jnp.asarray(eta), steps)
    np.testing.assert_allclose(r, ref.residual, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(w, ref.test_weight, rtol=1e-13, atol=1e-300)
    times = jnp.asarray([0.0, 0.01, 1.0, 30.0])
    ref = dynamics.flow_mode_factors(eig, times)
    r, w = matfree._flow_factors(eig.eigenvalues, times)
    np.testing.assert_allclose(r, ref.residual, rtol=1e-13)
    np.testing.assert_allclose(w, ref.test_weight, rtol=1e-13)


@pytest.mark.parametrize("flow", [False, True], ids=["gd", "flow"])
def test_trajectory_equals_dense_closed_form(x64, setup, flow):
    s, eig, k = setup, setup["eig"], setup["k"]
    y, yc = s["y"], s["yc"]
    lam_max = float(eig.eigenvalues[0])
    eta = 1.0 / lam_max
    tail = matfree.deflated_lanczos(s["op"], s["top"], -y, 60)
    assert int(tail.passes) == 60
    if flow:
        times = np.concatenate([[0.0], np.logspace(-3, 3, 30)])
        predict, _ = matfree.topk_flow_predictor(
            s["top"], y, y_clean=yc, test_operator=s["test_op"], predictions=True, tail=tail
        )
        ref = dynamics.flow_predictor(eig, y, k_test_train=s["k_test"])(times)
    else:
        times = np.concatenate([[0.0], np.unique(np.round(np.logspace(0, 5, 30)))])
        predict, _ = matfree.topk_gd_predictor(
            s["top"], y, eta=eta, y_clean=yc, test_operator=s["test_op"], predictions=True,
            tail=tail,
        )  # fmt: skip
        ref = dynamics.gd_predictor(eig, y, eta=eta, k_test_train=s["k_test"])(times)
    traj = predict(times)
    # Along the top k modes: the closed form, exactly (up to the eigenvector residuals).
    modes = np.asarray(ref.residual_modes)[:, :k]
    signs = np.sign(np.sum(np.asarray(eig.eigenvectors[:, :k]) * np.asarray(
        s["top"].eigenvectors), axis=0))  # fmt: skip
    np.testing.assert_allclose(np.asarray(traj.residual_top) * signs, modes, atol=1e-7)
    # With as many Lanczos steps as needed the tail is resolved: norms, train and test agree.
    ref_norm = np.linalg.norm(np.asarray(ref.train) - y[None], axis=1)
    np.testing.assert_allclose(np.asarray(traj.residual_norm), ref_norm, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(np.asarray(traj.train), np.asarray(ref.train), atol=1e-6)
    np.testing.assert_allclose(np.asarray(traj.test), np.asarray(ref.test), atol=1e-5)
    ref_clean = np.linalg.norm(np.asarray(ref.train) - yc[None], axis=1)
    np.testing.assert_allclose(np.asarray(traj.clean_dist), ref_clean, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(float(traj.residual_norm[0]), np.linalg.norm(y), rtol=1e-14)


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_tail_bounds_bracket_the_exact_tail(x64, setup, steps):
    """Gauss ≤ exact ≤ Gauss–Radau for the tail norm, at every time, for few Lanczos steps."""
    s, eig, k = setup, setup["eig"], setup["k"]
    y = s["y"]
    eta = 1.0 / float(eig.eigenvalues[0])
    times = np.concatenate([[0.0], np.unique(np.round(np.logspace(0, 6, 40)))])
    for tail in (matfree.deflated_lanczos(s["op"], s["top"], -y, steps), None):
        predict, quad = matfree.topk_gd_predictor(s["top"], y, eta=eta, tail=tail)
        traj = predict(times)
        ref = dynamics.gd_predictor(eig, y, eta=eta)(times)
        exact = np.linalg.norm(np.asarray(ref.residual_modes)[:, k:], axis=1)
        lo, up = np.asarray(traj.tail_lower), np.asarray(traj.tail_upper)
        assert np.all(lo <= exact * (1 + 1e-7) + 1e-9), (lo - exact).max()
        assert np.all(exact <= up * (1 + 1e-7) + 1e-9), (exact - up).max()
        assert int(np.max(quad.steps)) >= 1
        assert int(traj.tail_passes) == (0 if tail is None else steps)


@pytest.mark.slow
def test_one_hot_trajectory_columns(x64, setup):
    s, eig = setup, setup["eig"]
    onehot = np.eye(3)[s["cl"] % 3]
    top = topk.topk_eigensystem(s["op"], 20, labels=-onehot, block_size=32)
    tail = matfree.deflated_lanczos(s["op"], top, -onehot, 60)
    eta = 1.0 / float(eig.eigenvalues[0])
    times = np.asarray([0.0, 10, 1000])
    traj = matfree.topk_gd_predictor(top, onehot, eta=eta, tail=tail, predictions=True)[0](times)
    ref = dynamics.gd_predictor(eig, onehot, eta=eta)(times)
    assert traj.train.shape == (3, 360, 3)
    np.testing.assert_allclose(np.asarray(traj.train), np.asarray(ref.train), atol=1e-6)


def test_predictor_errors(x64, setup):
    s = setup
    no_labels = topk.topk_eigensystem(s["op"], 5)
    with pytest.raises(ValueError, match="no label Krylov data"):
        matfree.topk_gd_predictor(no_labels, s["y"])
    with pytest.raises(ValueError, match="not in the label Krylov space"):
        matfree.tail_quadrature(s["top"], s["yc"])
    with pytest.raises(ValueError, match="whole numbers"):
        matfree.topk_gd_predictor(s["top"], s["y"])[0]([0.5])
    with pytest.raises(ValueError, match="step size eta"):
        matfree.topk_gd_predictor(s["top"], s["y"], eta=10.0)


# ---------------------------------------------------------------------------------------------
# Ridge, R3 soft limit
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mu", [1e-3, 1e-1])
def test_pcg_equals_dense_solve_and_preconditioning_helps(x64, setup, mu):
    s = setup
    y2 = np.stack([s["y"], s["yc"]], axis=1)
    ref = np.linalg.solve(s["K"] + mu * np.eye(len(y2)), y2)
    pre = matfree.ridge_solve(s["op"], y2, mu, preconditioner=s["top"])
    plain = matfree.ridge_solve(s["op"], y2, mu, max_iterations=2000)
    assert bool(pre.converged) and bool(plain.converged)
    for sol in (pre, plain):
        np.testing.assert_allclose(np.asarray(sol.solution), ref, rtol=1e-7, atol=1e-7)
    assert int(pre.iterations) < int(plain.iterations)
    assert float(pre.residual_norms[-1]) <= 1e-10


def test_r3_soft_limit_and_kernel_ridge(x64, setup):
    s, eig = setup, setup["eig"]
    lam, vec = np.asarray(eig.eigenvalues), np.asarray(eig.eigenvectors)
    y = s["y"]
    eta = 1.0 / lam[0]
    for alpha in (0.0, 0.5, 0.99):
        lim = matfree.r3_soft_limit(
            s["op"], y, alpha, eta, test_operator=s["test_op"], preconditioner=s["top"]
        )
        g = eta * lam / (1 - alpha + alpha * eta * lam)  # distill.r3_soft_limit_filter
        np.testing.assert_allclose(np.asarray(lim.train), vec @ (g * (vec.T @ y)), atol=1e-7)
        # Test points: K(x_test, X) φ(K) y with φ = g/λ.
        phi = eta / (1 - alpha + alpha * eta * lam)
        ref_test = s["k_test"] @ (vec @ (phi * (vec.T @ y)))
        np.testing.assert_allclose(np.asarray(lim.test), ref_test, atol=1e-6)
    gamma = 1e-2
    kr = matfree.kernel_ridge(s["op"], y, gamma, test_operator=s["test_op"])
    np.testing.assert_allclose(
        np.asarray(kr.train), s["K"] @ np.linalg.solve(s["K"] + gamma * np.eye(len(y)), y),
        atol=1e-8,
    )  # fmt: skip
    with pytest.raises(ValueError, match="alpha must lie in"):
        matfree.r3_soft_limit(s["op"], y, 1.0, eta)
    with pytest.raises(ValueError, match="mu must be a positive"):
        matfree.ridge_solve(s["op"], y, 0.0)


# ---------------------------------------------------------------------------------------------
# Resource estimates and the solver choice
# ---------------------------------------------------------------------------------------------


def test_estimates_and_choice():
    dense = resources.estimate_dense(100_000, "float64")
    assert dense.memory_bytes == 8 * (5 * 10**10 + 6 * 10**5 + 1)
    assert resources.estimate_dense(1000, "float32").memory_bytes * 2 == (
        resources.estimate_dense(1000, "float64").memory_bytes
    )
    top = resources.estimate_topk(100_000, 100, "float64")
    assert top.memory_bytes < 4 * 10**9 < dense.memory_bytes
    # more devices: less time per pass, more copies of the block
    eight = resources.estimate_topk(100_000, 100, n_devices=8)
    assert eight.seconds < top.seconds and eight.memory_bytes > top.memory_bytes
    solver, reason, est = resources.choose_solver(2000, 100, memory_budget=4 * 10**9)
    assert solver == "dense" and "≤ budget" in reason and set(est) == {"dense", "topk"}
    solver, reason, _ = resources.choose_solver(100_000, 100, memory_budget=16 * 10**9)
    assert solver == "topk" and "GB" in reason
    with pytest.raises(ValueError, match="--solver dense cannot fit"):
        resources.choose_solver(100_000, 100, memory_budget=16 * 10**9, solver="dense")
    with pytest.raises(ValueError, match="neither path fits"):
        resources.choose_solver(10**6, 100, memory_budget=10**8)
    assert resources.format_bytes(4.5e9) == "4.5 GB"
