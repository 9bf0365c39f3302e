"""ntk_air.predict against pinned neural-tangents 0.6.5 (tests/fixtures/predict_nt.npz, made by
tools/nt_reference/make_predict_fixtures.py), closed forms, and the inputs that gave NaN in
neural-tangents' issues #76, #128, #178, #193, #198."""

from __future__ import annotations

import pathlib
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntk_air import predict
from ntk_air.kernels import Kernel, fc_kernel_fn

FIXTURE = pathlib.Path(__file__).parent / "fixtures" / "predict_nt.npz"
REGS = {"r0": (0.0, False), "rel": (1e-2, False), "abs": (0.1, True)}
LR = 0.7
TOL = 1e-10


@pytest.fixture(scope="module")
def ref(x64_module):
    with np.load(FIXTURE) as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def x64_module():
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


def close(a, b, tol=TOL):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = max(np.max(np.abs(b)), 1.0)
    err = np.max(np.abs(a - b)) / scale
    assert err <= tol, f"max error {err:.3g} (relative to max |ref| = {scale:.3g})"


def lookup_kernel_fn(ref):
    """A KernelFn of the fixture kernels: inputs are row indices (train 0..n-1, test n..)."""
    n = ref["y_train"].shape[0]

    def full(g):
        dd, td, tt = ref[f"{g}_dd"], ref[f"{g}_td"], ref[f"{g}_tt"]
        return np.block([[dd, td.T], [td, tt]])

    nngp, ntk = full("nngp"), full("ntk")

    def kernel_fn(x1, x2=None):
        i = np.asarray(x1)[:, 0].astype(int)
        j = i if x2 is None else np.asarray(x2)[:, 0].astype(int)
        return Kernel(nngp=jnp.asarray(nngp[np.ix_(i, j)]), ntk=jnp.asarray(ntk[np.ix_(i, j)]))

    m = ref["x_test"].shape[0]
    x_train = np.arange(n, dtype=np.float64)[:, None]
    x_test = (n + np.arange(m, dtype=np.float64))[:, None]
    return kernel_fn, x_train, x_test


@pytest.mark.parametrize("reg", REGS)
def test_gradient_descent_mse_matches_nt(ref, reg):
    dr, absolute = REGS[reg]
    p = predict.gradient_descent_mse(ref["ntk_dd"], ref["y_train"], LR, dr, absolute)
    train, test = p(ref["t"], ref["fx_train_0"], ref["fx_test_0"], ref["ntk_td"])
    close(train, ref[f"gd_mse/{reg}/train"])
    close(test, ref[f"gd_mse/{reg}/test"])
    train, test = p(None, ref["fx_train_0"], ref["fx_test_0"], ref["ntk_td"])
    close(train, ref[f"gd_mse/{reg}/train_inf"])
    close(test, ref[f"gd_mse/{reg}/test_inf"])
    # one set only, as neural-tangents: fx_test_0=None → train only; fx_train_0=None → test only
    assert p(ref["t"], ref["fx_train_0"]).shape == (4, 12, 2)
    assert p(3.0, None, ref["fx_test_0"], ref["ntk_td"]).shape == (5, 2)


@pytest.mark.parametrize("reg", REGS)
@pytest.mark.parametrize("get", ["nngp", "ntk"])
@pytest.mark.parametrize("where", ["train", "test"])
def test_ensemble_matches_nt(ref, reg, get, where):
    dr, absolute = REGS[reg]
    kernel_fn, x_train, x_test = lookup_kernel_fn(ref)
    p = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, ref["y_train"], LR, dr, absolute)
    xt = None if where == "train" else x_test
    for when, t in (("t", ref["t"]), ("inf", None)):
        out = p(t, xt, get, compute_cov=True)
        key = f"ens/{reg}/{get}/{where}/{when}"
        close(out.mean, ref[f"{key}/mean"])
        close(out.covariance, ref[f"{key}/cov"])
        mean_only = p(t, xt, get)
        close(mean_only, ref[f"{key}/mean"])


def test_ensemble_get_none_and_tuple(ref):
    kernel_fn, x_train, x_test = lookup_kernel_fn(ref)
    p = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, ref["y_train"], LR)
    both = p(ref["t"], x_test)
    assert type(both).__name__ == "Gaussians" and both._fields == ("nngp", "ntk")
    close(both.ntk, ref["ens/r0/ntk/test/t/mean"])
    rev = p(ref["t"], x_test, ("ntk", "nngp"), True)
    assert rev._fields == ("ntk", "nngp")
    close(rev.nngp.covariance, ref["ens/r0/nngp/test/t/cov"])


@pytest.mark.parametrize("reg", REGS)
def test_gp_inference_matches_nt(ref, reg):
    dr, absolute = REGS[reg]
    kdd = Kernel(nngp=ref["nngp_dd"], ntk=ref["ntk_dd"])
    ktd = Kernel(nngp=ref["nngp_td"], ntk=ref["ntk_td"])
    ktt = Kernel(nngp=ref["nngp_tt"], ntk=ref["ntk_tt"])
    p = predict.gp_inference(kdd, ref["y_train"], dr, absolute)
    for get in ("nngp", "ntk", "ntkgp"):
        g = p(get, ktd, ktt)
        close(g.mean, ref[f"gp/{reg}/{get}/mean"])
        close(g.covariance, ref[f"gp/{reg}/{get}/cov"])
    train = p(None, None, True)
    close(train.ntk.mean, ref["y_train"])
    assert float(jnp.abs(train.nngp.covariance).max()) == 0.0


def test_max_learning_rate_matches_nt(ref):
    for mom in (0.0, 0.9):
        for size in (None, 24):
            lr = predict.max_learning_rate(ref["ntk_dd"], size, mom)
            close(lr, ref[f"max_lr/{mom}/{size}"], 1e-12)


@pytest.mark.parametrize("momentum", [None, 0.9])
def test_gradient_descent_cross_entropy_matches_nt(ref, momentum):
    def cross_entropy(fx, y_hat):
        return -jnp.mean(jax.nn.log_softmax(fx) * y_hat)

    p = predict.gradient_descent(cross_entropy, ref["ntk_dd"], ref["y_onehot"], LR, momentum)
    train, test = p(ref["t"][:3], ref["fx_train_0"], ref["fx_test_0"], ref["ntk_td"])
    # Same integrator (odeint, rtol = atol = 1.4e-8) on the same ODE: equal to its tolerance.
    close(train, ref[f"gd_ce/{momentum}/train"], 1e-7)
    close(test, ref[f"gd_ce/{momentum}/test"], 1e-7)


def test_gradient_descent_mse_loss_equals_closed_form(ref):
    """The ODE on NT's MSE loss equals gradient_descent_mse (two independent paths)."""
    y = ref["y_train"]
    mse = lambda f, yy: 0.5 * jnp.mean((f - yy) ** 2)  # noqa: E731
    ode = predict.gradient_descent(mse, ref["ntk_dd"], y, LR)
    closed = predict.gradient_descent_mse(ref["ntk_dd"], y, LR)
    t = jnp.array([0.5, 5.0, 50.0])
    a = ode(t, ref["fx_train_0"], ref["fx_test_0"], ref["ntk_td"])
    b = closed(t, ref["fx_train_0"], ref["fx_test_0"], ref["ntk_td"])
    for u, v in zip(a, b, strict=True):
        close(u, v, 1e-6)


# ---------------------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------------------


def test_long_time_equals_ridge_solution(ref):
    """t → ∞ gives the ridge solution K_*X (K + δI)⁻¹ y (the textbook formula, NT #178)."""
    k, y, ktd = ref["ntk_dd"], ref["y_train"], ref["ntk_td"]
    delta = 0.3
    ridge = ktd @ np.linalg.solve(k + delta * np.eye(12), y)
    p = predict.gradient_descent_mse(k, y, 1.0, delta, True)
    close(p(None, 0.0, 0.0, ktd)[1], ridge, 1e-12)
    close(p(1e12, 0.0, 0.0, ktd)[1], ridge, 1e-9)
    close(p(np.inf, 0.0, 0.0, ktd)[1], ridge, 1e-12)
    gp = predict.gp_inference(k, y, delta, True)
    close(gp("ntk", ktd), ridge, 1e-12)


def test_covariances_are_psd(ref):
    kernel_fn, x_train, x_test = lookup_kernel_fn(ref)
    p = predict.gradient_descent_mse_ensemble(kernel_fn, x_train, ref["y_train"], LR, 1e-3)
    for get in ("nngp", "ntk"):
        for t in (ref["t"], None):
            cov = np.asarray(p(t, x_test, get, True).covariance)
            cov = cov.reshape((-1, 5, 5))
            np.testing.assert_allclose(cov, np.swapaxes(cov, -1, -2), atol=1e-12)
            assert np.linalg.eigvalsh(cov).min() > -1e-10
    # at t = 0 the ensemble is the prior: mean 0, covariance the NNGP
    g = p(0.0, x_test, "ntk", True)
    close(g.mean, np.zeros((5, 2)), 0)
    close(g.covariance, ref["nngp_tt"], 1e-12)


def test_float32_on_request(ref):
    p = predict.gradient_descent_mse(ref["ntk_dd"], ref["y_train"], LR, dtype=jnp.float32)
    out = p(ref["t"], ref["fx_train_0"], ref["fx_test_0"], ref["ntk_td"])
    assert out[0].dtype == jnp.float32
    close(out[1], ref["gd_mse/r0/test"], 1e-3)


# ---------------------------------------------------------------------------------------------
# The inputs that gave NaN in neural-tangents
# ---------------------------------------------------------------------------------------------


def test_singular_kernel_duplicate_inputs_is_finite(x64_module):
    """NT #76 / #128: a singular train kernel (duplicated inputs) gave all-NaN predictions.

    The flow's limit is the pseudo-inverse; the diagnostics report the singularity."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 3))
    x = np.concatenate([x, x[:4]])  # four duplicated rows: rank 10 of 14
    y = np.concatenate([rng.normal(size=10), np.zeros(4)])
    y[10:] = y[:4]  # consistent targets on the duplicates
    kernel_fn = fc_kernel_fn(2, "relu", 1.5, 0.1)
    x_test = rng.normal(size=(5, 3))
    p = predict.gradient_descent_mse_ensemble(kernel_fn, x, y)
    for t in (np.array([1.0, np.inf]), None):
        g = p(t, x_test, "ntk", True)
        assert np.isfinite(np.asarray(g.mean)).all() and np.isfinite(np.asarray(g.covariance)).all()
    diag = p.diagnostics("ntk")
    assert int(diag.null_dimension) == 4 and np.isinf(float(diag.condition_number))
    # the pseudo-inverse prediction equals the prediction without the duplicates
    k = kernel_fn(x[:10]).ntk
    ref = kernel_fn(x_test, x[:10]).ntk @ np.linalg.solve(k, y[:10])
    close(p(None, x_test, "ntk"), ref, 1e-7)


def test_not_psd_kernel_names_fix(x64_module):
    """NT #193 ("NTK is not PD"): one sentence with the smallest eigenvalue and a diag_reg."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(8, 8))
    k = a @ a.T
    lam, v = np.linalg.eigh(k)
    lam[0] = -0.05
    k = (v * lam) @ v.T
    k = (k + k.T) / 2
    y = rng.normal(size=8)
    with pytest.raises(
        predict.NotPositiveSemidefiniteError, match=r"smallest eigenvalue is -0\.05"
    ) as e:
        predict.gradient_descent_mse(k, y)
    fix = float(re.search(r"diag_reg ≥ ([0-9.e+-]+) with diag_reg_absolute_scale", str(e.value))[1])
    p = predict.gradient_descent_mse(k, y, diag_reg=1.01 * fix, diag_reg_absolute_scale=True)
    assert np.isfinite(np.asarray(p(10.0))).all()
    rel = float(re.search(r"diag_reg ≥ ([0-9.e+-]+) \(relative", str(e.value))[1])
    p = predict.gp_inference(k, y, diag_reg=1.01 * rel)
    assert np.isfinite(np.asarray(p("ntk", k[:3]))).all()
    with pytest.raises(ValueError, match="k_train_train.*symmetric"):
        predict.gradient_descent_mse(k + np.triu(np.ones((8, 8)), 1), y)


def test_1d_sinusoid_many_points_is_finite(x64_module):
    """NT #198: 1-D inputs on [−10π, 10π], deep ReLU with biases, diag_reg=1e-4: NaN NTK mean."""
    x = np.linspace(-10 * np.pi, 10 * np.pi, 150)[:, None]
    y = np.sin(x) + np.sin(2 * x)
    x_test = np.linspace(-10 * np.pi, 10 * np.pi, 5)[:, None]
    kernel_fn = fc_kernel_fn(2, "relu", 1.5, 0.05)
    p = predict.gradient_descent_mse_ensemble(kernel_fn, x, y, diag_reg=1e-4)
    g = p(None, x_test, "ntk", True)
    assert np.isfinite(np.asarray(g.mean)).all() and np.isfinite(np.asarray(g.covariance)).all()
    assert float(p.diagnostics("ntk").condition_number) > 1.0


def test_errors_are_one_sentence(ref):
    with pytest.raises(ValueError, match="diag_reg must be"):
        predict.gradient_descent_mse(ref["ntk_dd"], ref["y_train"], diag_reg=-1.0)
    p = predict.gradient_descent_mse(ref["ntk_dd"], ref["y_train"])
    with pytest.raises(ValueError, match="need k_test_train"):
        p(1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="t must be ≥ 0"):
        p(-1.0)
    with pytest.raises(ValueError, match="y_train must have shape"):
        predict.gradient_descent_mse(ref["ntk_dd"], ref["y_train"][:5])
    with pytest.raises(ValueError, match="get must name"):
        predict.gp_inference(ref["ntk_dd"], ref["y_train"])("nnpg")
    with pytest.raises(ValueError, match="needs the NNGP"):
        predict.gp_inference(ref["ntk_dd"], ref["y_train"])("ntk", ref["ntk_td"], ref["ntk_tt"])


# ---------------------------------------------------------------------------------------------
# Matrix-free
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def regression_set(x64_module):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 4))
    x_test = rng.normal(size=(7, 4))
    y = np.sin(x[:, 0]) + 0.1 * rng.normal(size=60)
    return x, y, x_test, fc_kernel_fn(1, "relu", 1.5, 0.1)


@pytest.mark.slow
def test_matfree_gp_mean_and_variance_equal_dense(regression_set):
    x, y, x_test, kf = regression_set
    dense = predict.gp_inference(kf(x), y, 1e-3)
    for rank in (0, 8):
        out = predict.gp_mean_matfree(kf, x, y, x_test, diag_reg=1e-3, tol=1e-10, rank=rank)
        assert bool(out.converged) and float(out.relative_residual) <= 1e-10
        close(out.test, dense("ntk", kf(x_test, x).ntk), 1e-8)
    for get in ("nngp", "ntk"):
        var = predict.posterior_variance_matfree(
            kf, x, x_test[:3], get=get, diag_reg=1e-3, tol=1e-11
        )
        exact = dense(get, kf(x_test[:3], x), kf(x_test[:3])).covariance
        close(var, np.diag(exact), 1e-8)
    with pytest.raises(ValueError, match="needs diag_reg > 0"):
        predict.gp_mean_matfree(kf, x, y, diag_reg=0.0)


def test_nystrom_eigenvalues_lie_below_the_kernel_s(regression_set):
    """K − K̂ is PSD (a Schur complement): λ̂_i ≤ λ_i for every i (Weyl); with every row a
    landmark K̂ = K; the eigenvectors are orthonormal and eigenvectors of K̂ = C W⁻¹ Cᵀ."""
    from ntk_air.spectral import nystrom_eigensystem

    x, _, _, kf = regression_set
    K = np.asarray(kf(x).ntk)
    lam = np.linalg.eigvalsh(K)[::-1]
    nys = nystrom_eigensystem(kf, x, 10, landmarks=25, seed=1)
    ev, v = np.asarray(nys.eigenvalues), np.asarray(nys.eigenvectors)
    assert np.all(ev <= lam[:10] * (1 + 1e-12))
    assert ev[0] > 0.5 * lam[0] and float(nys.next_eigenvalue) <= ev[-1]
    close(v.T @ v, np.eye(10), 1e-10)
    rows = np.asarray(nys.landmarks)
    c = K[:, rows]
    k_hat = c @ np.linalg.solve(K[np.ix_(rows, rows)], c.T)
    close(k_hat @ v, v * ev, 1e-8)
    full = nystrom_eigensystem(kf, x, 10, landmarks=60)
    close(full.eigenvalues, lam[:10], 1e-9)
    with pytest.raises(ValueError, match="rank"):
        nystrom_eigensystem(kf, x, 30, landmarks=20)


def test_nystrom_preconditioned_mean_equals_dense_in_fewer_passes(regression_set):
    x, y, x_test, kf = regression_set
    exact = predict.gp_inference(kf(x), y, 1e-4)("ntk", kf(x_test, x).ntk)
    plain = predict.gp_mean_matfree(kf, x, y, x_test, diag_reg=1e-4, tol=1e-10)
    nys = predict.gp_mean_matfree(
        kf, x, y, x_test, diag_reg=1e-4, tol=1e-10, rank=12, preconditioner="nystrom"
    )
    for out in (plain, nys):
        assert bool(out.converged) and float(out.relative_residual) <= 1e-10
        close(out.test, exact, 1e-7)
    assert int(nys.preconditioner_passes) == 0
    assert int(nys.iterations) < int(plain.iterations)
    for kw, match in (
        (dict(preconditioner="cholesky", rank=4), "preconditioner must be one of"),
        (dict(landmarks=20, rank=4), "landmarks applies"),
        (dict(rank=-1), "rank"),
    ):
        with pytest.raises(ValueError, match=match):
            predict.gp_mean_matfree(kf, x, y, diag_reg=1e-3, **kw)


@pytest.mark.slow
def test_matfree_trajectory_within_its_bounds(regression_set):
    x, y, x_test, kf = regression_set
    t = np.array([10.0, 1000.0])
    traj = predict.ensemble_mean_matfree(kf, x, y, t, x_test, rank=12)
    exact = predict.gradient_descent_mse_ensemble(kf, x, y)
    train = np.asarray(exact(t, None, "ntk"))
    # the train residual norm: top modes exact, the tail within its bracket
    top_v = np.asarray(traj.top.eigenvectors)
    r = train - y[None]
    tail = np.linalg.norm(r - (r @ top_v) @ top_v.T, axis=1)
    assert np.all(tail >= np.asarray(traj.tail_lower) * (1 - 1e-6) - 1e-12)
    assert np.all(tail <= np.asarray(traj.tail_upper) * (1 + 1e-6) + 1e-12)
    # with enough Krylov passes the reduction holds the whole problem: the mean is the exact one
    traj = predict.ensemble_mean_matfree(kf, x, y, t, x_test, rank=12, tail_steps=40)
    close(traj.train, train, 1e-8)
    close(traj.test, exact(t, x_test, "ntk"), 1e-8)
    # diag_reg: the flow on K + δI, as the dense ensemble with the same (relative) diag_reg
    reg = predict.gradient_descent_mse_ensemble(kf, x, y, diag_reg=1e-2)
    traj = predict.ensemble_mean_matfree(kf, x, y, t, x_test, diag_reg=1e-2, rank=12, tail_steps=40)
    close(traj.train, reg(t, None, "ntk"), 1e-8)
    close(traj.test, reg(t, x_test, "ntk"), 1e-8)


def test_docs_ported_example_runs(x64_module):
    """The ```python block of docs/coming_from_neural_tangents.md runs as written."""
    page = pathlib.Path(__file__).parents[1] / "docs" / "coming_from_neural_tangents.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(page), "exec"), {"__name__": "docs_example"})


def test_gp_inference_refuses_a_non_symmetric_kernel_when_built(x64_module):
    """The train kernel is checked when the predictor is built, not at its first call."""
    with pytest.raises(ValueError, match="k_train_train must be symmetric"):
        predict.gp_inference(np.array([[1.0, 0.5], [0.0, 1.0]]), np.ones(2))
