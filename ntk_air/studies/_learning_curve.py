"""The learning-curve study: predicted test error of kernel ridge regression against measured.

The data set's rows are the population: its kernel's spectrum gives the eigenlearning prediction,
KRR on seeded draws of n of its points the measured curve (docs/science/learning_curves.md).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import learning_curves
from ..learning_curves import LearningCurve, MeasuredCurve, PopulationSpectrum, TailSpread
from ..spectral._eigen import eigensystem
from ..spectral._operators import kernel_diagonal, kernel_operator, with_float64_products
from ..spectral._resources import (
    DEFAULT_RATES,
    Budget,
    LoopEstimate,
    check_loop,
    estimate_dense,
    estimate_topk,
)
from ..spectral._topk import topk_eigensystem
from ._system import data_summary, report_progress, require_tiled, sizes

_LABELS = ("clean", "noisy")  # ground truth (+ Gaussian noise) or the data set's noisy labels


@dataclasses.dataclass(frozen=True)
class LearningCurveConfig:
    """Options of the learning-curve study (checked on construction).

    n: training-set sizes (whole, ≥ 1, ≤ N unless `replace`). ridge: δ ≥ 0 values.
    draws: seeded draws per n (≥ 1; one draw gives no 95 % interval). seed: seed of the draws
    and of the added noise.
    labels: "clean" or "noisy". noise_variance: σ² of Gaussian noise added to the
    training labels, summed over columns ("clean" only). modes: top modes whose learnability is
    measured. times: gradient-flow times t to measure as well (dense solver only).
    solver: "dense" or "topk". rank: top-k modes (solver "topk"). tile_dtype: dtype of the
    kernel tiles of the top-k population spectrum ("float32": tiles under float64 arithmetic,
    `spectral.with_float64_products`; the measured curves use the kernel function's dtype).
    replace: draw with replacement (i.i.d.) instead of n distinct points.
    """

    n: tuple = (10, 30, 100, 300, 1000)
    ridge: tuple = (0.0, 1e-3)
    draws: int = 20
    seed: int = 0
    labels: str = "clean"
    noise_variance: float = 0.0
    modes: int = 20
    times: tuple = ()
    solver: str = "dense"
    rank: int = 100
    replace: bool = False
    tile_dtype: str = "float64"

    def __post_init__(self):
        n = tuple(self.n)
        if not n or any(not float(v).is_integer() or v < 1 for v in n):
            raise ValueError(f"n must be whole numbers ≥ 1, got {list(n)}")
        object.__setattr__(self, "n", tuple(sorted({int(v) for v in n})))
        ridge = tuple(float(r) for r in self.ridge)
        if not ridge or any(not (r >= 0 and np.isfinite(r)) for r in ridge):
            raise ValueError(f"ridge values must be finite and ≥ 0, got {list(ridge)}")
        object.__setattr__(self, "ridge", ridge)
        if int(self.draws) != self.draws or self.draws < 1:
            raise ValueError(f"draws must be a whole number ≥ 1, got {self.draws}")
        if self.labels not in _LABELS:
            raise ValueError(f"labels must be one of {_LABELS}, got {self.labels!r}")
        if not (self.noise_variance >= 0 and np.isfinite(self.noise_variance)):
            raise ValueError(f"noise_variance must be finite and ≥ 0, got {self.noise_variance}")
        if self.labels == "noisy" and self.noise_variance:
            raise ValueError(
                "noise_variance applies to labels='clean' (added Gaussian noise); the noisy "
                "labels carry their own noise"
            )
        if int(self.modes) != self.modes or self.modes < 0:
            raise ValueError(f"modes must be a whole number ≥ 0, got {self.modes}")
        times = tuple(float(t) for t in self.times)
        if any(not (t > 0 and np.isfinite(t)) for t in times):
            raise ValueError(f"times must be finite and > 0, got {list(times)}")
        object.__setattr__(self, "times", times)
        if self.solver not in ("dense", "topk"):
            raise ValueError(f"solver must be 'dense' or 'topk', got {self.solver!r}")
        if self.solver == "topk" and times:
            raise ValueError("times (gradient flow) need the dense solver")
        if int(self.rank) != self.rank or self.rank < 1:
            raise ValueError(f"rank must be a whole number ≥ 1, got {self.rank}")
        if self.tile_dtype not in ("float32", "float64"):
            raise ValueError(f"tile_dtype must be 'float32' or 'float64', got {self.tile_dtype!r}")
        if self.tile_dtype == "float32" and self.solver != "topk":
            raise ValueError("tile_dtype='float32' applies to the top-k solver (solver='topk')")


class LearningCurveStudy(NamedTuple):
    """Predicted and measured learning curves of one data set under one kernel (a pytree).

    P = len(config.n), R = len(config.ridge), T = len(config.times), M = measured modes.
    """

    data: dict  # name, sizes and scalar metadata of the data set (the population)
    config: LearningCurveConfig
    spectrum: PopulationSpectrum  # of the target ŷ (m entries; top-k: k + 1 with the tail)
    noise_variance: float  # σ² in the prediction (added noise, or E‖y − ŷ‖² for "noisy")
    predicted: LearningCurve  # (P, R) fields, (P, R, m) per mode
    measured: MeasuredCurve  # (P, R, D) per draw, (P, R, D, M) learnabilities
    spread: TailSpread | None  # (P, R) test MSE under extreme tails (top-k only)
    fixed_labels: LearningCurve | None  # "noisy": y itself as the target, σ² = 0 (P, R)
    flow_predicted: LearningCurve | None  # (P, T) ridge δ = 1/t (heuristic for the flow)


_DRAW_SECONDS = 5e-3  # fixed cost of one draw's ridge regression per ridge or time (2-core CPU)


def learning_curve_plan(dataset, config: LearningCurveConfig, budget: Budget | None = None):
    """Time and memory of `learning_curve_study`, decided (or refused) before any work: the
    population's spectrum and D draws per n, each a solve per ridge δ and time t (n³/3 + 2Nn·C
    multiply-adds and a fixed cost).

    Args:
      dataset: `data.Dataset`, the population (only its shapes are read).
      config: `LearningCurveConfig`.
      budget: `resources.Budget` (time limit, force).

    Returns:
      `resources.LoopEstimate`.

    Raises:
      resources.ResourceError: above budget.seconds (unless budget.force) or the memory.

    Example:
      >>> est = learning_curve_plan(ntk_air.data.clusters(), LearningCurveConfig(n=(10, 30)))
      >>> est.seconds < 60
      True
    """
    N, _, cols = sizes(dataset)
    fits = len(config.ridge) + len(config.times)
    if config.solver == "dense":
        spectral = estimate_dense(max(N, 1))
    else:
        spectral = estimate_topk(max(N, 1), min(config.rank, max(N, 1)))
    draws, flop = int(config.draws), DEFAULT_RATES["flop_seconds"]
    per_draw = sum(
        fits * ((n**3 / 3 + 2.0 * N * n * cols) * flop + _DRAW_SECONDS) for n in config.n
    )
    held = draws * (max(config.n) + len(config.n) * (fits * (3 + config.modes)))
    est = LoopEstimate(
        f"learning-curve: population N = {N}, {draws} draws × {len(config.n)} sizes × {fits} "
        "ridges/times",
        spectral.seconds + draws * per_draw,
        int(spectral.memory_bytes + 8 * held),
        {"spectral_seconds": spectral.seconds},
    )
    return check_loop(
        est,
        budget,
        remedy=(
            "Use fewer --draws, sizes --n or ridges, a larger --time-limit, or --force to run it "
            "anyway",
            "Use fewer --draws or sizes --n, or fewer rows (--n-train)",
        ),
    )


def learning_curve_study(
    dataset, kernel_fn, config: LearningCurveConfig = LearningCurveConfig(), *, progress=None
) -> LearningCurveStudy:
    """Eigenlearning's predicted learning curve of a data set's population against measured KRR.

    Args:
      dataset: `data.Dataset`; its training rows x are the population (N points), y_clean the
        target ŷ, y the noisy labels ("noisy"). Test rows are not used.
      kernel_fn: a `KernelFn` (tiled, with `block_fn`, for the top-k solver).
      config: `LearningCurveConfig`.
      progress: progress(stage, done, total) after each stage.

    Returns:
      LearningCurveStudy.

    Example:
      >>> cfg = LearningCurveConfig(n=(20, 60), ridge=(0.0,), draws=3, modes=5)
      >>> s = learning_curve_study(ntk_air.data.clusters(), kernels.two_layer_relu_kernel_fn(), cfg)
      >>> s.predicted.test_mse.shape, s.measured.test_mse.shape
      ((2, 1), (2, 1, 3))

    Reference: Bordelon, Canatar & Pehlevan, arXiv 2002.02561; Canatar, Bordelon & Pehlevan,
    arXiv 2006.13198; Simon, Dickens, Karkada & DeWeese, arXiv 2110.03922.
    """
    x = dataset.x
    N = int(np.shape(x)[0])
    if not config.replace and max(config.n) > N:
        raise ValueError(
            f"n = {max(config.n)} exceeds the population's N = {N} points (draws of distinct "
            "points); give n ≤ N or draw with replacement (replace=True; --replace)"
        )
    y_clean = np.asarray(dataset.y_clean, np.float64)
    y_noisy = np.asarray(dataset.y, np.float64)
    noisy = config.labels == "noisy"
    if config.solver == "dense":
        K = kernel_fn(x).ntk
        eig = eigensystem(K)
        spectrum = learning_curves.population_spectrum(eig, y_clean)
        fixed_spectrum = learning_curves.population_spectrum(eig, y_noisy) if noisy else None
        kernel = learning_curves.dense_population_kernel(K)
        M = min(config.modes, N)
        modes = (spectrum.eigenvalues[:M], eig.eigenvectors[:, :M])
    else:
        require_tiled(kernel_fn)
        rank = min(config.rank, N)
        if config.tile_dtype == "float32":
            op = kernel_operator(kernel_fn.replace(dtype="float32"), x)
            op = with_float64_products(op) if jax.config.jax_enable_x64 else op
        else:
            op = kernel_operator(kernel_fn, x)
        top = topk_eigensystem(op, rank)
        trace = jnp.sum(kernel_diagonal(kernel_fn, x))
        spectrum = learning_curves.topk_population_spectrum(top, y_clean, trace)
        fixed_spectrum = (
            learning_curves.topk_population_spectrum(top, y_noisy, trace) if noisy else None
        )
        kernel = learning_curves.tiled_population_kernel(kernel_fn, x)
        M = min(config.modes, rank)
        modes = (top.eigenvalues[:M] / N, top.eigenvectors[:, :M])
    report_progress(progress, "population spectrum", 1, 3)
    sigma2 = float(np.sum((y_noisy - y_clean) ** 2) / N) if noisy else float(config.noise_variance)
    n = jnp.asarray(config.n, jnp.float64)[:, None]
    ridge = jnp.asarray(config.ridge, jnp.float64)[None, :]

    def predict(ps, noise, ridges=ridge):
        return learning_curves.learning_curve(
            ps.eigenvalues, ps.coefficients, n, ridges, noise, multiplicity=ps.multiplicity
        )

    predicted = predict(spectrum, sigma2)
    fixed = predict(fixed_spectrum, 0.0) if noisy else None
    spread = (
        learning_curves.tail_spread(spectrum, n, ridge, sigma2) if config.solver == "topk" else None
    )
    flow_pred = None
    if config.times:
        flow_pred = predict(spectrum, sigma2, 1.0 / jnp.asarray(config.times)[None, :])
    report_progress(progress, "prediction", 2, 3)
    measured = learning_curves.measured_learning_curve(
        kernel,
        y_noisy if noisy else y_clean,
        np.asarray(config.n),
        np.asarray(config.ridge),
        draws=config.draws,
        y_test=y_noisy if noisy else y_clean,
        noise_variance=0.0 if noisy else sigma2,
        seed=config.seed,
        modes=modes if M else None,
        times=config.times or None,
        replace=config.replace,
    )
    report_progress(progress, "measured curves", 3, 3)
    return LearningCurveStudy(
        data=data_summary(dataset),
        config=config,
        spectrum=spectrum,
        noise_variance=sigma2,
        predicted=predicted,
        measured=measured,
        spread=spread,
        fixed_labels=fixed,
        flow_predicted=flow_pred,
    )
