"""The top-k Eigensystem (the Rayleigh–Ritz reduction) through the shared science code equals
the dense closed forms: AIR energies and tails, fitted fractions, the U-curve; estimates."""

from __future__ import annotations

import numpy as np
import pytest

from ntk_air import (
    dynamics,
    kernels,
)
from ntk_air import (
    dynamics as early_stopping,
)
from ntk_air import (
    spectral as eigen,
)
from ntk_air import (
    spectral as matfree,
)
from ntk_air import (
    spectral as operators,
)
from ntk_air import (
    spectral as problem,
)
from ntk_air import (
    spectral as resources,
)
from ntk_air import (
    spectral as spectrum,
)
from ntk_air import (
    spectral as topk,
)


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
    top = topk.topk_eigensystem(op, k, block_size=32, tol=1e-11)
    red = matfree.ritz_reduction(top, matfree.deflated_krylov(op, top, np.stack([-y, yc], 1), 40))
    yield {
        "x": x, "y": y, "yc": yc, "xt": xt, "cl": cl, "K": K, "eig": eig, "op": op,
        "test_op": test_op, "k_test": np.asarray(fn(xt, x).ntk), "top": top, "k": k, "red": red,
    }  # fmt: skip
    jax.config.update("jax_enable_x64", prev)


# ---------------------------------------------------------------------------------------------
# AIR: the same spectrum functions on the dense and the top-k eigensystem
# ---------------------------------------------------------------------------------------------


def test_air_energies_and_tail_equal_dense(x64, setup):
    s, eig, k = setup, setup["eig"], setup["k"]
    air = spectrum.air_spectra(s["red"], s["yc"], s["y"])
    dense_air = spectrum.air_spectra(eig, s["yc"], s["y"])
    for name, z in (("clean", s["yc"]), ("noise", s["y"] - s["yc"]), ("noisy", s["y"])):
        dense = np.asarray((eig.eigenvectors.T @ z) ** 2 / np.sum(z**2))
        spec = getattr(air, name)
        assert spec.energy.shape == (k,) and float(getattr(dense_air, name).tail) == 0.0
        np.testing.assert_allclose(np.asarray(spec.energy), dense[:k], atol=1e-10)
        np.testing.assert_allclose(float(spec.tail), dense[k:].sum(), rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(float(spec.cumulative[-1] + spec.tail), 1.0, atol=1e-12)
        np.testing.assert_allclose(float(spec.norm), np.linalg.norm(z), rtol=1e-14)
        assert np.isnan(float(spec.alignment)) and np.isnan(float(spec.complexity))
        # fractions the top k do not hold are 0 ("> k"), the others as dense
        held = np.asarray(getattr(dense_air, name).modes_holding)
        np.testing.assert_array_equal(np.asarray(spec.modes_holding), np.where(held <= k, held, 0))
    # AIR itself: the clean labels live in the top modes far more than the noise does.
    assert float(air.clean.tail) < 0.5 * float(air.noise.tail)


def test_one_hot_labels(x64, setup):
    s, eig, k = setup, setup["eig"], setup["k"]
    onehot = np.eye(3)[s["cl"] % 3]
    spec = spectrum.label_spectrum(s["red"], onehot)
    dense = np.sum(np.asarray(eig.eigenvectors.T @ onehot) ** 2, axis=1) / np.sum(onehot**2)
    np.testing.assert_allclose(np.asarray(spec.energy), dense[:k], atol=1e-10)
    np.testing.assert_allclose(float(spec.tail), dense[k:].sum(), rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# Dynamics and early stopping: the same functions, the reduction against the dense closed form
# ---------------------------------------------------------------------------------------------


def test_dynamics_on_the_reduction_equal_dense(x64, setup):
    s, eig, red = setup, setup["eig"], setup["red"]
    y, yc = s["y"], s["yc"]
    eta = 1.0 / float(eig.eigenvalues[0])
    assert dynamics.resolve_step_size(red) == pytest.approx(eta, rel=1e-12)
    steps = np.concatenate([[0.0], np.unique(np.round(np.logspace(0, 5, 30)))])
    ff = dynamics.fitted_fractions(red, yc, y, steps, eta=eta)
    ref = dynamics.fitted_fractions(eig, yc, y, steps, eta=eta)
    for name in ("clean", "noise", "noisy"):
        np.testing.assert_allclose(getattr(ff, name), getattr(ref, name), atol=1e-7)
    k_test = s["k_test"]
    yt = np.sign(k_test @ np.linalg.solve(s["K"] + np.eye(len(y)), yc))
    dense_p = problem.linear_problem(eig, y, yc, k_test_train=k_test, y_test_clean=yt)
    kv = s["test_op"].apply(red.eigenvectors)
    red_p = problem.linear_problem(red, y, yc, kv_test=kv, y_test_clean=yt)
    a = early_stopping.u_curve(red_p, steps=steps, eta=eta)
    b = early_stopping.u_curve(dense_p, steps=steps, eta=eta)
    np.testing.assert_allclose(a.train_dist, b.train_dist, rtol=1e-7)
    np.testing.assert_allclose(a.test_dist, b.test_dist, rtol=1e-6)
    assert float(a.best_step) == float(b.best_step)
    horizon = early_stopping.noise_fit_horizon(red, yc, y, eta=eta)
    assert horizon == early_stopping.noise_fit_horizon(eig, yc, y, eta=eta)


# ---------------------------------------------------------------------------------------------
# Resource estimates
# ---------------------------------------------------------------------------------------------


def test_estimates():
    dense = resources.estimate_dense(100_000, "float64")
    assert dense.memory_bytes == 8 * (7 * 10**10 + 6 * 10**5 + 1)
    assert resources.estimate_dense(1000, "float32").memory_bytes * 2 == (
        resources.estimate_dense(1000, "float64").memory_bytes
    )
    top = resources.estimate_topk(100_000, 100, "float64")
    assert top.memory_bytes < 4 * 10**9 < dense.memory_bytes
    # more devices: less time per pass, more copies of the block
    eight = resources.estimate_topk(100_000, 100, n_devices=8)
    assert eight.seconds < top.seconds and eight.memory_bytes > top.memory_bytes
    assert resources.format_bytes(4.5e9) == "4.5 GB"


def test_top_k_energy_figure_says_beyond_k_and_uses_the_real_n(x64, setup):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ntk_air.plots.air import plot_label_energy

    s, k = setup, setup["k"]
    air = spectrum.air_spectra(s["red"], s["yc"], s["y"])
    _, ax1 = plot_label_energy(air, n=360)
    labels = [t.get_text() for t in ax1.get_legend().get_texts()]
    plt.close("all")
    noise = next(lab for lab in labels if lab.startswith("noise"))
    assert f"99 % in > {k}" in noise and " in 0" not in noise
    assert "uniform k/n (n = 360)" in labels
