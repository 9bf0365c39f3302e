"""The AIR study: label energy per NTK mode, fitted fractions and the early-stopping U-curve.

One eigendecomposition of K(X, X) gives everything (SCIENCE.md §2–3): the energy of clean
labels ŷ, noise e = y − ŷ and noisy labels y per eigenmode, and the closed-form linearized GD
trajectory from u(0) = 0 at log-spaced steps, on train and test points.

When K and its eigenvectors do not fit the memory budget (`resources.plan_solver`, solver
"auto"), or with solver "topk", the study runs matrix-free (issue 11): the top-k eigenpairs by
block Krylov iteration on the kernel operator (`topk.topk_eigensystem`), exact per-mode energies
for those k plus one tail bucket per label kind (`matfree.topk_air_spectra`), and the trajectory
with the top k modes in closed form and the tail by the label Krylov space's Lanczos quadrature
(`matfree.topk_gd_predictor`, Gauss/Gauss–Radau bounds reported).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import numpy as np

from .._checks import check_bool, check_dataset, check_int, check_optional, check_real
from ..dynamics import (
    FittedFractions,
    fitted_fractions,
    gd_half_lives,
    log_spaced_steps,
    resolve_step_size,
)
from ..early_stopping import UCurve, noise_fit_horizon, u_curve
from ..eigen import Eigensystem
from ..problem import linear_problem
from ..resources import Budget, SolverChoice, plan_solver
from ..spectrum import ENERGY_FRACTIONS, AIRSpectra, LabelSpectrum, air_spectra
from ._system import (
    KernelSystem,
    Progress,
    data_summary,
    kernel_system,
    report_progress,
    require_tiled,
)

__all__ = ["AIRConfig", "AIRStudy", "TopKDiagnostics", "air", "air_plan", "FIT_LEVELS"]

FIT_LEVELS = (0.5, 0.9, 0.99)


@dataclasses.dataclass(frozen=True)
class AIRConfig:
    """Options of the AIR study.

    steps: None (a horizon that shows the whole U-curve, `early_stopping.noise_fit_horizon`), a
      largest step (log-spaced steps up to it), or an explicit array of steps.
    num_steps: log-spaced points when `steps` is None or a scalar.
    eta: GD step size (None: 1/λ_max). force: allow η ≥ 2/λ_max.
    """

    steps: Any = None
    num_steps: int = 200
    eta: float | None = None
    force: bool = False

    def __post_init__(self):
        """Every option checked at construction, one sentence naming the bad one."""
        check_int("num_steps", self.num_steps, minimum=2)
        check_optional(check_real, "eta", self.eta, minimum=0, open_min=True)
        check_bool("force", self.force)
        if self.steps is not None and np.ndim(self.steps) == 0:
            check_real("steps", self.steps, minimum=1)
        elif self.steps is not None:
            arr = np.asarray(self.steps)
            if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.number):
                raise ValueError(
                    f"steps must be a 1-D array of GD steps, got shape {arr.shape} ({arr.dtype})"
                )
            if not (np.isfinite(arr).all() and (arr >= 0).all() and (arr == np.round(arr)).all()):
                raise ValueError(f"steps must be whole numbers ≥ 0, got {arr.tolist()[:8]}")


class AIRStudy(NamedTuple):
    """AIR of a data set under a kernel (a pytree of arrays, plus the data's summary)."""

    data: dict  # name, sizes and scalar metadata of the data set
    eigenvalues: jax.Array  # (n,) λ descending
    most_negative: jax.Array  # () most negative eigenvalue before clamping
    clamp_tol: jax.Array  # () eigenvalues in (−tol, 0) were set to 0
    eta: float  # the GD step size
    spectra: AIRSpectra  # energies of clean labels, noise, noisy labels per mode
    steps: np.ndarray  # (T,) the GD steps shown
    curve: UCurve  # ‖u(k) − ŷ‖ on train (and test) and the early-stopping optimum
    fitted: FittedFractions  # F_ŷ(k), F_e(k), F_y(k)
    half_lives: jax.Array  # (n,) steps to fit half of each mode
    steps_to_fit: dict  # {level: {"clean": k or None, "noise": k or None}}
    solver: SolverChoice | None = None  # the spectral path and its estimates (None: given system)
    topk: TopKDiagnostics | None = None  # top-k path only: tails, residuals, bounds


class TopKDiagnostics(NamedTuple):
    """What the top-k path adds: the energy outside the k modes, residuals and tail bounds.

    With the top-k solver the AIRStudy's per-mode arrays (eigenvalues, energies, half-lives)
    have k entries, largest eigenvalue first; fitted fractions count the top k modes only (a
    lower bound: the tail's share is not included); alignment and complexity need the whole
    spectrum and are NaN.
    """

    tail_clean: jax.Array  # () ‖(I − V_kV_kᵀ)ŷ‖² / ‖ŷ‖²
    tail_noise: jax.Array  # () the same for e = y − ŷ (NaN when e = 0)
    tail_noisy: jax.Array  # () the same for y
    residual_norms: jax.Array  # (k,) ‖K v_i − θ_i v_i‖₂
    next_eigenvalue: jax.Array  # () θ_{k+1}, estimate of λ_{k+1}
    converged: bool  # every residual ≤ tol · θ_1
    tol: float  # that relative tolerance
    block_products: int  # passes over K
    tail_method: str  # how the trajectory's tail was computed
    residual_norm: jax.Array  # (T,) ‖u(k) − y‖ estimate (top k exact + tail by Lanczos/Gauss)
    tail_lower: jax.Array  # (T,) Gauss lower bound of the tail part of ‖u(k) − y‖
    tail_upper: jax.Array  # (T,) Gauss–Radau upper bound of it


def _steps_to_fit(steps, f_clean, f_noise) -> dict:
    """{level: {"clean": step, "noise": step}}: the first step each part is fitted to `level`."""
    return {
        f"{level:g}": {
            "clean": _first_step_reaching(steps, f_clean, level),
            "noise": _first_step_reaching(steps, f_noise, level),
        }
        for level in FIT_LEVELS
    }


def _first_step_reaching(steps, fractions, level):
    hit = np.flatnonzero(np.asarray(fractions) >= level)
    return float(steps[hit[0]]) if hit.size else None


def air_plan(dataset, budget: Budget | None = None, *, dtype=None) -> SolverChoice:
    """The spectral path of `air` for this data set and budget, decided before allocating.

    Args:
      dataset: `data.Dataset`. budget: `resources.Budget` (solver, rank, memory).
      dtype: float32/float64 (default: the dtype of dataset.x).

    Returns:
      `resources.SolverChoice`.

    Raises:
      resources.ResourceError: the chosen path cannot fit (message: estimate and options).

    Example:
      >>> air_plan(ntk_air.data.clusters()).solver
      'dense'
    """
    x = np.asarray(dataset.x)
    y = np.asarray(dataset.y)
    return plan_solver(
        x.shape[0],
        budget=Budget() if budget is None else budget,
        dtype=str(np.dtype(dtype or x.dtype)),
        n_test=int(np.shape(dataset.x_test)[0]),
        n_labels=1 if y.ndim == 1 else y.shape[1],
        d=int(np.prod(x.shape[1:])),
        what="air",
    )


def air(
    dataset,
    kernel_fn,
    config: AIRConfig = AIRConfig(),
    *,
    system: KernelSystem | None = None,
    progress: Progress | None = None,
    budget: Budget | SolverChoice | None = None,
) -> AIRStudy:
    """AIR of a data set under a kernel: spectra, fitted fractions, U-curve (no files, no output).

    Args:
      dataset: `data.Dataset` (y noisy, y_clean ground truth; ±1 vectors or one-hot).
      kernel_fn: a `KernelFn`; ignored when `system` is given.
      config: `AIRConfig`.
      system: precomputed kernels and eigendecomposition (`kernel_system`), so that several
        studies of one data set decompose once (the dense path).
      progress: progress(stage, done, total) after each stage.
      budget: `resources.Budget` (solver "auto"/"dense"/"topk", rank, memory budget) or a
        `SolverChoice` from `air_plan`; default `Budget()` (auto, the available memory).
        Ignored when `system` is given.

    Returns:
      AIRStudy (its `solver` field says which path ran).

    Raises:
      resources.ResourceError: the chosen path cannot fit the memory budget (before allocating).

    Example:
      >>> study = air(ntk_air.data.clusters(), ntk_air.kernels.two_layer_relu_kernel_fn())
      >>> int(study.spectra.clean.modes_holding[1])     # modes holding 90 % of ŷ's energy
      3
    """
    check_dataset(dataset)
    total = 3
    choice = None
    if system is None:
        choice = (
            budget if isinstance(budget, SolverChoice) else air_plan(dataset, budget or Budget())
        )
        if choice.solver == "topk":
            return _air_topk(dataset, kernel_fn, config, choice, progress)
        system = kernel_system(dataset, kernel_fn)
    report_progress(progress, "kernel and eigendecomposition", 1, total)
    eig = system.eig
    eta = resolve_step_size(eig, config.eta, force=config.force)
    spectra = air_spectra(eig, dataset.y_clean, dataset.y)
    report_progress(progress, "spectra", 2, total)
    steps = config.steps
    if steps is None:
        horizon = noise_fit_horizon(eig, dataset.y_clean, dataset.y, eta=eta, force=config.force)
        steps = log_spaced_steps(horizon, config.num_steps)
    elif np.ndim(steps) == 0:
        steps = log_spaced_steps(steps, config.num_steps)
    else:
        steps = np.sort(np.asarray(steps, dtype=np.float64))
    test = system.ntk_test is not None
    problem = linear_problem(
        eig,
        dataset.y,
        dataset.y_clean,
        k_test_train=system.ntk_test,
        y_test_clean=dataset.y_test_clean if test else None,
    )
    curve = u_curve(problem, steps=steps, eta=eta, force=config.force)
    ff = fitted_fractions(eig, dataset.y_clean, dataset.y, steps, eta=eta, force=config.force)
    f_clean, f_noise = np.asarray(ff.clean), np.asarray(ff.noise)
    report_progress(progress, "dynamics", 3, total)
    return AIRStudy(
        data=data_summary(dataset),
        eigenvalues=eig.eigenvalues,
        most_negative=eig.most_negative,
        clamp_tol=eig.clamp_tol,
        eta=float(eta),
        spectra=spectra,
        steps=steps,
        curve=curve,
        fitted=ff,
        half_lives=gd_half_lives(eig, eta=eta, force=config.force),
        steps_to_fit=_steps_to_fit(steps, f_clean, f_noise),
        solver=choice,
    )


# ---------------------------------------------------------------------------------------------
# The matrix-free (top-k) path
# ---------------------------------------------------------------------------------------------


def _as_label_spectrum(s, fractions) -> LabelSpectrum:
    """A top-k spectrum in the dense LabelSpectrum's shape (per-mode arrays of length k)."""
    cum = np.asarray(s.cumulative)
    fr = np.asarray(fractions, dtype=cum.dtype)
    tol = cum.shape[0] * np.finfo(cum.dtype).eps
    below = np.sum(cum[None, :] < fr[:, None] - tol, axis=1)
    # Within the top k only: 0 (→ None in air.json) when the k modes do not hold the fraction.
    holding = np.where((below < cum.shape[0]) & ~np.isnan(cum[-1]), below + 1, 0)
    nan = np.asarray(np.nan, cum.dtype)
    return LabelSpectrum(
        energy=s.energy,
        cumulative=s.cumulative,
        fractions=jax.numpy.asarray(fr),
        modes_holding=jax.numpy.asarray(holding),
        norm=s.norm,
        alignment=nan,
        complexity=nan,
    )


def _topk_fitted(lam, energies, eta, steps):
    """F_z(k) over the top k modes: Σ_i (1 − (1 − ηθ_i)^k)² p_i(z) (a lower bound of F_z)."""
    lam = np.asarray(lam, np.float64)
    t = np.asarray(steps, np.float64)[:, None]
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        g = 1.0 - np.power(1.0 - eta * lam[None, :], t)
    return [np.sum(g**2 * np.asarray(p, np.float64)[None, :], axis=1) for p in energies]


def _topk_horizon(lam, noise_energy, noisy_energy, eta):
    """10^⌈log10(2k)⌉, k the first step where the top-k noise (else noisy-label) energy is 99 %
    fitted (`early_stopping.noise_fit_horizon` restricted to the top k modes; at most 1e12)."""
    p = np.asarray(noise_energy, np.float64)
    if not np.all(np.isfinite(p)) or p.sum() <= 0:
        p = np.asarray(noisy_energy, np.float64)
    grid = np.logspace(0, 12, 241)
    (fitted,) = _topk_fitted(lam, [p], eta, grid)
    hit = np.flatnonzero(fitted >= 0.99 * p.sum())
    k = grid[hit[0]] if hit.size else 1e12
    return float(min(1e12, 10.0 ** np.ceil(np.log10(2 * k))))


def _air_topk(dataset, kernel_fn, config: AIRConfig, choice: SolverChoice, progress):
    from ..matfree import topk_air_spectra, topk_gd_predictor
    from ..operators import kernel_operator
    from ..topk import topk_eigensystem

    require_tiled(kernel_fn)
    total = 3
    x = dataset.x
    y = np.asarray(dataset.y)
    op = kernel_operator(kernel_fn, x)
    top = topk_eigensystem(op, choice.rank, labels=-y)  # u(0) − y with u(0) = 0
    report_progress(progress, f"top-{choice.rank} eigenpairs (matrix-free)", 1, total)
    lam = top.eigenvalues
    spec = topk_air_spectra(top, dataset.y_clean, y)
    fractions = ENERGY_FRACTIONS
    spectra = AIRSpectra(*(_as_label_spectrum(s, fractions) for s in spec))
    lam_max = float(lam[0])
    clamp = lam.shape[0] * float(np.finfo(np.asarray(lam).dtype).eps) * abs(lam_max)
    eig_k = Eigensystem(lam, top.eigenvectors, jax.numpy.asarray(np.nan, lam.dtype), clamp)
    eta = resolve_step_size(eig_k, config.eta, force=config.force)
    report_progress(progress, "spectra", 2, total)
    steps = config.steps
    if steps is None:
        horizon = _topk_horizon(lam, spec.noise.energy, spec.noisy.energy, eta)
        steps = log_spaced_steps(horizon, config.num_steps)
    elif np.ndim(steps) == 0:
        steps = log_spaced_steps(steps, config.num_steps)
    else:
        steps = np.sort(np.asarray(steps, dtype=np.float64))
    test = len(dataset.x_test) > 0
    test_op = kernel_operator(kernel_fn, dataset.x_test, x) if test else None
    predict, _ = topk_gd_predictor(top, y, eta=eta, y_clean=dataset.y_clean, test_operator=test_op)
    traj = predict(steps)
    train_dist = traj.clean_dist
    test_dist = None
    if test:
        diff = np.asarray(traj.test) - np.asarray(dataset.y_test_clean)[None]
        test_dist = jax.numpy.asarray(np.sqrt(np.sum(diff.reshape(len(steps), -1) ** 2, axis=1)))
    best = int(np.argmin(np.asarray(train_dist)))
    curve = UCurve(
        steps=jax.numpy.asarray(steps),
        train_dist=train_dist,
        test_dist=test_dist,
        best_index=jax.numpy.asarray(best),
        best_step=jax.numpy.asarray(steps[best]),
        best_dist=train_dist[best],
        start_dist=train_dist[0],
        final_dist=train_dist[-1],
        test_best_step=None
        if test_dist is None
        else jax.numpy.asarray(steps[int(np.argmin(np.asarray(test_dist)))]),
        test_best_dist=None if test_dist is None else jax.numpy.min(test_dist),
    )
    f_clean, f_noise, f_noisy = _topk_fitted(
        lam, [spec.clean.energy, spec.noise.energy, spec.noisy.energy], eta, steps
    )
    ff = FittedFractions(
        steps=jax.numpy.asarray(steps),
        clean=jax.numpy.asarray(f_clean),
        noise=jax.numpy.asarray(f_noise),
        noisy=jax.numpy.asarray(f_noisy),
    )
    report_progress(progress, "dynamics", 3, total)
    diagnostics = TopKDiagnostics(
        tail_clean=spec.clean.tail,
        tail_noise=spec.noise.tail,
        tail_noisy=spec.noisy.tail,
        residual_norms=top.residual_norms,
        next_eigenvalue=top.next_eigenvalue,
        converged=bool(top.converged),
        tol=float(top.tol),
        block_products=int(top.block_products),
        tail_method="label Krylov space, Lanczos (Gauss) estimate with Gauss/Gauss–Radau bounds",
        residual_norm=traj.residual_norm,
        tail_lower=traj.tail_lower,
        tail_upper=traj.tail_upper,
    )
    return AIRStudy(
        data=data_summary(dataset),
        eigenvalues=lam,
        most_negative=jax.numpy.asarray(np.nan, lam.dtype),
        clamp_tol=jax.numpy.asarray(clamp, lam.dtype),
        eta=float(eta),
        spectra=spectra,
        steps=steps,
        curve=curve,
        fitted=ff,
        half_lives=gd_half_lives(eig_k, eta=eta, force=config.force),
        steps_to_fit=_steps_to_fit(steps, f_clean, f_noise),
        solver=choice,
        topk=diagnostics,
    )
