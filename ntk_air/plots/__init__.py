"""Figures, one module per study: every plot function draws on a given Axes.

`plot_x(result, ax=None, ...) -> Axes` (two-panel figures: `axes=None` → the pair) draws a study's
result pytree; without `ax` it makes a `matplotlib.figure.Figure` of its own (never through
pyplot's global state, so a report never changes the backend of a running Jupyter session).
Notebooks pass their own axes; `ntk_air.report` saves the figures.
"""

from __future__ import annotations

from .._env import check_plotting

check_plotting()  # a MPLBACKEND that matplotlib rejects: one sentence, not its traceback

from matplotlib import colormaps  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["new_figure", "axes_or_new", "label_axes", "colormaps"]


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize=(6, 4)):
    """(fig, axes) without touching pyplot; axes as `Figure.subplots` returns them."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols)


def axes_or_new(ax, nrows: int = 1, ncols: int = 1, *, figsize=(6, 4)):
    """The given Axes (or array of Axes), or new ones on a fresh Figure."""
    if ax is not None:
        return ax
    return new_figure(nrows, ncols, figsize=figsize)[1]


def label_axes(
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
