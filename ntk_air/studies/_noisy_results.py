"""The noisy-label study's results and their summaries: per-epoch curves of each method over
seeds, means with 95 % Student-t intervals, early stopping's selection, paired verdicts.

Every number is a mean over seeds with a 95 % Student-t interval, mean ± t_{0.975, S−1}·sd/√S.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._noisy_config import EARLY_STOPPING, METHODS, SELF_DISTILLATION


class Curves(NamedTuple):
    """Per-epoch observables of the trained methods: (M methods, S seeds, E + 1 epochs)."""

    test_acc: np.ndarray  # (M, S, E + 1) clean test accuracy
    val_acc_clean: np.ndarray  # (M, S, E + 1) accuracy on the validation inputs, clean labels
    val_acc_noisy: np.ndarray  # (M, S, E + 1) same inputs, labels corrupted by the noise model
    train_acc_noisy: np.ndarray  # (M, S, E + 1) training accuracy against the given labels
    train_acc_clean: np.ndarray  # (M, S, E + 1) training accuracy against the ground truth
    dist_clean: np.ndarray  # (M, S, E + 1) ‖u − ŷ‖_F/√n (u: outputs, or probabilities for xent)
    flipped_fit: np.ndarray  # (M, S, E + 1) fraction of flipped rows predicted as their given label


class SettingResult(NamedTuple):
    """One data set under one noise setting: the network's curves and the kernel limit's."""

    dataset: str
    noise: str  # 'none', 'flip' or 'pair'
    rate: float
    methods: tuple  # the trained methods, in the order of the M axis
    network: Curves
    kernel: Curves | None  # the infinite-width companion (None when it does not apply)
    n_corrupted: np.ndarray  # (S,) corrupted training rows per seed
    n_corrupted_val: np.ndarray  # (S,) corrupted validation rows per seed


class NoisyLabelsStudy(NamedTuple):
    """The whole sweep."""

    config: dict
    data: tuple  # per data set: the split's info
    network: str  # the network, in words
    lr: dict  # data set name → the learning rate its network was trained with
    kernel_limit: dict  # how the companion was run, or why not
    settings: tuple  # (SettingResult, …) data set by data set, settings in run order
    warmup_epochs: int = 0  # W: the rules act from epoch W (`warmup_epochs`)


# t_{0.975, ν} for ν = 1..30 (Student's t, two-sided 95 %); larger ν by the Cornish–Fisher series.
_T975 = (
    12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281,
    2.2010, 2.1788, 2.1604, 2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860,
    2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518, 2.0484, 2.0452, 2.0423,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """t_{0.975, df}: the 97.5 % quantile of Student's t with df degrees of freedom."""
    if df < 1:
        raise ValueError(f"a t-interval needs ≥ 1 degree of freedom, got {df}")
    if df <= 30:
        return _T975[df - 1]
    z = 1.959963984540054
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def t_half_width(values, axis: int = -1):
    """(mean, half-width) over `axis`: t_{0.975, S−1}·sd/√S (sd with S − 1); one sample has no
    interval (half-width NaN)."""
    v = np.moveaxis(np.asarray(values, np.float64), axis, -1)
    s, mean = v.shape[-1], v.mean(-1)
    if s < 2:
        return mean, np.full_like(mean, np.nan)
    return mean, t_quantile_975(s - 1) * v.std(-1, ddof=1) / math.sqrt(s)


def t_interval(values) -> dict:
    """{mean, lo, hi}: the mean over seeds ± `t_half_width` (one seed: lo, hi NaN)."""
    mean, half = map(float, t_half_width(values, axis=0))
    return {"mean": mean, "lo": mean - half, "hi": mean + half}


class MethodSummary(NamedTuple):
    """One row of the results: a method in one setting, its per-seed numbers and curves."""

    method: str
    last_test_acc: np.ndarray  # (S,) test accuracy of the model the method delivers
    best_test_acc: np.ndarray  # (S,) best test accuracy along its run (early stopping: = last)
    best_epoch: int  # argmax of the mean test curve (early stopping: median selected epoch)
    selected_epochs: np.ndarray | None  # (S,) early stopping's chosen epochs (None otherwise)
    curves: Curves  # (S, E + 1) per-epoch observables of the run it uses (ES: plain's run)


def summarize_setting(
    setting: SettingResult, methods, *, kernel: bool = False
) -> list[MethodSummary]:
    """Rows for `methods` (in `METHODS` order) from the network's (or the kernel limit's) curves."""
    curves = setting.kernel if kernel else setting.network
    if curves is None:
        return []
    index = {m: i for i, m in enumerate(setting.methods)}
    rows = []
    for method in (m for m in METHODS if m in methods):
        run = Curves(*(a[index["plain" if method in EARLY_STOPPING else method]] for a in curves))
        if method in EARLY_STOPPING:
            val = run.val_acc_clean if method == "early-stop-clean" else run.val_acc_noisy
            chosen = np.argmax(val, axis=-1)  # per seed, the first epoch of best validation
            acc = np.take_along_axis(run.test_acc, chosen[:, None], 1)[:, 0]
            rows.append(MethodSummary(method, acc, acc, int(np.median(chosen)), chosen, run))
        else:
            last, best = run.test_acc[:, -1], run.test_acc.max(1)
            best_epoch = int(np.argmax(run.test_acc.mean(0)))
            rows.append(MethodSummary(method, last, best, best_epoch, None, run))
    return rows


class Comparison(NamedTuple):
    """A self-distillation method's last epoch against an early-stopping method, paired by seed."""

    sd_method: str
    es_method: str
    difference: dict  # {mean, lo, hi} of (SD last − ES) test accuracy over seeds
    verdict: str  # 'better', 'tie' (interval contains 0), 'worse' or 'one seed' (no interval)


def _verdict(diff: dict) -> str:
    if not (math.isfinite(diff["lo"]) and math.isfinite(diff["hi"])):
        return "one seed"  # no interval: nothing to conclude
    if diff["lo"] > 0:
        return "better"
    if diff["hi"] < 0:
        return "worse"
    return "tie"


def compare_setting(rows: list[MethodSummary]) -> list[Comparison]:
    """Every (SD method, ES method) pair present: paired differences with their t-intervals."""
    by = {r.method: r for r in rows}
    out = []
    for sd in SELF_DISTILLATION:
        for es in EARLY_STOPPING:
            if sd in by and es in by:
                diff = t_interval(by[sd].last_test_acc - by[es].best_test_acc)
                out.append(Comparison(sd, es, diff, _verdict(diff)))
    return out
