"""Figures of predicted against measured learning curves (a `studies.LearningCurveStudy`)."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps

from ..studies._noisy_results import t_half_width
from . import _axes_or_new, _label_axes

__all__ = ["plot_test_error", "plot_learnability", "plot_error_parts"]


def plot_test_error(study, *, ax=None, title: str = "test error against n"):
    """Test MSE against n for each ridge: predicted line, measured mean ± 95 % interval
    (points with error bars), the held-out error dotted (log-log)."""
    ax = _axes_or_new(ax, figsize=(6.5, 4.8))
    n = np.asarray(study.measured.n, np.float64)
    ridges = np.asarray(study.measured.ridge)
    colors = colormaps["viridis"](np.linspace(0, 0.85, len(ridges)))
    pred = np.asarray(study.predicted.test_mse)
    for j, (r, c) in enumerate(zip(ridges, colors, strict=True)):
        ax.loglog(n, pred[:, j], "-", color=c, label=f"predicted, δ = {r:g}")
        mean, half = t_half_width(study.measured.test_mse[:, j])
        ax.errorbar(
            n,
            mean,
            yerr=half,
            fmt="o",
            color=c,
            ms=4,
            capsize=3,
            label=f"measured (95 % interval), δ = {r:g}",
        )
        held, _ = t_half_width(study.measured.heldout_mse[:, j])
        ax.loglog(n, held, ":", color=c, alpha=0.7, label=f"held-out points, δ = {r:g}")
        if study.spread is not None:
            ax.fill_between(
                n,
                np.asarray(study.spread.low)[:, j],
                np.asarray(study.spread.high)[:, j],
                color=c,
                alpha=0.15,
            )
    if study.fixed_labels is not None:
        ax.loglog(
            n,
            np.asarray(study.fixed_labels.test_mse)[:, 0],
            "--",
            color="k",
            label="predicted, noisy labels as the target",
        )
    _label_axes(
        ax, xlabel="training points n", ylabel="test MSE on the population", title=title, legend=7
    )
    return ax


def plot_learnability(
    study, *, ax=None, ridge_index: int = 0, title: str = "learnability per mode"
):
    """L_i = λ_i/(λ_i + κ) per mode for each n (lines, all modes) and the measured
    ⟨f̂[φ_i], φ_i⟩ of the top modes (points with 95 % intervals), at one ridge."""
    ax = _axes_or_new(ax, figsize=(6.5, 4.8))
    n = np.asarray(study.measured.n)
    colors = colormaps["plasma"](np.linspace(0, 0.85, len(n)))
    learn = np.asarray(study.predicted.learnability)[:, ridge_index]  # (P, m)
    tail = int(study.spectrum.tail_modes)
    m = learn.shape[1] - (1 if tail else 0)
    modes = np.arange(1, m + 1)
    measured = np.asarray(study.measured.learnability)[:, ridge_index]  # (P, D, M)
    for p, c in enumerate(colors):
        ax.semilogx(modes, learn[p, :m], "-", color=c, label=f"n = {n[p]}")
        if measured.shape[-1]:
            mean, half = t_half_width(np.moveaxis(measured[p], 0, -1))
            k = np.arange(1, mean.size + 1)
            ax.errorbar(k, mean, yerr=half, fmt="o", color=c, ms=3, capsize=2)
    ax.set_ylim(-0.05, 1.05)
    _label_axes(
        ax,
        xlabel="mode i (descending eigenvalue)",
        ylabel="learnability L_i",
        title=f"{title} (δ = {float(study.measured.ridge[ridge_index]):g}; points: measured)",
        legend=7,
    )
    return ax


def plot_error_parts(study, *, ax=None, ridge_index: int = 0, title: str = "parts of the error"):
    """The predicted test MSE split into the clean-label part E₀ Σ (1 − L_i)² v_i² and the noise
    part E₀σ² (σ² of the test labels plus (E₀ − 1)σ² of fitted training noise), against n."""
    ax = _axes_or_new(ax, figsize=(6.5, 4.8))
    n = np.asarray(study.measured.n, np.float64)
    pred = study.predicted
    clean = np.asarray(pred.clean_part)[:, ridge_index]
    noise = np.asarray(pred.noise_part)[:, ridge_index]
    ax.loglog(n, clean, "-", color="tab:blue", label="clean-label part E₀ Σ (1 − L_i)² v_i²")
    if np.any(noise > 0):
        ax.loglog(n, noise, "-", color="tab:red", label="noise part E₀ σ²")
    ax.loglog(n, np.asarray(pred.test_mse)[:, ridge_index], "--", color="k", label="total")
    mean, half = t_half_width(study.measured.test_mse[:, ridge_index])
    ax.errorbar(n, mean, yerr=half, fmt="o", color="k", ms=4, capsize=3, label="measured total")
    _label_axes(
        ax,
        xlabel="training points n",
        ylabel="test MSE",
        title=f"{title} (δ = {float(study.measured.ridge[ridge_index]):g})",
        legend=7,
    )
    return ax
