"""Figures of a kernel matrix and its eigenvalue spectrum."""

from __future__ import annotations

import numpy as np

from . import axes_or_new

__all__ = ["plot_kernel_and_spectrum"]


def plot_kernel_and_spectrum(K, eigenvalues, *, axes=None, title: str = "kernel"):
    """Heat map of K (n×n) beside its eigenvalues λ_1 ≥ … ≥ λ_n on a log scale; writes a PNG."""
    K = np.asarray(K)
    lam = np.asarray(eigenvalues)
    ax0, ax1 = axes_or_new(axes, 1, 2, figsize=(10, 4))
    fig = ax0.figure
    im = ax0.imshow(K, cmap="viridis")
    fig.colorbar(im, ax=ax0, shrink=0.8)
    ax0.set_title(f"{title}: K(x_i, x_j)")
    ax0.set_xlabel("j")
    ax0.set_ylabel("i")
    pos = lam > 0
    ax1.semilogy(np.arange(1, lam.size + 1)[pos], lam[pos], ".-")
    ax1.set_xlabel("mode i")
    ax1.set_ylabel("eigenvalue λ_i")
    ax1.set_title(f"spectrum ({int((~pos).sum())} non-positive not shown)")
    ax1.grid(True, which="both", alpha=0.3)
    return ax0, ax1
