"""What every study of one data set shares: its kernels and their one eigendecomposition."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import numpy as np

from ..eigen import Eigensystem, eigensystem

__all__ = ["KernelSystem", "kernel_system", "Progress", "data_summary", "report_progress"]

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
