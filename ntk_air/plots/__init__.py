"""Figures, one module per study: every plot function draws on a given Axes.

`plot_x(result, ax=None, ...) -> Axes` (two-panel figures: `axes=None` → the pair) draws a study's
result pytree; without `ax` it makes a `matplotlib.figure.Figure` of its own (never through
pyplot's global state, so a report never changes the backend of a running Jupyter session).
Notebooks pass their own axes; `ntk_air.report` saves the figures.
"""

from __future__ import annotations

from matplotlib import colormaps
from matplotlib.figure import Figure

__all__ = ["new_figure", "axes_or_new", "colormaps"]


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize=(6, 4)):
    """(fig, axes) without touching pyplot; axes as `Figure.subplots` returns them."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols)


def axes_or_new(ax, nrows: int = 1, ncols: int = 1, *, figsize=(6, 4)):
    """The given Axes (or array of Axes), or new ones on a fresh Figure."""
    if ax is not None:
        return ax
    return new_figure(nrows, ncols, figsize=figsize)[1]
