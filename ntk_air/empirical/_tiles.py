"""The eNTK tile loop: per-row features, then Θ tile by tile; for K(x, x) the upper tiles only,
mirrored exactly (`_tile_step`). Stored features are computed a chunk per call of one compiled
program, not in a compiled loop: XLA CPU runs per-example convolution gradients inside while
loops 10–25× slower (jax 0.10).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from .._checks import is_concrete
from .._tiling import pad_rows


def _rows(tree, start, size):
    return jax.tree_util.tree_map(lambda a: lax.dynamic_slice_in_dim(a, start, size, 0), tree)


def all_concrete(*trees) -> bool:
    return all(is_concrete(leaf) for leaf in jax.tree_util.tree_leaves(trees))


def _grid(tile, x1, x2, f1, f2):
    """(n1, n2, t1, t2, nb1, nb2): rows, tile sizes and tile counts of each side."""
    n1 = x1.shape[0] if f1 is None else jax.tree_util.tree_leaves(f1)[0].shape[0]
    n2 = x2.shape[0] if f2 is None else jax.tree_util.tree_leaves(f2)[0].shape[0]
    t1 = n1 if tile is None else min(tile, n1)
    t2 = n2 if tile is None else min(tile, n2)
    return n1, n2, t1, t2, n1 // t1, n2 // t2


def _put(out, value, row, col):
    return lax.dynamic_update_slice(out, value, (row, col) + (0,) * (value.ndim - 2))


def _tile_rows(engine, side, size, params, state, x, f, i):
    """Tile i's features: from the store f, else engine.<side> of its rows of x."""
    if f is not None:
        return _rows(f, i * size, size)
    return getattr(engine, side)(params, state, _rows(x, i * size, size))


@functools.partial(
    jax.jit, static_argnames=("engine", "side", "chunk"), donate_argnames=("buffer",)
)
def _write_chunk(engine, side, chunk, buffer, params, state, x, start):
    features = getattr(engine, side)
    values = features(params, state, lax.dynamic_slice_in_dim(x, start, chunk, 0))
    return jax.tree_util.tree_map(
        lambda b, v: lax.dynamic_update_slice_in_dim(b, v, start, 0), buffer, values
    )


@functools.partial(jax.jit, static_argnames=("engine", "side", "chunk"))
def _empty_buffer(engine, side, chunk, params, state, x):
    """Zeros shaped like the features of all rows of x (compiled, so not retraced per call)."""
    chunk_x = jax.ShapeDtypeStruct((chunk, *x.shape[1:]), x.dtype)
    shapes = jax.eval_shape(getattr(engine, side), params, state, chunk_x)
    return jax.tree_util.tree_map(lambda s: jnp.zeros((x.shape[0], *s.shape[1:]), s.dtype), shapes)


def stored_features(engine, side: str, params, state, x, chunk: int):
    """engine.<side>(params, state, x) for all rows of x, `chunk` rows per call → leaves (n, ...).

    Concrete inputs: one compiled chunk program writing into a donated buffer (the last chunk
    overlaps the previous one); traced inputs: a compiled loop over padded chunks.
    """
    features = getattr(engine, side)
    n = x.shape[0]
    c = max(1, min(int(chunk), n))
    if not all_concrete(params, state, x):
        xp = pad_rows(x, c)
        per_chunk = lax.map(lambda xb: features(params, state, xb), xp.reshape(-1, c, *x.shape[1:]))
        return jax.tree_util.tree_map(lambda a: a.reshape(-1, *a.shape[2:])[:n], per_chunk)
    buffer = _empty_buffer(engine, side, c, params, state, x)
    starts = list(range(0, n - c + 1, c))
    if starts[-1] + c < n:
        starts.append(n - c)
    for start in starts:
        buffer = _write_chunk(engine, side, c, buffer, params, state, x, start)
    return buffer


def _swap_pair(block):
    """Θ(b, a) from Θ(a, b): swap the two row axes and, for (t, t, k, k) blocks, the outputs."""
    return block.transpose(1, 0, 3, 2) if block.ndim == 4 else block.T


def _symmetrize_diagonal(block):
    """Entries below the diagonal := the transposed ones above it (exact symmetry of a diagonal
    tile). For (t, t, k, k) blocks the order is over (row, output) pairs: (i, a) > (j, b)."""
    t = block.shape[0]
    row, col = jnp.arange(t)[:, None], jnp.arange(t)[None, :]
    if block.ndim == 2:
        lower = row > col
    else:
        k = block.shape[2]
        out_lower = jnp.arange(k)[:, None] > jnp.arange(k)[None, :]
        lower = (row > col)[:, :, None, None] | ((row == col)[:, :, None, None] & out_lower)
    return jnp.where(lower, _swap_pair(block), block)


@functools.partial(jax.jit, static_argnames=("engine", "mode", "t2"), donate_argnames=("out",))
def _tile_step(engine, mode, t2, out, params, state, fa, x2, f2, i, j):
    """Tile (i, j) written into `out` in place: 'rect'; 'diagonal' made exactly symmetric;
    'mirror' with its transpose at (j, i)."""
    t1 = jax.tree_util.tree_leaves(fa)[0].shape[0]
    if mode == "diagonal" and engine.shared:
        fb = fa
    else:
        fb = _tile_rows(engine, "col_features", t2, params, state, x2, f2, j)
    block = engine.block(params, state, fa, fb)
    if mode == "diagonal":
        return _put(out, _symmetrize_diagonal(block), i * t1, i * t1)
    out = _put(out, block, i * t1, j * t2)
    if mode == "mirror":
        out = _put(out, _swap_pair(block), j * t2, i * t1)
    return out


def _python_loop(lower, upper, body, value):
    """`lax.fori_loop` in Python (concrete bounds): one compiled call per tile."""
    for i in range(lower, upper):
        value = body(i, value)
    return value


def _schedule(loop, engine, tile, symmetric, params, state, x1, x2, f1, f2):
    """Θ tile by tile (the upper triangle when symmetric), row of tiles by row, `loop` over them."""
    _, _, t1, t2, nb1, nb2 = _grid(tile, x1, x2, f1, f2)
    out = _empty_output(engine, tile, params, state, x1, x2, f1, f2)

    def row(i, out):
        fa = _row_tile_features(engine, t1, params, state, x1, f1, i)

        def step(mode, j, out):
            return _tile_step(engine, mode, t2, out, params, state, fa, x2, f2, i, j)

        if not symmetric:
            return loop(0, nb2, functools.partial(step, "rect"), out)
        out = step("diagonal", i, out)
        return loop(i + 1, nb2, functools.partial(step, "mirror"), out)

    return loop(0, nb1, row, out)


@functools.partial(jax.jit, static_argnames=("engine", "tile", "symmetric", "precompute"))
def tile_loop(engine, tile, symmetric, params, state, x1, x2, f1, f2, precompute=(False, False)):
    """Θ over whole tiles (rows already padded to multiples of the tile sizes).

    Args:
      engine: row_features / col_features / block (see _derivatives, _structured).
      tile: rows per tile (None: one tile).
      symmetric: K(x1, x1): x2 and f2 describe the same rows as x1 and f1.
      x1, x2: (n1, ...), (n2, ...) padded rows (features computed in the loop when not stored).
      f1, f2: stored row / column features with n1 / n2 rows, or None.
      precompute: (rows, columns) whose features are computed here, before the loop.

    Returns:
      (n1, n2) or (n1, n2, k, k) on the padded rows.
    """
    if precompute[1]:
        f2 = engine.col_features(params, state, x2)
    if precompute[0]:
        f1 = (
            f2
            if (symmetric and engine.shared and precompute[1])
            else engine.row_features(params, state, x1)
        )
    one_tile = _grid(tile, x1, x2, f1, f2)[4:] == (1, 1)  # no loop to compile
    loop = _python_loop if one_tile else lax.fori_loop
    return _schedule(loop, engine, tile, symmetric, params, state, x1, x2, f1, f2)


@functools.partial(jax.jit, static_argnames=("engine", "size"))
def _row_tile_features(engine, size, params, state, x, f, i):
    return _tile_rows(engine, "row_features", size, params, state, x, f, i)


@functools.partial(jax.jit, static_argnames=("engine", "tile"))
def _empty_output(engine, tile, params, state, x1, x2, f1, f2):
    """Zeros shaped like Θ on the padded rows (shapes only: nothing is evaluated)."""
    n1, n2, t1, t2, _, _ = _grid(tile, x1, x2, f1, f2)
    block = jax.eval_shape(
        lambda: engine.block(
            params,
            state,
            _tile_rows(engine, "row_features", t1, params, state, x1, f1, 0),
            _tile_rows(engine, "col_features", t2, params, state, x2, f2, 0),
        )
    )
    return jnp.zeros((n1, n2, *block.shape[2:]), block.dtype)


def eager_tile_loop(engine, tile, symmetric, params, state, x1, x2, f1, f2):
    """`tile_loop`'s result with the loop in Python (concrete inputs): one call per tile."""
    return _schedule(_python_loop, engine, tile, symmetric, params, state, x1, x2, f1, f2)
