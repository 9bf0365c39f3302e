"""Planning an eNTK evaluation: estimated FLOPs, bytes and peak memory; tile size; 'auto'.

Everything here runs on shapes: the model is traced and lowered (never compiled or run) to read
XLA's cost analysis of one example's forward pass, Jacobian and Jacobian-vector product, and its
jaxpr for the activation bytes of one example. From those and the parameter count P, the number
of outputs k and n1, n2, each implementation gets a cost per tile size and storage mode:

  jacobian   rows/columns: n·(one example's jacrev) FLOPs, k·P numbers stored per example;
             pairs: 2·k·P FLOPs each ('none': 2·k²·P).
  ntvp       columns as above; pairs: k·(one jvp's tangent FLOPs) each; no row Jacobians.
  structured features h_l, δ_l per example; pairs: Σ_l 2 (d_l + k·d_{l+1}) FLOPs.

A plan's cost is FLOPs / φ(t) + β·bytes, with φ(t) = t / (t + 64) the efficiency of a t-row
matrix product and β = 10 FLOPs per byte; features computed inside the compiled tile loop (not
stored) count 4× (XLA CPU runs per-example convolution gradients inside loops far slower, see
_tiles). A plan is feasible when its peak memory — output, stored features, one tile's
intermediates, inputs and parameters — fits the budget; the feasible plan of least cost wins.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

MATMUL_HALF_TILE = 64  # φ(t) = t / (t + 64): rows at which a tile product runs at half speed
FLOPS_PER_BYTE = 10.0  # β: a nominal machine balance
LOOP_FEATURE_PENALTY = 4.0  # features computed inside the compiled tile loop
CPU_CHUNK_ROWS = 32  # rows per feature chunk on CPU (measured best 16-32 for CNN and attention)
CPU_CHUNK_BYTES = 256 << 20  # and at most this working set per chunk on CPU
STRUCTURED_CPU_TILE_MAX = 256  # structured tiles on CPU: 512-row tiles ran 1.4× slower (n=4096)


class EntkPlan(NamedTuple):
    """How an empirical NTK call is evaluated, with its estimated cost (all scalars)."""

    implementation: str  # 'jacobian' | 'ntvp' | 'structured'
    per_example: bool  # vmapped per-example derivatives (False: whole-batch Jacobians)
    tile_size: int  # rows per output tile (n when untiled)
    chunk_size: int  # rows per call of the stored-feature program
    store_rows: bool  # row features computed once, before the tile loop
    store_cols: bool  # column features computed once (else recomputed per tile)
    symmetric: bool  # K(x, x): upper-triangle tiles only, mirrored exactly
    flops: float  # estimated floating-point operations of the whole call
    bytes_accessed: float  # estimated bytes read and written
    peak_bytes: float  # estimated peak memory, output and inputs included
    memory_budget: int  # the budget (bytes) the plan was made for
    reason: str  # one line: why this implementation, tile and storage


class MemoryBudgetError(ValueError):
    """A requested eNTK cannot fit the memory budget (raised before anything is allocated)."""


def _default_memory_budget() -> int:
    """Half an accelerator's `bytes_limit`; on CPU a quarter of the physical memory (or 4 GiB)."""
    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(0.5 * stats["bytes_limit"])
    try:
        return int(0.25 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 4 << 30


class ModelProbe(NamedTuple):
    """Per-example facts about a model at given parameter and input shapes."""

    k: int  # outputs per example
    scalar: bool  # the model returns (n,)
    n_params: int  # P, parameters differentiated
    itemsize: int  # bytes per number
    fwd_flops: float  # one example's forward pass
    jac_flops: float  # one example's Jacobian (reverse mode, k cotangents)
    jvp_flops: float  # one example's Jacobian-vector product (forward and tangent)
    act_bytes: float  # bytes of one example's forward intermediates (jaxpr, upper bound)
    example_bytes: int  # bytes of one input example
    source: str  # 'xla' (cost analysis), 'shapes' (unavailable: from P) or 'none' (not asked)


def _struct(tree):
    return jax.tree_util.tree_map(lambda a: jax.ShapeDtypeStruct(jnp.shape(a), a.dtype), tree)


def _xla_flops(fn, *args) -> float | None:
    """XLA's FLOP count (plus transcendentals) of `fn` lowered for `args` (shapes only)."""
    try:
        analysis = jax.jit(fn).lower(*args).cost_analysis()
    except Exception:  # noqa: BLE001 — any failure means: no analysis on this backend
        return None
    if isinstance(analysis, list | tuple):
        analysis = analysis[0] if analysis else None
    if not analysis or "flops" not in analysis:
        return None
    return float(analysis["flops"]) + float(analysis.get("transcendentals", 0.0))


def _intermediate_bytes(closed_jaxpr) -> float:
    """Σ bytes of every equation's outputs, nested jaxprs included (bounds live activations)."""
    total = 0.0

    def walk(jaxpr):
        nonlocal total
        for eqn in jaxpr.eqns:
            for v in eqn.outvars:
                aval = v.aval
                if hasattr(aval, "shape") and hasattr(aval, "dtype"):
                    total += math.prod(aval.shape) * np.dtype(aval.dtype).itemsize
            for value in eqn.params.values():
                for sub in value if isinstance(value, tuple | list) else (value,):
                    if hasattr(sub, "eqns"):
                        walk(sub)
                    elif hasattr(sub, "jaxpr") and hasattr(sub.jaxpr, "eqns"):
                        walk(sub.jaxpr)

    walk(closed_jaxpr.jaxpr)
    return total


def probe_model(
    model, params, state, example_shape, dtype, costs=("fwd", "jac", "jvp")
) -> ModelProbe:
    """Trace `model` on one example (nothing compiled or run); `costs` lowered for XLA's FLOP
    counts, the others estimated from P (forward 2P, Jacobian 3·k·2P, jvp 4P)."""
    from ._derivatives import per_example_fn

    p, s = _struct(params), _struct(state)
    batch = jax.ShapeDtypeStruct((2, *example_shape), dtype)
    out = jax.eval_shape(model.apply, p, s, batch)
    if out.ndim not in (1, 2) or out.shape[0] != 2:
        raise ValueError(
            f"apply_fn must return (n,) or (n, k) outputs for n inputs; for n = 2 it returned "
            f"shape {tuple(out.shape)}"
        )
    k = 1 if out.ndim == 1 else int(out.shape[1])
    leaves = jax.tree_util.tree_leaves(params)
    n_params = int(sum(math.prod(jnp.shape(leaf)) for leaf in leaves))
    itemsize = np.dtype(dtype).itemsize
    example_bytes = math.prod(example_shape) * itemsize
    x = jax.ShapeDtypeStruct(tuple(example_shape), dtype)
    f = per_example_fn(model)
    fwd = _xla_flops(f, p, s, x) if "fwd" in costs else None
    jac = _xla_flops(jax.jacrev(f), p, s, x) if "jac" in costs else None
    jvp = None
    if "jvp" in costs:
        jvp = _xla_flops(
            lambda q, st, xi, tq: jax.jvp(lambda r: f(r, st, xi), (q,), (tq,)), p, s, x, p
        )
    act = _intermediate_bytes(jax.make_jaxpr(f)(p, s, x))
    analysed = [v for v in (fwd, jac, jvp) if v is not None]
    source = "none" if not costs else "xla" if len(analysed) == len(costs) else "shapes"
    # a dense model's counts where XLA's analysis was not asked for or not available
    fwd = 2.0 * n_params if fwd is None else fwd
    jac = 3.0 * k * 2.0 * n_params if jac is None else jac
    jvp = 4.0 * n_params if jvp is None else jvp
    return ModelProbe(
        k=k,
        scalar=out.ndim == 1,
        n_params=n_params,
        itemsize=itemsize,
        fwd_flops=fwd,
        jac_flops=jac,
        jvp_flops=jvp,
        act_bytes=max(act, float(example_bytes)),
        example_bytes=example_bytes,
        source=source,
    )


class Costs(NamedTuple):
    """Per-example and per-pair costs of one implementation (see the module docstring)."""

    name: str  # implementation
    row_flops: float  # features of one row example
    col_flops: float  # features of one column example
    row_bytes: float  # stored features of one row example
    col_bytes: float  # stored features of one column example
    row_temp: float  # transient bytes per row example while computing its features
    col_temp: float  # same for a column example
    pair_flops: float  # per (i, j) pair of a block
    entries: int  # output numbers per pair (k² for 'none', else 1)
    fixed_bytes: float  # parameters, state and other constants
    pair_temp: float = 0.0  # transient bytes per pair of a block (besides the block itself)
    tile_row_flops: float = 0.0  # per row example per tile (ntvp: the primal of `linearize`)
    tile_row_temp: float = 0.0  # transient bytes per row example per tile
    shared: bool = True  # rows and columns have the same features
    whole_batch: bool = False  # features of the whole batch at once (coupled examples)


def _shared_costs(name, pr: ModelProbe, flops, feature_bytes, temp, pair_flops, entries, **rest):
    """Costs of an implementation whose rows and columns have the same features."""
    return Costs(
        name=name,
        row_flops=flops,
        col_flops=flops,
        row_bytes=feature_bytes,
        col_bytes=feature_bytes,
        row_temp=temp,
        col_temp=temp,
        pair_flops=pair_flops,
        entries=entries,
        fixed_bytes=2.0 * pr.n_params * pr.itemsize,
        **rest,
    )


def jacobian_costs(pr: ModelProbe, reduction: str, n_batch: int | None = None) -> Costs:
    """`n_batch` given: whole-batch Jacobians of a batch of that many examples."""
    b = pr.itemsize
    kk = pr.k * pr.k if (reduction == "none" and not pr.scalar) else 1
    pair = 2.0 * pr.k * pr.n_params * (pr.k if kk > 1 else 1)
    feature_bytes = pr.k * pr.n_params * b
    if n_batch is None:
        flops, temp = pr.jac_flops, (1 + pr.k) * pr.act_bytes + 2 * feature_bytes
    else:  # each one-hot cotangent is propagated through the whole batch
        flops, temp = n_batch * pr.jac_flops, n_batch * pr.act_bytes + 2 * feature_bytes
    whole_batch = n_batch is not None
    return _shared_costs(
        "jacobian", pr, flops, feature_bytes, temp, pair, kk, whole_batch=whole_batch
    )


def ntvp_costs(pr: ModelProbe, reduction: str) -> Costs:
    b = pr.itemsize
    kk = pr.k * pr.k if (reduction == "none" and not pr.scalar) else 1
    tangent_flops = max(pr.jvp_flops - pr.fwd_flops, pr.fwd_flops)
    feature_bytes = pr.k * pr.n_params * b
    return Costs(
        name="ntvp",
        row_flops=0.0,
        col_flops=pr.jac_flops,
        row_bytes=pr.example_bytes,
        col_bytes=feature_bytes,
        row_temp=0.0,
        col_temp=(1 + pr.k) * pr.act_bytes + feature_bytes,
        pair_flops=pr.k * tangent_flops + pr.k * pr.k,
        pair_temp=pr.k * (pr.act_bytes + pr.k * b),
        tile_row_flops=pr.fwd_flops,
        tile_row_temp=pr.act_bytes,
        entries=kk,
        shared=False,
        fixed_bytes=2.0 * pr.n_params * b,
    )


def structured_costs(
    feature_width: int, feature_flops: float, pair_flops: float, entries: int, pr: ModelProbe
) -> Costs:
    width_bytes, pair_temp = feature_width * pr.itemsize, 3.0 * pr.itemsize * entries
    temp = 3.0 * width_bytes
    return _shared_costs(
        "structured", pr, feature_flops, width_bytes, temp, pair_flops, entries, pair_temp=pair_temp
    )


class _Candidate(NamedTuple):
    cost: float
    flops: float
    bytes_accessed: float
    peak: float
    tile: int
    chunk: int
    store_rows: bool
    store_cols: bool


def _chunk_size(temp_per_example: float, n: int, budget_share: float, on_cpu: bool) -> int:
    """Rows per feature chunk: on CPU small chunks (per-example activations stay in cache), on
    accelerators as many as a quarter of the free budget holds (at most 1024)."""
    c, limit = (
        (CPU_CHUNK_ROWS, min(CPU_CHUNK_BYTES, budget_share)) if on_cpu else (1024, budget_share / 4)
    )
    while c > 1 and c * temp_per_example > limit:
        c //= 2
    return max(1, min(c, n))


def _evaluate(
    c: Costs, n1, n2, symmetric, tile, store_rows, store_cols, itemsize, budget, on_cpu
) -> _Candidate:
    t1, t2 = min(tile, n1), min(tile, n2)
    nb1, nb2 = math.ceil(n1 / t1), math.ceil(n2 / t2)
    n1p, n2p = nb1 * t1, nb2 * t2
    tiles = nb1 * (nb1 + 1) // 2 if symmetric else nb1 * nb2
    pairs = tiles * t1 * t2
    reuse = symmetric and c.shared and store_cols  # rows read from the column store
    rows_in_loop = not (store_rows or reuse)
    if reuse:
        row_evals, col_evals = 0, n2p
    elif store_cols:  # rows once per row of tiles, stored or not
        row_evals, col_evals = n1p, n2p
    elif symmetric:  # off-diagonal tiles, plus the diagonal ones unless rows serve them
        row_evals, col_evals = n1p, (tiles - nb1) * t2 + (0 if c.shared else nb1 * t2)
    else:
        row_evals, col_evals = n1p, tiles * t2
    feature_flops = row_evals * c.row_flops + col_evals * c.col_flops
    loop_flops = (row_evals * c.row_flops if rows_in_loop else 0) + (
        0 if store_cols else col_evals * c.col_flops
    )
    pair_flops = pairs * c.pair_flops + tiles * t1 * c.tile_row_flops
    flops = feature_flops + pair_flops
    # memory
    stored = (n1p * c.row_bytes if store_rows and not reuse else 0) + (
        n2p * c.col_bytes if store_cols else 0
    )
    held = (t1 * c.row_bytes if rows_in_loop else 0) + (0 if store_cols else t2 * c.col_bytes)
    out_bytes = (n1p * n2p + n1 * n2) * c.entries * itemsize
    block = t1 * t2 * (c.pair_temp + 2 * c.entries * itemsize) + t1 * c.tile_row_temp
    temp_ex = max(c.row_temp, c.col_temp)
    share = max(budget - out_bytes - stored - held - block - c.fixed_bytes, 0.0)
    chunk = _chunk_size(temp_ex, max(n1p, n2p), share, on_cpu)
    if c.whole_batch:
        chunk = max(1, min(chunk, max(n1, n2)))
    feature_temp = max(
        chunk * temp_ex if (store_rows or store_cols) else 0.0,
        max(t1, t2) * temp_ex if rows_in_loop or not store_cols else 0.0,
    )
    peak = out_bytes + stored + held + block + feature_temp + c.fixed_bytes
    bytes_accessed = (
        (row_evals * c.row_bytes + col_evals * c.col_bytes)
        + tiles * (t1 * c.row_bytes + t2 * c.col_bytes)
        + out_bytes
    )
    phi = min(t1, t2) / (min(t1, t2) + MATMUL_HALF_TILE)
    cost = (
        feature_flops
        + (LOOP_FEATURE_PENALTY - 1.0) * loop_flops
        + pair_flops / phi
        + FLOPS_PER_BYTE * bytes_accessed
    )
    return _Candidate(cost, flops, bytes_accessed, peak, tile, chunk, store_rows, store_cols)


def _tiles(n_max: int, tile_size: int | None) -> list[int]:
    """The tile sizes searched: the one given, else n_max and the powers of two below it."""
    if tile_size is not None:
        return [int(tile_size)]
    return [n_max, *(1 << i for i in range((n_max - 1).bit_length()))]


def best_plan(c: Costs, n1, n2, symmetric, tile_size, itemsize, budget, on_cpu):
    """Least-cost feasible (tile, storage) for one implementation, or (None, least peak)."""
    modes = [(True, True)] if c.whole_batch else [(True, True), (False, True), (False, False)]
    best, least = None, None
    tiles = _tiles(max(n1, n2), tile_size)
    if on_cpu and c.name == "structured" and tile_size is None:
        # (t, t) elementwise intermediates leave the cache above 256 rows (see the constant)
        tiles = [t for t in tiles if t <= STRUCTURED_CPU_TILE_MAX] or [min(tiles)]
    for tile in tiles:
        for store_rows, store_cols in modes:
            if symmetric and c.shared and store_cols and not store_rows:
                continue  # the column store serves the rows too: same as (True, True)
            cand = _evaluate(
                c, n1, n2, symmetric, tile, store_rows, store_cols, itemsize, budget, on_cpu
            )
            if least is None or cand.peak < least.peak:
                least = cand
            if cand.peak <= budget and (best is None or cand.cost < best.cost):
                best = cand
    return best, least


def gb(x: float) -> str:
    return f"{x / 1e9:.3g} GB"


def describe(name: str, cand: _Candidate) -> str:
    storage = (
        "features stored"
        if cand.store_rows and cand.store_cols
        else "column features stored"
        if cand.store_cols
        else "features recomputed per tile"
    )
    return (
        f"{name} (tile {cand.tile}, {storage}): est. {cand.flops:.3g} flops, {gb(cand.peak)} peak"
    )
