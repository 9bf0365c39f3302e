"""Eigenlearning learning curves: identities, closed forms, a high-precision κ, refusals,
transformations, population spectra, and predicted against measured kernel ridge regression."""

from __future__ import annotations

import json
from decimal import Decimal, getcontext

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntk_air import data, kernels, studies
from ntk_air import learning_curves as lc
from ntk_air.learning_curves._eigenlearning import _draw_indices
from ntk_air.spectral import eigensystem, matrix_operator, topk_eigensystem

EPS = np.finfo(np.float64).eps


@pytest.fixture(autouse=True)
def _x64(x64):
    yield


def _power_law(m=200, alpha=1.5):
    i = np.arange(1, m + 1, dtype=np.float64)
    return jnp.asarray(i**-alpha), jnp.asarray(i ** (-alpha / 2) * np.cos(i))


def _kappa_reference(lam, n, ridge, digits=50):
    """κ by bisection on log κ in 50-digit decimal arithmetic (an independent reference)."""
    getcontext().prec = digits
    lam = [Decimal(repr(float(v))) for v in lam]
    n, ridge = Decimal(repr(float(n))), Decimal(repr(float(ridge)))

    def g(log_k):
        k = log_k.exp()
        return sum(v / (v + k) for v in lam) + ridge / k - n

    lo, hi = Decimal(-300), Decimal(50)
    for _ in range(400):
        mid = (lo + hi) / 2
        if g(mid) > 0:
            lo = mid
        else:
            hi = mid
    return float(((lo + hi) / 2).exp())


# ---------------------------------------------------------------------------------------------
# The theory
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [1.1, 2.0, 4.0])
def test_ridgeless_conservation_law(alpha):
    lam, v = _power_law(alpha=alpha)
    n = jnp.array([1.0, 7.0, 50.0, 150.0, 199.0])
    c = lc.learning_curve(lam, v, n, 0.0)
    np.testing.assert_allclose(c.learnability.sum(-1), n, rtol=0, atol=20 * 200 * EPS)
    assert np.all(np.asarray(c.train_mse) == 0)
    # E₀ = n/(n − Σ L²), computed here the naive way
    L = np.asarray(c.learnability)
    np.testing.assert_allclose(c.e0, n / (n - (L**2).sum(-1)), rtol=1e-9)


def test_mode_errors_sum_to_the_clean_error():
    lam, v = _power_law()
    c = lc.learning_curve(lam, v, jnp.array([10.0, 100.0]), jnp.array([0.0, 1e-2])[:, None], 0.3)
    np.testing.assert_allclose(c.mode_error.sum(-1), c.test_mse - 0.3, rtol=1e-12)
    np.testing.assert_allclose(c.clean_part + c.noise_part, c.test_mse, rtol=1e-14)


def test_closed_forms_one_eigenvalue_and_equal_eigenvalues():
    # one eigenvalue λ with ridge δ: nκ² + (nλ − λ − δ)κ − δλ = 0
    lam, n, ridge = 0.7, 3.0, np.array([1e-6, 1e-2, 1.0, 1e3])
    b = n * lam - lam - ridge
    root = np.sqrt(b**2 + 4 * n * ridge * lam)
    # the positive root, in the form without cancellation for either sign of b
    kappa = np.where(b > 0, 2 * ridge * lam / (b + root), (root - b) / (2 * n))
    got = lc.effective_regularization(jnp.array([lam]), n, jnp.asarray(ridge))
    np.testing.assert_allclose(got, kappa, rtol=1e-13)
    # m equal eigenvalues, ridgeless: mλ/(λ + κ) = n → κ = λ(m − n)/n
    m = 64
    ns = np.array([1.0, 10.0, 63.0])
    got = lc.effective_regularization(jnp.full(m, 2.5), jnp.asarray(ns))
    np.testing.assert_allclose(got, 2.5 * (m - ns) / ns, rtol=1e-13)


def test_infinite_ridge_limit():
    lam, v = _power_law()
    sigma2, n, T = 0.2, jnp.array([5.0, 50.0]), float(jnp.sum(lam))
    ridge = 1e13
    c = lc.learning_curve(lam, v, n, ridge, sigma2)
    total = float(jnp.sum(v**2)) + sigma2
    np.testing.assert_allclose(c.kappa * n / (ridge + T), 1.0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(c.test_mse, total, rtol=1e-10)
    np.testing.assert_allclose(c.train_mse, total, rtol=1e-10)  # (δ/nκ)² → 1
    np.testing.assert_allclose(c.e0, 1.0, rtol=0, atol=1e-10)
    np.testing.assert_allclose(c.learnability * c.kappa[:, None] / lam, 1.0, rtol=1e-10)


@pytest.mark.parametrize("ridge", [0.0, 1e-25, 1e-3])
def test_kappa_to_1e12_on_thirty_orders_of_magnitude(ridge):
    lam = 10.0 ** (-30.0 * np.arange(60) / 59)
    for n in (3.0, 30.0, 55.0):
        got = float(lc.effective_regularization(jnp.asarray(lam), n, ridge))
        want = _kappa_reference(lam, n, ridge)
        assert abs(got / want - 1) < 1e-12, (n, ridge, got, want)


def test_ridgeless_at_and_beyond_the_rank_is_the_limit_of_small_ridge():
    # r = 3 nonzero eigenvalues, target power P0 = 2 on the two null modes, σ² = 0.3
    lam = jnp.array([1.0, 0.5, 0.25, 0.0, 0.0])
    v = jnp.ones(5)
    sigma2 = 0.3
    n = jnp.array([4.0, 6.0, 30.0])
    c = lc.learning_curve(lam, v, n, 0.0, sigma2)
    np.testing.assert_array_equal(c.kappa, 0.0)
    np.testing.assert_array_equal(c.learnability, np.broadcast_to([1, 1, 1, 0, 0], (3, 5)))
    # least squares on r = 3 features: E₀ = n/(n − r), train = (1 − r/n)(P0 + σ²)
    np.testing.assert_allclose(c.e0, n / (n - 3), rtol=1e-15)
    np.testing.assert_allclose(c.test_mse, n / (n - 3) * (2 + sigma2), rtol=1e-15)
    np.testing.assert_allclose(c.train_mse, (1 - 3 / n) * (2 + sigma2), rtol=1e-15)
    np.testing.assert_allclose(c.mode_error.sum(-1), c.test_mse - sigma2, rtol=1e-14)
    # ... which is the limit δ → 0⁺ of the ridge curve (κ ≈ δ/(n − r), error O(δ))
    small = lc.learning_curve(lam, v, n, 1e-9, sigma2)
    for a, b in zip(c, small, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-8)
    # at n = r: E₀ = ∞; with no null-mode power and no noise the error is the limit 0
    at = lc.learning_curve(lam, v, 3.0, 0.0, sigma2)
    assert at.e0 == np.inf and at.test_mse == np.inf and at.train_mse == 0.0
    clean = lc.learning_curve(lam, v.at[3:].set(0.0), 3.0, 0.0)
    assert clean.test_mse == 0.0 and clean.clean_part == 0.0 and clean.e0 == np.inf
    assert np.all(np.isfinite(lc.learnabilities(lam, 0.0)))
    for bad in (dict(n=0.0), dict(ridge=-1.0), dict(noise_variance=-0.1)):
        kw = dict(n=2.0, ridge=0.0, noise_variance=0.0) | bad
        with pytest.raises(ValueError, match=list(bad)[0]):
            lc.learning_curve(lam, jnp.ones(5), **kw)
    with pytest.raises(ValueError, match="eigenvalues must be ≥ 0"):
        lc.learning_curve(jnp.array([1.0, -0.1]), None, 1.0)


def test_ridgeless_under_jit_equals_the_eager_call():
    # below, at and beyond the rank r = 3, under jit and vmap: the eager values, no NaN
    lam = jnp.array([1.0, 0.5, 0.25, 0.0, 0.0])
    n = jnp.array([1.0, 2.5, 3.0, 4.0, 9.0])
    eager = lc.learning_curve(lam, jnp.ones(5), n, 0.0, 0.1)
    jitted = jax.jit(lambda n: lc.learning_curve(lam, jnp.ones(5), n, 0.0, 0.1))(n)
    mapped = jax.vmap(lambda n: lc.learning_curve(lam, jnp.ones(5), n, 0.0, 0.1))(n)
    for a, b, c in zip(eager, jitted, mapped, strict=True):
        np.testing.assert_array_equal(np.isnan(a), False)
        np.testing.assert_allclose(b, a, rtol=1e-13)
        np.testing.assert_allclose(c, a, rtol=1e-13)
    np.testing.assert_allclose(eager.learnability[:2].sum(-1), n[:2], rtol=1e-13)
    k = jax.jit(lambda n: lc.effective_regularization(lam, n))(n)
    assert np.all(k[:2] > 0) and np.all(k[2:] == 0)


def test_jit_vmap_and_eager_agree(compile_counter):
    lam, v = _power_law()
    n = jnp.array([10.0, 30.0, 100.0])
    ridge = jnp.array([0.0, 1e-3])
    eager = lc.learning_curve(lam, v, n[:, None], ridge[None, :], 0.1)
    f = jax.jit(lambda n, r: lc.learning_curve(lam, v, n, r, 0.1))
    jitted = f(n[:, None], ridge[None, :])
    mapped = jax.vmap(jax.vmap(lambda a, b: f(a, b), (None, 0)), (0, None))(n, ridge)
    for a, b, c in zip(eager, jitted, mapped, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13)
        np.testing.assert_allclose(a, c, rtol=1e-13)
    assert eager.learnability.shape == (3, 2, 200)
    f(n[:, None] + 1.0, ridge[None, :] * 2)  # warm for these shapes: no new compilation
    args = (n[:, None] + 2.0, ridge[None, :] * 3)
    with compile_counter() as c:
        f(*args)
    assert c.count == 0


# ---------------------------------------------------------------------------------------------
# Population spectra
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clusters_population():
    from conftest import _set_x64

    prev = _set_x64(True)
    ds = data.clusters()
    K = kernels.two_layer_relu(ds.x, ds.x)
    eig = eigensystem(K)
    yield ds, K, eig
    _set_x64(prev)


def test_population_spectrum_parseval_and_eigenvalues(clusters_population):
    ds, K, eig = clusters_population
    N = K.shape[0]
    ps = lc.population_spectrum(eig, ds.y_clean)
    np.testing.assert_allclose(jnp.sum(ps.coefficients**2), jnp.mean(ds.y_clean**2), rtol=1e-12)
    np.testing.assert_allclose(
        ps.eigenvalues, np.linalg.eigvalsh(np.asarray(K) / N)[::-1], atol=1e-13
    )


def test_topk_spectrum_keeps_trace_and_power_and_bounds_the_tail():
    ds = data.clusters(n_per_cluster=20)  # N = 80: the top-k solver's single-block path (cheap)
    K = kernels.two_layer_relu(ds.x, ds.x)
    eig = eigensystem(K)
    N, k = K.shape[0], 20
    top = topk_eigensystem(matrix_operator(K), k)
    ps = lc.topk_population_spectrum(top, ds.y_clean, jnp.trace(K))
    assert ps.eigenvalues.shape == (k + 1,) and int(ps.tail_modes) == N - k
    np.testing.assert_allclose(
        jnp.sum(ps.eigenvalues * ps.multiplicity), jnp.trace(K) / N, rtol=1e-12
    )
    np.testing.assert_allclose(jnp.sum(ps.coefficients**2), jnp.mean(ds.y_clean**2), rtol=1e-12)
    dense = lc.population_spectrum(eig, ds.y_clean)
    n, ridge = jnp.array([5.0, 15.0, 60.0]), 1e-3
    exact = lc.learning_curve(dense.eigenvalues, dense.coefficients, n, ridge).test_mse
    spread = lc.tail_spread(ps, n, ridge)
    assert np.all(spread.low <= spread.flat) and np.all(spread.flat <= spread.high)
    # while n < k the dense prediction lies within the spread of the extreme tails, and the flat
    # tail's estimate is near it
    assert np.all(spread.low[:2] <= exact[:2]) and np.all(exact[:2] <= spread.high[:2])
    np.testing.assert_allclose(spread.flat[:2], exact[:2], rtol=0.1)
    same = lc.tail_spread(dense, n, ridge)
    np.testing.assert_array_equal(same.low, same.high)


# ---------------------------------------------------------------------------------------------
# Measured against predicted
# ---------------------------------------------------------------------------------------------


def test_measured_krr_matches_a_direct_solve(clusters_population):
    ds, K, eig = clusters_population
    pk = lc.dense_population_kernel(K)
    m = lc.measured_learning_curve(pk, ds.y_clean, [30], [0.0, 0.1], draws=2, seed=3)
    idx = _draw_indices(K.shape[0], 30, 2, 3)[1]
    Kn = np.asarray(K)
    for j, r in enumerate((0.0, 0.1)):
        alpha = np.linalg.solve(Kn[np.ix_(idx, idx)] + r * np.eye(30), ds.y_clean[idx])
        f = Kn[:, idx] @ alpha
        np.testing.assert_allclose(m.test_mse[0, j, 1], np.mean((f - ds.y_clean) ** 2), rtol=1e-8)
        out = np.setdiff1d(np.arange(K.shape[0]), idx)
        np.testing.assert_allclose(
            m.heldout_mse[0, j, 1], np.mean((f[out] - ds.y_clean[out]) ** 2), rtol=1e-8
        )
        np.testing.assert_allclose(
            m.train_mse[0, j, 1], np.mean((f[idx] - ds.y_clean[idx]) ** 2), atol=1e-12
        )
    tiled = lc.tiled_population_kernel(kernels.two_layer_relu_kernel_fn(), ds.x)
    m2 = lc.measured_learning_curve(tiled, ds.y_clean, [30], [0.0, 0.1], draws=2, seed=3)
    np.testing.assert_allclose(m2.test_mse, m.test_mse, rtol=1e-8)


# ---------------------------------------------------------------------------------------------
# Sampling: distinct draws against i.i.d. draws, and repeated points
# ---------------------------------------------------------------------------------------------


def test_white_kernel_distinct_draws_are_the_theory_iid_draws_are_not():
    # K = I on N points (λ_i = 1/N), labels ±1: ridgeless KRR recovers y on the drawn points
    # and predicts 0 elsewhere, so the test MSE is the unseen fraction. The theory gives
    # κ = 1/n − 1/N, L = n/N, E₀ = 1/(1 − n/N): test MSE = 1 − n/N, exactly the distinct draws'.
    N = 50
    y = np.where(np.random.default_rng(0).random(N) < 0.5, -1.0, 1.0)
    pk = lc.dense_population_kernel(np.eye(N))
    ns = np.array([5, 25, 40])
    theory = lc.learning_curve(np.full(N, 1.0 / N), y / np.sqrt(N), ns.astype(float), 0.0)
    np.testing.assert_allclose(theory.test_mse, 1 - ns / N, rtol=1e-12)
    distinct = lc.measured_learning_curve(pk, y, ns, [0.0], draws=3)
    np.testing.assert_allclose(
        distinct.test_mse[:, 0], np.broadcast_to(theory.test_mse[:, None], (3, 3)), rtol=1e-12
    )
    np.testing.assert_array_equal(distinct.null_dimension, 0)
    # i.i.d. draws: the unseen fraction has mean (1 − 1/N)ⁿ; repeated points are dropped by the
    # pseudo-inverse (null dimension n − distinct), never jittered
    draws = 60
    for seed in (0, 1):
        iid = lc.measured_learning_curve(pk, y, ns, [0.0], draws=draws, seed=seed, replace=True)
        np.testing.assert_allclose(iid.test_mse[:, 0], 1 - iid.distinct / N, rtol=1e-12)
        np.testing.assert_array_equal(iid.null_dimension[:, 0], ns[:, None] - iid.distinct)
        mean = iid.test_mse[:, 0].mean(-1)
        expected = (1 - 1 / N) ** ns
        se = iid.test_mse[:, 0].std(-1) / np.sqrt(draws)
        assert np.all(np.abs(mean - expected) < 4 * se + 1e-12), (mean, expected, se)
    assert mean[1] > theory.test_mse[1] + 0.08  # n/N = 0.5: e^{−1/2} ≈ 0.60 against 0.5


def test_haar_population_distinct_draws_match_the_theory():
    # The theory's assumption made true: a population whose eigenvectors are Haar-random (the
    # φ_i carry no structure of the data), spectrum λ_i ∝ i^{−1.5}. Distinct draws of half the
    # population match the prediction within 3 standard errors + 3 % (n = 50, 80 draws, two
    # seeds), where digits' own eigenvectors do not (docs/science/learning_curves.md).
    N = 100
    rng = np.random.default_rng(5)
    Q, _ = np.linalg.qr(rng.standard_normal((N, N)))
    lam = np.arange(1, N + 1) ** -1.5
    v = np.arange(1, N + 1) ** -0.75 * rng.standard_normal(N)
    K = (Q * (N * lam)) @ Q.T
    y = np.sqrt(N) * Q @ v
    pk = lc.dense_population_kernel(K)
    draws = 80
    for ridge in (0.0, 1e-3):
        pred = float(lc.learning_curve(lam, v, 50.0, ridge).test_mse)
        for seed in (0, 1):
            m = lc.measured_learning_curve(pk, y, [50], [ridge], draws=draws, seed=seed)
            rel = m.test_mse.mean() / pred - 1
            se = m.test_mse.std() / np.sqrt(draws) / pred
            assert se < 0.05 and abs(rel) < 3 * se + 0.03, (ridge, seed, rel, se)


def test_repeated_points_give_the_minimum_norm_fit(clusters_population):
    # A population with 20 points repeated under other labels (y + 1): K is singular. Ridgeless
    # KRR on a draw holding both copies is the limit δ → 0⁺, the interpolant of the distinct
    # points at the mean of their labels; a ridge > 0 is the ordinary solve.
    ds, K0, _ = clusters_population
    K0 = np.asarray(K0)
    N0 = K0.shape[0]
    base = np.concatenate([np.arange(N0), np.arange(20)])  # population row → point of K0
    K = K0[np.ix_(base, base)]
    y0 = np.asarray(ds.y_clean, np.float64)
    y = np.concatenate([y0, y0[:20] + 1.0])
    pk = lc.dense_population_kernel(K)
    m = lc.measured_learning_curve(pk, y, [100], [0.0, 1e-3], draws=3, seed=2)
    for d, idx in enumerate(_draw_indices(len(base), 100, 3, 2)):
        points = base[idx]
        u, inverse = np.unique(points, return_inverse=True)
        ybar = np.bincount(inverse, weights=y[idx]) / np.bincount(inverse)
        f = K0[:, u] @ np.linalg.solve(K0[np.ix_(u, u)], ybar)
        f = f[base]
        np.testing.assert_allclose(m.test_mse[0, 0, d], np.mean((f - y) ** 2), rtol=1e-7)
        np.testing.assert_allclose(m.train_mse[0, 0, d], np.mean((f[idx] - y[idx]) ** 2), rtol=1e-6)
        assert m.null_dimension[0, 0, d] == len(idx) - len(u) > 0
        g = K[:, idx] @ np.linalg.solve(K[np.ix_(idx, idx)] + 1e-3 * np.eye(100), y[idx])
        np.testing.assert_allclose(m.test_mse[0, 1, d], np.mean((g - y) ** 2), rtol=1e-8)


@pytest.fixture(scope="module")
def digits_population():
    return data.load("digits", n_train=1000, n_test=0)


@pytest.mark.slow  # two eigendecompositions of 1000 × 1000 kernels, 20 draws each
@pytest.mark.parametrize(
    "kernel_fn",
    [kernels.two_layer_relu_kernel_fn(), kernels.make_kernel_fn("fc", depth=2)],
    ids=["h_inf", "fc2"],
)
def test_predicted_test_mse_within_10_percent_at_n_100(digits_population, kernel_fn):
    cfg = studies.LearningCurveConfig(n=(100,), ridge=(0.0, 1e-3), draws=20, modes=5)
    s = studies.learning_curve_study(digits_population, kernel_fn, cfg)
    measured = s.measured.test_mse.mean(-1)
    np.testing.assert_allclose(measured, s.predicted.test_mse, rtol=0.10)
    # measured learnability of the top modes against L_i = λ_i/(λ_i + κ)
    learn = s.measured.learnability.mean(2)
    np.testing.assert_allclose(learn, np.asarray(s.predicted.learnability)[..., :5], atol=0.05)


def test_noisy_labels_break_the_noise_model_but_not_the_fixed_target(clusters_population):
    ds = data.clusters(noise_rate=0.25)
    cfg = studies.LearningCurveConfig(n=(60,), ridge=(1e-3,), draws=10, labels="noisy", modes=0)
    s = studies.learning_curve_study(ds, kernels.two_layer_relu_kernel_fn(), cfg)
    measured = float(s.measured.test_mse.mean())
    fixed = float(s.fixed_labels.test_mse[0, 0])
    naive = float(s.predicted.test_mse[0, 0])
    assert abs(measured / fixed - 1) < 0.15
    assert abs(measured / naive - 1) > 0.2


def test_topk_population_spectrum_from_float32_tiles():
    """tile_dtype="float32": the same predictions as float64 tiles to the eigensolver's 1e-4
    residual (eigenvalue errors ‖r‖²/gap), the measured curves unchanged (float64 kernel)."""
    jax.config.update("jax_enable_x64", True)
    ds = data.clusters(n_per_cluster=25)  # N = 100 > k + block: the block Krylov iteration
    fn = kernels.two_layer_relu_kernel_fn(nngp=False)
    runs = [
        studies.learning_curve_study(
            ds,
            fn,
            studies.LearningCurveConfig(
                n=(20,), ridge=(1e-3,), draws=1, solver="topk", rank=10, tile_dtype=t
            ),
        )
        for t in ("float64", "float32")
    ]
    a, b = (r.predicted.test_mse for r in runs)
    np.testing.assert_allclose(b, a, rtol=1e-4)
    assert not np.array_equal(np.asarray(a), np.asarray(b))  # the tiles did change
    np.testing.assert_array_equal(runs[0].measured.test_mse, runs[1].measured.test_mse)
    assert runs[1].spectrum.eigenvalues.dtype == jnp.float64
    from ntk_air.report import learning_curve_summary
    from ntk_air.report.learning_curve import _learning_curve_markdown

    summaries = [learning_curve_summary(r) for r in runs]
    assert [s["config"]["tile_dtype"] for s in summaries] == ["float64", "float32"]
    assert "float32 kernel tiles" in _learning_curve_markdown(summaries[1])
    assert "float32 kernel tiles" not in _learning_curve_markdown(summaries[0])


def test_config_is_checked():
    for bad, match in (
        (dict(n=(0,)), "n must"),
        (dict(ridge=(-1.0,)), "ridge"),
        (dict(draws=0), "draws"),
        (dict(labels="x"), "labels"),
        (dict(labels="noisy", noise_variance=0.1), "noise_variance"),
        (dict(solver="topk", times=(1.0,)), "dense"),
        (dict(tile_dtype="float16"), "tile_dtype"),
        (dict(tile_dtype="float32"), "applies to the top-k solver"),
    ):
        with pytest.raises(ValueError, match=match):
            studies.LearningCurveConfig(**bad)
    assert studies.LearningCurveConfig(draws=1).draws == 1  # one draw: no interval, a valid run
    with pytest.raises(ValueError, match="exceeds the population"):
        studies.learning_curve_study(
            data.clusters(),
            kernels.two_layer_relu_kernel_fn(),
            studies.LearningCurveConfig(n=(500,), draws=2),
        )


@pytest.mark.slow  # three CLI runs with figures
def test_cli_writes_the_rows(tmp_path):
    from ntk_air.cli import main

    out = tmp_path / "lc"
    rc = main(
        [
            "learning-curve",
            "--dataset",
            "clusters",
            "--n",
            "20,40",
            "--ridge",
            "0,1e-3",
            "--draws",
            "2",
            "--modes",
            "3",
            "--times",
            "50",
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    s = json.loads((out / "learning_curve.json").read_text())
    assert len(s["rows"]) == 4
    row = s["rows"][0]
    for key in ("n", "ridge", "kappa", "e0", "test_mse_predicted", "train_mse_predicted"):
        assert isinstance(row[key], float | int)
    for key in ("test_mse_measured", "train_mse_measured", "heldout_mse_measured"):
        assert set(row[key]) == {"mean", "lo", "hi"}
    assert len(s["eigenvalues"]) == 160 and len(s["coefficients"]) == 160
    assert np.shape(s["learnability_predicted"]) == (2, 2, 3)
    assert np.shape(s["learnability_measured"]["mean"]) == (2, 2, 3)
    assert "off_by_more_than_10_percent" in s and s["flow_rows"]
    md = (out / "learning_curve.md").read_text()
    assert "known to fail" in md
    assert (
        main(
            [
                "learning-curve",
                "--dataset",
                "clusters",
                "--n",
                "500",
                "--draws",
                "2",
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 2
    )
    # a data file whose rows are the population
    path = tmp_path / "rows.npz"
    data.save_npz(data.clusters(n_per_cluster=10, n_test_per_cluster=0), path)
    argv = ["learning-curve", str(path), "--n", "10,20", "--draws", "2", "--modes", "0"]
    assert main([*argv, "--out", str(tmp_path / "f"), "--no-progress"]) == 0
    s = json.loads((tmp_path / "f" / "learning_curve.json").read_text())
    assert s["population_size"] == 40 and len(s["rows"]) == 4


def test_cli_help_and_option_errors(capsys, tmp_path):
    from ntk_air.cli import main

    with pytest.raises(SystemExit):
        main(["learning-curve", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "ntk-air learning-curve" in out
    for argv, match in (
        (["--n", "10,abc"], "--n must be"),
        (["--n", "10.5"], "--n must be whole"),
        (["--labels", "noisy", "--noise-variance", "0.1"], "--noise-variance"),
        (["--rank", "5"], "--rank applies"),
        (["--tile-dtype", "float32"], "--tile-dtype float32 applies to the top-k solver"),
    ):
        code = main(["learning-curve", *argv, "--out", str(tmp_path / "o"), "--no-progress"])
        assert code == 2
        assert match in capsys.readouterr().err


def test_effective_regularization_refuses_ridgeless_n_at_or_beyond_the_rank():
    # two nonzero eigenvalues: Σ λ/(λ + κ) < 2 for every κ > 0, so n = 2 or 5 has no solution
    lam = jnp.array([1.0, 0.5, 0.0])
    for n in (2.0, 5.0, jnp.array([1.0, 5.0])):
        with pytest.raises(
            ValueError, match=r"no κ > 0 .* ≥ 2 nonzero eigenvalues.*learning_curve"
        ):
            lc.effective_regularization(lam, n, 0.0)
    # a ridge, or n below the rank, has one
    assert float(lc.effective_regularization(lam, 5.0, 1e-3)) > 0
    assert float(lc.effective_regularization(lam, 1.0, 0.0)) > 0
