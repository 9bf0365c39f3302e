"""The kernel as an operator: K·V tile by tile in one compiled program, never holding K.

Memory O(t² + (n1 + n2)·b) for (t × t) tiles. Over a mesh a symmetric operator shares the
upper-triangle tile pairs (each off-diagonal tile serves K_ij V_j and K_ijᵀ V_i), a rectangular
one the rows; with several processes each passes the same x and V and receives the same K·V.

Reference: KeOps (Charlier et al., arXiv 2004.11127) for matrix-free kernel reductions; Adlam et
al., arXiv 2303.14186 for neural-tangents kernels at millions of examples.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from .._checks import as_float_array, as_float_tree, check_finite, resolve_dtype
from .._tiling import check_tile_size, matmul_precision, pad_rows
from ..kernels._kernel_fn import Kernel, PairwiseKernelFn

# Measured on the 2-core CPU (benchmarks/scale.py --tile); accelerators want larger tiles.
_DEFAULT_TILE = 1024
_AXIS = "devices"
_OUTPUT_REDUCTIONS = ("mean", "sum")


def _shard_map(f, mesh, in_specs, out_specs):
    """`shard_map` of this JAX with replication checks off (outputs are psum'd or gathered)."""
    sm = getattr(jax, "shard_map", None)
    if sm is not None:
        return sm(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_vma=False)
    from jax.experimental.shard_map import shard_map  # jax < 0.7

    return shard_map(f, mesh=mesh, in_specs=in_specs, out_specs=out_specs, check_rep=False)


def device_mesh(devices=None) -> Mesh:
    """A one-axis mesh over `devices` (default: `jax.devices()`, every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("device_mesh needs at least one device")
    return Mesh(np.array(devices), (_AXIS,))


def _tile_geometry(n: int, tile: int, parts: int = 1) -> tuple[int, int]:
    """(tiles, rows ≤ tile) per share of n rows in `parts` shares; padding < parts·tiles."""
    per_part = -(-n // parts)
    tiles = max(1, -(-per_part // tile))
    return tiles, max(1, -(-per_part // tiles))


@dataclasses.dataclass(frozen=True, eq=False)
class KernelOperator:
    """K as a linear map: `op(V)` = K·V for V (n2,) or (n2, b), validated and cast; `apply` is the
    unchecked (n2, b) → (n1, b) map on arrays of `dtype`."""

    apply: Callable  # V (n2, b) -> K V (n1, b)
    shape: tuple  # (n1, n2)
    dtype: Any  # float32 or float64
    symmetric: bool  # K square and symmetric (x2 = x1): the tile-pair schedule is used
    tile_size: int  # rows per tile (before shrinking to avoid padding)
    n_devices: int  # devices sharing the tiles
    name: str  # the kernel's name, for reports
    diagonal: Callable | None = None  # () -> (n,) diag K, when known cheaply (symmetric only)
    tile_dtype: Any = None  # the dtype the tiles are evaluated in (None: `dtype`)

    @property
    def tile_eps(self) -> float:
        """Machine epsilon of the tiles: the rounding every product carries."""
        return float(jnp.finfo(self.dtype if self.tile_dtype is None else self.tile_dtype).eps)

    def __call__(self, v) -> jax.Array:
        v = as_float_array(v, "V", self.dtype)
        vector = v.ndim == 1
        if vector:
            v = v[:, None]
        if v.ndim != 2 or v.shape[0] != self.shape[1]:
            raise ValueError(
                f"V must have shape ({self.shape[1]},) or ({self.shape[1]}, b) for a kernel "
                f"operator of shape {self.shape}, got {tuple(v.shape)}"
            )
        out = self.apply(v)
        return out[:, 0] if vector else out


def with_float64_products(op: KernelOperator) -> KernelOperator:
    """The same operator with float64 products of its tiles in op's dtype (needs x64): cheap
    float32 tiles under float64 arithmetic; residuals stop above √n·tile_eps·‖K‖."""
    if not jax.config.jax_enable_x64:
        raise ValueError("float64 products need jax_enable_x64 (jax.config.update)")
    if jnp.dtype(op.dtype) == jnp.float64:
        return op
    return dataclasses.replace(
        op,
        apply=lambda v: op.apply(v.astype(op.dtype)).astype(jnp.float64),
        dtype=jnp.dtype(jnp.float64),
        tile_dtype=op.dtype,
    )


def _place(mesh: Mesh, a, spec: P):
    """`a` (the same value on every process) as a global array with sharding `spec`."""
    sharding = NamedSharding(mesh, spec)
    if jax.process_count() == 1:
        return jax.device_put(a, sharding)
    host = np.asarray(a)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def _local(a):
    """This process's copy of a replicated global array, as a single-device array."""
    if isinstance(a, jax.core.Tracer) or len(a.sharding.device_set) == 1:
        return a  # traced (inside a caller's jit) or already local
    return a.addressable_data(0)


def _ntk_of(block_fn, which):
    def tile(a, b):
        out = block_fn(a, b)
        if isinstance(out, Kernel):
            out = getattr(out, which)
            if out is None:
                raise ValueError(f"this kernel function computes no {which!r} kernel")
        return out

    return tile


def _rows_times_v(tile_fn, xr, xc, vc, dtype):
    """Σ_c K(xr_r, xc_c) vc_c for every local row tile r: (R, t, ...) × (C, s, ...) → (R, t, b)."""

    def one_row(xa):
        def body(acc, inp):
            xb, vb = inp
            return acc + tile_fn(xa, xb).astype(dtype) @ vb, None

        acc = jnp.zeros((xa.shape[0], vc.shape[-1]), dtype)
        return lax.scan(body, acc, (xc, vc))[0]

    return lax.map(one_row, xr)


def _pairs_times_v(tile_fn, pi, pj, w, xt, vt, dtype):
    """Σ over tile pairs i ≤ j, weight w ∈ {0, 1}: out_i += K_ij V_j, out_j += K_ijᵀ V_i (i ≠ j)."""

    def body(out, inp):
        i, j, wij = inp
        kij = tile_fn(xt[i], xt[j]).astype(dtype)
        out = out.at[i].add(kij @ (wij * vt[j]))
        off = jnp.where(i == j, 0.0, wij).astype(dtype)
        # A contraction over the tile's first axis: `kij.T @ v` materializes the transpose on CPU.
        kt_v = lax.dot_general(kij, off * vt[i], (((0,), (0,)), ((), ())))
        return out.at[j].add(kt_v), None

    return lax.scan(body, jnp.zeros(vt.shape, dtype), (pi, pj, w))[0]


def _pair_schedule(n_tiles: int, parts: int):
    """Upper-triangle tile pairs split into `parts` equal shares (padded with weight-0 pairs)."""
    i, j = np.triu_indices(n_tiles)
    pad = -i.size % parts
    w = np.concatenate([np.ones(i.size), np.zeros(pad)])
    return np.pad(i, (0, pad)).astype(np.int32), np.pad(j, (0, pad)).astype(np.int32), w


def _as_tiles(x, n_tiles, rows):
    return pad_rows(x, n_tiles * rows).reshape(n_tiles, rows, *x.shape[1:])


def _pad_v(v, total):
    return jnp.pad(v, ((0, total - v.shape[0]), (0, 0)))


def _tiled_apply(local, args, specs, mesh, v_tiles, v_rows, v_spec, out_rows, n, precision):
    """op(V): V padded to (v_tiles, v_rows, b) tiles, `local(*args, tiles)` compiled (shard_mapped
    with `specs` and `v_spec` on several devices), its result trimmed to the n true rows."""
    if mesh.devices.size == 1:
        program = jax.jit(local)
        args = jax.tree_util.tree_map(jnp.asarray, args)
    else:
        program = jax.jit(_shard_map(local, mesh, (*specs, v_spec), P()))
        args = [
            jax.tree_util.tree_map(lambda a, s=s: _place(mesh, a, s), a)
            for a, s in zip(args, specs, strict=True)
        ]

    def apply(v):
        vt = _pad_v(v, v_tiles * v_rows).reshape(v_tiles, v_rows, v.shape[1])
        if mesh.devices.size > 1:
            vt = _place(mesh, vt, v_spec)
        with matmul_precision(precision):
            out = program(*args, vt)
        return _local(out).reshape(out_rows, -1)[:n]

    return apply


def _symmetric_apply(tile_fn, x, mesh, tile, dtype, precision):
    n = x.shape[0]
    parts = mesh.devices.size
    n_tiles, rows = _tile_geometry(n, tile)
    xt = _as_tiles(x, n_tiles, rows)
    pi, pj, w = _pair_schedule(n_tiles, parts)
    w = w.astype(dtype)

    def local(pi, pj, w, xt, vt):
        # When the operator is traced inside a caller's jit (e.g. lobpcg_standard), the inputs
        # are compile-time constants: the barrier keeps XLA from constant-folding kernel tiles.
        pi, pj, w, xt = lax.optimization_barrier((pi, pj, w, xt))
        partial = _pairs_times_v(tile_fn, pi, pj, w, xt, vt, dtype)
        return partial if parts == 1 else lax.psum(partial, _AXIS)

    args, specs = (pi, pj, w, xt), (P(_AXIS), P(_AXIS), P(_AXIS), P())
    return _tiled_apply(local, args, specs, mesh, n_tiles, rows, P(), n_tiles * rows, n, precision)


def _rectangular_apply(tile_fn, x1, x2, mesh, tile, dtype, precision):
    n1, n2 = x1.shape[0], x2.shape[0]
    parts = mesh.devices.size
    r_tiles, r_rows = _tile_geometry(n1, tile, parts)
    c_tiles, c_rows = _tile_geometry(n2, tile)
    xr = _as_tiles(x1, parts * r_tiles, r_rows)
    xc = _as_tiles(x2, c_tiles, c_rows)

    def local(xr, xc, vc):
        xr, xc = lax.optimization_barrier((xr, xc))  # no constant folding (see above)
        out = _rows_times_v(tile_fn, xr, xc, vc, dtype)
        return out if parts == 1 else lax.all_gather(out, _AXIS, tiled=True)

    out_rows = parts * r_tiles * r_rows
    specs = (P(_AXIS), P())
    return _tiled_apply(local, (xr, xc), specs, mesh, c_tiles, c_rows, P(), out_rows, n1, precision)


def _resolve_tile(tile_size, fallback: int | None) -> int:
    check_tile_size(tile_size)
    if tile_size is not None:
        return tile_size
    return _DEFAULT_TILE if fallback is None else min(_DEFAULT_TILE, fallback)


def kernel_operator(
    kernel_fn: PairwiseKernelFn,
    x1,
    x2=None,
    *,
    tile_size: int | None = None,
    symmetric: bool | None = None,
    mesh: Mesh | None = None,
    which: str = "ntk",
) -> KernelOperator:
    """K(x1, x2) as an operator V ↦ K·V, evaluated tile by tile from `kernel_fn.block_fn`.

    (K V)_i = Σ_j K(x1_i, x2_j) V_j, K(a, b) = kernel_fn.block_fn(a, b).ntk (or `.nngp`) on
    (t × t) tiles, each computed once per product in the kernel function's dtype and precision.

    Args:
      kernel_fn: a `kernels.PairwiseKernelFn` (`from_pairwise`, `two_layer_relu_kernel_fn`,
        `fc_kernel_fn`, `nt_backend.kernel_fn_from_stax`, ...). Its `prepare` validates x1, x2.
      x1: (n1, ...) inputs (the same on every process).
      x2: (n2, ...) inputs, or None for the square kernel K(x1, x1).
      tile_size: rows per tile; default: the kernel function's, else its memory-budget tile,
        capped at 1024. Any size works (no divisibility rule).
      symmetric: use the tile-pair schedule (each off-diagonal tile serves K_ij and K_ji);
        default True when x2 is None.
      mesh: the devices that share the work (default `device_mesh()`: all of them).
      which: "ntk" (default) or "nngp", for kernel functions that return both.

    Returns:
      KernelOperator: op(V) -> (n1, b) (or (n1,) for a vector V), op.shape = (n1, n2).

    Example:
      >>> op = kernel_operator(kernels.two_layer_relu_kernel_fn(), x)   # x (40, 5) unit rows
      >>> KV = op(np.ones((40, 4)))                                   # (40, 4), K never formed
      >>> bool(jnp.allclose(KV, kernels.two_layer_relu(x, x) @ np.ones((40, 4))))
      True

    Reference: Charlier et al., arXiv 2004.11127 (KeOps).
    """
    if not isinstance(kernel_fn, PairwiseKernelFn):
        raise TypeError(
            "kernel_operator needs a kernels.PairwiseKernelFn (made by kernels.from_pairwise, "
            "two_layer_relu_kernel_fn, fc_kernel_fn or nt_backend.kernel_fn_from_stax), got "
            f"{type(kernel_fn).__name__}; wrap a pairwise function with kernels.from_pairwise"
        )
    if which not in ("ntk", "nngp"):
        raise ValueError(f"which must be 'ntk' or 'nngp', got {which!r}")
    check_tile_size(tile_size)  # 0 is not "the default" (`tile_size or …` below took it so)
    if symmetric and x2 is not None:
        raise ValueError("symmetric=True needs x2=None (the square kernel K(x1, x1))")
    symmetric = x2 is None if symmetric is None else bool(symmetric)
    dtype = resolve_dtype(kernel_fn.dtype, like=x1)
    x1, x2p = kernel_fn.prepare(x1, x2, dtype)
    x2 = x1 if x2p is None else x2p
    tile = _resolve_tile(tile_size or kernel_fn.tile_size, kernel_fn.tile_for(x1, x2))
    mesh = device_mesh() if mesh is None else mesh
    tile_fn = _ntk_of(kernel_fn.block_fn, which)
    if symmetric:
        apply = _symmetric_apply(tile_fn, x1, mesh, tile, dtype, kernel_fn.precision)
    else:
        apply = _rectangular_apply(tile_fn, x1, x2, mesh, tile, dtype, kernel_fn.precision)
    diagonal = None
    if x2p is None:
        diag_fn = jax.jit(jax.vmap(lambda a: tile_fn(a[None], a[None])[0, 0].astype(dtype)))

        def diagonal():
            with matmul_precision(kernel_fn.precision):
                return diag_fn(x1)

    return KernelOperator(
        apply=apply,
        shape=(x1.shape[0], x2.shape[0]),
        dtype=dtype,
        symmetric=symmetric,
        tile_size=tile,
        n_devices=mesh.devices.size,
        name=kernel_fn.name,
        diagonal=diagonal,
    )


def kernel_diagonal(kernel_fn: PairwiseKernelFn, x, *, which: str = "ntk", batch: int = 1024):
    """K(x_i, x_i) for every row: n kernel evaluations (1 × 1 tiles, `batch` at a time).

    Example:
      >>> float(kernel_diagonal(kernels.two_layer_relu_kernel_fn(), x)[0])   # unit rows: 1/2
      0.5
    """
    tile = _ntk_of(kernel_fn.block_fn, which)
    dtype = resolve_dtype(kernel_fn.dtype, like=x)
    x, _ = kernel_fn.prepare(x, None, dtype)
    diag = jax.jit(lambda rows: jax.lax.map(lambda a: tile(a[None], a[None])[0, 0], rows))
    with matmul_precision(kernel_fn.precision):
        return jnp.concatenate([diag(x[i : i + batch]) for i in range(0, x.shape[0], batch)])


def matrix_operator(K, *, mesh: Mesh | None = None, dtype=None) -> KernelOperator:
    """A kernel matrix already in memory, as a `KernelOperator` (rows shared over the mesh).

    Args:
      K: (n1, n2) matrix. mesh: devices (default all). dtype: default follows K.

    Returns:
      KernelOperator with op(V) = K @ V; symmetric when K is square and equals Kᵀ.

    Example:
      >>> op = matrix_operator(kernels.two_layer_relu(x)); op(np.eye(len(x))[:, :3]).shape
      (40, 3)
    """
    K = as_float_array(K, "K", dtype)
    if K.ndim != 2:
        raise ValueError(f"K must be a matrix (n1, n2), got shape {tuple(K.shape)}")
    check_finite(K, "K")
    n1, n2 = K.shape
    symmetric = bool(n1 == n2 and jnp.array_equal(K, K.T))
    mesh = device_mesh() if mesh is None else mesh
    parts = mesh.devices.size
    rows = -(-n1 // parts)

    def local(k, vt):
        out = k @ vt[0]
        return out if parts == 1 else lax.all_gather(out, _AXIS, tiled=True)

    kp = K if parts == 1 else jnp.pad(K, ((0, parts * rows - n1), (0, 0)))
    apply = _tiled_apply(local, (kp,), (P(_AXIS),), mesh, 1, n2, P(), parts * rows, n1, "highest")
    diag = jnp.diag(K) if symmetric else None
    return KernelOperator(
        apply=apply,
        shape=(n1, n2),
        dtype=K.dtype,
        symmetric=symmetric,
        tile_size=n1,
        n_devices=parts,
        name="matrix",
        diagonal=(lambda: diag) if symmetric else None,
    )


def _outputs(apply_fn, params, x):
    out = apply_fn(params, x)
    return out[:, None] if out.ndim == 1 else out


def _empirical_local(apply_fn, params, xr, xc, vc, scale, parts, dtype):
    """(K V)_r = scale · Σ_a J_a(xr_r) G_a, G_a = Σ_c J_a(xc_c)ᵀ vc_c: (R, t, ...) rows,
    (C, s, ...) columns, (C, s, b) V tiles → (R, t, b)."""
    n_out = _outputs(apply_fn, params, xc[0][:1]).shape[1]
    b = vc.shape[-1]
    eye = jnp.eye(n_out, dtype=dtype)

    def pullback(acc, inp):
        xb, vb = inp
        _, vjp = jax.vjp(lambda p: _outputs(apply_fn, p, xb), params)
        # cotangent for output a and column j: vb[:, j] e_aᵀ, shape (s, n_out)
        cot = vb.T[:, None, :, None] * eye[None, :, None, :]  # (b, A, s, A)
        g = jax.vmap(jax.vmap(lambda c: vjp(c)[0]))(cot)  # leaves (b, A, ...)
        return jax.tree_util.tree_map(jnp.add, acc, g), None

    zeros = jax.tree_util.tree_map(lambda p: jnp.zeros((b, n_out, *jnp.shape(p)), dtype), params)
    g = lax.scan(pullback, zeros, (xc, vc))[0]
    if parts > 1:
        g = lax.psum(g, _AXIS)

    def push(xa):
        _, jvp = jax.linearize(lambda p: _outputs(apply_fn, p, xa), params)
        outs = jax.vmap(jax.vmap(jvp))(g)  # (b, A, t, A): J(xa) G_{j,a}
        own = jnp.einsum("jata->tj", outs)  # output a of J G_a, summed over a
        return scale * own

    return lax.map(push, xr)


def empirical_kernel_operator(
    apply_fn: Callable,
    params,
    x1,
    x2=None,
    *,
    output_reduction: str = "mean",
    tile_size: int | None = None,
    mesh: Mesh | None = None,
    dtype=None,
) -> KernelOperator:
    """The empirical NTK Θ(x1, x2) = J(x1) J(x2)ᵀ as an operator: Θ V = J₁ (J₂ᵀ V), no Jacobian.

    Θ_ij = s Σ_a ∇_p f_a(x1_i)·∇_p f_a(x2_j) for outputs f ∈ R^A, s = 1/A ('mean') or 1 ('sum'):
    one vjp per column tile and one jvp per row tile; the parameters are held b·A times.

    Args:
      apply_fn: f(params, x) -> (n,) or (n, A); pure and jit-compatible.
      params: the parameter pytree (cast to `dtype`).
      x1: (n1, ...) inputs; x2: (n2, ...) or None for x1.
      output_reduction: 'mean' or 'sum' over the A outputs.
      tile_size: examples per tile (default 1024); mesh: devices (default all).
      dtype: float32/float64, default follows x1.

    Returns:
      KernelOperator with op(V) = Θ(x1, x2) V.

    Example:
      >>> apply_fn, params = networks.two_layer_network(64, x, seed=0)
      >>> op = empirical_kernel_operator(apply_fn, params, x)
      >>> theta = empirical.empirical_ntk_fn(apply_fn)(params, x)   # (40, 40)
      >>> v = np.ones((40, 2))
      >>> bool(jnp.allclose(op(v), theta @ v, rtol=1e-6, atol=1e-8))
      True

    Reference: Novak et al., arXiv 2206.08720 (fast finite-width NTK, NTK-vector products).
    """
    if not callable(apply_fn):
        raise TypeError(f"apply_fn must be callable f(params, x), got {apply_fn!r}")
    if output_reduction not in _OUTPUT_REDUCTIONS:
        raise ValueError(
            f"output_reduction must be one of {_OUTPUT_REDUCTIONS} for an operator, got "
            f"{output_reduction!r}"
        )
    dt = resolve_dtype(dtype, like=x1)
    x1 = as_float_array(x1, "x1", dt)
    check_finite(x1, "x1")
    square = x2 is None
    x2 = x1 if square else as_float_array(x2, "x2", dt)
    check_finite(x2, "x2")
    if x1.ndim < 2 or x1.shape[1:] != x2.shape[1:]:
        raise ValueError(
            f"x1 and x2 must be batches (n, ...) of the same example shape, got "
            f"{tuple(x1.shape)} and {tuple(x2.shape)}"
        )
    params = as_float_tree(params, "params", dt)
    n_out = _outputs(apply_fn, params, x1[:1]).shape[1]
    scale = 1.0 / n_out if output_reduction == "mean" else 1.0
    tile = _resolve_tile(tile_size, None)
    mesh = device_mesh() if mesh is None else mesh
    parts = mesh.devices.size
    r_tiles, r_rows = _tile_geometry(x1.shape[0], tile, parts)
    c_tiles, c_rows = _tile_geometry(x2.shape[0], tile, parts)
    xr = _as_tiles(x1, parts * r_tiles, r_rows)
    xc = _as_tiles(x2, parts * c_tiles, c_rows)
    local = functools.partial(_empirical_local, apply_fn, scale=scale, parts=parts, dtype=dt)

    def body(params, xr, xc, vc):
        out = local(params, xr, xc, vc)
        return out if parts == 1 else lax.all_gather(out, _AXIS, tiled=True)

    n1, n2 = x1.shape[0], x2.shape[0]
    specs, out_rows = (P(), P(_AXIS), P(_AXIS)), parts * r_tiles * r_rows
    args = (params, xr, xc)
    apply = _tiled_apply(
        body, args, specs, mesh, parts * c_tiles, c_rows, P(_AXIS), out_rows, n1, "highest"
    )
    return KernelOperator(
        apply=apply,
        shape=(n1, n2),
        dtype=dt,
        symmetric=square,
        tile_size=tile,
        n_devices=parts,
        name="empirical NTK",
    )
