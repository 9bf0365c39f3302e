"""neural-tangents' stax kernels as ntk_air kernel functions, and NT's empirical NTK with
ntk_air's conventions; neural-tangents is imported when a factory is called."""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Callable, Sequence

import jax
import numpy as np

from .._checks import (
    as_float_array,
    as_float_tree,
    check_finite,
    check_same_features,
    resolve_dtype,
)
from .._tiling import call_tiled, check_tile_size, tiled_pairwise
from ..kernels._kernel_fn import Kernel, from_pairwise, reshape_flat_rows
from . import compat

# NT warns at every attention init_fn that linear scaling ties the query weights; the analytic
# kernel is unaffected, so the backend mutes exactly that message.
_MUTED_NT_WARNING = "Linear scaling attention used"


def _stax_kernel_fn(model) -> Callable:
    """The NT kernel_fn inside `model` (a stax triple or a bare kernel_fn)."""
    sequence = isinstance(model, tuple | list)
    if sequence and len(model) == 3 and all(callable(f) for f in model):
        return model[2]
    if callable(model):
        return model
    what = type(model).__name__
    got = f"; got a {what} of length {len(model)}" if sequence else f", got {what}"
    raise TypeError(
        f"model must be a stax triple (init_fn, apply_fn, kernel_fn) or a kernel_fn{got}"
    )


def _check_input_shape(input_shape):
    if input_shape is None:
        return None
    shape = tuple(input_shape)
    if not shape or not all(
        isinstance(s, int | np.integer) and not isinstance(s, bool) and s > 0 for s in shape
    ):
        raise ValueError(f"input_shape must be a tuple of positive ints, got {input_shape!r}")
    return tuple(int(s) for s in shape)


def _as_examples(x, name, dtype, input_shape, example_rank):
    """Validate and cast x (eagerly); reshape flat rows to `input_shape`."""
    x = as_float_array(x, name, dtype)
    if x.ndim < 2:
        raise ValueError(
            f"{name} must have a batch axis then the example axes, got shape {tuple(x.shape)}"
        )
    check_finite(x, name)
    if input_shape is not None:
        return reshape_flat_rows(x, name, input_shape)
    if example_rank is not None and x.ndim - 1 != example_rank:
        remedy = (
            "flatten the examples to (n, d) rows"
            if example_rank == 1
            else "give input_shape= (spec option shape=, e.g. shape=8x8x1 for 8×8 grey images) "
            "to reshape flat rows"
        )
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}, but this network needs examples of rank "
            f"{example_rank}; {remedy}"
        )
    return x


def _as_example_pair(x1, x2, dtype, input_shape, example_rank, what: str):
    """`_as_examples` of x1 and x2 (None stays None), which must share their `what` shape."""
    x1 = _as_examples(x1, "x1", dtype, input_shape, example_rank)
    x2 = None if x2 is None else _as_examples(x2, "x2", dtype, input_shape, example_rank)
    if x2 is not None:
        check_same_features(x1, x2, what)
    return x1, x2


@dataclasses.dataclass(frozen=True)
class _StaxBlock:
    """NT's kernel_fn on one tile pair, with NT's attention warning muted."""

    nt_kernel_fn: Callable

    def __call__(self, a, b) -> Kernel:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_MUTED_NT_WARNING)
            k = self.nt_kernel_fn(a, b, ("nngp", "ntk"))
        return Kernel(nngp=k.nngp, ntk=k.ntk)


def _stax_bytes_per_pair(example_shape, itemsize) -> int:
    """NT's bytes per pair of examples: about 16 covariances over pairs of its S spatial positions
    (nngp, ntk, the marginals, conv/pool temporaries), S² entries each (S = 1 for dense inputs)."""
    spatial = math.prod(example_shape[:-1]) if len(example_shape) > 1 else 1
    return 16 * spatial**2 * itemsize


def kernel_fn_from_stax(
    model,
    *,
    input_shape: Sequence[int] | None = None,
    example_rank: int | None = None,
    memory_budget: int = 512 * 2**20,
    tile_size: int | None = None,
    dtype=None,
):
    """ntk_air kernel function of a neural-tangents `stax` network (infinite-width NNGP and NTK).

    K(x1, x2) = Kernel(nngp=Σ(x1, x2), ntk=Θ(x1, x2)) exactly as NT's
    `kernel_fn(x1, x2, ('nngp', 'ntk'))` computes them, one entry per pair of examples.

    Args:
      model: a stax triple `(init_fn, apply_fn, kernel_fn)` or a bare NT `kernel_fn`.
      input_shape: the shape of one example, e.g. (8, 8, 1); flat (n, d) inputs with
        d = ∏ input_shape are reshaped to (n, *input_shape). None: inputs are passed as given.
      example_rank: required rank of one example when `input_shape` is None (3 for 2-D CNNs),
        for a clear error instead of one from inside NT. None: not checked.
      memory_budget: bytes of NT intermediates per tile when tile_size is None (512 MiB).
      tile_size: rows per tile (any positive int), or None for automatic tiling.
      dtype: float32 or float64, or None to follow the inputs.

    Returns:
      A `PairwiseKernelFn`: kernel_fn(x1 (n1, ...), x2 (n2, ...) = None) -> Kernel, (n1, n2) each.

    Raises:
      NeuralTangentsUnavailable: neural-tangents is not installed or not usable on this JAX.

    Example:
      >>> stax = ntk_air.nt_backend.import_neural_tangents().stax
      >>> net = stax.serial(stax.Conv(8, (3, 3), padding="SAME"), stax.Relu(),
      ...                   stax.GlobalAvgPool(), stax.Dense(1))
      >>> kernel_fn = kernel_fn_from_stax(net, input_shape=(8, 8, 1))
      >>> k = kernel_fn(x_digits)          # x_digits (n, 64) → k.ntk (n, n)

    Reference: Novak et al., arXiv 1912.02803 (neural-tangents); Arora et al., arXiv 1904.11955
    (CNTK); Hron et al., arXiv 2006.10540 (attention).
    """
    nt_kernel_fn = _stax_kernel_fn(model)
    input_shape = _check_input_shape(input_shape)
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget < 1:
        raise ValueError(f"memory_budget must be a positive int (bytes), got {memory_budget!r}")
    compat.import_neural_tangents()
    return from_pairwise(
        _StaxBlock(nt_kernel_fn),
        tile_size=tile_size,
        dtype=dtype,
        prepare=functools.partial(
            _as_example_pair, input_shape=input_shape, example_rank=example_rank, what="example"
        ),
        name="neural-tangents stax",
        bytes_per_pair=_stax_bytes_per_pair,
        memory_budget=memory_budget,
    )


IMPLEMENTATIONS = ("jacobian", "ntvp", "structured", "auto")
OUTPUT_REDUCTIONS = ("mean", "sum", "none")
# ntk_air's implementations → members of NT's `NtkImplementation` enum.
_NT_IMPLEMENTATION = {
    "jacobian": "JACOBIAN_CONTRACTION",
    "ntvp": "NTK_VECTOR_PRODUCTS",
    "structured": "STRUCTURED_DERIVATIVES",
    "auto": "AUTO",
}
_GATED = {"structured": ("structured-derivatives",), "auto": ("structured-derivatives", "auto")}


def empirical_ntk_fn(
    apply_fn: Callable,
    *,
    implementation: str = "jacobian",
    output_reduction: str = "mean",
    tile_size: int | None = None,
    vmap_axes=0,
):
    """neural-tangents' empirical NTK Θ(x1, x2) = J(x1) J(x2)ᵀ, with ntk_air's conventions.

    Same quantity, arguments and output as `ntk_air.empirical.empirical_ntk_fn`
    (docs/science/kernels.md#empirical-ntk), computed by NT's engine: for k outputs
      'mean': (1/k) Σ_a J_a(x_i)·J_a(x_j)  (n1, n2)  — NT's trace_axes=(-1,)
      'sum':        Σ_a J_a(x_i)·J_a(x_j)  (n1, n2)
      'none':  Θ[i, j, a, b] = J_a(x_i)·J_b(x_j)  (n1, n2, k, k)  — NT's trace_axes=()
    Outputs of shape (n,) give (n1, n2) for every reduction.

    Args:
      apply_fn: f(params, x) → (n,) or (n, k) (a stax apply_fn, a flax `apply`, any function).
      implementation: 'jacobian' (NT's Jacobian contraction), 'ntvp' (NTK-vector products),
        'structured' (NT's structured derivatives) or 'auto' (NT picks by FLOPs); the last two
        only where their `GATES` work on this JAX (else `NeuralTangentsUnavailable`).
      output_reduction: 'mean', 'sum' or 'none' (above).
      tile_size: rows per tile for x1 and x2 (None = untiled).
      vmap_axes: NT's `vmap_axes` (0: f acts on examples independently, batch axis 0; None:
        no batching assumption).

    Returns:
      ntk_fn(params, x1, x2=None, *, dtype=None) → Θ (jit-compiled once per input shapes and
      dtype); params and inputs are cast to `dtype` (float32/float64; default follows the x64
      flag).

    Example:
      >>> init_fn, apply_fn, _ = stax.serial(stax.Dense(64), stax.Relu(), stax.Dense(3))
      >>> ntk_fn = ntk_air.nt_backend.empirical_ntk_fn(apply_fn, implementation="ntvp")
      >>> theta = ntk_fn(params, x)         # (n, n) = ntk_air.empirical.empirical_ntk_fn(...)

    Reference: Novak, Sohl-Dickstein, Schoenholz, arXiv 2206.08720 (fast finite-width NTKs).
    """
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    if output_reduction not in OUTPUT_REDUCTIONS:
        raise ValueError(
            f"output_reduction must be one of {OUTPUT_REDUCTIONS}, got {output_reduction!r}"
        )
    check_tile_size(tile_size)
    if not callable(apply_fn):
        raise ValueError(f"apply_fn must be callable f(params, x), got {apply_fn!r}")
    nt = compat.import_neural_tangents()
    for feature in _GATED.get(implementation, ()):
        compat._require(feature)

    def f(params, x, **kwargs):
        out = apply_fn(params, x, **kwargs)
        return out[:, None] if out.ndim == 1 else out

    trace_axes = () if output_reduction == "none" else (-1,)
    nt_ntk_fn = nt.empirical_ntk_fn(
        f,
        trace_axes=trace_axes,
        vmap_axes=vmap_axes,
        implementation=getattr(nt.NtkImplementation, _NT_IMPLEMENTATION[implementation]),
    )

    def block(params, a, b):
        theta = nt_ntk_fn(a, b, params)
        out = jax.eval_shape(apply_fn, params, a[:1])
        if len(out.shape) == 1:
            return theta[:, :, 0, 0] if output_reduction == "none" else theta
        if output_reduction == "sum":
            return theta * out.shape[-1]  # NT's trace over the output axis is a mean
        return theta

    # Padded and trimmed outside jit by tiling.call_tiled, as in kernel_fn_from_stax.
    @functools.partial(jax.jit, static_argnames=("tile_size",))
    def compiled(params, x1p, x2p, tile_size):
        if x2p is None:
            return block(params, x1p, None)
        return tiled_pairwise(lambda a, b: block(params, a, b), x1p, x2p, tile_size)

    def ntk_fn(params, x1, x2=None, *, dtype=None):
        dt = resolve_dtype(dtype)
        x1, x2 = _as_example_pair(x1, x2, dt, None, None, "feature")
        params = as_float_tree(params, "params", dt)
        if x2 is None and (tile_size is None or tile_size >= x1.shape[0]):
            return compiled(params, x1, None, None)  # one Jacobian serves both sides
        return call_tiled(
            lambda a, b, t: compiled(params, a, b, t), x1, x1 if x2 is None else x2, tile_size
        )

    return ntk_fn
