"""Empirical (finite-width) neural tangent kernels: Θ(x1, x2) = J(x1) J(x2)ᵀ.

J is the Jacobian of the outputs with respect to every leaf of `params`, for any
`apply_fn(params, x)`, flax linen or nnx module, taken per example and contracted tile by tile
within a memory budget (docs/science/kernels.md#empirical-ntk). Implementations, equal to rounding:
'jacobian' (per-example Jacobians contracted), 'ntvp' (NTK-vector products, Novak et al. arXiv
2206.08720), 'structured' (closed-form Gram products of `MLP` and `TwoLayerReLU`) and 'auto' (the
least estimated cost that fits, returned as an `EntkPlan`). k outputs reduce by 'mean'
(neural-tangents' `trace_axes=(-1,)`), 'sum' or 'none' ((n1, n2, k, k)).

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
