"""Empirical (finite-width) neural tangent kernels: Θ(x1, x2) = J(x1) J(x2)ᵀ.

J is the Jacobian of the outputs with respect to every leaf of `params`, for any
`apply_fn(params, x)`, flax linen or nnx module, contracted tile by tile within a memory budget
(docs/science/kernels.md#empirical-ntk) by one of the `IMPLEMENTATIONS` (equal to rounding;
`.plan()` gives the `EntkPlan` 'auto' chose), k outputs reduced by `OUTPUT_REDUCTIONS`.
`empirical_ntk_fn` takes the parameters as an argument (one compilation for every checkpoint);
`empirical_kernel_fn` is a `KernelFn` at fixed parameters, usable wherever an infinite-width one is.
"""

from ._factories import (
    EmpiricalKernelFn,
    empirical_kernel_fn,
    structured_mlp_ntk_fn,
    two_layer_ntk,
)
from ._monte_carlo import MonteCarloKernelFn, monte_carlo_kernel_fn
from ._ntk_fn import IMPLEMENTATIONS, OUTPUT_REDUCTIONS, EmpiricalNTKFn, empirical_ntk_fn
from ._plan import EntkPlan, MemoryBudgetError

__all__ = [
    "IMPLEMENTATIONS",
    "OUTPUT_REDUCTIONS",
    "EmpiricalKernelFn",
    "EmpiricalNTKFn",
    "EntkPlan",
    "MemoryBudgetError",
    "MonteCarloKernelFn",
    "empirical_kernel_fn",
    "empirical_ntk_fn",
    "monte_carlo_kernel_fn",
    "structured_mlp_ntk_fn",
    "two_layer_ntk",
]
