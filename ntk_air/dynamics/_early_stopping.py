"""Early stopping in the kernel limit: the U-curve ‖u(k) − ŷ‖ (docs/science/air.md), its optimum,
and distillation = early stopping (docs/science/distillation.md#early-stopped-teacher)."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import NonFiniteError, first_nonfinite
from ..spectral._eigen import Eigensystem
from ..spectral._problem import LinearProblem, check_labels
from ._linearized import (
    Trajectory,
    _as_problem,
    _flow_factors,
    _gd_factors_checked,
    _predict_at,
    _trajectory,
    _user_trajectory,
    fitted_fractions,
    log_spaced_steps,
)

_NOISE_FIT_TARGET = 0.99
MAX_STEP_CAP = 1e12


class UCurve(NamedTuple):
    """Distance of the predictions to the clean labels along training (a pytree)."""

    steps: jax.Array  # (T,) GD steps
    train_dist: jax.Array  # (T,) ‖u(k) − ŷ‖₂ (Frobenius for (n, C) targets; MSE = dist²/(n·C))
    test_dist: jax.Array | None  # (T,) ‖f_k(x_test) − ŷ_test‖₂; None without test data
    best_index: jax.Array  # () int, argmin of train_dist (first one on ties)
    best_step: jax.Array  # () steps[best_index], the early-stopping optimum
    best_dist: jax.Array  # () train_dist[best_index]
    start_dist: jax.Array  # () train_dist[0]
    final_dist: jax.Array  # () train_dist[-1]
    test_best_step: jax.Array | None  # () argmin step of test_dist; None without test data
    test_best_dist: jax.Array | None  # () min of test_dist; None without test data


class Distillation(NamedTuple):
    """An early-stopped teacher and a student trained to convergence on its outputs (a pytree)."""

    teacher: Trajectory  # GD on labels y, stopped at teacher_steps (T,)
    student: Trajectory  # converged (k = ∞) on targets teacher.train, same init u(0), f_0


@jax.jit
def _u_curve(steps, factors, problem: LinearProblem):
    eig = problem.eig
    V = eig.eigenvectors
    r0 = V.T @ (problem.u0 - problem.y)
    # u(k) − ŷ = (y − ŷ) + V r_k ⊙ Vᵀ(u0 − y): the norm in the eigenbasis, O(T n).
    noise_coeffs = V.T @ (problem.y - problem.y_clean)
    diff = noise_coeffs[None] + factors.residual[..., None] * r0[None]
    train_dist = jnp.sqrt(jnp.sum(diff**2, axis=(1, 2)))
    best = jnp.argmin(train_dist)
    if problem.kv_test is None:
        test_dist = test_best_step = test_best_dist = None
    else:
        test = problem.f0_test[None] - jnp.einsum(
            "xj,tjc->txc", problem.kv_test, factors.test_weight[..., None] * r0[None]
        )
        err = test - problem.y_test_clean[None]
        test_dist = jnp.sqrt(jnp.sum(err**2, axis=(1, 2)))
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
    eig,
    y=None,
    y_clean=None,
    steps=None,
    *,
    eta=None,
    u0=None,
    k_test_train=None,
    f0_test=None,
    y_test_clean=None,
    force: bool = False,
) -> UCurve:
    """The U-shaped curve ‖u(k) − ŷ‖₂ of GD on noisy labels y, and its early-stopping optimum.

    u(k) = y + V(1 − ηΛ)^k Vᵀ(u(0) − y); on test points ‖f_k(x_test) − ŷ_test‖ (`gd_predictor`).

    Args:
      eig: decomposition of H (n × n), or a `LinearProblem` holding y, ŷ and the test data.
      y: (n[, C]) noisy training labels.
      y_clean: same shape, ground truth ŷ.
      steps: (T,) whole numbers ≥ 0, in the order to report (the best is searched among them).
      eta: as in `dynamics.gd_predictor`, and so are u0, k_test_train, f0_test and force.
      y_test_clean: (n_test[, C]) clean test labels; needed with k_test_train.

    Returns:
      UCurve.

    Example:
      >>> uc = u_curve(problem, steps=dynamics.log_spaced_steps(10**5))  # or (eig, y, y_clean, …)
      >>> bool(uc.best_dist < min(uc.start_dist, uc.final_dist))
      True

    Reference: Dong et al. arXiv 1910.01255; Li, Soltanolkotabi, Oymak arXiv 1903.11680.
    """
    if steps is None:
        raise ValueError("steps are required: the GD steps at which to measure the curve")
    problem = _as_problem(
        eig,
        y,
        y_clean=y_clean,
        u0=u0,
        k_test_train=k_test_train,
        f0_test=f0_test,
        y_test_clean=y_test_clean,
    )
    if problem.y_clean is None:
        raise ValueError("y_clean (the ground truth ŷ) is required for the U-curve")
    if problem.kv_test is not None and problem.y_test_clean is None:
        raise ValueError("k_test_train was given without y_test_clean (needed for the test curve)")
    _, steps_arr, _, factors = _gd_factors_checked(problem.eig, steps, eta, force)
    curve = _u_curve(steps_arr, factors, problem)
    t = first_nonfinite(curve.train_dist)
    if t is not None:
        raise NonFiniteError(
            f"the U-curve is not finite from step {float(steps_arr[t]):g} on: a forced step size "
            "η ≥ 2/λ_max overflows at large step counts; show fewer steps"
        )
    return curve


@jax.jit
def _converged_students(targets, problem: LinearProblem):
    eig = problem.eig
    lam, V = eig.eigenvalues, eig.eigenvectors
    limit = _flow_factors(lam, eig.clamp_tol, jnp.array([jnp.inf], lam.dtype))
    limit = jax.tree_util.tree_map(lambda a: a[0], limit)

    def one(target):
        r0 = V.T @ (problem.u0 - target)
        return _predict_at(limit, V, target, r0, problem.kv_test, problem.f0_test)

    return jax.vmap(one)(targets)


def distill_from_early_stopped_teacher(
    eig,
    y=None,
    teacher_steps=None,
    *,
    eta=None,
    u0=None,
    k_test_train=None,
    f0_test=None,
    force: bool = False,
) -> Distillation:
    """Train a student to convergence on an early-stopped teacher's outputs; return both.

    Teacher: k GD steps on y, u_T = y + V(1 − ηΛ)^k Vᵀ(u(0) − y); student: from u(0) to convergence
    on u_T, f_S(x) = f_0(x) + K(x, X) H⁺ (u_T − u(0)) = f_T(x) on every input
    (docs/science/distillation.md#early-stopped-teacher).

    Args:
      eig: decomposition of H (n × n), or a `LinearProblem`.
      y: (n[, C]) labels the teacher is trained on.
      teacher_steps: (T,) or scalar whole numbers ≥ 0: where the teacher is stopped.
      eta: as in `dynamics.gd_predictor`, and so are u0, k_test_train, f0_test and force (shared
        by teacher and student).

    Returns:
      Distillation(teacher, student), Trajectory each; the student's `times` are inf and its
      `residual_modes` are Vᵀ(u_S − u_T).

    Example:
      >>> d = distill_from_early_stopped_teacher(eig, y, 100, k_test_train=K_test_train)
      >>> float(jnp.abs(d.teacher.test - d.student.test).max()) < 1e-8
      True

    Reference: Dong et al. arXiv 1910.01255.
    """
    if teacher_steps is None:
        raise ValueError("teacher_steps are required: where the teacher is stopped")
    problem = _as_problem(eig, y, u0=u0, k_test_train=k_test_train, f0_test=f0_test)
    eta, steps_arr, scalar, factors = _gd_factors_checked(
        problem.eig, teacher_steps, eta, force, "teacher_steps"
    )
    V = problem.eig.eigenvectors
    r0 = V.T @ (problem.u0 - problem.y)
    teacher = _trajectory(steps_arr, factors, V, problem.y, r0, problem.kv_test, problem.f0_test)
    train, test, residual_modes = _converged_students(teacher.train, problem)
    student = Trajectory(
        times=jnp.full_like(steps_arr, jnp.inf),
        train=train,
        test=test,
        residual_modes=residual_modes,
    )
    return Distillation(
        teacher=_user_trajectory(problem, teacher._replace(eta=eta), scalar),
        student=_user_trajectory(problem, student._replace(eta=eta), scalar),
    )


def noise_fit_horizon(
    eig: Eigensystem, y_clean, y_noisy, *, eta, force: bool = False, target=_NOISE_FIT_TARGET
) -> float:
    """A step horizon that shows the whole U-curve: 10^⌈log10(2k)⌉ ≤ 1e12, k the first step with
    F_e(k) ≥ target·F_e(∞) (F_y without noise); where a mode has |1 − ηλ| ≥ 1, the step by which
    it has grown a millionfold (1000 if it only oscillates).

    Args:
      eig: decomposition of H.
      y_clean: (n[, C]) clean labels ŷ.
      y_noisy: (n[, C]) labels y.
      eta: the GD step.
      force: allow η ≥ 2/λ_max.
      target: fraction of the fittable noise.

    Returns:
      The horizon (a float, a power of 10, at most 1e12).

    Example:
      >>> noise_fit_horizon(eig, y_clean, y, eta=1 / float(eig.eigenvalues[0]))
      10000.0
    """
    n, dtype = eig.eigenvectors.shape[0], eig.eigenvalues.dtype
    check_labels(y_clean, "y_clean", n, dtype)
    lam = np.asarray(eig.eigenvalues)
    base = np.abs(1.0 - eta * lam[np.abs(lam) > float(eig.clamp_tol)])
    growth = float(base.max()) if base.size else 0.0
    if growth >= 1.0:
        k = np.log(1e6) / np.log(growth) if growth > 1.0 else 1e3
    else:
        grid = log_spaced_steps(MAX_STEP_CAP, 482)
        steps = np.append(grid, np.inf)
        ff = fitted_fractions(eig, y_clean, y_noisy, steps, eta=eta, force=force)
        f = np.asarray(ff.noise)
        if not np.isfinite(f).all():  # no noise: the noisy labels' own fitting sets the horizon
            f = np.asarray(ff.noisy)
        reached = np.flatnonzero(f[:-1] >= target * f[-1])
        k = grid[reached[0]] if reached.size else MAX_STEP_CAP
    return float(min(10 ** np.ceil(np.log10(max(2 * k, 10))), MAX_STEP_CAP))
