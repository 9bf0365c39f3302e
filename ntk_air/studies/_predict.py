"""The predict study: the infinite ensemble's mean, variance and error at chosen training times.

`ntk_air.predict.gradient_descent_mse_ensemble` on a data set's train/test split (neural-tangents'
conventions: time t in units of the learning rate, loss ½‖f − y‖²/y.size, t = ∞ the end of
training), for each requested kernel ("nngp", "ntk"); the per-point variance is the diagonal of
the test covariance, and the error is the mean squared error against the test (and train) labels.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import NamedTuple

import numpy as np

from .. import predict as P
from .._checks import check_bool, check_choice, check_real, check_sequence
from ..spectral import DEFAULT_RATES, Budget, LoopEstimate, SolverChoice, check_loop, plan_solver
from ._system import data_summary, report_progress, sizes


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """Settings of the predict study (checked on construction, one sentence naming the bad one).

    >>> PredictConfig(times=(-1.0,))
    Traceback (most recent call last):
    ...
    ValueError: times must be ≥ 0 (inf for the end of training), got [-1.0]
    """

    times: tuple[float, ...] = (np.inf,)  # training times t ≥ 0 (inf = end of training)
    get: tuple[str, ...] = ("nngp", "ntk")
    compute_cov: bool = True  # also the posterior variance on test (and train) points
    diag_reg: float = 0.0
    diag_reg_absolute_scale: bool = False
    learning_rate: float = 1.0

    def __post_init__(self):
        _check_times(self.times)
        for g in check_sequence("get", self.get):
            check_choice("get", g, ("nngp", "ntk"))
        check_bool("compute_cov", self.compute_cov)
        check_real("diag_reg", self.diag_reg, minimum=0)
        check_bool("diag_reg_absolute_scale", self.diag_reg_absolute_scale)
        check_real("learning_rate", self.learning_rate, minimum=0, open_min=True)


class PredictStudy(NamedTuple):
    """Predictions per kernel at T times (dicts keyed by kernel name "nngp"/"ntk")."""

    data: dict
    times: np.ndarray  # (T,) training times (inf = end of training)
    get: tuple[str, ...]
    test_mean: dict  # g → (T, m[, k]) mean on the test inputs
    test_variance: dict  # g → (T, m) variance of each test output (None without compute_cov)
    train_mean: dict  # g → (T, n[, k]) mean on the training inputs
    test_mse: dict  # g → (T,) mean squared error against the test labels (NaN: no test set)
    train_mse: dict  # g → (T,) mean squared error against the training targets
    condition_number: dict  # g → κ(K_g + δI)
    diag_reg_absolute: dict  # g → δ added to the diagonal


def _check_times(times) -> np.ndarray:
    t = np.asarray(times, dtype=np.float64).reshape(-1)
    if t.size == 0:
        raise ValueError("times must name at least one training time")
    if np.isnan(t).any() or (t < 0).any():
        raise ValueError(f"times must be ≥ 0 (inf for the end of training), got {t.tolist()}")
    return t


def predict_plan(
    dataset, config: PredictConfig | None = None, budget: Budget | None = None
) -> tuple[SolverChoice, LoopEstimate]:
    """Memory and time of `predict` for this data set, decided (or refused) before any work.

    Each of the G kernels is decomposed densely; each of the T times costs 2(n + m)·n·C
    multiply-adds and, with the covariance, n³ + m²n more and (n² + m²) numbers held.

    Args:
      dataset: `data.Dataset` (only the shapes of its arrays are read).
      config: `PredictConfig`.
      budget: `resources.Budget` (memory, time limit, force).

    Returns:
      (SolverChoice, LoopEstimate).

    Raises:
      resources.ResourceError: K does not fit the memory budget, or the T times do not fit it
        or the time limit (unless budget.force).

    Example:
      >>> choice, loops = predict_plan(ntk_air.data.clusters(), PredictConfig(times=(1.0, 10.0)))
      >>> choice.solver, loops.seconds < 60
      ('dense', True)
    """
    config = PredictConfig() if config is None else config
    budget = Budget() if budget is None else budget
    times = _check_times(config.times)
    n, m, cols = sizes(dataset)
    kernels = max(1, len(tuple(config.get)))
    choice = plan_solver(
        n,
        budget=budget._replace(solver="dense" if budget.solver == "topk" else budget.solver),
        n_test=m,
        solvers=("dense",),
        what="predict",
    )
    T, flop = int(times.size), DEFAULT_RATES["flop_seconds"]
    per_time = 2.0 * (n + m) * n * cols
    held = (n + m) * (cols + 1)
    if config.compute_cov:
        per_time += float(n) ** 3 + float(m) ** 2 * n + float(m) * n * n
        held += n * n + m * m
    seconds = kernels * (choice.seconds + T * per_time * flop)
    memory = 8 * T * held * kernels
    loops = LoopEstimate(
        f"predict: {n} training and {m} test points, {T} times × {kernels} kernels",
        seconds,
        int(memory),
        {"spectral_seconds": kernels * choice.seconds},
    )
    check_loop(
        loops,
        budget,
        remedy=(
            "Use fewer --time values or a smaller --n-train (or no --cov), or --force to run it "
            "anyway",
            "Use fewer --time values or a smaller --n-train (or no --cov)",
        ),
    )
    return choice, loops


def predict(
    dataset, kernel_fn, config: PredictConfig | None = None, *, progress=None
) -> PredictStudy:
    """Mean, variance and error of the infinite ensemble at `config.times` (no files, no output).

    Args:
      dataset: a `data.Dataset` (x, y targets, x_test, y_test_clean); regression or class labels.
      kernel_fn: an ntk_air `KernelFn` with nngp and ntk.
      config: `PredictConfig` (None: the defaults).
      progress: optional callback progress(stage, done, total).

    Returns:
      PredictStudy.

    Example:
      >>> x = np.linspace(-2, 2, 16)[:, None]
      >>> ds = ntk_air.data.Dataset(x, np.sin(x[:, 0]), np.sin(x[:, 0]), x[::3] + 0.1,
      ...                           np.sin(x[::3, 0] + 0.1), "sine", {})
      >>> study = predict(ds, ntk_air.kernels.fc_kernel_fn(2, "relu", 1.5, 0.1),
      ...                       PredictConfig(times=(10.0, np.inf), diag_reg=1e-4))
      >>> study.test_mean["ntk"].shape, bool(study.test_mse["ntk"][-1] < study.test_mse["ntk"][0])
      ((2, 6), True)
    """
    config = PredictConfig() if config is None else config
    times = _check_times(config.times)
    get = P._mse.canonical_get(tuple(config.get))[1]
    y = np.asarray(dataset.y, np.float64)
    y_test = np.asarray(dataset.y_test_clean, np.float64)
    has_test = dataset.x_test.shape[0] > 0
    ens = P.gradient_descent_mse_ensemble(
        kernel_fn,
        dataset.x,
        y,
        config.learning_rate,
        config.diag_reg,
        config.diag_reg_absolute_scale,
    )
    finite = np.isfinite(times)

    def at_times(x_test, g):
        """(T, m[, k]) means and (T, m) variances (None without the covariance) at `times`."""
        rows = y.shape[0] if x_test is None else x_test.shape[0]
        mean, var = np.zeros((times.size, rows) + y.shape[1:]), np.zeros((times.size, rows))
        for mask, t in ((finite, times[finite]), (~finite, None)):
            if mask.any():  # t = None (infinite time) broadcasts over its rows of `times`
                res = ens(t, x_test, g, compute_cov=config.compute_cov)
                mean[mask] = np.asarray(res.mean if config.compute_cov else res)
                if config.compute_cov:
                    var[mask] = np.diagonal(np.asarray(res.covariance), axis1=-2, axis2=-1)
        return mean, (var if config.compute_cov else None)

    out = {k: {} for k in ("test_mean", "test_variance", "train_mean", "test_mse", "train_mse")}
    total = len(get) * (2 if has_test else 1)
    done = itertools.count(1)
    for g in get:
        out["train_mean"][g] = at_times(None, g)[0]
        out["train_mse"][g] = _mse(out["train_mean"][g], y)
        report_progress(progress, "predict", next(done), total)
        if has_test:
            out["test_mean"][g], out["test_variance"][g] = at_times(dataset.x_test, g)
            out["test_mse"][g] = _mse(out["test_mean"][g], y_test)
            report_progress(progress, "predict", next(done), total)
        else:
            out["test_mean"][g] = out["test_variance"][g] = None
            out["test_mse"][g] = np.full(times.size, np.nan)
    diags = {g: ens.diagnostics(g) for g in get}
    return PredictStudy(
        data=data_summary(dataset),
        times=times,
        get=get,
        condition_number={g: float(d.condition_number) for g, d in diags.items()},
        diag_reg_absolute={g: float(d.diag_reg_absolute) for g, d in diags.items()},
        **out,
    )


def _mse(pred, target) -> np.ndarray:
    """(T,) mean over points and outputs of (pred − target)²."""
    axes = tuple(range(1, pred.ndim))
    return np.mean((pred - target[None]) ** 2, axis=axes)
