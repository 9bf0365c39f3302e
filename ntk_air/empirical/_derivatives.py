"""Generic eNTK engines: per-row features and the contraction of a row tile with a column tile.

Engines are frozen dataclasses (hashable), so jitted tile loops keyed on them compile once.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from jax import lax

from ._adapters import Model


def per_example_fn(model: Model):
    """f(params, state, x_i) → (k,): the model on a batch of one, output flattened."""

    def f(params, state, x):
        return model.apply(params, state, x[None]).reshape(-1)

    return f


def per_example_jacobians(model: Model, params, state, x):
    """x (t, ...) → per-example Jacobian pytree, leaves (t, k, *param_shape)."""
    jac = jax.vmap(jax.jacrev(per_example_fn(model)), in_axes=(None, None, 0))
    return jac(params, state, x)


def flatten_leaves(tree, lead: int) -> jax.Array:
    """Concatenate the leaves of a Jacobian pytree (…lead axes, *param_shape) → (…, P)."""
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.concatenate([leaf.reshape(*leaf.shape[:lead], -1) for leaf in leaves], axis=-1)


def reduce_output_blocks(full: jax.Array, reduction: str, scalar: bool) -> jax.Array:
    """(t1, t2, k, k) → 'mean' (1/k) trace, 'sum' trace, 'none' as is; scalar outputs (t1, t2)."""
    if scalar:
        return full[:, :, 0, 0]
    if reduction == "none":
        return full
    trace = jnp.trace(full, axis1=2, axis2=3)
    return trace / full.shape[2] if reduction == "mean" else trace


def contract_jacobians(fa: jax.Array, fb: jax.Array, reduction: str, scalar: bool) -> jax.Array:
    """Θ block from flattened Jacobians fa (t1, k, P), fb (t2, k, P): one matrix product."""
    t1, k, p = fa.shape
    t2 = fb.shape[0]
    if scalar or reduction != "none":
        theta = fa.reshape(t1, k * p) @ fb.reshape(t2, k * p).T
        return theta / k if (reduction == "mean" and not scalar) else theta
    full = fa.reshape(t1 * k, p) @ fb.reshape(t2 * k, p).T
    return full.reshape(t1, k, t2, k).transpose(0, 2, 1, 3)


@dataclasses.dataclass(frozen=True)
class JacobianEngine:
    """Per-example Jacobians, contracted by one matrix product per tile."""

    model: Model
    reduction: str
    scalar: bool  # the model returns (n,): Θ is (n1, n2) for every reduction

    shared = True  # rows and columns have the same features: a diagonal tile reuses them
    block_runs_model = False  # a block is a matrix product of features only

    def features(self, params, state, x):
        """x (t, ...) → J (t, k, P)."""
        return flatten_leaves(per_example_jacobians(self.model, params, state, x), lead=2)

    row_features = features
    col_features = features

    def block(self, params, state, fa, fb):
        del params, state
        return contract_jacobians(fa, fb, self.reduction, self.scalar)


@dataclasses.dataclass(frozen=True)
class NtvpEngine:
    """NTK-vector products: Θ(a, b) e_(j,b) = J(a) J(b)ᵀ e_(j,b), forward mode through a (one
    `jax.linearize` per row tile; row Jacobians are never formed)."""

    model: Model
    reduction: str
    scalar: bool

    shared = False
    block_runs_model = True  # a block differentiates the model through the row examples

    def row_features(self, params, state, x):
        del params, state
        return x  # the row examples themselves: their Jacobians are never formed

    def col_features(self, params, state, x):
        return per_example_jacobians(self.model, params, state, x)

    def block(self, params, state, a, jb):
        f = per_example_fn(self.model)
        _, jvp_rows = jax.linearize(
            lambda p: jax.vmap(f, in_axes=(None, None, 0))(p, state, a), params
        )
        leaves = jax.tree_util.tree_leaves(jb)
        t2, k = leaves[0].shape[:2]
        tangents = jax.tree_util.tree_map(lambda leaf: leaf.reshape(t2 * k, *leaf.shape[2:]), jb)
        cols = jax.vmap(jvp_rows)(tangents)  # (t2·k, t1, k): cols[(j, b)][i, a] = Θ[i, j, a, b]
        full = cols.reshape(t2, k, a.shape[0], k).transpose(2, 0, 3, 1)
        return reduce_output_blocks(full, self.reduction, self.scalar)


@dataclasses.dataclass(frozen=True)
class BatchJacobianEngine:
    """J[i, a] = ∂f(params, X)_(i, a)/∂params of the batch X as one input (models that couple
    examples): one-hot cotangents, `chunk` per reverse pass; never tiled (that would change the
    batch statistics)."""

    model: Model
    reduction: str
    scalar: bool
    chunk: int  # cotangents per reverse pass

    shared = True
    block_runs_model = False

    def batch_features(self, params, state, x):
        """x (n, ...) as one batch → J (n, k, P)."""
        n = x.shape[0]
        out, vjp = jax.vjp(lambda p: self.model.apply(p, state, x).reshape(n, -1), params)
        k = out.shape[1]
        m = n * k
        c = max(1, min(self.chunk, m))
        n_chunks = math.ceil(m / c)
        ids = jnp.minimum(jnp.arange(n_chunks * c), m - 1).reshape(n_chunks, c)

        def rows(chunk_ids):
            cotangents = jax.nn.one_hot(chunk_ids, m, dtype=out.dtype).reshape(c, n, k)
            (grads,) = jax.vmap(vjp)(cotangents)
            return flatten_leaves(grads, lead=1)  # (c, P)

        jac = lax.map(rows, ids)
        return jac.reshape(n_chunks * c, -1)[:m].reshape(n, k, -1)

    block = JacobianEngine.block
