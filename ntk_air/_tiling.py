"""Tiled evaluation of pairwise kernels over rows of x1 and x2: one compiled loop writes each
(tile × tile) block into the output in place, so the intermediates' memory is bounded by the tile.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

PRECISIONS = ("highest", "high", "default")
"""Matmul precisions of `matmul_precision` ('highest' by default: no TF32 on GPUs)."""


def matmul_precision(precision: str | None = "highest"):
    """Context for matmul precision while tracing (None: JAX's; 'highest': no TF32 on GPUs)."""
    if precision is None:
        return contextlib.nullcontext()
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS} or None, got {precision!r}")
    return jax.default_matmul_precision(precision)


def check_tile_size(tile_size) -> None:
    """Raise ValueError unless `tile_size` is None (no tiling) or a positive int."""
    if tile_size is not None and (
        isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < 1
    ):
        raise ValueError(f"tile_size must be a positive int or None, got {tile_size!r}")


def pad_rows(x: jax.Array, multiple: int) -> jax.Array:
    """Rows of x followed by copies of its last row, up to a multiple of `multiple` rows."""
    pad = (-x.shape[0]) % multiple
    if pad == 0:
        return x
    return jnp.concatenate([x, jnp.repeat(x[-1:], pad, axis=0)], axis=0)


def tiled_pairwise(
    block_fn: Callable[[jax.Array, jax.Array], object],
    x1: jax.Array,
    x2: jax.Array,
    tile_size: int | None,
    *,
    symmetric: bool = False,
):
    """`block_fn(x1_block, x2_block)` over all tiles, assembled; a last partial tile starts at
    n − tile (overlapping the one before it).

    Args:
      block_fn: pure function of (b1, ...) and (b2, ...) rows returning a pytree of arrays
        whose two leading axes are (b1, b2) (exactly two axes when symmetric).
      x1: (n1, ...) rows.
      x2: (n2, ...) rows.
      tile_size: rows per tile; None evaluates `block_fn(x1, x2)` untiled.
      symmetric: x2 holds x1's rows and every leaf has K[i, j] = K[j, i]: only the tiles
        (i, j ≥ i) are computed, each also written transposed at (j, i).

    Returns:
      The pytree `block_fn(x1, x2)` would return, with leaves of shape (n1, n2, ...).
    """
    check_tile_size(tile_size)
    n1, n2 = x1.shape[0], x2.shape[0]
    if tile_size is None or (tile_size >= n1 and tile_size >= n2):
        return block_fn(x1, x2)
    t1, t2 = min(tile_size, n1), min(tile_size, n2)
    nb1, nb2 = -(-n1 // t1), -(-n2 // t2)
    symmetric = bool(symmetric) and (n1, t1) == (n2, t2)
    # the (i, j) tiles visited: all of them, or the upper triangle j ≥ i when symmetric
    pairs = [(i, j) for i in range(nb1) for j in range(i if symmetric else 0, nb2)]
    rows, cols = (jnp.asarray(ij, jnp.int32) for ij in zip(*pairs, strict=True))
    shapes = jax.eval_shape(block_fn, x1[:t1], x2[:t2])
    out = jax.tree_util.tree_map(lambda a: jnp.zeros((n1, n2, *a.shape[2:]), a.dtype), shapes)
    lower = jnp.arange(t1)[:, None] > jnp.arange(t2)[None, :]

    def put(leaf, value, r, c):
        return lax.dynamic_update_slice(leaf, value, (r, c) + (0 * r,) * (value.ndim - 2))

    def step(k, out):
        # the last tile starts at n − t (dynamic_slice would clamp there too): it overlaps
        r, c = jnp.minimum(rows[k] * t1, n1 - t1), jnp.minimum(cols[k] * t2, n2 - t2)
        blocks = block_fn(
            lax.dynamic_slice_in_dim(x1, r, t1, 0), lax.dynamic_slice_in_dim(x2, c, t2, 0)
        )
        if not symmetric:
            return jax.tree_util.tree_map(lambda o, v: put(o, v, r, c), out, blocks)

        def mirror(o, v):
            v = jnp.where(lower & (r == c), v.T, v)
            return put(put(o, v, r, c), v.T, c, r)

        return jax.tree_util.tree_map(mirror, out, blocks)

    return lax.fori_loop(0, rows.shape[0], step, out)


def call_tiled(grid_fn, x1: jax.Array, x2: jax.Array, tile_size: int | None):
    """`grid_fn(x1p, x2p, tile_size)` (a jitted tile loop) on rows padded to whole tiles, trimmed
    to (n1, n2, ...): one compiled loop serves every n that pads to the same rows."""
    check_tile_size(tile_size)
    n1, n2 = x1.shape[0], x2.shape[0]
    if tile_size is None or (tile_size >= n1 and tile_size >= n2):
        return grid_fn(x1, x2, None)
    x1p = pad_rows(x1, min(tile_size, n1))
    x2p = pad_rows(x2, min(tile_size, n2))
    return jax.tree_util.tree_map(lambda a: a[:n1, :n2], grid_fn(x1p, x2p, tile_size))
