"""Figures of the noisy-label study: test accuracy against epoch, and last vs best epoch."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps

from . import _axes_or_new

__all__ = ["plot_test_accuracy", "plot_last_vs_best", "METHOD_COLORS"]

METHOD_COLORS = {
    "plain": "black",
    "r1": colormaps["tab10"](0),
    "r2": colormaps["tab10"](1),
    "r3-soft": colormaps["tab10"](2),
    "r3-hard": colormaps["tab10"](3),
    "early-stop-clean": colormaps["tab10"](4),
    "early-stop-noisy": colormaps["tab10"](5),
}


def plot_test_accuracy(curves, *, stops=None, kernel=None, ax=None, title="test accuracy"):
    """Test accuracy against epoch per method: mean over seeds with its 95 % band.

    Args:
      curves: {method: (mean (E + 1,), lo (E + 1,), hi (E + 1,))} for the trained methods.
      stops: {early-stopping method: (epoch, accuracy)} drawn as markers on plain's curve.
      kernel: {method: mean (E + 1,)} the kernel limit's curves (dashed), or None.
      ax: the Axes to draw on (None: a new figure).
      title: the panel title.
    """
    ax = _axes_or_new(ax, figsize=(6, 4))
    for method, (mean, lo, hi) in curves.items():
        epochs = np.arange(len(mean))
        color = METHOD_COLORS.get(method)
        ax.plot(epochs, mean, color=color, lw=1.5, label=method)
        ax.fill_between(epochs, lo, hi, color=color, alpha=0.15, lw=0)
        if kernel and method in kernel:
            ax.plot(epochs, kernel[method], color=color, lw=0.9, ls="--")
    for method, (epoch, acc) in (stops or {}).items():
        marker = "o" if method == "early-stop-clean" else "s"
        ax.plot([epoch], [acc], marker, color=METHOD_COLORS.get(method), ms=6, label=method)
    if kernel:
        ax.plot([], [], color="gray", lw=0.9, ls="--", label="kernel limit (dashed)")
    # Zoom on the trained part: the first epochs (from chance level) would squash the rest.
    settled = [np.asarray(lo)[len(lo) // 10 + 1 :] for _, lo, _ in curves.values()]
    settled = np.concatenate([a for a in settled if a.size] or [np.zeros(1)])
    if np.isfinite(settled).any():
        ax.set_ylim(max(0.0, float(np.nanmin(settled)) - 0.03), min(1.005, ax.get_ylim()[1]))
    ax.set(xlabel="epoch", ylabel="test accuracy (clean labels)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    return ax


def plot_last_vs_best(methods, last, best, *, ax=None, title="last vs best epoch"):
    """Bars: last-epoch test accuracy per method with its 95 % interval; best epoch as markers.

    Args:
      methods: method names.
      last: (mean, lo, hi) of (M,) arrays (early stopping's: the model it delivers).
      best: (mean, lo, hi) of (M,) arrays.
      ax: the Axes (None: new).
      title: the title.
    """
    ax = _axes_or_new(ax, figsize=(max(5, 0.8 * len(methods) + 2), 4))
    idx = np.arange(len(methods))
    mean, lo, hi = (np.asarray(a, float) for a in last)
    colors = [METHOD_COLORS.get(m, "gray") for m in methods]
    ax.bar(idx, mean, color=colors, alpha=0.8, yerr=[mean - lo, hi - mean], capsize=3)
    bmean, blo, bhi = (np.asarray(a, float) for a in best)
    ax.errorbar(idx + 0.3, bmean, yerr=[bmean - blo, bhi - bmean], fmt="k_", ms=10, lw=1)
    ax.plot([], [], "k_", ms=10, label="best epoch (on the test curve)")
    ax.set_xticks(idx)
    ax.set_xticklabels(methods, rotation=40, ha="right", fontsize=8)
    floor = float(np.nanmin(np.concatenate([lo, blo])))
    ax.set_ylim(
        max(0.0, floor - 0.05), min(1.0, float(np.nanmax(np.concatenate([hi, bhi]))) + 0.03)
    )
    ax.set_ylabel("test accuracy (bars: last epoch)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, axis="y", alpha=0.3)
    return ax
