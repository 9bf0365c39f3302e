"""Closed-form linearized training dynamics, from one eigendecomposition (docs/science/dynamics.md).

Linearized full-batch gradient descent on ½‖u − y‖² with step η, H = V diag(λ) Vᵀ:

  u(k) − y = (I − ηH)^k (u(0) − y),             f_k(x) − f_0(x) = K(x, X) V c(k),
  c(k) = φ_k(Λ) Vᵀ(y − u(0)),                   φ_k(λ) = (1 − (1 − ηλ)^k) / λ   (= ηk at λ = 0),

and gradient flow replaces (1 − ηλ)^k by e^{−λt}, φ by (1 − e^{−λt})/λ. Powers are computed
stably as ±exp(k log|1 − ηλ|) and −expm1(k log|1 − ηλ|) (a negative base needs whole steps k).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import NonFiniteError, as_float_array, check_rank, first_nonfinite, is_concrete
from ..spectral._eigen import Eigensystem, energy_per_mode_unchecked
from ..spectral._problem import LinearProblem, check_labels, linear_problem


class ModeFactors(NamedTuple):
    """Per-mode factors of the closed-form dynamics at T times (a pytree)."""

    # r(λ) = (1 − ηλ)^k (GD) or e^{−λt} (flow), so that Vᵀ(u − y) = r ⊙ Vᵀ(u0 − y)
    residual: jax.Array  # (T, n)
    fitted: jax.Array  # (T, n) g(λ) = 1 − r(λ), the fraction of each mode fitted
    test_weight: jax.Array  # (T, n) φ(λ) = g(λ)/λ (ηk or t at λ = 0; 0 on |λ| ≤ clamp_tol at ∞)


class Trajectory(NamedTuple):
    """Predictions of the linearized network at T steps or times (a pytree; a scalar time drops
    the T axis; `[, C]` the columns of (n, C) targets)."""

    times: jax.Array  # (T,) steps k (GD) or times t (flow); inf = converged
    train: jax.Array  # (T, n[, C]) u(k), predictions on the training points
    test: jax.Array | None  # (T, n_test[, C]) f_k(x_test); None without k_test_train
    residual_modes: jax.Array  # (T, n[, C]) Vᵀ(u(k) − y): residual along each eigenmode
    eta: jax.Array | None = None  # () the GD step size η; None for gradient flow


class FittedFractions(NamedTuple):
    """Fitted fractions F_z(k) = ‖g_k(H) z‖² / ‖z‖² of signal, noise and noisy labels (a pytree)."""

    steps: jax.Array  # (T,) GD steps (or flow times)
    clean: jax.Array  # (T,) F_ŷ(k)
    noise: jax.Array  # (T,) F_e(k), e = y − ŷ (NaN if e = 0)
    noisy: jax.Array  # (T,) F_y(k)


def _finite_or_limit(finite, factors, lam, tol, converges):
    """The factors, or at k, t = ∞ the limit: converging modes fitted, |λ| ≤ tol kept, else NaN."""
    null = jnp.abs(lam) <= tol
    nan = jnp.full_like(lam, jnp.nan)
    residual = jnp.where(converges, 0.0, jnp.where(null, 1.0, nan))
    fitted = jnp.where(converges, 1.0, jnp.where(null, 0.0, nan))
    weight = jnp.where(converges, 1.0 / jnp.where(converges, lam, 1.0), jnp.where(null, 0.0, nan))
    limit = (residual, fitted, weight)
    return ModeFactors(*(jnp.where(finite, a, b) for a, b in zip(factors, limit, strict=True)))


def _log_abs_base(x):
    """log|1 − x|: log1p(−x) for x < 1, log1p(x − 2) for x > 1 (−inf at x = 1)."""
    return jnp.log1p(jnp.where(x > 1, x - 2.0, -x))


def _gd_factors_at(lam, eta, tol, k):
    """ModeFactors at one step count k (scalar, integer-valued or inf), each (n,)."""
    x = eta * lam
    finite = jnp.isfinite(k)
    kf = jnp.where(finite, k, 0.0)
    k_log = jnp.where(kf == 0, 0.0, kf * _log_abs_base(x))  # k = 0 gives 1 even where log is −inf
    flip = (x > 1) & (jnp.mod(kf, 2.0) == 1.0)
    residual = jnp.where(flip, -jnp.exp(k_log), jnp.exp(k_log))
    fitted = jnp.where(flip, 1.0 + jnp.exp(k_log), -jnp.expm1(k_log))
    null = lam == 0
    weight = jnp.where(null, eta * kf, fitted / jnp.where(null, 1.0, lam))
    return _finite_or_limit(finite, (residual, fitted, weight), lam, tol, (lam > tol) & (x < 2))


def _flow_factors_at(lam, tol, t):
    """ModeFactors of gradient flow at one time t (scalar ≥ 0 or inf), each (n,)."""
    finite = jnp.isfinite(t)
    tf = jnp.where(finite, t, 0.0)
    exponent = -lam * tf
    residual = jnp.exp(exponent)
    fitted = -jnp.expm1(exponent)  # accurate when λt ≪ 1
    null = lam == 0
    weight = jnp.where(null, tf, fitted / jnp.where(null, 1.0, lam))
    return _finite_or_limit(finite, (residual, fitted, weight), lam, tol, lam > tol)


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
            bad = np.isfinite(a) & (a != np.round(a))
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(
                    f"{name} must be whole numbers of GD steps (the sign of (1 − ηλ)^k needs an "
                    f"integer k), got {a[i]} at index {i}; use flow_* for continuous time"
                )
    return arr, scalar


def resolve_step_size(eig: Eigensystem, eta=None, *, force: bool = False):
    """The GD step size η: default 1/λ_max; error when η ≤ 0 or η ≥ 2/λ_max, where the top mode
    (1 − ηλ_max)^k diverges (unless `force`). Unchecked when traced.

    Args:
      eig: decomposition of H.
      eta: step size or None for 1/λ_max.
      force: allow η ≥ 2/λ_max.

    Returns:
      η as a Python float (an array when traced).

    Example:
      >>> eta = resolve_step_size(eig)   # 1/λ_max
      >>> bool(jnp.isclose(eta * eig.eigenvalues[0], 1.0))
      True
    """
    lam_max = eig.eigenvalues[0]
    if not (is_concrete(lam_max) and (eta is None or is_concrete(eta))):
        return 1.0 / lam_max if eta is None else eta
    return check_step_size(float(lam_max), eta, force=force)


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

    k = inf: r = 0, g = 1, φ = 1/λ for λ > clamp_tol and ηλ < 2; r = 1, g = φ = 0 on |λ| ≤
    clamp_tol (pseudo-inverse); NaN where no limit exists.

    Args:
      eig: decomposition of H (n × n).
      steps: (T,) or scalar non-negative whole numbers (inf allowed).
      eta: step size, default 1/λ_max.
      force: allow η ≥ 2/λ_max.

    Returns:
      ModeFactors, each (T, n) (T = 1 for a scalar).

    Example:
      >>> f = gd_mode_factors(eig, jnp.array([0, 10, 100]))
      >>> f.fitted.shape, float(jnp.abs(f.fitted[0]).max())   # (T, n); nothing fitted at k = 0
      ((3, 40), 0.0)

    Reference: Arora et al. arXiv 1901.08584, Thm 4.1.
    """
    return _gd_factors_checked(eig, steps, eta, force)[3]


def flow_mode_factors(eig: Eigensystem, times) -> ModeFactors:
    """Per-mode gradient-flow factors at T times: r = e^{−λt}, g = −expm1(−λt), φ = g/λ.

    Args:
      eig: decomposition of H.
      times: (T,) or scalar non-negative times (inf allowed).

    Returns:
      ModeFactors, each (T, n).

    Example:
      >>> f = flow_mode_factors(eig, jnp.array([0.0, jnp.inf]))
      >>> f.fitted.min(axis=1).tolist()   # t = 0: nothing fitted; t = ∞: every mode (λ_min > 0)
      [0.0, 1.0]

    Reference: Jacot et al. arXiv 1806.07572; Lee et al. arXiv 1902.06720.
    """
    lam = eig.eigenvalues
    times, _ = _check_times(times, lam.dtype, integer=False, name="times")
    return _flow_factors(lam, eig.clamp_tol, times)


def _gd_factors_checked(eig: Eigensystem, steps, eta, force: bool, name: str = "steps"):
    """(η, steps (T,), whether scalar, ModeFactors) of GD, η and the steps checked."""
    eta = jnp.asarray(resolve_step_size(eig, eta, force=force), eig.eigenvalues.dtype)
    steps, scalar = _check_times(steps, eig.eigenvalues.dtype, integer=True, name=name)
    return eta, steps, scalar, _gd_factors(eig.eigenvalues, eta, eig.clamp_tol, steps)


def _predict_at(factors: ModeFactors, V, y, r0, kv, f0_test):
    """Trajectory fields at one time, on internal (n, C) arrays: vmapped over times."""
    residual_modes = factors.residual[:, None] * r0
    train = y + V @ residual_modes
    test = None if kv is None else f0_test - kv @ (factors.test_weight[:, None] * r0)
    return train, test, residual_modes


@jax.jit
def _trajectory(times, factors, V, y, r0, kv, f0_test):
    train, test, residual_modes = jax.vmap(_predict_at, in_axes=(0, None, None, None, None, None))(
        factors, V, y, r0, kv, f0_test
    )
    return Trajectory(times=times, train=train, test=test, residual_modes=residual_modes)


def _as_problem(eig_or_problem, y=None, **problem_kwargs) -> LinearProblem:
    """A `LinearProblem` given one, or built by `problem.linear_problem(eig, y, **kwargs)`."""
    if isinstance(eig_or_problem, LinearProblem):
        given = [k for k, v in (("y", y), *problem_kwargs.items()) if v is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} given together with a LinearProblem, which already holds them"
            )
        return eig_or_problem
    if y is None:
        raise ValueError("labels y are required (or pass a LinearProblem)")
    return linear_problem(eig_or_problem, y, **problem_kwargs)


def _user_trajectory(problem: LinearProblem, traj: Trajectory, scalar: bool) -> Trajectory:
    t = first_nonfinite(traj.train)
    if t is not None:
        raise NonFiniteError(
            f"the trajectory is not finite from time index {t} (t = {float(traj.times[t]):g}) on: "
            "a forced step size η ≥ 2/λ_max overflows at large step counts; show fewer steps"
        )
    traj = traj._replace(
        train=problem.to_user(traj.train),
        test=problem.to_user(traj.test),
        residual_modes=problem.to_user(traj.residual_modes),
    )
    if scalar:
        traj = jax.tree_util.tree_map(lambda a: a[0] if jnp.ndim(a) else a, traj)
    return traj


def gd_predictor(
    eig, y=None, *, eta=None, u0=None, k_test_train=None, f0_test=None, force: bool = False
):
    """Closed-form linearized gradient descent: a pure function steps ↦ Trajectory.

    u(k) = y + V (1 − ηΛ)^k Vᵀ(u(0) − y) and f_k(x) = f_0(x) + K(x, X) V φ_k(Λ) Vᵀ(y − u(0)),
    φ_k(λ) = (1 − (1 − ηλ)^k)/λ: k steps of u ← u − ηH(u − y), f ← f − ηK(x, X)(u − y).

    Args:
      eig: decomposition of H = K(X, X) (n × n), or a `LinearProblem` (then y, u0, k_test_train,
        f0_test come from it).
      y: (n,) or (n, C) training targets.
      eta: step size, default 1/λ_max; error if ≤ 0 or ≥ 2/λ_max unless `force`.
      u0: (n[, C]) initial training outputs u(0) (the network's f_0(X)); default 0.
      k_test_train: (n_test, n) K(x_test, X), or None for no test predictions.
      f0_test: (n_test[, C]) initial test outputs f_0(x_test); default 0 (required if u0 ≠ 0).
      force: allow a diverging η.

    Returns:
      predict(steps=None) -> Trajectory (`eta` holds η): steps (T,) or scalar whole numbers ≥ 0,
      or None for k = ∞ (the pseudo-inverse interpolant).

    Example:
      >>> predict = gd_predictor(eig, y, k_test_train=K_test_train)
      >>> traj = predict(jnp.array([0, 10, 100, 1000]))
      >>> traj.train.shape, traj.test.shape       # (T, n), (T, n_test)
      ((4, 40), (4, 12))

    Reference: Lee et al. arXiv 1902.06720 (linearized networks); Arora et al. arXiv 1901.08584.
    """
    problem = _as_problem(eig, y, u0=u0, k_test_train=k_test_train, f0_test=f0_test)
    eta = jnp.asarray(resolve_step_size(problem.eig, eta, force=force), problem.dtype)
    predict = _predictor(problem, lambda lam, tol, steps: _gd_factors(lam, eta, tol, steps), eta)
    return lambda steps=None: predict(steps)  # the documented keyword is `steps`


def _predictor(problem: LinearProblem, factors_fn, eta=None):
    """times ↦ Trajectory from factors_fn(λ, clamp_tol, times (T,)); GD (η given) or flow."""
    eig = problem.eig
    lam, V = eig.eigenvalues, eig.eigenvectors
    r0 = V.T @ (problem.u0 - problem.y)
    integer, name = (True, "steps") if eta is not None else (False, "times")

    def predict(times=None) -> Trajectory:
        times_arr, scalar = _check_times(times, lam.dtype, integer=integer, name=name)
        factors = factors_fn(lam, eig.clamp_tol, times_arr)
        traj = _trajectory(times_arr, factors, V, problem.y, r0, problem.kv_test, problem.f0_test)
        return _user_trajectory(problem, traj._replace(eta=eta), scalar)

    return predict


def flow_predictor(eig, y=None, *, u0=None, k_test_train=None, f0_test=None):
    """Closed-form linearized gradient flow: a pure function times ↦ Trajectory.

    du/dt = −H(u − y): u(t) = y + V e^{−Λt} Vᵀ(u(0) − y), f_t(x) = f_0(x) + K(x, X) V φ_t(Λ)
    Vᵀ(y − u(0)), φ_t(λ) = (1 − e^{−λt})/λ.

    Args:
      eig: decomposition of H (n × n), or a `LinearProblem`.
      y: (n,) or (n, C) targets.
      u0: as in `gd_predictor`, and so are k_test_train and f0_test.

    Returns:
      predict(times=None) -> Trajectory: times (T,) ≥ 0 (inf allowed), a scalar, or None = ∞.

    Example:
      >>> u_inf = flow_predictor(eig, y)(None).train   # t = None: t = ∞
      >>> bool(jnp.allclose(u_inf, y))                  # u(∞) = y when λ_min > 0
      True

    Reference: Jacot et al. arXiv 1806.07572; Lee et al. arXiv 1902.06720.
    """
    problem = _as_problem(eig, y, u0=u0, k_test_train=k_test_train, f0_test=f0_test)
    return _predictor(problem, _flow_factors)


def gd_half_lives(eig: Eigensystem, *, eta=None, force: bool = False) -> jax.Array:
    """Steps for GD to fit half of each mode: k½(λ) = log(1/2) / log|1 − ηλ| (not rounded).

    0 where ηλ = 1, inf where |1 − ηλ| ≥ 1 or λ ≤ eig.clamp_tol (never fitted).

    Args:
      eig: decomposition of H.
      eta: step size (default 1/λ_max).
      force: allow η ≥ 2/λ_max.

    Returns:
      (n,) half-lives in eigenvalue order (increasing).

    Example:
      >>> k_half = gd_half_lives(eig)          # η = 1/λ_max
      >>> bool(k_half[0] < 0.1), bool(k_half[-1] > 100)   # top mode in one step, last slowly
      (True, True)

    Reference: Arora et al. arXiv 1901.08584 (mode i converges at rate (1 − ηλ_i)).
    """
    eta = resolve_step_size(eig, eta, force=force)
    lam = eig.eigenvalues
    x = eta * lam
    fits = (lam > eig.clamp_tol) & (x < 2)
    return jnp.where(fits, jnp.log(0.5) / jnp.where(fits, _log_abs_base(x), -1.0), jnp.inf)


def flow_half_lives(eig: Eigensystem) -> jax.Array:
    """Time for gradient flow to fit half of each mode: t½(λ) = ln 2 / λ (inf for λ ≤ clamp_tol).

    Returns:
      (n,) half-lives in eigenvalue order.

    Example:
      >>> t_half = flow_half_lives(eig)
      >>> bool(jnp.isclose(t_half[-1], jnp.log(2) / eig.eigenvalues[-1]))   # the slowest mode
      True
    """
    lam = eig.eigenvalues
    fits = lam > eig.clamp_tol
    return jnp.where(fits, jnp.log(2.0) / jnp.where(fits, lam, 1.0), jnp.inf)


@jax.jit
def _fitted_fractions(eig, fitted, y_clean, y_noisy):
    def frac(z):  # Σ_i g_i² p_i(z), p the energy per mode (NaN for z = 0)
        return (fitted**2) @ energy_per_mode_unchecked(eig, z)

    return frac(y_clean), frac(y_noisy - y_clean), frac(y_noisy)


def fitted_fractions(
    eig: Eigensystem, y_clean, y_noisy, steps, *, eta=None, force: bool = False, flow: bool = False
) -> FittedFractions:
    """Fitted fraction of clean labels, noise and noisy labels after k GD steps (from u(0) = 0).

    F_z(k) = ‖g_k(H) z‖² / ‖z‖² = Σ_i g_k(λ_i)² ‖v_iᵀz‖² / ‖z‖², g_k(λ) = 1 − (1 − ηλ)^k
    (flow: 1 − e^{−λt}).

    Args:
      eig: decomposition of H.
      y_clean: (n,) or (n, C) clean labels ŷ.
      y_noisy: same shape, the labels y; the noise is e = y − ŷ.
      steps: (T,) steps (or times with flow=True).
      eta: step size (GD only).
      force: allow η ≥ 2/λ_max (GD only).
      flow: use gradient flow (steps are then times).

    Returns:
      FittedFractions(steps, clean, noise, noisy), each (T,).

    Example:
      >>> ff = fitted_fractions(eig, y_clean, y, log_spaced_steps(10**5))
      >>> float(ff.clean[0]), round(float(ff.clean[-1]), 6), round(float(ff.noise[-1]), 6)
      (0.0, 1.0, 1.0)

    Reference: Dong et al. arXiv 1910.01255 (AIR).
    """
    n, dtype = eig.eigenvectors.shape[0], eig.eigenvalues.dtype
    y_clean = check_labels(y_clean, "y_clean", n, dtype)
    y_noisy = check_labels(y_noisy, "y_noisy", n, dtype, shape=y_clean.shape)
    if flow:
        steps_arr, _ = _check_times(steps, dtype, integer=False, name="steps")
        factors = _flow_factors(eig.eigenvalues, eig.clamp_tol, steps_arr)
    else:
        _, steps_arr, _, factors = _gd_factors_checked(eig, steps, eta, force)
    return FittedFractions(steps_arr, *_fitted_fractions(eig, factors.fitted, y_clean, y_noisy))


def log_spaced_steps(max_step, num: int = 200) -> np.ndarray:
    """0 and about `num` − 1 whole numbers log-spaced from 1 to `max_step`, unique and sorted.

    Args:
      max_step: largest step (≥ 1), included.
      num: number of points requested (duplicates after rounding are dropped, so ≤ num).

    Returns:
      (T,) float64 numpy array of whole numbers, starting at 0.

    Example:
      >>> log_spaced_steps(1000, 6).tolist()
      [0.0, 1.0, 6.0, 32.0, 178.0, 1000.0]
    """
    max_step = float(max_step)
    if not (np.isfinite(max_step) and max_step >= 1):
        raise ValueError(f"max_step must be a finite number ≥ 1, got {max_step!r}")
    if int(num) < 2:
        raise ValueError(f"num must be at least 2, got {num!r}")
    grid = np.unique(np.round(np.logspace(0.0, np.log10(np.floor(max_step)), int(num) - 1)))
    return np.concatenate([[0.0], grid])
