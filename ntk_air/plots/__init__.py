"""Figures as PNG files, one module per study.

Figures are drawn on `matplotlib.figure.Figure` objects, never through pyplot's global state,
so writing a report never changes the backend of a running Jupyter session.
"""

from __future__ import annotations

from matplotlib import colormaps
from matplotlib.figure import Figure

__all__ = ["new_figure", "save_figure", "colormaps"]


def new_figure(nrows: int = 1, ncols: int = 1, *, figsize=(6, 4)):
    """(fig, axes) without touching pyplot; axes as `Figure.subplots` returns them."""
    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols)


def save_figure(fig, path) -> str:
    """Tight layout, 110 dpi PNG at `path`; returns the path as a string."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return str(path)
