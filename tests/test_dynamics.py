"""Closed-form linearized dynamics (docs/science/dynamics.md, docs/science/index.md#identities)
against explicitly stepped recursions."""

from __future__ import annotations

from decimal import Decimal, localcontext

import jax
import numpy as np
import pytest
import scipy.linalg

from conftest import linalg_tol
from ntk_air import data
from ntk_air.dynamics import (
    distill_from_early_stopped_teacher,
    fitted_fractions,
    flow_half_lives,
    flow_mode_factors,
    flow_predictor,
    gd_half_lives,
    gd_mode_factors,
    gd_predictor,
    log_spaced_steps,
    resolve_step_size,
    u_curve,
)
from ntk_air.kernels import two_layer_relu
from ntk_air.spectral import eigensystem


def _unit_rows(rng, n, d):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class Problem:
    def __init__(self, n=30, n_test=9, d=5, seed=0):
        rng = np.random.default_rng(seed)
        x, xt = _unit_rows(rng, n, d), _unit_rows(rng, n_test, d)
        self.H = np.asarray(two_layer_relu(x))
        self.Kt = np.asarray(two_layer_relu(xt, x))
        self.y = np.sign(rng.normal(size=n))
        self.Y = np.eye(3)[rng.integers(0, 3, size=n)]
        self.u0 = 0.3 * rng.normal(size=n)
        self.f0 = 0.3 * rng.normal(size=n_test)
        self.U0 = 0.3 * rng.normal(size=(n, 3))
        self.F0 = 0.3 * rng.normal(size=(n_test, 3))
        self.eig = eigensystem(self.H)
        self.lam_max = np.linalg.eigvalsh(self.H).max()
        self.lam_min = np.linalg.eigvalsh(self.H).min()


@pytest.fixture
def prob(x64):
    return Problem()


def _stepped_gd(H, Kt, y, u0, f0, eta, k_max):
    """u ← u − ηH(u − y), f ← f − ηK(x, X)(u − y): returns all iterates 0..k_max."""
    us, fs = [u0], [f0]
    u, f = u0, f0
    for _ in range(k_max):
        r = u - y
        u, f = u - eta * H @ r, f - eta * Kt @ r
        us.append(u)
        fs.append(f)
    return np.array(us), np.array(fs)


def _rel(a, b):
    return np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b)


@pytest.mark.parametrize("eta_factor", [0.3, 1.0, 1.9])  # 1.9: negative bases (1 − ηλ) < 0
@pytest.mark.parametrize("labels", ["vector", "one-hot"])
def test_gd_closed_form_equals_stepped_recursion(prob, eta_factor, labels):
    y, u0, f0 = (prob.y, prob.u0, prob.f0) if labels == "vector" else (prob.Y, prob.U0, prob.F0)
    eta = eta_factor / prob.lam_max
    k_max = 150
    us, fs = _stepped_gd(prob.H, prob.Kt, y, u0, f0, eta, k_max)
    steps = np.array([0, 1, 2, 3, 7, 50, 149, 150])
    traj = gd_predictor(prob.eig, y, eta=eta, u0=u0, k_test_train=prob.Kt, f0_test=f0)(steps)
    assert traj.train.shape == (len(steps),) + y.shape
    assert traj.test.shape == (len(steps),) + f0.shape
    for i, k in enumerate(steps):
        assert _rel(traj.train[i], us[k]) < 1e-10
        assert _rel(traj.test[i], fs[k]) < 1e-10
        # residual along each mode: Vᵀ(u(k) − y), checked through its norm and back-projection
        back = np.asarray(prob.eig.eigenvectors) @ np.asarray(traj.residual_modes[i])
        assert _rel(back, us[k] - y) < 1e-9 or np.linalg.norm(us[k] - y) < 1e-12


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dtype_is_kept_and_matches_recursion(prob, dtype):
    # No silent promotion of a float32 decomposition (or downcast of a float64 one): every
    # result keeps the eigensystem's dtype and matches the recursion to n·eps-scaled accuracy.
    # x64 stays on (as in the CLI), where float64 labels and kernels could promote float32.
    p = prob
    eig = eigensystem(p.H, dtype=dtype)
    steps = np.array([0, 1, 5, 40])
    traj = gd_predictor(eig, p.y, u0=p.u0, k_test_train=p.Kt, f0_test=p.f0)(steps)
    us, fs = _stepped_gd(p.H, p.Kt, p.y, p.u0, p.f0, 1 / p.lam_max, 40)
    tol = linalg_tol(dtype, len(p.y))
    for i, k in enumerate(steps):
        assert _rel(traj.train[i], us[k]) < tol and _rel(traj.test[i], fs[k]) < tol
    flow = flow_predictor(eig, p.y, k_test_train=p.Kt)(np.array([0.0, 1.0]))
    results = [
        *traj,
        *flow,
        *u_curve(eig, p.y, -p.y, steps)[:2],
        *fitted_fractions(eig, p.y, -p.y, steps),
        gd_half_lives(eig),
        flow_half_lives(eig),
        *distill_from_early_stopped_teacher(eig, p.y, 3, k_test_train=p.Kt).student,
    ]
    assert {str(a.dtype) for a in results if a is not None} == {dtype}


def test_forced_divergent_step_still_matches_recursion(prob):
    eta = 2.2 / prob.lam_max
    with pytest.raises(ValueError) as err:
        gd_predictor(prob.eig, prob.y, eta=eta)
    msg = str(err.value)
    assert f"{eta:.6g}" in msg and f"{2 / prob.lam_max:.6g}" in msg
    us, _ = _stepped_gd(prob.H, prob.Kt, prob.y, prob.u0, prob.f0, eta, 60)
    traj = gd_predictor(prob.eig, prob.y, eta=eta, u0=prob.u0, force=True)(np.arange(61))
    assert _rel(traj.train, us) < 1e-10
    assert np.linalg.norm(us[-1] - prob.y) > 10 * np.linalg.norm(us[0] - prob.y)  # it diverges


def test_step_size_validation(prob):
    assert resolve_step_size(prob.eig) == pytest.approx(1 / prob.lam_max, rel=1e-12)
    for bad in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="positive finite"):
            gd_predictor(prob.eig, prob.y, eta=bad)
    predict = gd_predictor(prob.eig, prob.y)
    with pytest.raises(ValueError, match="whole numbers"):
        predict(np.array([0, 1.5]))
    with pytest.raises(ValueError, match="non-negative"):
        predict(np.array([0, -1]))
    with pytest.raises(ValueError, match="f0_test"):
        gd_predictor(prob.eig, prob.y, u0=prob.u0, k_test_train=prob.Kt)
    with pytest.raises(ValueError, match="k_test_train"):
        gd_predictor(prob.eig, prob.y, k_test_train=prob.Kt[:, :-1])
    with pytest.raises(ValueError, match="u0"):
        gd_predictor(prob.eig, prob.y, u0=prob.u0[:-1])


def test_stable_powers_against_high_precision(x64):
    cases = [  # (ηλ, k): tiny ηλ with large k, ηλ = 1, negative bases, near divergence
        (1e-12, 10**6),
        (1e-9, 10**8),
        (1e-3, 5),
        (0.5, 40),
        (1.0, 0),
        (1.0, 3),
        (1.5, 7),
        (1.5, 8),
        (1.999, 1001),
        (1.999, 1000),
    ]
    import jax.numpy as jnp

    from ntk_air.dynamics._linearized import _gd_factors

    lam = jnp.array([c[0] for c in cases])
    for i, (x, k) in enumerate(cases):
        f = _gd_factors(lam, jnp.asarray(1.0), jnp.asarray(0.0), jnp.array([float(k)]))
        with localcontext() as ctx:  # 60 digits, without changing the global context
            ctx.prec = 60
            base = Decimal(1) - Decimal(x)  # exact: Decimal(float) is the float's binary value
            r_ref = base**k if k > 0 else Decimal(1)
            g_ref = 1 - r_ref
            w_ref = g_ref / Decimal(x)
        for got, ref in ((f.residual, r_ref), (f.fitted, g_ref), (f.test_weight, w_ref)):
            assert abs(float(got[0, i]) - float(ref)) <= 1e-12 * abs(float(ref)) + 1e-300, (x, k)


def test_flow_limits(prob):
    predict = flow_predictor(prob.eig, prob.y, u0=prob.u0, k_test_train=prob.Kt, f0_test=prob.f0)
    t0 = predict(0.0)
    np.testing.assert_allclose(t0.train, prob.u0, atol=1e-13)
    np.testing.assert_allclose(t0.test, prob.f0, atol=1e-13)
    assert prob.lam_min > 1e-3  # so interpolation happens by t = 50/λ_min
    late = predict(50.0 / prob.lam_min)
    assert _rel(late.train, prob.y) < 1e-12
    inf = predict(None)
    assert _rel(inf.train, prob.y) < 1e-12
    # t = ∞ on test points is the kernel regression interpolant f0 + K(x,X) H⁻¹ (y − u0)
    ref = prob.f0 + prob.Kt @ np.linalg.solve(prob.H, prob.y - prob.u0)
    assert _rel(inf.test, ref) < 1e-10
    assert _rel(late.test, ref) < 1e-10


def test_flow_matches_matrix_exponential(prob):
    times = np.array([0.0, 0.01, 0.3, 2.0, 17.0])
    traj = flow_predictor(prob.eig, prob.y, u0=prob.u0, k_test_train=prob.Kt, f0_test=prob.f0)(
        times
    )
    Hinv = np.linalg.inv(prob.H)
    for i, t in enumerate(times):
        E = scipy.linalg.expm(-prob.H * t)
        assert np.abs(traj.train[i] - (prob.y + E @ (prob.u0 - prob.y))).max() < 1e-11
        ref = prob.f0 + prob.Kt @ Hinv @ (np.eye(len(prob.y)) - E) @ (prob.y - prob.u0)
        assert np.abs(traj.test[i] - ref).max() < 1e-10


def test_flow_small_t_uses_expm1(prob):
    # f_t − f_0 = −t K(x, X)(u0 − y) + O(t²): with naive (1 − e^{−λt})/λ this loses ~4 digits at
    # t = 1e-12; with expm1 it is exact to rounding.
    # f_0 = 0 so the tiny change is not lost in f_0's rounding.
    t = 1e-12
    zeros = np.zeros_like(prob.f0)
    traj = flow_predictor(prob.eig, prob.y, u0=prob.u0, k_test_train=prob.Kt, f0_test=zeros)(t)
    slope = np.asarray(traj.test) / t
    assert _rel(slope, -prob.Kt @ (prob.u0 - prob.y)) < 1e-8


def test_flow_is_the_small_step_limit_of_gd(prob):
    T = 3.0
    flow = flow_predictor(prob.eig, prob.y, u0=prob.u0, k_test_train=prob.Kt, f0_test=prob.f0)(T)
    errors = []
    for eta in (1e-2 / prob.lam_max, 1e-3 / prob.lam_max):
        k = round(T / eta)
        gd = gd_predictor(
            prob.eig, prob.y, eta=T / k, u0=prob.u0, k_test_train=prob.Kt, f0_test=prob.f0
        )(k)
        errors.append(max(_rel(gd.train, flow.train), _rel(gd.test, flow.test)))
    assert errors[1] < 1e-3
    assert 5 < errors[0] / errors[1] < 20  # first order in η


def test_arora_residual_identity(prob):
    # ‖y − u(k)‖² = Σ_i (1 − ηλ_i)^{2k} (v_iᵀy)² from u(0) = 0, with numpy's own eigh,
    # against the explicit recursion.
    eta = 0.7 / prob.lam_max
    lam, V = np.linalg.eigh(prob.H)
    us, _ = _stepped_gd(prob.H, prob.Kt, prob.y, np.zeros_like(prob.y), np.zeros(9), eta, 300)
    traj = gd_predictor(prob.eig, prob.y, eta=eta)(np.arange(301))
    for k in (0, 1, 10, 100, 300):
        arora = np.sum((1 - eta * lam) ** (2 * k) * (V.T @ prob.y) ** 2)
        stepped = np.sum((prob.y - us[k]) ** 2)
        assert abs(arora - stepped) <= 1e-10 * stepped
        assert abs(np.sum(np.asarray(traj.residual_modes[k]) ** 2) - stepped) <= 1e-10 * stepped


def test_fitted_fractions_match_matrix_powers(prob):
    eta = 1.0 / prob.lam_max
    y_clean = prob.y
    y_noisy = prob.y * np.where(np.arange(len(prob.y)) % 5 == 0, -1, 1)
    steps = np.array([0, 1, 5, 40, 200])
    ff = fitted_fractions(prob.eig, y_clean, y_noisy, steps, eta=eta)
    n = len(y_clean)
    for i, k in enumerate(steps):
        G = np.eye(n) - np.linalg.matrix_power(np.eye(n) - eta * prob.H, int(k))
        for z, got in ((y_clean, ff.clean), (y_noisy - y_clean, ff.noise), (y_noisy, ff.noisy)):
            ref = np.sum((G @ z) ** 2) / np.sum(z**2)
            assert abs(float(got[i]) - ref) <= 1e-10
    fl = fitted_fractions(prob.eig, y_clean, y_noisy, np.array([0.0, 2.5]), flow=True)
    G = np.eye(n) - scipy.linalg.expm(-2.5 * prob.H)
    assert abs(float(fl.clean[1]) - np.sum((G @ y_clean) ** 2) / np.sum(y_clean**2)) < 1e-10
    assert float(fl.clean[0]) == 0.0


def test_half_lives(prob):
    eta = 1.3 / prob.lam_max  # includes modes with negative bases
    k_half = np.asarray(gd_half_lives(prob.eig, eta=eta))
    lam = np.asarray(prob.eig.eigenvalues)
    for lam_i, kh in zip(lam, k_half, strict=True):
        base = abs(1 - eta * lam_i)
        k = int(np.ceil(kh))
        # stepping the mode: after ⌈k½⌉ steps at most half is left, one step earlier more than half
        assert base**k <= 0.5 + 1e-12
        if k > 0:
            assert base ** (k - 1) > 0.5
    t_half = np.asarray(flow_half_lives(prob.eig))
    np.testing.assert_allclose(np.exp(-lam * t_half), 0.5, rtol=1e-12)
    assert float(gd_half_lives(prob.eig)[0]) == 0.0  # η = 1/λ_max fits the top mode in one step


def test_half_life_infinite_on_null_space(x64):
    rng = np.random.default_rng(4)
    F = rng.normal(size=(12, 3))
    eig = eigensystem(F @ F.T)  # rank 3: the other 9 eigenvalues are rounding, |λ| ≤ clamp_tol
    k_half = np.asarray(gd_half_lives(eig))
    assert np.isinf(k_half[3:]).all() and np.isfinite(k_half[:3]).all()
    assert np.isinf(np.asarray(flow_half_lives(eig))[3:]).all()


def test_u_curve_on_clusters_is_u_shaped(x64):
    ds = data.clusters(
        n_clusters=4, n_per_cluster=25, n_test_per_cluster=10, noise_rate=0.25, seed=0
    )
    eig = eigensystem(two_layer_relu(ds.x))
    Kt = np.asarray(two_layer_relu(ds.x_test, ds.x))
    steps = log_spaced_steps(1e7, 80)
    uc = u_curve(eig, ds.y, ds.y_clean, steps, k_test_train=Kt, y_test_clean=ds.y_test_clean)
    dist = np.asarray(uc.train_dist)
    assert float(uc.best_dist) < 0.9 * float(uc.start_dist)
    assert float(uc.best_dist) < 0.9 * float(uc.final_dist)
    assert float(uc.best_dist) == dist.min() and float(uc.best_step) == steps[np.argmin(dist)]
    e = np.linalg.norm(ds.y - ds.y_clean)
    # memorized: ‖u(k) − ŷ‖ = ‖e‖ once (1 − ηλ_min)^k underflows (λ_min/λ_max ≈ 1.5e-3, k = 1e7)
    assert abs(float(uc.final_dist) - e) < 1e-12 * e
    assert float(uc.test_best_dist) < min(float(uc.test_dist[0]), float(uc.test_dist[-1]))
    # the curve itself against the explicit recursion (train and test) for the first steps
    eta = 1 / np.linalg.eigvalsh(np.asarray(two_layer_relu(ds.x))).max()
    H = np.asarray(two_layer_relu(ds.x))
    us, fs = _stepped_gd(H, Kt, ds.y, np.zeros_like(ds.y), np.zeros(len(ds.x_test)), eta, 30)
    for i, k in enumerate(steps[steps <= 30].astype(int)):
        assert abs(dist[i] - np.linalg.norm(us[k] - ds.y_clean)) < 1e-10
        assert abs(float(uc.test_dist[i]) - np.linalg.norm(fs[k] - ds.y_test_clean)) < 1e-10


def test_u_curve_one_hot(x64):
    ds = data.clusters(n_clusters=4, n_per_cluster=20, n_test_per_cluster=5, n_classes=4, seed=2)
    eig = eigensystem(two_layer_relu(ds.x))
    steps = log_spaced_steps(1e7, 60)
    uc = u_curve(eig, ds.y, ds.y_clean, steps)
    traj = gd_predictor(eig, ds.y)(steps)
    ref = np.linalg.norm(np.asarray(traj.train) - ds.y_clean, axis=(1, 2))
    np.testing.assert_allclose(uc.train_dist, ref, rtol=1e-10)
    assert float(uc.best_dist) < min(float(uc.start_dist), float(uc.final_dist))
    assert uc.test_dist is None


def test_early_stopped_teacher_equals_converged_student(prob):
    eta = 1.0 / prob.lam_max
    steps = np.array([0, 3, 40])
    d = distill_from_early_stopped_teacher(
        prob.eig, prob.y, steps, eta=eta, u0=prob.u0, k_test_train=prob.Kt, f0_test=prob.f0
    )
    us, fs = _stepped_gd(prob.H, prob.Kt, prob.y, prob.u0, prob.f0, eta, 40)
    for i, k in enumerate(steps):
        assert _rel(d.teacher.train[i], us[k]) < 1e-10
        assert _rel(d.teacher.test[i], fs[k]) < 1e-10
        # the student, computed independently: kernel regression on the teacher's outputs
        targets = us[k]
        student_test = prob.f0 + prob.Kt @ np.linalg.solve(prob.H, targets - prob.u0)
        assert np.abs(np.asarray(d.student.test[i]) - student_test).max() < 1e-10
        assert np.abs(np.asarray(d.student.train[i]) - targets).max() < 1e-10
        assert np.abs(np.asarray(d.student.test[i]) - np.asarray(d.teacher.test[i])).max() < 1e-10
    assert np.isinf(np.asarray(d.student.times)).all()
    # the student of a teacher that was never trained (k = 0) stays at initialization
    assert np.abs(np.asarray(d.student.test[0]) - prob.f0).max() < 1e-10


def test_distillation_one_hot_scalar_step(prob):
    d = distill_from_early_stopped_teacher(
        prob.eig, prob.Y, 25, u0=prob.U0, k_test_train=prob.Kt, f0_test=prob.F0
    )
    assert d.teacher.test.shape == prob.F0.shape
    ref = prob.F0 + prob.Kt @ np.linalg.solve(prob.H, np.asarray(d.teacher.train) - prob.U0)
    assert np.abs(np.asarray(d.student.test) - ref).max() < 1e-10
    assert np.abs(np.asarray(d.student.test) - np.asarray(d.teacher.test)).max() < 1e-10


def test_jit_and_eager_agree(prob):
    steps = np.array([0, 2, 9, 100, np.inf])
    jitted = gd_predictor(prob.eig, prob.Y, u0=prob.U0, k_test_train=prob.Kt, f0_test=prob.F0)(
        steps
    )
    with jax.disable_jit():
        eager = gd_predictor(prob.eig, prob.Y, u0=prob.U0, k_test_train=prob.Kt, f0_test=prob.F0)(
            steps
        )
    for a, b in zip(jitted, eager, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-13)
    fj = flow_mode_factors(prob.eig, np.array([0.0, 1.0, np.inf]))
    with jax.disable_jit():
        fe = flow_mode_factors(prob.eig, np.array([0.0, 1.0, np.inf]))
    for a, b in zip(fj, fe, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)


def test_second_call_does_not_recompile(prob, caplog):
    predict = gd_predictor(prob.eig, prob.y, k_test_train=prob.Kt)
    predict(np.array([1, 2, 3]))
    with jax.log_compiles(), caplog.at_level("WARNING"):
        predict(np.array([4, 5, 6]))
        gd_mode_factors(prob.eig, np.array([7, 8, 9]))
    assert not [r for r in caplog.records if "ompil" in r.getMessage()]


def test_gd_infinite_steps_is_the_interpolant(prob):
    predict = gd_predictor(prob.eig, prob.y, u0=prob.u0, k_test_train=prob.Kt, f0_test=prob.f0)
    inf = predict(None)
    assert inf.train.shape == prob.y.shape
    assert _rel(inf.train, prob.y) < 1e-12
    ref = prob.f0 + prob.Kt @ np.linalg.solve(prob.H, prob.y - prob.u0)
    assert _rel(inf.test, ref) < 1e-10


def test_log_spaced_steps():
    s = log_spaced_steps(10**6, 50)
    assert s[0] == 0 and s[1] == 1 and s[-1] == 10**6
    assert np.all(np.diff(s) > 0) and np.all(s == np.round(s))
    with pytest.raises(ValueError):
        log_spaced_steps(0.5)


def test_a_decomposition_of_the_wrong_type_is_a_type_error_naming_eig():
    with pytest.raises(TypeError, match="eig must be a spectral.Eigensystem"):
        gd_predictor("not an eig", np.ones(4))


def test_predictors_take_their_documented_keywords(prob):
    """gd_predictor's function takes `steps=`, flow_predictor's `times=` (public call forms)."""
    gd, flow = gd_predictor(prob.eig, prob.y), flow_predictor(prob.eig, prob.y)
    steps = np.array([0, 3, 30])
    np.testing.assert_array_equal(gd(steps=steps).train, gd(steps).train)
    np.testing.assert_array_equal(flow(times=steps * 1.0).train, flow(steps * 1.0).train)
