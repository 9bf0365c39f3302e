"""Figures of the kernel during training (`studies.EntkStudy`): spectra, label energies, motion.
Checkpoints go from dark (step 0) to light; the infinite-width kernel is dashed black.
"""

from __future__ import annotations

import numpy as np

from . import _KIND_COLORS, _against_steps, _axes_or_new, _label_axes, _viridis

__all__ = [
    "plot_entk_spectra",
    "plot_entk_label_energy",
    "plot_entk_motion",
    "plot_entk_training",
]

_STEP = "training step t"
_LIMIT_LABEL = "Θ_∞ (infinite width)"  # its full name is in entk.json and index.md


def plot_entk_spectra(study, *, ax=None, title: str = "eNTK spectrum during training"):
    """Eigenvalues λ_i(Θ_t) against the mode index i, one line per checkpoint (log y).

    Args:
      study: `studies.EntkStudy`.
      ax: the Axes to draw on (None: a new figure).
      title: the Axes' title.
    """
    ax = _axes_or_new(ax, figsize=(6, 4.5))
    steps = np.asarray(study.steps)
    lam = np.asarray(study.eigenvalues, dtype=np.float64)
    for t, color, row in zip(steps, _viridis(len(steps)), lam, strict=True):
        pos = row > 0
        ax.loglog(np.arange(1, row.size + 1)[pos], row[pos], "-", color=color, label=f"t = {t}")
    if study.limit is not None:
        ref = np.asarray(study.limit.eigenvalues, dtype=np.float64)
        pos = ref > 0
        ax.loglog(np.arange(1, ref.size + 1)[pos], ref[pos], "--", color="k", label=_LIMIT_LABEL)
    return _label_axes(
        ax,
        xlabel="mode i (descending eigenvalue)",
        ylabel="eigenvalue λ_i(Θ_t)",
        title=title,
        legend=7,
        ncol=2,
        loc="lower left",
    )


def plot_entk_label_energy(study, *, axes=None, title: str = "label energy per eNTK mode"):
    """Cumulative energy C_z(k) of the clean labels (left) and the noise (right) in the top k
    modes of Θ_t, one line per checkpoint (log x); the uniform k/n dotted.

    Args:
      study: `studies.EntkStudy`.
      axes: a pair of Axes to draw on (None: a new figure).
      title: the figure's title.
    """
    ax0, ax1 = _axes_or_new(axes, 1, 2, figsize=(11, 4.2))
    steps = np.asarray(study.steps)
    colors = _viridis(len(steps))
    panels = (
        (ax0, "clean", "clean labels ŷ", "lower right"),
        (ax1, "noise", "noise e = y − ŷ", "upper left"),
    )
    for ax, kind, label, corner in panels:
        cum = np.asarray(getattr(study.spectra, kind).cumulative, dtype=np.float64)
        n = cum.shape[1]
        k = np.arange(1, n + 1)
        if np.isfinite(cum).all():
            for t, color, row in zip(steps, colors, cum, strict=True):
                ax.semilogx(k, row, "-", color=color, label=f"t = {t}")
            if study.limit is not None:
                ref = np.asarray(getattr(study.limit.spectra, kind).cumulative)
                ax.semilogx(k, ref, "--", color="k", label=_LIMIT_LABEL)
        else:  # no noise at all: nothing to draw
            ax.text(0.5, 0.5, f"no {kind}", ha="center", va="center", transform=ax.transAxes)
        ax.semilogx(k, k / n, ":", color="gray", label="uniform k/n")
        ax.set_ylim(0, 1.02)
        _label_axes(
            ax,
            xlabel="number of top eNTK modes k",
            ylabel=f"cumulative energy C(k) of the {label}",
            title=label,
            legend=7,
            ncol=2,
            loc=corner,
        )
    ax0.figure.suptitle(title)
    return ax0, ax1


def plot_entk_motion(study, *, axes=None, title: str = "how far the kernel moves"):
    """Left: the kernel distance ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F (train, train × test) and the distance
    to the infinite-width kernel; right: the kernel–target alignment of ŷ, e and y (symlog x).

    Args:
      study: `studies.EntkStudy`.
      axes: a pair of Axes to draw on (None: a new figure).
      title: the figure's title.
    """
    ax0, ax1 = _axes_or_new(axes, 1, 2, figsize=(11, 4.2))
    steps = np.asarray(study.steps, dtype=np.float64)
    ax0.plot(steps, study.kernel_distance, "o-", ms=3, label="‖Θ_t − Θ_0‖ / ‖Θ_0‖ (train)")
    if study.kernel_distance_test is not None:
        ax0.plot(steps, study.kernel_distance_test, "s--", ms=3, label="same on test × train")
    if study.limit is not None:
        ax0.plot(steps, study.limit.distance, "^-", ms=3, color="k", label="‖Θ_t − Θ_∞‖ / ‖Θ_∞‖")
    _against_steps(ax0, _STEP, "relative Frobenius distance", "kernel distance", steps)
    for kind, label in (("clean", "ŷ"), ("noise", "e"), ("noisy", "y")):
        a = np.asarray(getattr(study.alignment, kind), dtype=np.float64)
        if not np.isfinite(a).all():
            continue
        ax1.plot(steps, a, "o-", ms=3, color=_KIND_COLORS[kind], label=f"A(Θ_t, {label})")
        if study.limit is not None:
            ax1.axhline(
                float(getattr(study.limit.alignment, kind)),
                ls="--",
                lw=1,
                color=_KIND_COLORS[kind],
                label=f"A(Θ_∞, {label})",
            )
    _against_steps(ax1, _STEP, "alignment ⟨Θ, zzᵀ⟩ / (‖Θ‖ ‖zzᵀ‖)", "kernel–target alignment", steps)
    ax0.figure.suptitle(title)
    return ax0, ax1


def plot_entk_training(study, *, axes=None, title: str = "the network's fit"):
    """Left: ‖u(t) − ŷ‖ on train (and test); right: accuracy against ŷ, y and ŷ_test.

    Args:
      study: `studies.EntkStudy`.
      axes: a pair of Axes to draw on (None: a new figure).
      title: the figure's title.
    """
    ax0, ax1 = _axes_or_new(axes, 1, 2, figsize=(11, 4.2))
    steps = np.asarray(study.steps, dtype=np.float64)
    c = study.curves
    ax0.plot(steps, c.dist_clean, "o-", ms=3, color="tab:blue", label="train ‖u(t) − ŷ‖")
    if np.isfinite(np.asarray(c.dist_test)).all():
        ax0.plot(steps, c.dist_test, "s-", ms=3, color="tab:orange", label="test ‖f_t − ŷ_test‖")
    _against_steps(ax0, _STEP, "ℓ2 distance to clean labels", "distance to the ground truth", steps)
    ax1.plot(steps, c.accuracy_clean, "o-", ms=3, color="tab:blue", label="train vs ŷ")
    ax1.plot(steps, c.accuracy_noisy, "o-", ms=3, color="tab:gray", label="train vs y (given)")
    if np.isfinite(np.asarray(c.accuracy_test)).all():
        ax1.plot(steps, c.accuracy_test, "s-", ms=3, color="tab:orange", label="test vs ŷ_test")
    ax1.set_ylim(-0.02, 1.02)
    _against_steps(ax1, _STEP, "0-1 accuracy", "accuracy", steps)
    ax0.figure.suptitle(title)
    return ax0, ax1
