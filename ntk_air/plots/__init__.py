"""Figures, one module per study: every plot function draws on a given Axes.

`plot_x(result, ax=None, ...) -> Axes` (two-panel figures: `axes=None` → the pair) draws a study's
result pytree; without `ax` it makes a `matplotlib.figure.Figure` of its own (never through
pyplot's global state, so a report never changes the backend of a running Jupyter session).
Notebooks pass their own axes; `ntk_air.report` saves the figures.
"""

from __future__ import annotations

from .._env import check_plotting

check_plotting()  # a MPLBACKEND that matplotlib rejects: one sentence, not its traceback

import numpy as np  # noqa: E402
from matplotlib import colormaps  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["new_figure"]

_KIND_COLORS = {"clean": "tab:blue", "noise": "tab:red", "noisy": "tab:gray"}


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize=(6, 4)):
    """(fig, axes) without touching pyplot; axes as `Figure.subplots` returns them."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols)


def _axes_or_new(ax, nrows: int = 1, ncols: int = 1, *, figsize=(6, 4)):
    """The given Axes (or array of Axes), or new ones on a fresh Figure."""
    if ax is not None:
        return ax
    return new_figure(nrows, ncols, figsize=figsize)[1]


def _label_axes(
    ax,
    *,
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    xscale=None,
    yscale=None,
    legend: float | None = 8,
    **legend_kwargs,
):
    """Labels, title, scales, a light grid and a legend of font size `legend` (None: no legend),
    the same way on every figure. A scale is a name ("log") or (name, base), e.g. ("log", 2)."""
    for set_scale, scale in ((ax.set_xscale, xscale), (ax.set_yscale, yscale)):
        if isinstance(scale, tuple):
            set_scale(scale[0], base=scale[1])
        elif scale is not None:
            set_scale(scale)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title is not None:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if legend is not None:
        ax.legend(fontsize=legend, **legend_kwargs)
    return ax


def _viridis(n: int):
    """n colors from dark to light (viridis 0 to 0.9)."""
    return colormaps["viridis"](np.linspace(0.0, 0.9, n))


def _against_steps(ax, xlabel: str, ylabel: str, title: str, steps=None):
    """Symlog step axis (step 0 shown; up to 1.1 × the last of `steps` when given), labels."""
    ax.set_xscale("symlog", linthresh=1.0)
    if steps is not None:
        ax.set_xlim(0, max(float(np.max(steps)), 1.0) * 1.1)
    return _label_axes(ax, xlabel=xlabel, ylabel=ylabel, title=title)
