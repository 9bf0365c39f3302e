"""The AIR study: label energy per NTK mode, fitted fractions and the early-stopping U-curve.

One eigendecomposition of K(X, X) gives everything (SCIENCE.md §2–3): the energy of clean
labels ŷ, noise e = y − ŷ and noisy labels y per eigenmode, and the closed-form linearized GD
trajectory from u(0) = 0 at log-spaced steps, on train and test points.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import jax
import numpy as np

from ..dynamics import (
    FittedFractions,
    fitted_fractions,
    gd_half_lives,
    log_spaced_steps,
    resolve_step_size,
)
from ..early_stopping import UCurve, noise_fit_horizon, u_curve
from ..problem import linear_problem
from ..spectrum import AIRSpectra, air_spectra
from ._system import KernelSystem, Progress, data_summary, kernel_system, report_progress

__all__ = ["AIRConfig", "AIRStudy", "air", "FIT_LEVELS"]

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


def _first_step_reaching(steps, fractions, level):
    hit = np.flatnonzero(np.asarray(fractions) >= level)
    return float(steps[hit[0]]) if hit.size else None


def air(
    dataset,
    kernel_fn,
    config: AIRConfig = AIRConfig(),
    *,
    system: KernelSystem | None = None,
    progress: Progress | None = None,
) -> AIRStudy:
    """AIR of a data set under a kernel: spectra, fitted fractions, U-curve (no files, no output).

    Args:
      dataset: `data.Dataset` (y noisy, y_clean ground truth; ±1 vectors or one-hot).
      kernel_fn: a `KernelFn`; ignored when `system` is given.
      config: `AIRConfig`.
      system: precomputed kernels and eigendecomposition (`kernel_system`), so that several
        studies of one data set decompose once.
      progress: progress(stage, done, total) after each stage.

    Returns:
      AIRStudy.

    Example:
      >>> study = air(ntk_air.data.clusters(), ntk_air.kernels.two_layer_relu_kernel_fn())
      >>> int(study.spectra.clean.modes_holding[1])     # modes holding 90 % of ŷ's energy
      3
    """
    total = 3
    if system is None:
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
        steps_to_fit={
            f"{level:g}": {
                "clean": _first_step_reaching(steps, f_clean, level),
                "noise": _first_step_reaching(steps, f_noise, level),
            }
            for level in FIT_LEVELS
        },
    )
