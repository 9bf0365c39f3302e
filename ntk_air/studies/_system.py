"""What every study of one data set shares: its kernels and their one eigendecomposition."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from ..eigen import Eigensystem, eigensystem

__all__ = [
    "KernelSystem",
    "kernel_system",
    "ReducedSystem",
    "reduced_system",
    "DEFAULT_KRYLOV_STEPS",
    "Progress",
    "data_summary",
    "report_progress",
]

# progress(stage, done, total): called by a study after each stage (the CLI draws a bar from it).
Progress = Callable[[str, int, int], None]
"""A progress callback, `progress(stage, done, total)`, called by a study after each stage."""


class KernelSystem(NamedTuple):
    """A data set's kernels and their one eigendecomposition, shared by every study of it."""

    ntk: jax.Array  # (n, n) K(X, X) of the training inputs
    ntk_test: jax.Array | None  # (n_test, n) K(X_test, X), or None without test points
    eig: Eigensystem  # the decomposition of `ntk`


def kernel_system(dataset, kernel_fn) -> KernelSystem:
    """K(X, X), K(X_test, X) and the eigendecomposition of K(X, X), computed once.

    Args:
      dataset: a `data.Dataset`.
      kernel_fn: a `KernelFn` (`kernel_fn(x1, x2=None) -> Kernel`); its `.ntk` is used.

    Returns:
      KernelSystem.

    Example:
      >>> kernel_fn = ntk_air.kernels.two_layer_relu_kernel_fn()
      >>> system = kernel_system(ntk_air.data.clusters(), kernel_fn)
      >>> system.ntk.shape
      (160, 160)
    """
    ntk = kernel_fn(dataset.x).ntk
    ntk_test = kernel_fn(dataset.x_test, dataset.x).ntk if len(dataset.x_test) else None
    return KernelSystem(ntk=ntk, ntk_test=ntk_test, eig=eigensystem(ntk))


class ReducedSystem(NamedTuple):
    """The matrix-free counterpart of `KernelSystem`: K reduced by Rayleigh–Ritz, never formed.

    `eig` has m = k + r columns (`matfree.ritz_reduction`): the top k eigenpairs and the Ritz
    pairs of the Krylov space of (y, ŷ) on the deflated operator; `coarse_eig` is the same on
    fewer Krylov blocks, at least two blocks' worth of columns fewer (`_coarse_reduction`; None
    when there is no such), so that the difference of results on the two estimates the error of
    the tail.
    """

    eig: Eigensystem  # (m,) and (n, m)
    kv_test: jax.Array | None  # (n_test, m) K(X_test, X) V through the rectangular operator
    coarse_eig: Eigensystem | None  # the reduction with s − 2 Krylov blocks
    coarse_kv_test: jax.Array | None
    top: object  # topk.TopKEigensystem (residuals, convergence, passes)
    reduction: object  # matfree.RitzReduction (leak, next eigenvalue)
    trace: float  # tr K = Σ K(x_i, x_i), from the diagonal alone
    krylov_steps: int  # Krylov blocks of (y, ŷ) behind the reduction
    extra_passes: int  # passes over K beyond the eigensolver's (deflated Krylov)


def require_tiled(kernel_fn) -> None:
    """The matrix-free path evaluates K tile by tile: refuse a kernel function without
    `block_fn` with the remedy."""
    if not callable(getattr(kernel_fn, "block_fn", None)):
        raise ValueError(
            "the top-k solver needs a tiled kernel function (kernels.from_pairwise, "
            "fc_kernel_fn, two_layer_relu_kernel_fn, nt_backend); use the dense solver"
        )


def _coarse_reduction(top, red, block: int, krylov=None):
    """The reduction on the most Krylov blocks s' < s whose dimension is at least 2·block below
    the full one's. Later blocks resolve ever less (rounding grows like (λ_1/λ_{k+1})^j and
    their rank-deficient directions are dropped), so merely dropping the last two blocks can
    leave almost the same space: measured (n = 1500, k = 30, C = 1) dimensions 40, 40, 41, 42
    for s = 5…8, whose difference (0.061) understated the actual error (0.069); 2·block fewer
    columns (s' = 4: 0.167) did not."""
    from ..matfree import ritz_reduction

    full = red.eig.eigenvalues.shape[0]
    space = top.labels if krylov is None else krylov
    for steps in range(int(space.steps) - 1, 0, -1):
        coarse = ritz_reduction(top, steps, krylov=krylov)
        if coarse.eig.eigenvalues.shape[0] <= full - 2 * block:
            return coarse
    return None


DEFAULT_KRYLOV_STEPS = 16
"""Passes of `matfree.deflated_krylov` behind the reduction: on two-layer ReLU H∞ (n = 3000,
k = 50, d = 20 clusters, 2000 GD steps) the error of ‖u − ŷ‖ was 0.30 / 0.015 / 6.8e-5 / 3.6e-8
(of 55) with 4 / 8 / 16 / 24 passes, 0.051 with the eigensolver's free label Krylov space."""


def reduced_system(
    dataset, kernel_fn, rank: int, krylov_steps: int = DEFAULT_KRYLOV_STEPS
) -> ReducedSystem:
    """Top-k eigenpairs of K(X, X) by block Krylov passes, the Krylov space of the labels y and
    ŷ on the deflated operator, the Rayleigh–Ritz reduction of K to both; K(X_test, X)·V by
    one pass of the rectangular operator.

    Args:
      dataset: a `data.Dataset` (y and y_clean start the Krylov space).
      kernel_fn: a tiled `KernelFn` (with `block_fn`: `kernels.from_pairwise`, `fc_kernel_fn`,
        `two_layer_relu_kernel_fn`, the neural-tangents backend).
      rank: k.
      krylov_steps: passes of `matfree.deflated_krylov` (width 2C each); 0: the label Krylov
        space the eigensolver builds in its own passes instead (no extra pass, less accurate:
        its later blocks are resolved only to eps·(λ_1/λ_{k+1})^j).

    Returns:
      ReducedSystem.
    """
    from ..matfree import deflated_krylov, ritz_reduction
    from ..operators import kernel_diagonal, kernel_operator
    from ..topk import topk_eigensystem

    require_tiled(kernel_fn)
    y = np.asarray(dataset.y)
    y_clean = np.asarray(dataset.y_clean)
    start = np.concatenate([-y.reshape(len(y), -1), y_clean.reshape(len(y), -1)], axis=1)
    x = dataset.x
    op = kernel_operator(kernel_fn, x)
    krylov = None
    if krylov_steps:
        top = topk_eigensystem(op, rank)
        krylov = deflated_krylov(op, top, start, krylov_steps)
    else:
        top = topk_eigensystem(op, rank, labels=start)
    red = ritz_reduction(top, krylov=krylov)
    coarse = _coarse_reduction(top, red, start.shape[1], krylov)
    kv = kv_coarse = None
    if len(dataset.x_test):
        test_op = kernel_operator(kernel_fn, dataset.x_test, x)
        both = test_op.apply(
            red.eig.eigenvectors
            if coarse is None
            else jax.numpy.concatenate([red.eig.eigenvectors, coarse.eig.eigenvectors], axis=1)
        )
        m = red.eig.eigenvalues.shape[0]
        kv, kv_coarse = both[:, :m], (None if coarse is None else both[:, m:])
    return ReducedSystem(
        eig=red.eig,
        kv_test=kv,
        coarse_eig=None if coarse is None else coarse.eig,
        coarse_kv_test=kv_coarse,
        top=top,
        reduction=red,
        trace=float(jax.numpy.sum(kernel_diagonal(kernel_fn, x))),
        krylov_steps=int((top.labels if krylov is None else krylov).steps),
        extra_passes=int(krylov.steps) if krylov is not None else 0,
    )


def data_summary(dataset) -> dict:
    """Name, sizes and the scalar metadata of a data set (no index arrays), for reports."""
    info = {
        k: v
        for k, v in dataset.info.items()
        if v is None or isinstance(v, bool | int | float | str | np.generic)
    }
    return {
        "name": dataset.name,
        "n": int(dataset.x.shape[0]),
        "d": int(np.prod(dataset.x.shape[1:])),
        "n_test": int(dataset.x_test.shape[0]),
        "label_shape": list(np.shape(dataset.y)),
        "one_hot": bool(np.ndim(dataset.y) == 2),
        **info,
    }


def report_progress(progress: Progress | None, stage: str, done: int, total: int) -> None:
    if progress is not None:
        progress(stage, done, total)
