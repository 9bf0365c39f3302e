"""`empirical_ntk_fn`: the eNTK as a function of the parameters (plans, coupled batches, tiles)."""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import (
    as_float_array,
    as_float_tree,
    check_finite,
    check_int,
    check_rank,
    check_same_features,
    is_concrete,
    resolve_dtype,
)
from .._tiling import call_tiled, check_tile_size, matmul_precision
from ..networks._models import MLP, TwoLayerReLU
from . import _plan
from ._adapters import Model, as_model, cast_state
from ._derivatives import BatchJacobianEngine, JacobianEngine, NtvpEngine
from ._plan import EntkPlan, MemoryBudgetError
from ._structured import MLPEngine, TwoLayerEngine, two_layer_weight
from ._tiles import all_concrete, eager_tile_loop, stored_features, tile_loop

IMPLEMENTATIONS = ("jacobian", "ntvp", "structured", "auto")
"""Empirical-NTK implementations: Jacobian contraction, NTK-vector products, structured
(closed-form Gram products for ntk_air's MLP and two-layer network), or 'auto' (chosen by cost)."""
OUTPUT_REDUCTIONS = ("mean", "sum", "none")
"""Output reductions: mean (neural-tangents' trace_axes=(-1,)), sum (the trace), none (k × k)."""

Implementation = Literal["jacobian", "ntvp", "structured", "auto"]
OutputReduction = Literal["mean", "sum", "none"]

COUPLING_PROBE_ROWS = 8  # rows compared as one batch and one by one


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _prepare_inputs(x1, x2, dtype, exact_rank: int | None):
    """Cast x1, x2 to `dtype`, check rank (exact, or ≥ 2 for generic models) and finiteness."""
    out = []
    for name, x in (("x1", x1), ("x2", x2)):
        if x is None:
            out.append(None)
            continue
        x = as_float_array(x, name, dtype)
        if exact_rank is not None:
            check_rank(x, name, exact_rank)
        elif x.ndim < 2:
            raise ValueError(
                f"{name} must have rank ≥ 2 (a batch axis, then the feature axes), got shape "
                f"{tuple(x.shape)}; reshape a batch of scalars to (n, 1)"
            )
        check_finite(x, name)
        out.append(x)
    if out[1] is not None:
        check_same_features(out[0], out[1])
    return out[0], out[1]


def _signature(tree):
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    return treedef, tuple((tuple(jnp.shape(a)), str(jnp.result_type(a))) for a in leaves)


@functools.partial(jax.jit, static_argnames="model")
def _coupling_gap(model, params, state, x):
    """max |f(X) − [f(x_1); …; f(x_m)]| and max |f(X)| for a batch X of m rows."""
    m = x.shape[0]
    batch = model.apply(params, state, x).reshape(m, -1)
    single = jax.vmap(lambda xi: model.apply(params, state, xi[None]).reshape(-1))(x)
    return jnp.max(jnp.abs(batch - single)), jnp.max(jnp.abs(batch))


def _surrogate(tree, seed=0):
    """Concrete stand-ins for traced leaves: N(0, 1) floats, zeros otherwise."""
    rng = np.random.default_rng(seed)

    def leaf(a):
        if is_concrete(a):
            return a
        if jnp.issubdtype(a.dtype, jnp.floating):
            return jnp.asarray(rng.normal(size=a.shape), a.dtype)
        return jnp.zeros(a.shape, a.dtype)

    return jax.tree_util.tree_map(leaf, tree)


def examples_coupled(model: Model, params, state, x) -> tuple[bool, float]:
    """(coupled, relative gap): f(X) differs from the f(x_i) beyond √eps on the first ≤ 8 rows."""
    m = min(x.shape[0], COUPLING_PROBE_ROWS)
    if m < 2:
        return False, 0.0
    with jax.ensure_compile_time_eval():
        if is_concrete(x):
            xs = x[:m]
        else:
            xs = jnp.asarray(np.random.default_rng(1).normal(size=(m, *x.shape[1:])), x.dtype)
        gap, scale = _coupling_gap(model, _surrogate(params), _surrogate(state), xs)
        gap, scale = float(gap), float(scale)
    rel = gap / max(scale, float(np.finfo(np.dtype(x.dtype)).tiny))
    return rel > float(np.sqrt(np.finfo(np.dtype(x.dtype)).eps)), rel


@functools.partial(jax.jit, static_argnames="engine")
def _batch_features(engine, params, state, x):
    return engine.batch_features(params, state, x)


@dataclasses.dataclass(frozen=True, eq=False)
class EmpiricalNTKFn:
    """`ntk_fn(params, x1, x2=None, *, dtype=None) -> Θ`, made by `empirical_ntk_fn`; `.plan(...)`
    returns the `EntkPlan` (memoized per shapes, so new parameter values reuse it)."""

    model: Model
    implementation: str
    output_reduction: str
    tile_size: int | None
    memory_budget: int | None
    precision: str | None
    per_example: bool | None
    structured: Any = None  # MLPEngine | TwoLayerEngine | None
    _plans: dict = dataclasses.field(default_factory=dict, repr=False)

    def _prepare(self, params_or_variables, x1, x2, dtype):
        dt = resolve_dtype(dtype, like=x1)
        exact_rank = 2 if self.structured is not None else None
        x1, x2 = _prepare_inputs(x1, x2, dt, exact_rank)
        params, state = self.model.split(params_or_variables)
        params, state = as_float_tree(params, "params", dt), cast_state(state, dt)
        if self.structured is not None:
            self.structured.check(params, x1)
        return params, state, x1, x2, dt

    def _resolve(self, params, state, x1, x2, dt):
        key = (
            _signature(params),
            _signature(state),
            tuple(x1.shape),
            None if x2 is None else tuple(x2.shape),
            str(dt),
        )
        if key not in self._plans:
            self._plans[key] = self._make_plan(params, state, x1, x2, dt)
        return self._plans[key]

    def _make_plan(self, params, state, x1, x2, dt):
        budget = self.memory_budget or _plan._default_memory_budget()
        on_cpu = jax.devices()[0].platform == "cpu"
        symmetric = x2 is None
        n1, n2 = x1.shape[0], (x1 if symmetric else x2).shape[0]
        reduction = self.output_reduction
        if self.per_example is False and self.implementation != "structured":
            names = ["jacobian"]  # whole-batch derivatives: Jacobian contraction only
        elif self.implementation != "auto":
            names = [self.implementation]
        else:
            names = (["structured"] if self.structured is not None else []) + ["jacobian", "ntvp"]
        needs = {"jacobian": {"jac"}, "ntvp": {"fwd", "jac", "jvp"}}
        needs = set().union(*(needs.get(name, set()) for name in names))
        probe = _plan.probe_model(self.model, params, state, x1.shape[1:], dt, costs=needs)
        n_batch = max(n1, n2) if self.per_example is False else None  # whole-batch Jacobians
        costs = {
            "structured": lambda: self.structured.costs(probe, params, x1),
            "jacobian": lambda: _plan.jacobian_costs(probe, reduction, n_batch=n_batch),
            "ntvp": lambda: _plan.ntvp_costs(probe, reduction),
        }
        costs = {name: costs[name]() for name in names}
        itemsize = np.dtype(dt).itemsize

        def search(c):
            return _plan.best_plan(c, n1, n2, symmetric, self.tile_size, itemsize, budget, on_cpu)

        results = {name: search(c) for name, c in costs.items()}
        feasible = {name: best for name, (best, _) in results.items() if best is not None}
        if not feasible:
            name, (_, least) = min(results.items(), key=lambda kv: kv[1][1].peak)
            raise MemoryBudgetError(
                f"the empirical NTK of {n1}×{n2} inputs needs at least {_plan.gb(least.peak)} "
                f"({name}, tile {least.tile}; output alone "
                f"{_plan.gb((n1 * n2) * costs[name].entries * itemsize)}) but memory_budget is "
                f"{_plan.gb(budget)}; pass a larger memory_budget=, fewer inputs"
                + (", or output_reduction='mean'" if reduction == "none" else "")
                + (" or a smaller tile_size=" if self.tile_size is not None else "")
            )
        chosen = min(feasible, key=lambda name: feasible[name].cost)
        best = feasible[chosen]
        per_example = self.per_example is not False
        reason = self._reason(chosen, best, feasible, names, probe)
        if chosen != "structured" and self.per_example is None:
            coupled, gap = examples_coupled(self.model, params, state, x1)
            if coupled:
                best, least = search(_plan.jacobian_costs(probe, reduction, n_batch=max(n1, n2)))
                if best is None:
                    raise MemoryBudgetError(
                        f"apply_fn couples the examples of a batch, and the whole-batch empirical "
                        f"NTK of {n1}×{n2} inputs needs at least {_plan.gb(least.peak)} but "
                        f"memory_budget is {_plan.gb(budget)}; pass a larger memory_budget= or "
                        "fewer inputs"
                    )
                chosen, per_example = "jacobian", False
                reason = (
                    f"whole-batch jacobian: the model couples the examples of a batch (outputs of "
                    f"a batch of {min(n1, COUPLING_PROBE_ROWS)} differ from the per-example "
                    f"outputs by {gap:.2g} relative, e.g. batch statistics in training mode); "
                    + _plan.describe("jacobian", best)
                )
                warnings.warn(
                    f"empirical NTK: {reason}. Per-example derivatives would be wrong for this "
                    "model; pass per_example=False to silence this warning.",
                    stacklevel=4,
                )
        engine = self._engine(chosen, per_example, probe, best)
        plan = EntkPlan(
            implementation=chosen,
            per_example=per_example,
            tile_size=int(min(best.tile, max(n1, n2))),
            chunk_size=int(best.chunk),
            store_rows=bool(best.store_rows),
            store_cols=bool(best.store_cols),
            symmetric=symmetric,
            flops=float(best.flops),
            bytes_accessed=float(best.bytes_accessed),
            peak_bytes=float(best.peak),
            memory_budget=int(budget),
            reason=reason,
        )
        return plan, engine

    def _reason(self, chosen, best, feasible, names, probe):
        head = _plan.describe(chosen, best)
        src = ""
        if probe.source == "shapes":
            src = " [XLA cost analysis unavailable: flops from the parameter count]"
        if self.implementation != "auto":
            return f"{head} (implementation={self.implementation!r} requested){src}"
        others = []
        for name in names:
            if name == chosen:
                continue
            if name in feasible:
                ratio = feasible[name].flops / max(best.flops, 1.0)
                others.append(f"{name} est. {feasible[name].flops:.3g} flops ({ratio:.3g}×)")
            else:
                others.append(f"{name} does not fit the memory budget")
        if self.structured is None and "structured" not in names:
            others.append("structured n/a (not an ntk_air MLP or TwoLayerReLU)")
        return f"auto: {head}" + (f"; {'; '.join(others)}" if others else "") + src

    def _engine(self, chosen, per_example, probe, best):
        r = self.output_reduction
        if chosen == "structured":
            return self.structured
        if not per_example:
            return BatchJacobianEngine(self.model, r, probe.scalar, int(best.chunk))
        cls = JacobianEngine if chosen == "jacobian" else NtvpEngine
        return cls(self.model, r, probe.scalar)

    def plan(self, params, x1, x2=None, *, dtype=None) -> EntkPlan:
        """The `EntkPlan` a call with these arguments uses (nothing is computed)."""
        params, state, x1, x2, dt = self._prepare(params, x1, x2, dtype)
        with matmul_precision(self.precision):
            return self._resolve(params, state, x1, x2, dt)[0]

    def __call__(self, params, x1, x2=None, *, dtype=None):
        params, state, x1, x2, dt = self._prepare(params, x1, x2, dtype)
        with matmul_precision(self.precision):
            plan, engine = self._resolve(params, state, x1, x2, dt)
            return _evaluate(plan, engine, params, state, x1, x2)


def _evaluate(plan: EntkPlan, engine, params, state, x1, x2):
    """Θ(x1, x2) by the plan: features, then the tile loop on padded rows, trimmed after it."""
    symmetric = x2 is None
    if not plan.per_example:
        f1 = _batch_features(engine, params, state, x1)
        f2 = f1 if symmetric else _batch_features(engine, params, state, x2)

        def grid_on_features(a, b, tile):
            return tile_loop(engine, tile, symmetric, params, state, a, b, a, b)

        return call_tiled(grid_on_features, f1, f2, plan.tile_size)

    def grid(rows, b, tile):
        cols = rows if symmetric else b
        reuse = symmetric and engine.shared and plan.store_cols  # rows from the column store
        features_in_loop = not plan.store_cols or not (plan.store_rows or reuse)
        # tiles that run the model: one compiled call per tile (see _tiles)
        eager = all_concrete(params, state, rows, cols) and (
            engine.block_runs_model or features_in_loop
        )
        one_chunk = (  # a store that fits one chunk is computed inside the tile loop
            not eager and plan.store_cols and cols.shape[0] <= plan.chunk_size,
            not eager and plan.store_rows and not reuse and rows.shape[0] <= plan.chunk_size,
        )
        f2 = None
        if plan.store_cols and not one_chunk[0]:
            f2 = stored_features(engine, "col_features", params, state, cols, plan.chunk_size)
        f1 = f2 if reuse else None
        if plan.store_rows and not reuse and not one_chunk[1]:
            f1 = stored_features(engine, "row_features", params, state, rows, plan.chunk_size)
        if eager:
            return eager_tile_loop(engine, tile, symmetric, params, state, rows, cols, f1, f2)
        precompute = (one_chunk[1] or (reuse and one_chunk[0]), one_chunk[0])
        return tile_loop(
            engine, tile, symmetric, params, state, rows, cols, f1, f2, precompute=precompute
        )

    return call_tiled(grid, x1, x1 if symmetric else x2, plan.tile_size)


def _two_layer_surrogate_apply(params, x):
    """f(x) = (1/√m) Σ_r ReLU(w_r·x) (a_r = 1): the NTK of W does not depend on a_r = ±1."""
    w = two_layer_weight(params)
    return jax.nn.relu(x @ w.T).sum(axis=-1) / jnp.sqrt(jnp.asarray(w.shape[0], x.dtype))


def empirical_ntk_fn(
    apply_fn,
    *,
    implementation: Implementation = "jacobian",
    output_reduction: OutputReduction = "mean",
    tile_size: int | None = None,
    model: MLP | TwoLayerReLU | None = None,
    memory_budget: int | None = None,
    precision: str | None = "highest",
    per_example: bool | None = None,
) -> EmpiricalNTKFn:
    """Empirical NTK Θ(x1, x2) = J(x1) J(x2)ᵀ of a model, as a function of its parameters.

    J(x) = ∂f(params, x)/∂params over every leaf of `params`; for k outputs Θ is
    'mean': (1/k) Σ_a J_a(x_i)·J_a(x_j), 'sum': Σ_a J_a(x_i)·J_a(x_j) (n1, n2), or 'none':
    Θ[i, j, a, b] = J_a(x_i)·J_b(x_j) (n1, n2, k, k); (n,) outputs give (n1, n2). A model that
    couples a batch's examples is detected and differentiated as a whole batch, with a warning;
    a call that cannot fit `memory_budget` raises `MemoryBudgetError` before allocating.

    Args:
      apply_fn: `f(params, x) → (n,) or (n, k)`, a flax linen module (params: `variables` or
        their 'params') or a flax nnx module (the module, its `nnx.Param` state, or None); None
        for implementation='structured' with `model=`.
      implementation: 'jacobian', 'ntvp', 'structured' (needs `model=`) or 'auto'.
      output_reduction: 'mean', 'sum' or 'none'.
      tile_size: rows per tile (any positive int) or None (chosen from the memory budget).
      model: an `ntk_air.networks.MLP` or `TwoLayerReLU` whose structure 'structured' exploits.
      memory_budget: bytes a call may use (None: half an accelerator's, a quarter of RAM on CPU).
      precision: matmul precision ('highest': full float32 on every backend).
      per_example: None (detect coupled examples), True (no check) or False (whole batch).

    Returns:
      EmpiricalNTKFn: `ntk_fn(params, x1 (n1, ...), x2=None, *, dtype=None) → Θ`.

    Example:
      >>> mlp = ntk_air.networks.MLP(widths=(256, 256), out_dim=3)
      >>> params = mlp.init(jax.random.key(0), x)["params"]
      >>> ntk_fn = empirical_ntk_fn(lambda p, x: mlp.apply({"params": p}, x))
      >>> theta = ntk_fn(params, x)                       # (n, n), mean over the 3 outputs

    Reference: Jacot et al., arXiv 1806.07572; Novak et al., arXiv 2206.08720 (fast eNTKs).
    """
    _check_choice("implementation", implementation, IMPLEMENTATIONS)
    _check_choice("output_reduction", output_reduction, OUTPUT_REDUCTIONS)
    check_tile_size(tile_size)
    if memory_budget is not None:
        check_int("memory_budget", memory_budget, minimum=1)
    matmul_precision(precision)
    if per_example not in (None, True, False):
        raise ValueError(f"per_example must be None, True or False, got {per_example!r}")
    if model is None and isinstance(apply_fn, MLP | TwoLayerReLU):
        model = apply_fn  # an ntk_air model module: its structure is known
    structured = None
    if isinstance(model, MLP):
        # The engine's closed forms are those of NTK parameterization; a standard-parameterized
        # MLP goes through the Jacobian or NTVP path.
        if model.parameterization == "ntk":
            structured = MLPEngine.from_module(model, output_reduction)
        elif implementation == "structured":
            raise ValueError(
                "implementation='structured' needs an MLP in NTK parameterization, got "
                f"parameterization={model.parameterization!r}; use 'jacobian', 'ntvp' or 'auto'"
            )
        apply_fn = model if apply_fn is None else apply_fn
    elif isinstance(model, TwoLayerReLU):
        structured = TwoLayerEngine()
        apply_fn = _two_layer_surrogate_apply if apply_fn is None else apply_fn
    if implementation == "structured" and structured is None:
        raise ValueError(
            "implementation='structured' needs model= an ntk_air.networks.MLP or TwoLayerReLU, got "
            f"{type(model).__name__}; use 'jacobian', 'ntvp' or 'auto' for other models"
        )
    if apply_fn is None:
        raise ValueError("apply_fn must be callable f(params, x) or a flax module, got None")
    return EmpiricalNTKFn(
        model=as_model(apply_fn),
        implementation=implementation,
        output_reduction=output_reduction,
        tile_size=tile_size,
        memory_budget=memory_budget,
        precision=precision,
        per_example=per_example,
        structured=structured,
    )
