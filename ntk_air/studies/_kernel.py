"""The kernel study: the kernel matrix of the training inputs and its spectrum."""

from __future__ import annotations

from typing import NamedTuple

import jax
import numpy as np

from .._checks import check_dataset
from ._system import KernelSystem, data_summary, kernel_system


class KernelStudy(NamedTuple):
    """K(X, X), its eigenvalues and its conditioning."""

    data: dict
    ntk: jax.Array  # (n, n) K(X, X)
    eigenvalues: jax.Array  # (n,) descending
    lambda_max: float
    lambda_min: float
    condition_number: float  # λ_max / λ_min (inf unless λ_min > 0)
    most_negative_eigenvalue: float  # before clamping rounding-level negatives
    clamp_tolerance: float


def kernel(dataset, kernel_fn, *, system: KernelSystem | None = None) -> KernelStudy:
    """The kernel of the training inputs and its spectrum (no files, no output).

    Example:
      >>> study = kernel(ntk_air.data.clusters(), ntk_air.kernels.two_layer_relu_kernel_fn())
      >>> study.lambda_max > study.lambda_min > 0
      True
    """
    check_dataset(dataset)
    if system is None:
        system = kernel_system(dataset, kernel_fn)
    lam = np.asarray(system.eig.eigenvalues)
    return KernelStudy(
        data=data_summary(dataset),
        ntk=system.ntk,
        eigenvalues=system.eig.eigenvalues,
        lambda_max=float(lam[0]),
        lambda_min=float(lam[-1]),
        condition_number=float(lam[0] / lam[-1]) if lam[-1] > 0 else float("inf"),
        most_negative_eigenvalue=float(system.eig.most_negative),
        clamp_tolerance=float(system.eig.clamp_tol),
    )
