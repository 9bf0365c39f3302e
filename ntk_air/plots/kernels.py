"""Figures of a kernel matrix and its eigenvalue spectrum."""

from __future__ import annotations

import numpy as np

from . import _axes_or_new
from .air import plot_eigenvalues

__all__ = ["plot_kernel_and_spectrum"]


def plot_kernel_and_spectrum(K, eigenvalues, *, axes=None, title: str = "kernel"):
    """Heat map of K (n×n) beside its eigenvalues λ_1 ≥ … ≥ λ_n on a log scale."""
    ax0, ax1 = _axes_or_new(axes, 1, 2, figsize=(10, 4))
    im = ax0.imshow(np.asarray(K), cmap="viridis")
    ax0.figure.colorbar(im, ax=ax0, shrink=0.8)
    ax0.set(title=f"{title}: K(x_i, x_j)", xlabel="j", ylabel="i")
    plot_eigenvalues(eigenvalues, ax=ax1, title="spectrum")
    return ax0, ax1
