"""Models as `apply(params, state, x)`: plain functions, flax linen modules and flax nnx modules.

The empirical NTK differentiates `params` only; `state` (linen collections other than 'params',
e.g. 'batch_stats'; nnx variables that are not `nnx.Param`) is passed through unchanged, as a
jit argument, so new values at a training checkpoint reuse the compiled program.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


def _nnx():
    """flax.nnx if the user has imported it (an nnx module cannot exist otherwise)."""
    return sys.modules.get("flax.nnx")


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A model seen by the eNTK engine: `apply(params, state, x)` → (n,) or (n, k) outputs.

    Hashed by identity: one `Model` per factory, so its compiled programs are reused.
    """

    apply: Callable  # (params, state, x (n, ...)) -> (n,) | (n, k)
    kind: str  # 'function' | 'linen' | 'nnx'
    module: Any = None  # the flax module (linen or nnx), else None
    graphdef: Any = None  # nnx only
    default_params: Any = None  # nnx only: the module's own Param state at factory time
    default_state: Any = None  # nnx only: its other variables at factory time

    def split(self, params_or_variables):
        """(params, state): linen `variables` split at 'params'; an nnx module split at
        `nnx.Param` (None: the factory module's own values); anything else is the params."""
        if self.kind == "function":
            return params_or_variables, None
        if self.kind == "linen":
            v = params_or_variables
            if isinstance(v, Mapping) and "params" in v:
                return v["params"], {c: v[c] for c in v if c != "params"}
            return v, {}
        nnx = _nnx()
        if params_or_variables is None:
            return self.default_params, self.default_state
        if isinstance(params_or_variables, nnx.Module):
            graphdef, params, rest = nnx.split(params_or_variables, nnx.Param, ...)
            if graphdef != self.graphdef:
                raise ValueError(
                    "params is an nnx module with a different structure from the one the NTK "
                    "function was made for; pass that module (or its nnx.Param state)"
                )
            return params, rest
        return params_or_variables, self.default_state


def as_model(apply_fn_or_module) -> Model:
    """Wrap `apply_fn(params, x)`, a flax linen module or a flax nnx module as a `Model`."""
    obj, nnx = apply_fn_or_module, _nnx()
    if isinstance(obj, nn.Module):
        return Model(
            apply=lambda params, state, x: obj.apply({"params": params, **(state or {})}, x),
            kind="linen",
            module=obj,
        )
    if nnx is not None and isinstance(obj, nnx.Module):
        graphdef, params, rest = nnx.split(obj, nnx.Param, ...)
        return Model(
            apply=lambda params, state, x: nnx.merge(graphdef, params, state)(x),
            kind="nnx",
            module=obj,
            graphdef=graphdef,
            default_params=params,
            default_state=rest,
        )
    if callable(obj):
        return Model(apply=lambda params, state, x: obj(params, x), kind="function")
    raise TypeError(
        "apply_fn must be a callable apply_fn(params, x), a flax linen Module or a flax nnx "
        f"Module, got {type(obj).__name__}"
    )


def cast_state(state, dtype):
    """Floating leaves of the held-fixed state cast to `dtype`; integer leaves (counters) kept."""

    def cast(leaf):
        leaf = jnp.asarray(leaf)
        return leaf.astype(dtype) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf

    return jax.tree_util.tree_map(cast, state)
