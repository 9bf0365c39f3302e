"""Factories built on `empirical_ntk_fn`: the KernelFn of a finite network, and the structured
eNTKs of the toolkit's dense models (`MLP`, the theorem's `TwoLayerReLU`)."""

from __future__ import annotations

import dataclasses
from typing import Any

from .._checks import as_float_array, as_float_tree, check_finite, check_rank, resolve_dtype
from .._tiling import check_tile_size
from ..kernels._kernel_fn import Kernel
from ..networks._models import MLP, TwoLayerReLU
from ._ntk_fn import EmpiricalNTKFn, Implementation, OutputReduction, empirical_ntk_fn
from ._plan import EntkPlan
from ._structured import two_layer_weight


def structured_mlp_ntk_fn(
    mlp: MLP,
    *,
    output_reduction: OutputReduction = "mean",
    tile_size: int | None = None,
    memory_budget: int | None = None,
    precision: str | None = "highest",
) -> EmpiricalNTKFn:
    """Empirical NTK of a dense `MLP` by per-layer Gram products (no Jacobian materialized).

    Θ[i, j, a, b] = Σ_{l=0..L} (δ_l,a(x_i)·δ_l,b(x_j)) · (w_std²/d_l h_l(x_i)·h_l(x_j) + b_std²),
    h_l the input of layer l (width d_l), δ_l,a = ∂f_a/∂z_l (δ_L,a = e_a).

    Args:
      mlp: an `ntk_air.networks.MLP` (relu or erf) in NTK parameterization.
      output_reduction: 'mean', 'sum' or 'none'.
      tile_size: rows per tile (any positive int) or None (from the memory budget).
      memory_budget: bytes of intermediates allowed, as in `empirical_ntk_fn`.
      precision: matmul precision, as in `empirical_ntk_fn`.

    Returns:
      ntk_fn(params, x1 (n1, d), x2=None, *, dtype=None) → (n1, n2) or (n1, n2, k, k).

    Example:
      >>> mlp = ntk_air.networks.MLP(widths=(512,) * 3, w_std=1.5, b_std=0.1)
      >>> params = mlp.init(jax.random.key(0), x)["params"]
      >>> theta = structured_mlp_ntk_fn(mlp)(params, x)     # equals the Jacobian contraction

    Reference: Novak et al., arXiv 2206.08720 (structured eNTK derivations); Jacot et al.,
    arXiv 1806.07572.
    """
    if not isinstance(mlp, MLP):
        raise TypeError(f"mlp must be an ntk_air.networks.MLP, got {type(mlp).__name__}")
    return empirical_ntk_fn(
        mlp,
        implementation="structured",
        output_reduction=output_reduction,
        tile_size=tile_size,
        model=mlp,
        memory_budget=memory_budget,
        precision=precision,
    )


_TWO_LAYER = {}  # one NTK function per tile size: shared compiled programs


def two_layer_ntk(params_or_w, x1, x2=None, *, tile_size: int | None = None, dtype=None):
    """Finite-width Gram matrix H(W) of the theorem's two-layer ReLU network (W trained only).

    H(W)_ij = (x_i·x_j / m) Σ_{r=1..m} 1{w_r·x_i ≥ 0} 1{w_r·x_j ≥ 0}, whose mean over W is
    H∞ (`ntk_air.kernels.two_layer_relu`); ‖H(W) − H∞‖ = O(1/√m).

    Args:
      params_or_w: {'w': (m, d)}, the full variables, or the (m, d) weight.
      x1: (n1, d) inputs.
      x2: (n2, d) inputs or None for x1.
      tile_size: rows per tile (any positive int) or None (from the memory budget).
      dtype: float32 or float64 (default follows x1); W and x are both cast to it.

    Returns:
      (n1, n2) array H(W)(x1, x2).

    Example:
      >>> model = ntk_air.networks.TwoLayerReLU(width=4096)
      >>> params = model.init(jax.random.key(0), x)["params"]
      >>> H = two_layer_ntk(params, x)              # ≈ ntk_air.kernels.two_layer_relu(x)

    Reference: Du, Zhai, Poczos, Singh, arXiv 1810.02054 (H(W), H∞); Arora et al., arXiv
    1901.08584.
    """
    check_tile_size(tile_size)
    w = two_layer_weight(params_or_w)
    dt = resolve_dtype(dtype, like=x1)
    w = as_float_array(w, "w", dt)
    check_rank(w, "w", 2)
    check_finite(w, "w")
    if tile_size not in _TWO_LAYER:
        _TWO_LAYER[tile_size] = empirical_ntk_fn(
            None, implementation="structured", model=TwoLayerReLU(width=1), tile_size=tile_size
        )
    return _TWO_LAYER[tile_size]({"w": w}, x1, x2, dtype=dt)


@dataclasses.dataclass(frozen=True, eq=False)
class EmpiricalKernelFn:
    """`kernel_fn(x1, x2=None) -> Kernel(nngp=None, ntk=Θ)` at fixed parameters; `.plan(x1, x2)`
    gives the `EntkPlan`, `.replace(**settings)` another kernel_fn."""

    ntk_fn: EmpiricalNTKFn
    variables: Any  # params or variables as given (validated)
    dtype: Any = None
    name: str = "empirical NTK"
    apply_fn: Any = None  # what the factory was given (for `replace`)
    model: Any = None

    @property
    def tile_size(self):
        return self.ntk_fn.tile_size

    @property
    def precision(self):
        return self.ntk_fn.precision

    @property
    def implementation(self):
        return self.ntk_fn.implementation

    def __call__(self, x1, x2=None) -> Kernel:
        return Kernel(nngp=None, ntk=self.ntk_fn(self.variables, x1, x2, dtype=self.dtype))

    def plan(self, x1, x2=None) -> EntkPlan:
        return self.ntk_fn.plan(self.variables, x1, x2, dtype=self.dtype)

    def replace(self, **changes) -> EmpiricalKernelFn:
        settings = dict(
            implementation=self.ntk_fn.implementation,
            output_reduction=self.ntk_fn.output_reduction,
            tile_size=self.ntk_fn.tile_size,
            dtype=self.dtype,
            memory_budget=self.ntk_fn.memory_budget,
            precision=self.ntk_fn.precision,
            model=self.model,
            per_example=self.ntk_fn.per_example,
            name=self.name,
        )
        unknown = set(changes) - set(settings)
        if unknown:
            raise ValueError(f"cannot replace {sorted(unknown)}; settings are {sorted(settings)}")
        settings.update(changes)
        return empirical_kernel_fn(self.apply_fn, self.variables, **settings)


def empirical_kernel_fn(
    apply_fn_or_module,
    params_or_variables=None,
    *,
    implementation: Implementation = "auto",
    output_reduction: OutputReduction = "mean",
    tile_size: int | None = None,
    dtype=None,
    memory_budget: int | None = None,
    precision: str | None = "highest",
    model: MLP | TwoLayerReLU | None = None,
    per_example: bool | None = None,
    name: str | None = None,
) -> EmpiricalKernelFn:
    """The empirical NTK of a finite network at fixed parameters, as a `KernelFn`.

    kernel_fn(x1, x2=None) = Kernel(nngp=None, ntk=Θ), Θ(x1, x2) = J(x1) J(x2)ᵀ as in
    `empirical_ntk_fn`; it plugs into every study like an infinite-width kernel.

    Args:
      apply_fn_or_module: `apply_fn(params, x)`, a flax linen module or a flax nnx module.
      params_or_variables: the parameters, linen `variables`, or nnx's `nnx.Param` state or None.
      implementation: 'auto', 'jacobian', 'ntvp' or 'structured'.
      output_reduction: 'mean', 'sum' or 'none'.
      tile_size: rows per tile, or None to choose it from `memory_budget`.
      dtype: float32 or float64, or None to follow x1.
      memory_budget: bytes a call may use (None: half an accelerator's, a quarter of RAM on CPU).
      precision: matmul precision ('highest': full float32 on every backend).
      model: for a plain apply_fn, the `MLP`/`TwoLayerReLU` it computes (enables 'structured').
      per_example: None (detect coupled examples), True or False.
      name: a label for reports.

    Returns:
      EmpiricalKernelFn: kernel_fn(x1, x2=None) → Kernel(nngp=None, ntk=(n1, n2)).

    Example:
      >>> x = np.random.default_rng(0).normal(size=(100, 8))
      >>> mlp = ntk_air.networks.MLP(widths=(512, 512))           # or any linen / nnx module
      >>> variables = mlp.init(jax.random.key(0), x[:1])
      >>> kernel_fn = ntk_air.empirical.empirical_kernel_fn(mlp, variables)
      >>> kernel_fn(x).ntk.shape
      (100, 100)
      >>> kernel_fn.plan(x).implementation                      # and .reason says why
      'structured'

    Reference: Jacot et al., arXiv 1806.07572; Novak et al., arXiv 2206.08720.
    """
    if model is None and isinstance(apply_fn_or_module, MLP | TwoLayerReLU):
        model = apply_fn_or_module
    ntk_fn = empirical_ntk_fn(
        apply_fn_or_module,
        implementation=implementation,
        output_reduction=output_reduction,
        tile_size=tile_size,
        model=model,
        memory_budget=memory_budget,
        precision=precision,
        per_example=per_example,
    )
    if dtype is not None:
        resolve_dtype(dtype)
    params, _ = ntk_fn.model.split(params_or_variables)
    if params is None:
        raise ValueError(
            "params_or_variables is required (the parameters, or the linen variables) unless "
            "apply_fn_or_module is an nnx module"
        )
    as_float_tree(params, "params")  # validated now (finite floats), not at the first call
    label = name or f"empirical NTK ({getattr(type(apply_fn_or_module), '__name__', 'model')})"
    return EmpiricalKernelFn(
        ntk_fn=ntk_fn,
        variables=params_or_variables,
        dtype=dtype,
        name=label,
        apply_fn=apply_fn_or_module,
        model=model,
    )
