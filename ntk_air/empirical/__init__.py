"""Empirical (finite-width) neural tangent kernels: Θ(x1, x2) = J(x1) J(x2)ᵀ.

J(x) = ∂f(params, x)/∂params is the Jacobian of the outputs with respect to ALL leaves of the
`params` pytree, for any `apply_fn(params, x)`, flax linen module or flax nnx module. Derivatives
are taken per example (f(params, x_i), vmapped over the batch; neural-tangents' `vmap_axes`),
and Θ is contracted tile by tile — only the upper-triangle tiles of a symmetric K(x, x), mirrored
exactly — within a memory budget. Implementations, all equal to rounding:

* 'jacobian'   — per-example Jacobians J(x_i) (k × P each), contracted by matrix products
                 (neural-tangents' implementation 1).
* 'ntvp'       — NTK-vector products: forward-mode products through the row examples with the
                 column Jacobians as tangents; row Jacobians never formed (implementation 2,
                 Novak et al. 2022, arXiv 2206.08720).
* 'structured' — closed-form per-layer Gram products for dense networks: `MLP`
                 (`structured_mlp_ntk_fn`) and the theorem's `TwoLayerReLU` (`two_layer_ntk`).
* 'auto'       — the least estimated cost (FLOPs and bytes from XLA's cost analysis of one
                 example and the parameter shapes) among those that fit the memory budget; the
                 choice is returned as an `EntkPlan` (`ntk_fn.plan(...)`, `kernel_fn.plan(...)`).

Output reduction for models with k outputs (apply_fn returns (n, k)):
'mean' averages the k diagonal output blocks, Θ_ij = (1/k) Σ_a J_a(x_i)·J_a(x_j) — this is
neural-tangents' default `trace_axes=(-1,)` (its `_trace_and_diagonal` divides the trace by the
contracted size); 'sum' is the trace Σ_a; 'none' keeps all blocks, Θ[i, j, a, b] =
J_a(x_i)·J_b(x_j), shape (n1, n2, k, k). Models with outputs of shape (n,) have nothing to
reduce: every reduction returns (n1, n2).

Entry points: `empirical_ntk_fn` (parameters vary: training checkpoints reuse one compilation
per input shape) and `empirical_kernel_fn` (a `KernelFn` at fixed parameters: kernel_fn(x1, x2)
→ Kernel(nngp=None, ntk=Θ), usable wherever an infinite-width kernel is).
"""

from ._factories import (
    EmpiricalKernelFn,
    empirical_kernel_fn,
    structured_mlp_ntk_fn,
    two_layer_ntk,
)
from ._monte_carlo import MonteCarloKernelFn, monte_carlo_kernel_fn
from ._ntk_fn import IMPLEMENTATIONS, OUTPUT_REDUCTIONS, EmpiricalNTKFn, empirical_ntk_fn
from ._plan import EntkPlan, MemoryBudgetError, default_memory_budget

__all__ = [
    "IMPLEMENTATIONS",
    "OUTPUT_REDUCTIONS",
    "EmpiricalKernelFn",
    "EmpiricalNTKFn",
    "EntkPlan",
    "MemoryBudgetError",
    "MonteCarloKernelFn",
    "default_memory_budget",
    "empirical_kernel_fn",
    "empirical_ntk_fn",
    "monte_carlo_kernel_fn",
    "structured_mlp_ntk_fn",
    "two_layer_ntk",
]
