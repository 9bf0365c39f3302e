"""Closed-form linearized training dynamics, from one eigendecomposition (SCIENCE.md §3).

Linearized full-batch gradient descent on ½‖u − y‖² with step η, H = V diag(λ) Vᵀ:

  u(k) − y = (I − ηH)^k (u(0) − y),             f_k(x) − f_0(x) = K(x, X) V c(k),
  c(k) = φ_k(Λ) Vᵀ(y − u(0)),                   φ_k(λ) = (1 − (1 − ηλ)^k) / λ   (= ηk at λ = 0),

because f_{k+1}(x) − f_k(x) = −η K(x, X)(u(k) − y) summed over s < k is a geometric series.
Gradient flow replaces (1 − ηλ)^k by e^{−λt} and φ by (1 − e^{−λt})/λ (= t at λ = 0).
Everything is diagonal in the eigenbasis: per time only O(n) factors are new, and the
predictions are one matrix product with V (train) and with K(x_test, X) V (test), the latter
precomputed once per predictor. No solve per time.

Powers are computed stably: (1 − ηλ)^k = ±exp(k log|1 − ηλ|) with log|1 − ηλ| = log1p(−ηλ)
for ηλ < 1 and log1p(ηλ − 2) for ηλ > 1 (negative base: the sign is (−1)^k, so GD steps must be
integers), and 1 − (1 − ηλ)^k = −expm1(k log|1 − ηλ|) so that slowly fitted modes keep their
relative precision. ηλ = 1 fits its mode in one step exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import as_float_array, check_finite, check_rank, is_concrete
from .eigen import Eigensystem, to_eigenbasis
from .spectrum import _energy

__all__ = [
    "ModeFactors",
    "Trajectory",
    "UCurve",
    "FittedFractions",
    "Distillation",
    "resolve_step_size",
    "check_step_size",
    "gd_mode_factors",
    "flow_mode_factors",
    "gd_predictor",
    "flow_predictor",
    "gd_half_lives",
    "flow_half_lives",
    "fitted_fractions",
    "u_curve",
    "distill_from_early_stopped_teacher",
    "log_spaced_steps",
]


class ModeFactors(NamedTuple):
    """Per-mode factors of the closed-form dynamics at T times (a pytree)."""

    # r(λ) = (1 − ηλ)^k (GD) or e^{−λt} (flow), so that Vᵀ(u − y) = r ⊙ Vᵀ(u0 − y)
    residual: jax.Array  # (T, n)
    fitted: jax.Array  # (T, n) g(λ) = 1 − r(λ), the fraction of each mode fitted
    test_weight: jax.Array  # (T, n) φ(λ) = g(λ)/λ (ηk or t at λ = 0; 0 on |λ| ≤ clamp_tol at ∞)


class Trajectory(NamedTuple):
    """Predictions of the linearized network at T steps or times (a pytree).

    Shapes with a trailing `[, C]` carry the label columns of one-hot targets. A scalar step or
    time (or None = ∞) drops the leading T axis.
    """

    times: jax.Array  # (T,) steps k (GD) or times t (flow); inf = converged
    train: jax.Array  # (T, n[, C]) u(k), predictions on the training points
    test: jax.Array | None  # (T, n_test[, C]) f_k(x_test); None without k_test_train
    residual_modes: jax.Array  # (T, n[, C]) Vᵀ(u(k) − y): residual along each eigenmode


class UCurve(NamedTuple):
    """Distance of the predictions to the clean labels along training (a pytree)."""

    steps: jax.Array  # (T,) GD steps
    train_dist: jax.Array  # (T,) ‖u(k) − ŷ‖₂ (Frobenius for one-hot)
    test_dist: jax.Array | None  # (T,) ‖f_k(x_test) − ŷ_test‖₂; None without test data
    best_index: jax.Array  # () int, argmin of train_dist (first one on ties)
    best_step: jax.Array  # () steps[best_index], the early-stopping optimum
    best_dist: jax.Array  # () train_dist[best_index]
    start_dist: jax.Array  # () train_dist[0]
    final_dist: jax.Array  # () train_dist[-1]
    test_best_step: jax.Array | None  # () argmin step of test_dist; None without test data
    test_best_dist: jax.Array | None  # () min of test_dist; None without test data


class FittedFractions(NamedTuple):
    """Fitted fractions F_z(k) = ‖g_k(H) z‖² / ‖z‖² of signal, noise and noisy labels (a pytree)."""

    steps: jax.Array  # (T,) GD steps (or flow times)
    clean: jax.Array  # (T,) F_ŷ(k)
    noise: jax.Array  # (T,) F_e(k), e = y − ŷ (NaN if e = 0)
    noisy: jax.Array  # (T,) F_y(k)


class Distillation(NamedTuple):
    """An early-stopped teacher and a student trained to convergence on its outputs (a pytree)."""

    teacher: Trajectory  # GD on labels y, stopped at teacher_steps (T,)
    student: Trajectory  # converged (k = ∞) on targets teacher.train, same init u(0), f_0


# ---------------------------------------------------------------------------------------------
# Per-mode factors: the whole dynamics in the eigenbasis
# ---------------------------------------------------------------------------------------------


def _limit_factors(lam, converges, null):
    """k, t = ∞: modes with λ > tol (and |1 − ηλ| < 1) fitted, null modes untouched, others NaN.

    The null space is |λ| ≤ tol (the eigensystem's rounding level, `clamp_tol`): dividing by a
    rounding-sized eigenvalue would turn noise into an arbitrarily large prediction.
    """
    nan = jnp.full_like(lam, jnp.nan)
    residual = jnp.where(converges, 0.0, jnp.where(null, 1.0, nan))
    fitted = jnp.where(converges, 1.0, jnp.where(null, 0.0, nan))
    # Null modes of a PSD kernel have K(x, X) v = 0 for every x, so they add nothing on test
    # points; the converged predictor is K(x, X) H⁺ (y − u0) (pseudo-inverse).
    weight = jnp.where(converges, 1.0 / jnp.where(converges, lam, 1.0), jnp.where(null, 0.0, nan))
    return residual, fitted, weight


def _gd_factors_at(lam, eta, tol, k):
    """ModeFactors at one step count k (scalar, integer-valued or inf), each (n,)."""
    x = eta * lam
    finite = jnp.isfinite(k)
    kf = jnp.where(finite, k, 0.0)
    negative_base = x > 1
    # log|1 − ηλ|: log1p(−ηλ) for ηλ < 1 (accurate for small ηλ), log1p(ηλ − 2) for ηλ > 1;
    # −inf at ηλ = 1 (the mode is fitted in one step).
    log_abs_base = jnp.log1p(jnp.where(negative_base, x - 2.0, -x))
    k_log = jnp.where(kf == 0, 0.0, kf * log_abs_base)  # k = 0 gives 1 even where log is −inf
    flip = negative_base & (jnp.mod(kf, 2.0) == 1.0)
    residual = jnp.where(flip, -jnp.exp(k_log), jnp.exp(k_log))
    fitted = jnp.where(flip, 1.0 + jnp.exp(k_log), -jnp.expm1(k_log))
    null = lam == 0
    weight = jnp.where(null, eta * kf, fitted / jnp.where(null, 1.0, lam))
    lim = _limit_factors(lam, (lam > tol) & (x < 2), jnp.abs(lam) <= tol)
    return ModeFactors(
        *(jnp.where(finite, a, b) for a, b in zip((residual, fitted, weight), lim, strict=True))
    )


def _flow_factors_at(lam, tol, t):
    """ModeFactors of gradient flow at one time t (scalar ≥ 0 or inf), each (n,)."""
    finite = jnp.isfinite(t)
    tf = jnp.where(finite, t, 0.0)
    exponent = -lam * tf
    residual = jnp.exp(exponent)
    fitted = -jnp.expm1(exponent)  # accurate when λt ≪ 1
    null = lam == 0
    weight = jnp.where(null, tf, fitted / jnp.where(null, 1.0, lam))
    lim = _limit_factors(lam, lam > tol, jnp.abs(lam) <= tol)
    return ModeFactors(
        *(jnp.where(finite, a, b) for a, b in zip((residual, fitted, weight), lim, strict=True))
    )


@jax.jit
def _gd_factors(lam, eta, tol, steps):
    return jax.vmap(_gd_factors_at, in_axes=(None, None, None, 0))(lam, eta, tol, steps)


@jax.jit
def _flow_factors(lam, tol, times):
    return jax.vmap(_flow_factors_at, in_axes=(None, None, 0))(lam, tol, times)


def _check_times(times, dtype, *, integer: bool, name: str):
    """(T,) float array of non-negative (integer) times; None → ∞. Returns (array, was_scalar)."""
    if times is None:
        times = np.inf
    scalar = np.ndim(times) == 0
    arr = jnp.atleast_1d(as_float_array(times, name, dtype))
    check_rank(arr, name, 1)
    if is_concrete(arr):
        a = np.asarray(arr)
        if np.isnan(a).any():
            raise ValueError(f"{name} contains NaN at index {int(np.argmax(np.isnan(a)))}")
        if (a < 0).any():
            i = int(np.argmax(a < 0))
            raise ValueError(f"{name} must be non-negative, got {a[i]} at index {i}")
        if integer:
            fin = np.isfinite(a)
            bad = fin & (a != np.round(a))
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(
                    f"{name} must be whole numbers of GD steps (the sign of (1 − ηλ)^k needs an "
                    f"integer k), got {a[i]} at index {i}; use flow_* for continuous time"
                )
    return arr, scalar


def resolve_step_size(eig: Eigensystem, eta=None, *, force: bool = False) -> float:
    """The GD step size η: default 1/λ_max; error when η ≤ 0 or η ≥ 2/λ_max (divergence).

    Mode i evolves by (1 − ηλ_i)^k; it diverges when |1 − ηλ_i| ≥ 1, i.e. η ≥ 2/λ_max for the
    top mode. `force=True` allows such η (the closed forms then show the divergence).

    Args:
      eig: decomposition of H.
      eta: step size or None for 1/λ_max.
      force: allow η ≥ 2/λ_max.

    Returns:
      η as a Python float.

    Example:
      >>> resolve_step_size(eig)   # 1/λ_max
    """
    return check_step_size(float(eig.eigenvalues[0]), eta, force=force)


def check_step_size(lam_max: float, eta=None, *, force: bool = False) -> float:
    """`resolve_step_size` from λ_max alone (for callers that have no eigendecomposition)."""
    lam_max = float(lam_max)
    if not lam_max > 0:
        raise ValueError(
            f"the kernel has no positive eigenvalue (λ_max = {lam_max:.3g}); nothing trains"
        )
    if eta is None:
        return 1.0 / lam_max
    eta = float(eta)
    if not np.isfinite(eta) or eta <= 0:
        raise ValueError(f"step size eta must be a positive finite number, got {eta!r}")
    if eta >= 2.0 / lam_max and not force:
        raise ValueError(
            f"step size eta = {eta:.6g} ≥ 2/λ_max = {2.0 / lam_max:.6g}: gradient descent diverges "
            f"along the top eigenvector (|1 − ηλ_max| = {abs(1 - eta * lam_max):.3g} ≥ 1); use a "
            "smaller eta, or force=True to see the divergence"
        )
    return eta


def gd_mode_factors(eig: Eigensystem, steps, *, eta=None, force: bool = False) -> ModeFactors:
    """Per-mode GD factors at T step counts: r = (1 − ηλ)^k, g = 1 − r, φ = g/λ.

    Computed as ±exp(k·log|1 − ηλ|) and −expm1(k·log|1 − ηλ|) (see the module docstring);
    k = inf gives the limit: r = 0, g = 1, φ = 1/λ for λ > tol and ηλ < 2; r = 1, g = φ = 0 on
    the numerical null space |λ| ≤ tol = eig.clamp_tol (pseudo-inverse); NaN where no limit exists.

    Args:
      eig: decomposition of H (n × n).
      steps: (T,) or scalar non-negative whole numbers (inf allowed).
      eta: step size, default 1/λ_max.
      force: allow η ≥ 2/λ_max.

    Returns:
      ModeFactors, each (T, n) (T = 1 for a scalar).

    Example:
      >>> f = gd_mode_factors(eig, jnp.array([0, 10, 100]))   # f.fitted[0] == 0

    Reference: Arora et al. arXiv 1901.08584, Thm 4.1.
    """
    eta = resolve_step_size(eig, eta, force=force)
    lam = eig.eigenvalues
    steps, _ = _check_times(steps, lam.dtype, integer=True, name="steps")
    return _gd_factors(lam, jnp.asarray(eta, lam.dtype), eig.clamp_tol, steps)


def flow_mode_factors(eig: Eigensystem, times) -> ModeFactors:
    """Per-mode gradient-flow factors at T times: r = e^{−λt}, g = −expm1(−λt), φ = g/λ.

    Args:
      eig: decomposition of H.
      times: (T,) or scalar non-negative times (inf allowed).

    Returns:
      ModeFactors, each (T, n).

    Example:
      >>> flow_mode_factors(eig, jnp.array([0.0, jnp.inf])).fitted   # rows 0 and ≈ 1

    Reference: Jacot et al. arXiv 1806.07572; Lee et al. arXiv 1902.06720.
    """
    lam = eig.eigenvalues
    times, _ = _check_times(times, lam.dtype, integer=False, name="times")
    return _flow_factors(lam, eig.clamp_tol, times)


# ---------------------------------------------------------------------------------------------
# Predictions on train and test points
# ---------------------------------------------------------------------------------------------


def _predict_at(factors: ModeFactors, V, y, r0, kv, f0_test):
    """Trajectory fields at one time: the per-example function that is vmapped over times."""
    expand = (lambda a: a[:, None]) if r0.ndim == 2 else (lambda a: a)
    residual_modes = expand(factors.residual) * r0
    train = y + V @ residual_modes
    test = None if kv is None else f0_test - kv @ (expand(factors.test_weight) * r0)
    return train, test, residual_modes


@jax.jit
def _trajectory(times, factors, V, y, r0, kv, f0_test):
    train, test, residual_modes = jax.vmap(_predict_at, in_axes=(0, None, None, None, None, None))(
        factors, V, y, r0, kv, f0_test
    )
    return Trajectory(times=times, train=train, test=test, residual_modes=residual_modes)


@jax.jit
def _project_test_kernel(k_test_train, V):
    return k_test_train @ V


def _check_like(a, name, ref_shape, dtype):
    a = as_float_array(a, name, dtype)
    if a.shape != ref_shape:
        raise ValueError(f"{name} must have shape {ref_shape}, got {tuple(a.shape)}")
    check_finite(a, name)
    return a


def _prepare_problem(eig: Eigensystem, y, u0, k_test_train, f0_test):
    """Validate once, eagerly: labels, initial outputs and test kernel → (y, u0, KV, f0_test)."""
    dtype = eig.eigenvalues.dtype
    n = eig.eigenvalues.shape[0]
    y = as_float_array(y, "y", dtype)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"y must have shape (n,) or (n, C) with n = {n}, got {tuple(y.shape)}")
    check_finite(y, "y")
    u0 = jnp.zeros_like(y) if u0 is None else _check_like(u0, "u0", y.shape, dtype)
    if k_test_train is None:
        if f0_test is not None:
            raise ValueError("f0_test was given without k_test_train (the test points' kernel)")
        return y, u0, None, None
    k = as_float_array(k_test_train, "k_test_train", dtype)
    check_rank(k, "k_test_train", 2)
    if k.shape[1] != n:
        raise ValueError(
            f"k_test_train must have shape (n_test, {n}) = K(x_test, X), got {tuple(k.shape)}"
        )
    check_finite(k, "k_test_train")
    test_shape = (k.shape[0],) + y.shape[1:]
    if f0_test is None:
        if u0 is not None and is_concrete(u0) and bool(jnp.any(u0 != 0)):
            raise ValueError(
                "u0 (the network's initial outputs on the training points) was given but f0_test "
                "was not: pass the initial outputs on the test points too (zeros if you mean it)"
            )
        f0_test = jnp.zeros(test_shape, dtype)
    else:
        f0_test = _check_like(f0_test, "f0_test", test_shape, dtype)
    return y, u0, _project_test_kernel(k, eig.eigenvectors), f0_test


def _squeeze_time(traj: Trajectory) -> Trajectory:
    return jax.tree_util.tree_map(lambda a: a[0], traj)


def gd_predictor(
    eig: Eigensystem, y, *, eta=None, u0=None, k_test_train=None, f0_test=None, force: bool = False
):
    """Closed-form linearized gradient descent: a pure function steps ↦ Trajectory.

    u(k) = y + V (1 − ηΛ)^k Vᵀ(u(0) − y) on the training points and
    f_k(x) = f_0(x) + K(x, X) V φ_k(Λ) Vᵀ(y − u(0)), φ_k(λ) = (1 − (1 − ηλ)^k)/λ, on test points,
    which equals stepping u ← u − ηH(u − y), f ← f − ηK(x, X)(u − y) k times (loss ½‖u − y‖²).
    K(x_test, X)V is computed once here; each call costs two matrix products, no solve.

    Args:
      eig: decomposition of H = K(X, X) (n × n).
      y: (n,) or (n, C) training targets.
      eta: step size, default 1/λ_max; error if ≤ 0 or ≥ 2/λ_max unless `force`.
      u0: (n[, C]) initial training outputs u(0) (the network's f_0(X)); default 0.
      k_test_train: (n_test, n) K(x_test, X), or None for no test predictions.
      f0_test: (n_test[, C]) initial test outputs f_0(x_test); default 0 (required if u0 ≠ 0).
      force: allow a diverging η.

    Returns:
      predict(steps=None) -> Trajectory: steps (T,) whole numbers ≥ 0 (inf allowed), a scalar
      step (no T axis), or None for k = ∞ (the pseudo-inverse interpolant).

    Example:
      >>> predict = gd_predictor(eig, y, k_test_train=kernel_fn(x_test, x).ntk)
      >>> traj = predict(jnp.array([0, 10, 100, 1000]))   # traj.train (4, n), traj.test (4, n_test)

    Reference: Lee et al. arXiv 1902.06720 (linearized networks); Arora et al. arXiv 1901.08584.
    """
    eta = resolve_step_size(eig, eta, force=force)
    y, u0, kv, f0t = _prepare_problem(eig, y, u0, k_test_train, f0_test)
    r0 = to_eigenbasis(eig, u0 - y)
    lam, V = eig.eigenvalues, eig.eigenvectors
    eta_arr = jnp.asarray(eta, lam.dtype)

    def predict(steps=None) -> Trajectory:
        steps_arr, scalar = _check_times(steps, lam.dtype, integer=True, name="steps")
        traj = _trajectory(
            steps_arr, _gd_factors(lam, eta_arr, eig.clamp_tol, steps_arr), V, y, r0, kv, f0t
        )
        return _squeeze_time(traj) if scalar else traj

    predict.eta = eta
    return predict


def flow_predictor(eig: Eigensystem, y, *, u0=None, k_test_train=None, f0_test=None):
    """Closed-form linearized gradient flow: a pure function times ↦ Trajectory.

    du/dt = −H(u − y): u(t) = y + V e^{−Λt} Vᵀ(u(0) − y), and
    f_t(x) = f_0(x) + K(x, X) V φ_t(Λ) Vᵀ(y − u(0)), φ_t(λ) = (1 − e^{−λt})/λ (expm1; t at λ = 0).
    GD with step η for k steps approaches the flow at t = ηk as η → 0.

    Args:
      eig: decomposition of H (n × n).
      y: (n,) or (n, C) targets.
      u0, k_test_train, f0_test: as in `gd_predictor`.

    Returns:
      predict(times=None) -> Trajectory: times (T,) ≥ 0 (inf allowed), a scalar, or None = ∞.

    Example:
      >>> flow_predictor(eig, y)(None).train   # ≈ y when λ_min > 0

    Reference: Jacot et al. arXiv 1806.07572; Lee et al. arXiv 1902.06720.
    """
    y, u0, kv, f0t = _prepare_problem(eig, y, u0, k_test_train, f0_test)
    r0 = to_eigenbasis(eig, u0 - y)
    lam, V = eig.eigenvalues, eig.eigenvectors

    def predict(times=None) -> Trajectory:
        times_arr, scalar = _check_times(times, lam.dtype, integer=False, name="times")
        traj = _trajectory(
            times_arr, _flow_factors(lam, eig.clamp_tol, times_arr), V, y, r0, kv, f0t
        )
        return _squeeze_time(traj) if scalar else traj

    return predict


# ---------------------------------------------------------------------------------------------
# AIR along training: half-lives, fitted fractions, the U-curve
# ---------------------------------------------------------------------------------------------


def gd_half_lives(eig: Eigensystem, *, eta=None, force: bool = False) -> jax.Array:
    """Steps for GD to fit half of each mode: k½(λ) = log(1/2) / log|1 − ηλ|.

    Real-valued (not rounded); 0 where ηλ = 1, inf where |1 − ηλ| ≥ 1 or λ ≤ eig.clamp_tol
    (the numerical null space: never fitted).

    Args:
      eig: decomposition of H; eta: step size (default 1/λ_max); force: allow η ≥ 2/λ_max.

    Returns:
      (n,) half-lives in eigenvalue order (increasing).

    Example:
      >>> gd_half_lives(eig)[0]   # 0.0 at η = 1/λ_max

    Reference: Arora et al. arXiv 1901.08584 (mode i converges at rate (1 − ηλ_i)).
    """
    eta = resolve_step_size(eig, eta, force=force)
    lam = eig.eigenvalues
    x = eta * lam
    log_abs_base = jnp.log1p(jnp.where(x > 1, x - 2.0, -x))
    fits = (lam > eig.clamp_tol) & (x < 2)
    return jnp.where(fits, jnp.log(0.5) / jnp.where(fits, log_abs_base, -1.0), jnp.inf)


def flow_half_lives(eig: Eigensystem) -> jax.Array:
    """Time for gradient flow to fit half of each mode: t½(λ) = ln 2 / λ (inf for λ ≤ clamp_tol).

    Returns:
      (n,) half-lives in eigenvalue order.

    Example:
      >>> flow_half_lives(eig)[-1]   # the slowest mode
    """
    lam = eig.eigenvalues
    fits = lam > eig.clamp_tol
    return jnp.where(fits, jnp.log(2.0) / jnp.where(fits, lam, 1.0), jnp.inf)


@jax.jit
def _fitted_fractions(eig, fitted, y_clean, y_noisy):
    def frac(z):  # Σ_i g_i² p_i(z), p the energy per mode (NaN for z = 0)
        return (fitted**2) @ _energy(eig, z)

    return frac(y_clean), frac(y_noisy - y_clean), frac(y_noisy)


def fitted_fractions(
    eig: Eigensystem, y_clean, y_noisy, steps, *, eta=None, force: bool = False, flow: bool = False
) -> FittedFractions:
    """Fitted fraction of clean labels, noise and noisy labels after k GD steps (from u(0) = 0).

    F_z(k) = ‖g_k(H) z‖² / ‖z‖² = Σ_i g_k(λ_i)² ‖v_iᵀz‖² / ‖z‖², g_k(λ) = 1 − (1 − ηλ)^k
    (flow: g_t(λ) = 1 − e^{−λt}). AIR: F_ŷ reaches ≈ 1 long before F_e does.

    Args:
      eig: decomposition of H.
      y_clean, y_noisy: (n,) or (n, C) labels ŷ and y; the noise is e = y − ŷ.
      steps: (T,) steps (or times with flow=True).
      eta, force: step size and divergence override (GD only).
      flow: use gradient flow (steps are then times).

    Returns:
      FittedFractions(steps, clean, noise, noisy), each (T,).

    Example:
      >>> ff = fitted_fractions(eig, ds.y_clean, ds.y, log_spaced_steps(10**5))

    Reference: Dong et al. arXiv 1910.01255 (AIR).
    """
    y_clean, _, _, _ = _prepare_problem(eig, y_clean, None, None, None)
    y_noisy = _check_like(y_noisy, "y_noisy", y_clean.shape, y_clean.dtype)
    lam = eig.eigenvalues
    steps_arr, _ = _check_times(steps, lam.dtype, integer=not flow, name="steps")
    if flow:
        factors = _flow_factors(lam, eig.clamp_tol, steps_arr)
    else:
        eta = resolve_step_size(eig, eta, force=force)
        factors = _gd_factors(lam, jnp.asarray(eta, lam.dtype), eig.clamp_tol, steps_arr)
    return FittedFractions(steps_arr, *_fitted_fractions(eig, factors.fitted, y_clean, y_noisy))


@jax.jit
def _u_curve(steps, factors, eig, y, y_clean, r0, kv, f0_test, y_test_clean):
    expand = (lambda a: a[..., None]) if r0.ndim == 2 else (lambda a: a)
    # u(k) − ŷ = (y − ŷ) + V r_k ⊙ Vᵀ(u0 − y); V is orthogonal, so the norm is taken in the
    # eigenbasis at O(T n) cost with no product by V.
    noise_coeffs = to_eigenbasis(eig, y - y_clean)
    diff = noise_coeffs[None] + expand(factors.residual) * r0[None]
    axes = tuple(range(1, diff.ndim))
    train_dist = jnp.sqrt(jnp.sum(diff**2, axis=axes))
    best = jnp.argmin(train_dist)
    if kv is None:
        test_dist = test_best_step = test_best_dist = None
    else:
        test = f0_test[None] - jnp.einsum(
            "xj,tj...->tx...", kv, expand(factors.test_weight) * r0[None]
        )
        err = test - y_test_clean[None]
        test_dist = jnp.sqrt(jnp.sum(err**2, axis=tuple(range(1, err.ndim))))
        tb = jnp.argmin(test_dist)
        test_best_step, test_best_dist = steps[tb], test_dist[tb]
    return UCurve(
        steps=steps,
        train_dist=train_dist,
        test_dist=test_dist,
        best_index=best,
        best_step=steps[best],
        best_dist=train_dist[best],
        start_dist=train_dist[0],
        final_dist=train_dist[-1],
        test_best_step=test_best_step,
        test_best_dist=test_best_dist,
    )


def u_curve(
    eig: Eigensystem,
    y,
    y_clean,
    steps,
    *,
    eta=None,
    u0=None,
    k_test_train=None,
    f0_test=None,
    y_test_clean=None,
    force: bool = False,
) -> UCurve:
    """The U-shaped curve ‖u(k) − ŷ‖₂ of GD on noisy labels y, and its early-stopping optimum.

    u(k) = y + V(1 − ηΛ)^k Vᵀ(u(0) − y): it falls while the signal is fitted, reaches its
    minimum (the best early stop), then climbs towards ‖e‖ as the noise e = y − ŷ is memorized.
    On test points, ‖f_k(x_test) − ŷ_test‖ with f_k as in `gd_predictor`.

    Args:
      eig: decomposition of H (n × n).
      y: (n[, C]) noisy training labels; y_clean: same shape, ground truth ŷ.
      steps: (T,) whole numbers ≥ 0, in the order to report (the best is searched among them).
      eta, u0, k_test_train, f0_test, force: as in `gd_predictor`.
      y_test_clean: (n_test[, C]) clean test labels; needed with k_test_train.

    Returns:
      UCurve.

    Example:
      >>> uc = u_curve(eig, ds.y, ds.y_clean, log_spaced_steps(10**5))
      >>> uc.best_dist < min(uc.start_dist, uc.final_dist)

    Reference: Dong et al. arXiv 1910.01255; Li, Soltanolkotabi, Oymak arXiv 1903.11680.
    """
    eta = resolve_step_size(eig, eta, force=force)
    y, u0, kv, f0t = _prepare_problem(eig, y, u0, k_test_train, f0_test)
    y_clean = _check_like(y_clean, "y_clean", y.shape, y.dtype)
    if kv is not None:
        if y_test_clean is None:
            raise ValueError(
                "k_test_train was given without y_test_clean (needed for the test curve)"
            )
        y_test_clean = _check_like(y_test_clean, "y_test_clean", f0t.shape, y.dtype)
    elif y_test_clean is not None:
        raise ValueError("y_test_clean was given without k_test_train (the test points' kernel)")
    lam = eig.eigenvalues
    steps_arr, _ = _check_times(steps, lam.dtype, integer=True, name="steps")
    factors = _gd_factors(lam, jnp.asarray(eta, lam.dtype), eig.clamp_tol, steps_arr)
    r0 = to_eigenbasis(eig, u0 - y)
    return _u_curve(steps_arr, factors, eig, y, y_clean, r0, kv, f0t, y_test_clean)


# ---------------------------------------------------------------------------------------------
# Distillation = early stopping
# ---------------------------------------------------------------------------------------------


@jax.jit
def _converged_students(targets, eig, u0, kv, f0_test):
    lam, V = eig.eigenvalues, eig.eigenvectors
    limit = _flow_factors(lam, eig.clamp_tol, jnp.array([jnp.inf], lam.dtype))
    limit = jax.tree_util.tree_map(lambda a: a[0], limit)

    def one(target):
        r0 = V.T @ (u0 - target)
        train, test, residual_modes = _predict_at(limit, V, target, r0, kv, f0_test)
        return train, test, residual_modes

    return jax.vmap(one)(targets)


def distill_from_early_stopped_teacher(
    eig: Eigensystem,
    y,
    teacher_steps,
    *,
    eta=None,
    u0=None,
    k_test_train=None,
    f0_test=None,
    force: bool = False,
) -> Distillation:
    """Train a student to convergence on an early-stopped teacher's outputs; return both.

    Teacher: GD on y for k steps, u_T = y + V(1 − ηΛ)^k Vᵀ(u(0) − y), f_T(x) on test points.
    Student: same initialization, trained to convergence (k = ∞) on the targets u_T:
    u_S = u_T on the training points (u_T − u(0) lies in the range of H) and
    f_S(x) = f_0(x) + K(x, X) H⁺ (u_T − u(0)). In the linearized regime f_S = f_T on every
    input: distillation from an early-stopped teacher *is* early stopping (SCIENCE.md §4).

    Args:
      eig: decomposition of H (n × n).
      y: (n[, C]) labels the teacher is trained on.
      teacher_steps: (T,) or scalar whole numbers ≥ 0: where the teacher is stopped.
      eta, u0, k_test_train, f0_test, force: as in `gd_predictor` (shared by both).

    Returns:
      Distillation(teacher, student), Trajectory each; the student's `times` are inf and its
      `residual_modes` are Vᵀ(u_S − u_T).

    Example:
      >>> d = distill_from_early_stopped_teacher(eig, y, 100, k_test_train=K_test)
      >>> jnp.abs(d.teacher.test - d.student.test).max()   # ~1e-12

    Reference: Dong et al. arXiv 1910.01255.
    """
    eta = resolve_step_size(eig, eta, force=force)
    y, u0, kv, f0t = _prepare_problem(eig, y, u0, k_test_train, f0_test)
    lam, V = eig.eigenvalues, eig.eigenvectors
    steps_arr, scalar = _check_times(teacher_steps, lam.dtype, integer=True, name="teacher_steps")
    factors = _gd_factors(lam, jnp.asarray(eta, lam.dtype), eig.clamp_tol, steps_arr)
    teacher = _trajectory(steps_arr, factors, V, y, to_eigenbasis(eig, u0 - y), kv, f0t)
    train, test, residual_modes = _converged_students(teacher.train, eig, u0, kv, f0t)
    student = Trajectory(
        times=jnp.full_like(steps_arr, jnp.inf),
        train=train,
        test=test,
        residual_modes=residual_modes,
    )
    if scalar:
        teacher, student = _squeeze_time(teacher), _squeeze_time(student)
    return Distillation(teacher=teacher, student=student)


def log_spaced_steps(max_step, num: int = 200) -> np.ndarray:
    """0 and about `num` − 1 whole numbers log-spaced from 1 to `max_step`, unique and sorted.

    Args:
      max_step: largest step (≥ 1), included.
      num: number of points requested (duplicates after rounding are dropped, so ≤ num).

    Returns:
      (T,) float64 numpy array of whole numbers, starting at 0.

    Example:
      >>> log_spaced_steps(1000, 6)   # [0, 1, 6, 32, 178, 1000]
    """
    max_step = float(max_step)
    if not (np.isfinite(max_step) and max_step >= 1):
        raise ValueError(f"max_step must be a finite number ≥ 1, got {max_step!r}")
    if int(num) < 2:
        raise ValueError(f"num must be at least 2, got {num!r}")
    grid = np.unique(np.round(np.logspace(0.0, np.log10(np.floor(max_step)), int(num) - 1)))
    return np.concatenate([[0.0], grid])
