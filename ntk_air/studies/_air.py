"""The AIR study: label energy per NTK mode, fitted fractions and the early-stopping U-curve.

One eigensystem of K(X, X), dense or top-k (`kernel_system`), gives the energy of ŷ, e = y − ŷ
and y per mode and the closed-form GD trajectory from u(0) = 0 on train and test points
(docs/science/air.md, docs/science/dynamics.md, docs/guide/air.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import numpy as np

from .._checks import check_bool, check_dataset, check_int, check_optional, check_real, param
from ..data import dataset_task
from ..dynamics._early_stopping import UCurve, noise_fit_horizon, u_curve
from ..dynamics._linearized import (
    FittedFractions,
    fitted_fractions,
    gd_half_lives,
    gd_mode_factors,
    log_spaced_steps,
    resolve_step_size,
)
from ..spectral import DEFAULT_RATES, Budget, LoopEstimate, SolverChoice, check_loop
from ..spectral._label_spectrum import AIRSpectra, air_spectra
from ._system import (
    KernelSystem,
    data_summary,
    kernel_system,
    plan_spectrum,
    report_progress,
    sizes,
)

FIT_LEVELS = (0.5, 0.9, 0.99)


@dataclasses.dataclass(frozen=True)
class AIRConfig:
    """Options of the AIR study (each option's help says what it is).

    steps: None (`early_stopping.noise_fit_horizon`), a largest step (`num_steps` log-spaced
    steps up to it) or an explicit array of steps.
    """

    steps: Any = param(
        None,
        "largest GD step shown",
        metavar="MAX_STEP",
        default_help="10^⌈log10(2k)⌉ with k the step by which 99 % of the fittable noise is "
        "fitted, so the U-curve is complete",
    )
    num_steps: int = param(200, "number of log-spaced steps")
    eta: float | None = param(None, "GD step size η", default_help="1/λ_max")
    force: bool = param(False, "allow η ≥ 2/λ_max (diverging GD) instead of an error", flag=True)

    def __post_init__(self):
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
    task: str = "classification"  # or "regression" (real targets: MSE, no accuracy)


class TopKDiagnostics(NamedTuple):
    """What the top-k path adds: the energy outside the k modes, residuals and tail bounds
    (alignment, complexity and the most negative eigenvalue need the whole spectrum: NaN)."""

    tail_clean: jax.Array  # () ‖(I − V_kV_kᵀ)ŷ‖² / ‖ŷ‖²
    tail_noise: jax.Array  # () the same for e = y − ŷ (NaN when e = 0)
    tail_noisy: jax.Array  # () the same for y
    residual_norms: jax.Array  # (k,) ‖K v_i − θ_i v_i‖₂
    next_eigenvalue: jax.Array  # () θ_{k+1}, estimate of λ_{k+1}
    converged: bool  # every residual ≤ tol · θ_1
    tol: float  # that relative tolerance
    block_products: int  # passes over K
    tail_method: str  # how the trajectory's tail was computed
    residual_norm: jax.Array  # (T,) ‖u(k) − y‖ estimate (top k exact + tail by the reduction)
    tail_lower: jax.Array  # (T,) max(0, 1 − ηθ_k)^k ‖P y‖: lower bound of the tail part
    tail_upper: jax.Array  # (T,) ‖P y‖: upper bound of it
    upcast: bool = False  # a float32 request that did not converge, computed in float64


def _steps_to_fit(steps, fitted: FittedFractions) -> dict:
    """{level: {"clean": step, "noise": step}}: the first step each part is fitted to `level`."""

    def first(fractions, level):
        hit = np.flatnonzero(np.asarray(fractions) >= level)
        return float(steps[hit[0]]) if hit.size else None

    return {
        f"{level:g}": {"clean": first(fitted.clean, level), "noise": first(fitted.noise, level)}
        for level in FIT_LEVELS
    }


def air_plan(
    dataset, budget: Budget | None = None, *, dtype=None, config: AIRConfig | None = None
) -> SolverChoice:
    """The spectral path of `air` for this data set and budget, decided before allocating.

    With `config` the whole run (`air_estimate`) is checked against the time and memory budget.

    Args:
      dataset: `data.Dataset` (only the shapes and dtype of its arrays are read).
      budget: `resources.Budget` (solver, rank, memory, time limit).
      dtype: float32/float64 (default: the dtype of dataset.x).
      config: `AIRConfig` of the run (None: the spectral path alone is checked).

    Returns:
      `resources.SolverChoice`.

    Raises:
      resources.ResourceError: the chosen path cannot fit (message: estimate and options), or
        with `config` the run exceeds the time limit or its dynamics the memory budget.

    Example:
      >>> air_plan(ntk_air.data.clusters()).solver
      'dense'
      >>> try:
      ...     air_plan(ntk_air.data.clusters(), config=AIRConfig(num_steps=10**9))
      ... except ValueError as err:  # spectral.ResourceError
      ...     print(str(err)[:54])
      air: 160 training points, top 160 modes, 10⁹ steps (de
    """
    choice = plan_spectrum(dataset, budget, dtype, "air")
    if config is not None:
        check_loop(
            air_estimate(dataset, config, choice, dtype=dtype),
            budget,
            remedy=(
                "Use a smaller --n-train or --num-steps, the top-k solver with a smaller "
                "--rank, or a larger --time-limit",
                "Use a smaller --num-steps or --n-train",
            ),
        )
    return choice


def air_estimate(dataset, config: AIRConfig, choice: SolverChoice, *, dtype=None) -> LoopEstimate:
    """Time and memory of a whole `air` run on the path `choice`: the spectral path's estimate
    plus the dynamics at T steps, ≈ itemsize·T·C·(4r + 2·n_test) bytes and T·C·r·(n_test + 8)
    multiply-adds for r modes and C label columns.

    Example:
      >>> ds = ntk_air.data.clusters()
      >>> est = air_estimate(ds, AIRConfig(num_steps=10**9), air_plan(ds))
      >>> est.memory_bytes > 10**12
      True
    """
    n, n_test, cols = sizes(dataset)
    size = np.dtype(dtype or np.asarray(dataset.x).dtype).itemsize
    num, steps = int(config.num_steps), config.steps
    if steps is None:
        grid, shown = num, num
    elif np.ndim(steps) == 0:
        grid, shown = num, int(min(num, np.floor(float(steps)) + 1))
    else:
        grid, shown = 0, int(np.size(steps))
    r = choice.rank
    memory = 8 * 3 * grid + size * shown * cols * (4 * r + 2 * n_test)
    dynamics = (
        3 * grid * _GRID_SECONDS + shown * cols * r * (n_test + 8) * DEFAULT_RATES["flop_seconds"]
    )
    what = f"air: {n} training points, top {r} modes, {_count(shown)} steps ({choice.solver})"
    return LoopEstimate(
        what,
        choice.seconds + dynamics,
        int(memory),
        {"spectral_seconds": choice.seconds, "dynamics_seconds": dynamics, "steps": shown},
    )


_GRID_SECONDS = 1e-7  # per point of the step grid: logspace, round, sort (2-core CPU)


def _count(k: int) -> str:
    """10⁹ for powers of ten from 10⁶ on, else the number."""
    if k >= 10**6 and 10 ** round(np.log10(k)) == k:
        return "10" + str(round(np.log10(k))).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
    return str(k)


def air(
    dataset,
    kernel_fn,
    config: AIRConfig = AIRConfig(),
    *,
    system: KernelSystem | None = None,
    progress=None,
    budget: Budget | SolverChoice | None = None,
) -> AIRStudy:
    """AIR of a data set under a kernel: spectra, fitted fractions, U-curve (no files, no output).

    On the top-k path the per-mode arrays hold the top k modes and `topk` what lies beyond.

    Args:
      dataset: `data.Dataset` (y noisy, y_clean ground truth; class or real-valued labels).
      kernel_fn: a `KernelFn`; ignored when `system` is given.
      config: `AIRConfig`.
      system: precomputed kernels and eigensystem (`kernel_system`), shared between studies.
      progress: progress(stage, done, total) after each stage.
      budget: `resources.Budget` or a `SolverChoice` from `air_plan`; ignored with `system`.

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
    if system is None:
        choice = (
            budget if isinstance(budget, SolverChoice) else air_plan(dataset, budget, config=config)
        )
        system = kernel_system(dataset, kernel_fn, choice)
    stage = "kernel and eigendecomposition"
    if system.eig.rest is not None:
        stage = f"top-{system.eig.top} eigenpairs and Krylov space of (y, ŷ) (matrix-free)"
    report_progress(progress, stage, 1, 3)
    eig = system.eig
    top = eig.top_k()
    eta = resolve_step_size(eig, config.eta, force=config.force)
    spectra = air_spectra(eig, dataset.y_clean, dataset.y)
    report_progress(progress, "spectra", 2, 3)
    steps = config.steps
    if steps is None:
        steps = noise_fit_horizon(eig, dataset.y_clean, dataset.y, eta=eta, force=config.force)
    if np.ndim(steps) == 0:
        steps = log_spaced_steps(steps, config.num_steps)
    else:
        steps = np.sort(np.asarray(steps, dtype=np.float64))
    curve = u_curve(system.problem(dataset), steps=steps, eta=eta, force=config.force)
    ff = fitted_fractions(eig, dataset.y_clean, dataset.y, steps, eta=eta, force=config.force)
    report_progress(progress, "dynamics", 3, 3)
    return AIRStudy(
        data=data_summary(dataset),
        eigenvalues=top.eigenvalues,
        most_negative=eig.most_negative if eig.rest is None else jax.numpy.asarray(np.nan),
        clamp_tol=eig.clamp_tol,
        eta=float(eta),
        spectra=spectra,
        steps=steps,
        curve=curve,
        fitted=ff,
        half_lives=gd_half_lives(top, eta=eta, force=config.force),
        steps_to_fit=_steps_to_fit(steps, ff),
        solver=system.solver,
        topk=None if eig.rest is None else _diagnostics(eig, spectra, dataset.y, steps, eta),
        task=dataset_task(dataset),
    )


def _diagnostics(eig, spectra, y, steps, eta) -> TopKDiagnostics:
    """‖u(k) − y‖ on the reduction; its tail part, P = I − V_kV_kᵀ on eigenvalues ≤ θ_k, obeys
    max(0, 1 − ηθ_k)^k ‖P y‖ ≤ ‖(I − ηK)^k P y‖ ≤ ‖P y‖ (η ≤ 2/λ_max)."""
    rest, k = eig.rest, eig.top
    factors = gd_mode_factors(eig, np.asarray(steps), eta=eta)
    c = np.asarray(eig.eigenvectors.T @ jax.numpy.asarray(y, eig.eigenvalues.dtype)).reshape(
        eig.eigenvalues.shape[0], -1
    )
    moved2 = (np.asarray(factors.residual)[:, :, None] * c[None]) ** 2  # (T, m, C)
    tail0 = float(np.sqrt(np.sum(c[k:] ** 2)))
    theta_k = float(eig.eigenvalues[k - 1])
    decay = max(0.0, 1.0 - eta * theta_k) ** np.asarray(steps, np.float64)
    return TopKDiagnostics(
        tail_clean=spectra.clean.tail,
        tail_noise=spectra.noise.tail,
        tail_noisy=spectra.noisy.tail,
        residual_norms=rest.residual_norms,
        next_eigenvalue=rest.next_eigenvalue,
        converged=bool(rest.converged),
        tol=float(rest.tol),
        block_products=int(rest.block_products),
        tail_method="Rayleigh–Ritz reduction to the top-k eigenvectors and the Krylov space of "
        "(y, ŷ) (Galerkin estimate), bracketed by max(0, 1 − ηθ_k)^k ‖P y‖ ≤ tail ≤ ‖P y‖",
        residual_norm=jax.numpy.asarray(np.sqrt(moved2.sum(axis=(1, 2)))),
        tail_lower=jax.numpy.asarray(tail0 * decay),
        tail_upper=jax.numpy.asarray(np.full(len(steps), tail0)),
        upcast=bool(rest.upcast),
    )
