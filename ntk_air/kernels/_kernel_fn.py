"""Kernel functions: the `KernelFn` protocol every kernel of ntk_air follows, `from_pairwise`,
`from_layers`, H∞ of the theorem (docs/science/kernels.md#theorem-network) and deep fully
connected NNGP/NTK in neural-tangents' conventions (docs/science/kernels.md#conventions).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import (
    NonFiniteError,
    as_float_array,
    check_finite,
    check_int,
    check_rank,
    check_same_features,
    check_unit_norm,
    is_concrete,
    resolve_dtype,
)
from .._tiling import check_tile_size, matmul_precision, tiled_pairwise
from . import _layers as L
from ._spatial import _first_nonfinite_layer, _state_layout

ACTIVATIONS = ("relu", "erf")
"""Activations of `fc_kernel_fn`."""
ARCHITECTURES = ("two-layer-relu", "fc")
"""Architectures of `make_kernel_fn` (the CLI's `--arch`)."""


class Kernel(NamedTuple):
    """Kernels between two sets of inputs (a pytree)."""

    nngp: jax.Array | None  # (n1, n2) output covariance at initialization; None if undefined
    ntk: jax.Array  # (n1, n2) neural tangent kernel


@runtime_checkable
class KernelFn(Protocol):
    """The one kernel signature: `kernel_fn(x1, x2=None) -> Kernel`.

    x1 (n1, ...) and x2 (n2, ...) are batches of examples (x2=None means x2 = x1); the result's
    arrays are (n1, n2). Tiling, dtype and precision are fixed by the factory that made it.
    """

    def __call__(self, x1, x2=None) -> Kernel: ...


def prepare_rows(x1, x2, dtype, *, rank: int | None = 2):
    """x1, x2 as finite float arrays of `dtype` with the same example shape and rank `rank`
    (None: any rank ≥ 1), checked once, eagerly."""
    x1 = as_float_array(x1, "x1", dtype)
    if rank is not None:
        check_rank(x1, "x1", rank)
    elif x1.ndim < 1:
        raise ValueError(f"x1 must have a batch axis, got shape {tuple(x1.shape)}")
    check_finite(x1, "x1")
    if x2 is None:
        return x1, None
    x2 = as_float_array(x2, "x2", x1.dtype)
    if rank is not None:
        check_rank(x2, "x2", rank)
    check_finite(x2, "x2")
    check_same_features(x1, x2)
    return x1, x2


@functools.partial(jax.jit, static_argnames=("block_fn", "tile_size", "symmetric"))
def _tiled_jit(block_fn, x1, x2, tile_size, symmetric=False):
    def block(a, b) -> Kernel:
        out = block_fn(a, b)
        return out if isinstance(out, Kernel) else Kernel(nngp=None, ntk=out)

    return tiled_pairwise(block, x1, x2, tile_size, symmetric=symmetric)


@dataclasses.dataclass(frozen=True)
class PairwiseKernelFn:
    """A `KernelFn` built from a pairwise block function by `from_pairwise` (fields: its settings;
    matrix-free operators evaluate `block_fn` tile by tile)."""

    block_fn: Callable
    tile_size: int | None = None
    dtype: Any = None
    precision: str | None = "highest"
    prepare: Callable = prepare_rows
    name: str = "kernel"
    bytes_per_pair: Callable | None = None  # (example_shape, itemsize) → bytes per entry
    memory_budget: int | None = None  # bytes of intermediates per tile (automatic tile size)
    memory_limit: int | None = None  # bytes a call may use (with bytes_per_pair); None: available
    symmetric: bool = False  # block_fn(a, b) = block_fn(b, a)ᵀ: K(x, x) from the upper tiles
    min_tile: int = 1  # the automatic tile size is at least this many rows

    def __post_init__(self):
        check_tile_size(self.tile_size)
        if self.dtype is not None:
            resolve_dtype(self.dtype)  # validated now, not at the first call
        matmul_precision(self.precision)

    def replace(self, **changes) -> PairwiseKernelFn:
        """A copy with other settings, e.g. `kernel_fn.replace(tile_size=512, dtype="float32")`."""
        return dataclasses.replace(self, **changes)

    def tile_for(self, x1, x2) -> int | None:
        """Rows per tile: the fixed tile size, or the largest that fits the budget (≥ `min_tile`;
        a multiple of 8 from 8 rows on, else a power of 2: whole vectors per row)."""
        if self.tile_size is not None or self.bytes_per_pair is None:
            return self.tile_size
        per_pair = self.bytes_per_pair(tuple(x1.shape[1:]), x1.dtype.itemsize)
        t = math.isqrt(max(1, int(self.memory_budget) // max(1, int(per_pair))))
        t = 8 * (t // 8) if t >= 8 else 1 << (t.bit_length() - 1)
        t = max(self.min_tile, t)
        if t >= max(x1.shape[0], x2.shape[0]):
            return None
        return t  # a last tile that does not fit overlaps the previous one (tiled_pairwise)

    def check_memory(self, x1, x2, tile: int | None) -> None:
        """Refuse, before allocating, a call whose output and one tile exceed `memory_limit`."""
        if self.bytes_per_pair is None:
            return
        from ..spectral._resources import available_memory, format_bytes

        n1, n2, item = x1.shape[0], x2.shape[0], x1.dtype.itemsize
        per_pair = int(self.bytes_per_pair(tuple(x1.shape[1:]), item))
        output = 2 * n1 * n2 * item
        t1, t2 = (n1, n2) if tile is None else (min(tile, n1), min(tile, n2))
        need = output + t1 * t2 * per_pair
        limit = available_memory() if self.memory_limit is None else int(self.memory_limit)
        if need <= limit:
            return
        fit = math.isqrt(max(0, limit - output) // per_pair)
        remedy = (
            f"use tile_size={fit} or less"
            if fit >= 1
            else "the output alone does not fit: use "
            "fewer inputs or the matrix-free path (ntk_air.spectral.kernel_operator)"
        )
        raise ValueError(
            f"the {self.name} kernel of {n1} × {n2} inputs would need about "
            f"{format_bytes(need)} ({format_bytes(output)} output + {format_bytes(need - output)}"
            f" for a {t1} × {t2} tile), more than the {format_bytes(limit)} allowed; {remedy}"
        )

    def __call__(self, x1, x2=None) -> Kernel:
        dt = resolve_dtype(self.dtype, like=x1)
        x1, x2 = self.prepare(x1, x2, dt)
        symmetric = self.symmetric and x2 is None  # K(x, x): the upper tiles, mirrored
        x2 = x1 if x2 is None else x2
        for name, x in (("x1", x1), ("x2", x2)):
            if x.shape[0] == 0:
                raise ValueError(f"{name} has no rows: a kernel needs at least one example")
        self._check_block_shape(x1, x2)
        tile = self.tile_for(x1, x2)
        self.check_memory(x1, x2, tile)
        with matmul_precision(self.precision):
            k = _tiled_jit(self.block_fn, x1, x2, tile, symmetric)
        k = Kernel(nngp=None if k.nngp is None else k.nngp.astype(dt), ntk=k.ntk.astype(dt))
        self._check_finite(k, x1, x2)
        return k

    def _check_block_shape(self, x1, x2) -> None:
        """block_fn on 1 × 2 rows must give (1, 2) arrays (by `eval_shape`: nothing computed)."""
        out = jax.eval_shape(self.block_fn, x1[:1], x2[: min(2, x2.shape[0])])
        want = (1, min(2, x2.shape[0]))
        pair = out if isinstance(out, Kernel) else (None, out)
        for field, arr in zip(("nngp", "ntk"), pair, strict=True):
            if arr is not None and tuple(arr.shape) != want:
                raise ValueError(
                    f"block_fn(a, b) must return a (len(a), len(b)) array (or a Kernel of them); "
                    f"on {want[0]} × {want[1]} rows its {field} has shape {tuple(arr.shape)}"
                )

    def _check_finite(self, k: Kernel, x1, x2) -> None:
        """NaN/inf entries are an error naming the first (and the layer that overflowed)."""
        for field in ("ntk", "nngp"):
            arr = getattr(k, field)
            if arr is None or not is_concrete(arr):
                continue
            a = np.asarray(arr)
            if all(np.isfinite(a[i : i + 256]).all() for i in range(0, a.shape[0], 256)):
                continue  # checked a block of rows at a time: no temporary the size of a
            i, j = (int(v) for v in np.argwhere(~np.isfinite(a))[0][:2])
            where = ""
            if isinstance(self.block_fn, _LayersBlock):
                layer = _first_nonfinite_layer(self.block_fn.layer, x1[i : i + 1], x2[j : j + 1])
                if layer is not None:
                    where = f"; it first appears in layer {layer}"
            raise NonFiniteError(
                f"the {self.name} kernel's {field} has {int((~np.isfinite(a)).sum())} non-finite "
                f"entries, first at ({i}, {j}){where} (a deep network overflows: lower the depth "
                "or w_std, or use float64)"
            )


def from_pairwise(
    block_fn: Callable,
    *,
    tile_size: int | None = None,
    dtype=None,
    precision: str | None = "highest",
    prepare: Callable | None = None,
    name: str | None = None,
    bytes_per_pair: Callable | None = None,
    memory_budget: int | None = None,
    symmetric: bool = False,
) -> PairwiseKernelFn:
    """Turn a pairwise function into a `KernelFn`: validation, tiling, dtype and precision added.

    K(x1, x2)[i, j] = block_fn(x1, x2)[i, j]; `block_fn(a, b)` maps a (t1, ...) and b (t2, ...)
    to a (t1, t2) array (taken as the NTK) or to a `Kernel(nngp, ntk)`, evaluated tile by tile
    inside one compiled program.

    Args:
      block_fn: a pure, jit-compatible function. Use a module-level function or a frozen
        dataclass instance: equal objects share one compilation.
      tile_size: rows per tile (any positive int) or None (untiled, or from `memory_budget`).
      dtype: float32 or float64, or None to follow the inputs (`_checks.resolve_dtype`).
      precision: matmul precision while tracing ('highest' by default: no TF32 on GPUs).
      prepare: `prepare(x1, x2, dtype) -> (x1, x2)`, the eager input check; default: (n, d)
        float rows, finite, same feature count.
      name: a label for reports.
      bytes_per_pair: with tile_size=None and memory_budget, choose the tile so that
        tile² · bytes_per_pair(example_shape, itemsize) ≤ memory_budget.
      memory_budget: bytes (see bytes_per_pair).
      symmetric: block_fn(a, b) = block_fn(b, a)ᵀ exactly (a kernel), so K(x) computes the
        tiles on and above the diagonal only and mirrors them (about half the work).

    Returns:
      PairwiseKernelFn: kernel_fn(x1, x2=None) -> Kernel.

    Example:
      >>> def rbf_block(a, b):
      ...     return jnp.exp(-jnp.sum((a[:, None] - b[None]) ** 2, -1))
      >>> rbf = kernels.from_pairwise(rbf_block)
      >>> rbf(np.eye(3)).ntk.shape
      (3, 3)
    """
    if not callable(block_fn):
        raise TypeError(f"block_fn must be callable (a, b) -> (n1, n2), got {block_fn!r}")
    if (bytes_per_pair is None) != (memory_budget is None):
        raise ValueError("bytes_per_pair and memory_budget go together (automatic tile size)")
    if memory_budget is not None:
        check_int("memory_budget", memory_budget, minimum=1)
    return PairwiseKernelFn(
        block_fn=block_fn,
        tile_size=tile_size,
        dtype=dtype,
        precision=precision,
        prepare=prepare_rows if prepare is None else prepare,
        name=name or getattr(block_fn, "__name__", type(block_fn).__name__),
        bytes_per_pair=bytes_per_pair,
        memory_budget=memory_budget,
        symmetric=bool(symmetric),
    )


LAYERS_MEMORY_BUDGET = 14 * 2**20
"""Bytes of intermediates per tile when `from_layers` sizes the tiles of a spatial network:
small, so that a tile's covariances stay in the CPU caches (benchmarks/nt_conv.py)."""
LAYERS_MIN_TILE = 4
"""Smallest automatic tile of `from_layers` (rows): c1, c2 of a t × t tile cost 2/t of it."""
# Tile-sized arrays alive at once in a spatial network's compiled tile (XLA's buffer assignment
# for the 3-layer CNNs of benchmarks/nt_conv.py holds 11-14).
_LIVE_ARRAYS = 14


@dataclasses.dataclass(frozen=True)
class _LayersBlock:
    """Pairwise block of a composition of infinite-width layers (hashable: shared compiles)."""

    layer: Callable
    spatial: bool = False  # inputs (n, *spatial, C) keep their spatial axes
    full: bool = False  # covariances between all pairs of positions (else equal positions)
    self_full: bool = False  # c1, c2 too (else at equal positions: `KernelState.self_diagonal`)

    def __call__(self, a, b) -> Kernel:
        dims = a.ndim - 2 if self.spatial else 0
        state = L.input_state(
            a, b, spatial_dims=dims, full=self.full, self_diagonal=not self.self_full
        )
        s = self.layer(state)
        if s.spatial_dims:
            raise ValueError(
                "the network ends with spatial axes: finish it with layers.flatten() or "
                "layers.global_avg_pool() (then a dense readout)"
            )
        return Kernel(nngp=s.nngp, ntk=s.ntk)


@dataclasses.dataclass(frozen=True)
class _LayersPairBytes:
    """Bytes per pair of examples of a spatial network's intermediates (for the tile size)."""

    full: bool

    def __call__(self, example_shape, itemsize) -> int:
        positions = math.prod(example_shape[:-1])
        per_pair = positions**2 if self.full else positions
        return _LIVE_ARRAYS * per_pair * int(itemsize)


def reshape_flat_rows(x, name: str, input_shape: tuple):
    """x with examples of `input_shape`: as it is when they have that shape, flat (n, d) rows
    (d = prod(input_shape)) reshaped to (n, *input_shape); otherwise a ValueError naming `name`."""
    if tuple(x.shape[1:]) == input_shape:
        return x
    d = math.prod(input_shape)
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}; expected (n, {d}) flat rows or "
            f"(n, {', '.join(map(str, input_shape))}) for input_shape={input_shape}"
        )
    return x.reshape(x.shape[0], *input_shape)


def _prepare_examples(x1, x2, dtype, *, input_shape=None, spatial=False):
    """prepare_rows for layered kernels: any rank; flat rows reshaped to (n, *input_shape)."""
    x1, x2 = prepare_rows(x1, x2, dtype, rank=None)

    def shaped(x, name):
        if x is None or input_shape is None:
            return x
        return reshape_flat_rows(x, name, input_shape)

    x1, x2 = shaped(x1, "x1"), shaped(x2, "x2")
    if spatial and not 3 <= x1.ndim <= 5:
        raise ValueError(
            f"x1 has shape {tuple(x1.shape)}, but a convolutional network needs examples "
            "(n, *spatial, channels) with 1 to 3 spatial axes; reshape flat rows with input_shape= "
            "(the arch spec's shape=, e.g. shape=8x8x1 for 8×8 grey images)"
        )
    return x1, x2


def from_layers(
    layer,
    *,
    tile_size=None,
    dtype=None,
    precision="highest",
    input_shape=None,
    memory_budget: int | None = None,
    memory_limit: int | None = None,
) -> PairwiseKernelFn:
    """The `KernelFn` of infinite-width layers: Σ⁰ = x·x'/C, Θ⁰ = 0, then `layer`.

    Networks without spatial layers see flattened examples (Σ⁰ = x·x'/d). Networks with `conv`,
    `avg_pool`, `global_avg_pool` or `flatten` take examples (n, *spatial, channels) with 1 to 3
    spatial axes, in the layout the layers need, tiled over rows; a call whose output plus
    one tile's intermediates exceeds `memory_limit` is refused before anything is allocated.

    Args:
      layer: a function KernelState → KernelState, e.g. `serial(dense(), ...)`.
      tile_size: as in `from_pairwise` (None: chosen from memory_budget for spatial networks).
      dtype: as in `from_pairwise`.
      precision: as in `from_pairwise`.
      input_shape: one example's shape, e.g. (8, 8, 1): flat (n, d) rows are reshaped to it.
      memory_budget: bytes of intermediates per tile for the automatic tile size of a spatial
        network (default `LAYERS_MEMORY_BUDGET`).
      memory_limit: bytes a call may use (output + one tile); default: the memory available now.

    Returns:
      kernel_fn(x1, x2=None) -> Kernel(nngp, ntk), each (n1, n2).

    Example:
      >>> net = kernels.serial(kernels.dense(1.0, 0.0), kernels.erf(), kernels.dense(1.0, 0.0))
      >>> k = kernels.from_layers(net)(x)
      >>> bool(jnp.allclose(k.ntk, kernels.fc_kernel_fn(1, "erf")(x).ntk))
      True
      >>> cnn = kernels.serial(kernels.conv((3, 3), w_std=1.5, b_std=0.1), kernels.relu(),
      ...                     kernels.flatten(), kernels.dense(1.5, 0.1))
      >>> kernels.from_layers(cnn, input_shape=(8, 8, 1))(np.ones((3, 64))).ntk.shape
      (3, 3)
    """
    layout = _state_layout(L.check_layer("layer", layer))
    if input_shape is not None:
        input_shape = tuple(int(v) for v in input_shape)
        if not input_shape or min(input_shape) < 1:
            raise ValueError(f"input_shape must be positive ints, got {input_shape!r}")
    if memory_limit is not None:
        check_int("memory_limit", memory_limit, minimum=1)
    sizing = {}
    if layout.spatial:
        budget = LAYERS_MEMORY_BUDGET if memory_budget is None else memory_budget
        sizing = {"bytes_per_pair": _LayersPairBytes(layout.full), "memory_budget": budget}
    fn = from_pairwise(
        _LayersBlock(layer, layout.spatial, layout.full, layout.self_full),
        tile_size=tile_size,
        dtype=dtype,
        precision=precision,
        prepare=functools.partial(
            _prepare_examples, input_shape=input_shape, spatial=layout.spatial
        ),
        name="layers",
        symmetric=True,
        **sizing,
    )
    min_tile = LAYERS_MIN_TILE if (layout.spatial and memory_budget is None) else 1
    return fn.replace(memory_limit=memory_limit, min_tile=min_tile)


def _two_layer_block(x1, x2, general):
    """H∞ of a tile; identical rows (`same_rows`) get x·x' = ‖x‖² and θ = 0 exactly."""
    same = L.same_rows(x1, x2)
    dot = jnp.where(same, jnp.sum(x1**2, axis=1)[:, None], x1 @ x2.T)
    if general:
        prod_sq = jnp.sum(x1**2, axis=1)[:, None] * jnp.sum(x2**2, axis=1)[None, :]
    else:
        # Unit norm was checked, so ‖x_i‖²‖x_j‖² = 1 up to rounding; this also keeps |ρ| ≤ 1.
        prod_sq = jnp.ones_like(dot)
    theta, _ = L.angle(dot, prod_sq)
    theta = jnp.where(same, 0.0, theta)
    return dot * (0.5 - theta / (2 * jnp.pi))  # (π − θ)/(2π), exactly ½ at θ = 0


def _two_layer_nngp_block(x1, x2):
    n1, n2 = jnp.sum(x1**2, axis=1), jnp.sum(x2**2, axis=1)
    dot = jnp.where(L.same_rows(x1, x2), n1[:, None], x1 @ x2.T)
    prod_sq = n1[:, None] * n2[None, :]
    theta, sin_part = L.angle(dot, prod_sq)
    return sin_part / (2 * jnp.pi) + (0.5 - theta / (2 * jnp.pi)) * dot


@dataclasses.dataclass(frozen=True)
class _TwoLayerBlock:
    general: bool = False
    with_nngp: bool = True

    def __call__(self, a, b) -> Kernel:
        nngp = _two_layer_nngp_block(a, b) if self.with_nngp else None
        return Kernel(nngp=nngp, ntk=_two_layer_block(a, b, self.general))


def _prepare_unit_rows(x1, x2, dtype):
    x1, x2 = prepare_rows(x1, x2, dtype)
    check_unit_norm(x1, "x1")
    if x2 is not None:
        check_unit_norm(x2, "x2")
    return x1, x2


def two_layer_relu_kernel_fn(
    *, general: bool = False, tile_size: int | None = None, dtype=None, nngp: bool = True
) -> PairwiseKernelFn:
    """`KernelFn` of the theorem's two-layer ReLU network: Kernel(nngp=Σ (κ = 1), ntk=H∞).

    H∞ as in `two_layer_relu`, Σ as in `two_layer_relu_nngp`.

    Args:
      general: accept rows of any nonzero norm (else unit-norm rows are required).
      tile_size: as in `from_pairwise`.
      dtype: as in `from_pairwise`.
      nngp: also compute Σ (False: `nngp` is None, half the work).

    Example:
      >>> k = kernels.two_layer_relu_kernel_fn()(x)     # k.ntk = H∞, k.nngp = Σ
      >>> bool(jnp.allclose(k.ntk, kernels.two_layer_relu(x))), k.nngp.shape
      (True, (40, 40))
    """
    return from_pairwise(
        _TwoLayerBlock(bool(general), bool(nngp)),
        tile_size=tile_size,
        dtype=dtype,
        prepare=prepare_rows if general else _prepare_unit_rows,
        name="two-layer-relu",
    )


def two_layer_relu(x1, x2=None, *, general: bool = False, tile_size: int | None = None, dtype=None):
    """Gram matrix H∞ of the theorem's two-layer ReLU network (first layer trained).

    H∞_ij = E_{w~N(0,I)}[x_i·x_j 1{w·x_i ≥ 0} 1{w·x_j ≥ 0}] = x_i·x_j (π − θ_ij) / (2π),
    and for unit-norm rows H∞_ij = ρ_ij (π − arccos ρ_ij) / (2π), ρ_ij = x_i·x_j.
    Independent of the init scale κ and of the readout (a_r² = 1); no 1/d input scaling. Pairs
    with θ below the √eps a Gram entry resolves (the diagonal among them) get θ = 0.

    Args:
      x1: (n1, d) inputs, unit-norm rows unless `general=True`.
      x2: (n2, d) inputs or None for x2 = x1.
      general: use the formula with norms, accepting rows of any (nonzero) norm.
      tile_size: rows per tile (any positive int) or None for untiled.
      dtype: float32 or float64 (float64 needs x64 mode); default follows the inputs.

    Returns:
      (n1, n2) array H∞(x1, x2).

    Example:
      >>> x = ntk_air.data.unit_normalize(np.random.default_rng(0).normal(size=(5, 3)))
      >>> H = ntk_air.kernels.two_layer_relu(x)
      >>> jnp.diag(H).tolist()   # ρ = 1 on the diagonal: H∞(x, x) = 1/2
      [0.5, 0.5, 0.5, 0.5, 0.5]

    Reference: Du, Zhai, Poczos, Singh, arXiv 1810.02054; Arora et al., arXiv 1901.08584.
    """
    fn = two_layer_relu_kernel_fn(general=general, tile_size=tile_size, dtype=dtype, nngp=False)
    return fn(x1, x2).ntk


def two_layer_relu_nngp(x1, x2=None, *, tile_size: int | None = None, dtype=None):
    """NNGP of the theorem's two-layer network at κ = 1 (output covariance at initialization).

    Σ_ij = E_{w~N(0,I)}[ReLU(w·x_i) ReLU(w·x_j)] = ‖x_i‖‖x_j‖ (sin θ_ij + (π − θ_ij) cos θ_ij)/(2π)
    (Cho & Saul 2009, arc-cosine kernel of order 1). Scales as κ² for w ~ N(0, κ² I).

    Args/Returns: as `two_layer_relu` (any nonzero norms accepted).
    """
    # A block returning an array fills the Kernel's first-class field, `ntk`: here it holds Σ.
    return from_pairwise(_two_layer_nngp_block, tile_size=tile_size, dtype=dtype)(x1, x2).ntk


def fc_kernel_fn(
    depth: int,
    activation: Literal["relu", "erf"] = "relu",
    w_std: float = 1.0,
    b_std: float = 0.0,
    *,
    tile_size: int | None = None,
    dtype=None,
) -> PairwiseKernelFn:
    """Infinite-width NNGP and NTK of a deep fully connected network (neural-tangents conventions).

    neural-tangents' `serial(*[Dense(w, W_std, b_std), act()] * depth, Dense(1, W_std, b_std))`,
    i.e. `from_layers(serial(repeat(serial(dense, act), depth), dense))`: Σ⁰ = x·x'/d, Θ⁰ = 0,
    Dense: Σ ← W_std² Σ + b_std², Θ ← Σ + W_std² Θ, then the activation's map
    (docs/science/kernels.md#deep-fc).

    Args:
      depth: number of hidden (Dense + activation) layers, ≥ 0 (a `lax.scan`: any depth
        compiles in constant time).
      activation: "relu" or "erf" (erf(x), i.e. stax.Erf() with a=b=1, c=0).
      w_std: weight standard deviation of every Dense layer.
      b_std: bias standard deviation of every Dense layer.
      tile_size: as in `from_pairwise`.
      dtype: as in `from_pairwise`.

    Returns:
      kernel_fn(x1, x2=None) -> Kernel(nngp, ntk), each (n1, n2).

    Example:
      >>> kernel_fn = ntk_air.kernels.fc_kernel_fn(depth=3, activation="relu", w_std=1.5, b_std=0.1)
      >>> k = kernel_fn(x)          # k.ntk, k.nngp: (n, n)
      >>> k.ntk.shape, kernel_fn(x_test, x).ntk.shape
      ((40, 40), (12, 40))

    Reference: Lee et al. arXiv 1711.00165 (NNGP); Jacot et al. arXiv 1806.07572 (NTK);
    Novak et al. arXiv 1912.02803 (neural-tangents).
    """
    check_int("depth", depth, minimum=0)
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    layer = L.dense(w_std, b_std)
    hidden = L.serial(layer, getattr(L, activation)())
    net = L.serial(L.repeat(hidden, int(depth)), layer)
    fn = from_layers(net, tile_size=tile_size, dtype=dtype)
    return fn.replace(prepare=prepare_rows, name=f"fc depth {depth} {activation}")


def make_kernel_fn(
    arch: str = "two-layer-relu",
    *,
    depth: int = 1,
    activation: str = "relu",
    w_std: float = 1.0,
    b_std: float = 0.0,
    general: bool = False,
    tile_size: int | None = None,
    dtype=None,
) -> PairwiseKernelFn:
    """The CLI's registry of native kernels: a `KernelFn` named by a string.

    arch="two-layer-relu" gives `two_layer_relu_kernel_fn(general=...)`: Kernel(nngp=Σ, ntk=H∞)
    (theorem convention; depth/w_std/b_std do not apply and must be left at their defaults);
    arch="fc" gives `fc_kernel_fn(depth, activation, w_std, b_std)` (neural-tangents convention).
    """
    if arch == "fc":
        return fc_kernel_fn(depth, activation, w_std, b_std, tile_size=tile_size, dtype=dtype)
    if arch == "two-layer-relu":
        if activation != "relu":
            raise ValueError(f"arch 'two-layer-relu' is ReLU only, got activation={activation!r}")
        if (depth, w_std, b_std) != (1, 1.0, 0.0):
            raise ValueError(
                "depth/w_std/b_std do not apply to arch 'two-layer-relu' (one hidden layer; H∞ is "
                f"scale-free), got depth={depth!r}, w_std={w_std!r}, b_std={b_std!r}; use arch 'fc'"
            )
        return two_layer_relu_kernel_fn(general=general, tile_size=tile_size, dtype=dtype)
    raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
