"""Figures of self-distillation runs."""

from __future__ import annotations

import numpy as np

from . import _axes_or_new, _label_axes

__all__ = ["plot_distill_curves", "plot_distill_summary"]


def plot_distill_curves(
    runs, noise_norm, best_early_stop, *, ax=None, title="self-distillation", xlabel="step k + 1"
):
    """‖u(k) − ŷ‖₂ against k for each run; runs = [(label, steps (r,), dist (r,)), ...]."""
    ax = _axes_or_new(ax, figsize=(8, 5))
    for label, steps, dist in runs:
        ax.plot(np.asarray(steps) + 1, np.asarray(dist), label=label, lw=1.4)
    ax.axhline(noise_norm, color="k", ls=":", lw=1, label="‖e‖ = ‖y − ŷ‖ (memorized noise)")
    ax.axhline(best_early_stop, color="gray", ls="--", lw=1, label="best early stop (plain GD)")
    ax.set_xscale("log")
    _label_axes(ax, xlabel=xlabel, ylabel="‖u(k) − ŷ‖₂ (train)", title=title, legend=7, ncol=2)
    return ax


def plot_distill_summary(
    labels,
    final,
    best,
    best_early_stop,
    noise_norm,
    *,
    ax=None,
    title="final and best ℓ2 distance per rule",
):
    """Bars: final and best ‖u − ŷ‖₂ per rule (log scale, floored at 1e-6), with the best early
    stop of plain GD as a line."""
    ax = _axes_or_new(ax, figsize=(max(6, 0.6 * len(labels) + 2), 5))
    idx = np.arange(len(labels))
    final, best = np.maximum(final, 1e-6), np.maximum(best, 1e-6)
    ax.bar(idx - 0.2, final, width=0.4, label="final")
    ax.bar(idx + 0.2, best, width=0.4, label="best over recorded steps")
    values = np.concatenate([final, best, [best_early_stop, noise_norm]])
    # Room below the smallest bar (so it shows) and above the largest (for the legend).
    ax.set_ylim(values.min() / 3, values.max() * 10)
    ax.axhline(best_early_stop, color="gray", ls="--", lw=1, label="best early stop (plain GD)")
    ax.axhline(noise_norm, color="k", ls=":", lw=1, label="‖e‖")
    ax.set_xticks(idx)
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set(yscale="log", ylabel="‖u − ŷ‖₂ (train, floored at 1e-6)", title=title)
    ax.legend(fontsize=8, ncol=4, loc="upper center")
    ax.grid(True, axis="y", alpha=0.3)
    return ax
