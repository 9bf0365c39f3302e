"""Finite-width networks trained by full-batch gradient descent, plainly or with a target rule.

The network's outputs on the training set u(k) = f(θ_k, X) are trained on the squared loss
½‖u − ỹ(k)‖² with an optax optimizer (default SGD with step η, θ ← θ − η Jᵀ(u − ỹ), its η
injected as data so that every step size shares one compilation); the target ỹ(k) follows any
rule of `ntk_air.targets` — the very same rule objects that `ntk_air.distill.self_distill` runs in
the kernel limit, fed here with the network's own predictions. At finite width the NTK moves, and
this module measures by how much.

The whole loop is one `jax.jit`-compiled scan (`record.scan_blocks`, shared with the kernel
limit); ‖u(k) − ŷ‖₂ is kept at every step (it is free: u is computed for the gradient anyway),
heavier quantities (test predictions, ‖θ(k) − θ(0)‖_F, u itself, a `Record.fn` of your own) at the
recorded steps. A grid of affine rules trains the same initialization once per rule in one vmapped
call.

Reference: Du et al. arXiv 1810.02054; Arora et al. arXiv 1901.08584; Dong et al. arXiv
1910.01255; Lee et al. arXiv 1902.06720 (linearized networks).
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._checks import check_int, moved_attribute
from .distill import check_run_finite
from .problem import NetworkProblem, network_problem
from .record import Record, Snapshot, scan_blocks
from .targets import (
    AffineRule,
    accuracy,
    as_rule_list,
    cast_rule,
    drop_rule_axis,
    group_rules,
    margin,
    merge_groups,
)

__all__ = ["TrainRun", "train", "tree_distance"]


class TrainRun(NamedTuple):
    """Metrics of finite-width training runs (leading (g,) axis for several rules; a pytree)."""

    steps: jax.Array  # (r,) recorded steps k = 0, r, 2r, …, steps
    dist_train: jax.Array  # (g, r) ‖u(k) − ŷ‖₂ at the recorded steps
    dist_train_all: jax.Array  # (g, steps + 1) ‖u(k) − ŷ‖₂ at every step k = 0..steps
    dist_test: jax.Array  # (g, r) ‖f_k(X_test) − ŷ_test‖₂ (NaN without test data)
    weight_change: jax.Array  # (g, r) ‖θ(k) − θ(0)‖_F over all trained parameters
    u_final: jax.Array  # (g, n) or (g, n, C) training predictions after the last step
    f_test_final: jax.Array  # (g, n_test[, C]) test predictions after the last step (empty without)
    margin_train: jax.Array  # (g,) min_i ŷ_i u_i (binary) or the class margin (one-hot)
    accuracy_train: jax.Array  # (g,) 0-1 accuracy of u against ŷ
    accuracy_test: jax.Array  # (g,) 0-1 accuracy on the test set (NaN without)
    u_path: jax.Array | None = None  # (g, r, n[, C]) u at the recorded steps (Record.predictions)
    observed: Any = None  # Record.fn's pytree, leaves (g, r, ...); None without Record.fn


def tree_distance(a, b):
    """‖a − b‖_F over all leaves of two pytrees of the same structure."""
    sq = jax.tree_util.tree_map(lambda x, y: jnp.sum((x - y) ** 2), a, b)
    return jnp.sqrt(sum(jax.tree_util.tree_leaves(sq)))


def _outputs(apply_fn, params, x):
    """(n, C) outputs: an (n,) output becomes (n, 1); an (n, 1) one (e.g. an MLP readout) stays."""
    out = apply_fn(params, x)
    return out[:, None] if out.ndim == 1 else out


# SGD with its learning rate as data (optax.inject_hyperparams): one object, one compilation for
# every η; `_sgd_state` writes η into the state.
_SGD = optax.inject_hyperparams(optax.sgd)(learning_rate=0.0)


def _init_optimizer(optimizer, params, eta):
    if optimizer is not None:
        return optimizer, optimizer.init(params)
    state = _SGD.init(params)
    hyper = dict(state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(eta, hyper["learning_rate"].dtype)
    return _SGD, state._replace(hyperparams=hyper)


@functools.partial(
    jax.jit, static_argnames=("apply_static", "optimizer", "static_rule", "steps", "record")
)
def _train_group(
    rules,
    apply_fn,
    params0,
    problem: NetworkProblem,
    eta,
    *,
    apply_static,
    optimizer,
    static_rule,
    steps,
    record,
):
    apply_fn = apply_static if apply_static is not None else apply_fn

    def outputs(params, x):
        return _outputs(apply_fn, params, x)

    def run_one(rule):
        target_rule = rule.as_target_rule() if isinstance(rule, AffineRule) else rule
        opt, opt_state0 = _init_optimizer(optimizer, params0, eta)
        u0 = outputs(params0, problem.x)
        d_all0 = jnp.zeros((steps + 1,), u0.dtype)
        state0 = (
            jnp.zeros((), jnp.int32),
            params0,
            opt_state0,
            target_rule.init(u0, problem.y),
            d_all0,
        )

        def step(s, _):
            k, params, opt_state, rs, d_all = s
            u, vjp = jax.vjp(lambda p: outputs(p, problem.x), params)
            t, rs = target_rule.update(u, problem.y, rs, k)
            (grads,) = vjp(u - t)  # ∇ ½‖u − ỹ‖² = Jᵀ(u − ỹ)
            updates, opt_state = opt.update(grads, opt_state, params)
            d_all = d_all.at[k].set(jnp.linalg.norm(u - problem.y_clean))
            return (k + 1, optax.apply_updates(params, updates), opt_state, rs, d_all), None

        def advance(s, r):
            return jax.lax.scan(step, s, None, length=r)[0]

        def observe(s):
            k, params, _, rs, _ = s
            u = outputs(params, problem.x)
            f_test = None if problem.x_test is None else outputs(params, problem.x_test)
            out = {
                "dist": jnp.linalg.norm(u - problem.y_clean),
                "dw": tree_distance(params, params0),
            }
            if f_test is not None:
                out["dist_test"] = jnp.linalg.norm(f_test - problem.y_test_clean)
            if record.predictions:
                out["u"] = u
            if record.fn is not None:
                target = target_rule.update(u, problem.y, rs, k)[0]
                snap = Snapshot(step=k, u=u, target=target, test=f_test, params=params)
                out["observed"] = record.fn(snap)
            return out

        s, obs = scan_blocks(advance, observe, state0, steps=steps, every=record.every)
        params = s[1]
        u = outputs(params, problem.x)
        d_all = s[4].at[steps].set(jnp.linalg.norm(u - problem.y_clean))
        if problem.x_test is not None:
            f_test = outputs(params, problem.x_test)
            acc_test = accuracy(f_test, problem.y_test_clean)
        else:
            f_test = jnp.zeros((0, u.shape[1]), u.dtype)
            acc_test = jnp.asarray(jnp.nan, u.dtype)
        return {
            "dist_train": obs["dist"],
            "dist_train_all": d_all,
            "dist_test": obs.get("dist_test", jnp.full_like(obs["dist"], jnp.nan)),
            "weight_change": obs["dw"],
            "u_final": u,
            "f_test_final": f_test,
            "margin_train": margin(u, problem.y_clean),
            "accuracy_train": accuracy(u, problem.y_clean),
            "accuracy_test": acc_test,
            "u_path": obs.get("u"),
            "observed": obs.get("observed"),
        }

    if static_rule is not None:
        return jax.tree_util.tree_map(lambda a: a[None], run_one(static_rule))
    return jax.vmap(run_one)(rules)


_UNSET: Any = object()


def train(
    apply_fn,
    params,
    x,
    y,
    y_clean,
    rules,
    *,
    steps: int,
    eta: float | None = None,
    optimizer: optax.GradientTransformation | None = None,
    record: Record | None = None,
    x_test=None,
    y_test_clean=None,
    dtype=None,
    record_every=_UNSET,
    record_predictions=_UNSET,
) -> TrainRun:
    """Train a finite network by full-batch GD on ½‖f(θ, X) − ỹ(k)‖², ỹ(k) by a target rule.

    Per step k: u(k) = f(θ_k, X); ỹ(k), state = rule.update(u(k), y, state, k) (`ntk_air.targets`);
    θ_{k+1} = θ_k − η J(θ_k)ᵀ(u(k) − ỹ(k)) with plain SGD (or any optax optimizer). The
    linearization of this loop, u(k+1) = u(k) − ηH(u(k) − ỹ(k)), is `distill.self_distill`.

    Args:
      apply_fn: apply_fn(params, x) → (n,) or (n, C). A plain function is part of the compiled
        program (keep the same object across calls to reuse the compilation); a
        `jax.tree_util.Partial` passes its bound arrays as data, so any network of the same
        shapes reuses it. An (n, 1) output is read as the single output of ±1 labels.
      params: initial trainable parameters θ(0) (pytree).
      x: (n, ...) training inputs.
      y: (n,) ±1 given labels or (n, C) one-hot.
      y_clean: the ground truth ŷ, same shape.
      rules: an `AffineRule`, a stacked grid, a `TargetRule` of your own, or a sequence of them
        (one training per rule, all from the same θ(0); affine rules of one structure vmapped).
      steps: number of GD steps.
      eta: the SGD step size η — give exactly one of `eta` and `optimizer`.
      optimizer: an optax.GradientTransformation (keep the same object to reuse the compilation).
      record: a `Record` (default: every step).
      x_test: optional (n_test, ...) test inputs.
      y_test_clean: their ground truth (with x_test).
      dtype: float32/float64 for the whole loop (parameters, labels, metrics); default x's
        float dtype, else the x64 default.
      record_every: deprecated, use `record=Record(every, predictions)`.
      record_predictions: deprecated, use `record=Record(every, predictions)`.

    Returns:
      TrainRun; with a single rule (not a sequence or grid) the leading (g,) axis is dropped.

    Example:
      >>> apply_fn, params = models.two_layer_network(256, x)
      >>> eta = 1 / float(eig.eigenvalues[0])        # 1/λ_max of H∞(x, x), eig = eigensystem(H)
      >>> run = train(apply_fn, params, x, y, y_clean, targets.r3(0.9), steps=300, eta=eta,
      ...             record=Record(every=10))
      >>> run.dist_train.shape, float(run.accuracy_train)   # 31 recorded steps; every ŷ_i right
      ((31,), 1.0)

    Reference: Du et al. arXiv 1810.02054; Dong et al. arXiv 1910.01255.
    """
    if record_every is not _UNSET or record_predictions is not _UNSET:
        warnings.warn(
            "train(record_every=, record_predictions=) is deprecated: pass "
            "record=Record(every=..., predictions=...)",
            DeprecationWarning,
            stacklevel=2,
        )
        if record is not None:
            raise ValueError("give record= or the deprecated record_every/record_predictions")
        record = Record(
            every=1 if record_every is _UNSET else record_every,
            predictions=False if record_predictions is _UNSET else bool(record_predictions),
        )
    record = Record() if record is None else record
    if (eta is None) == (optimizer is None):
        raise ValueError(
            "give exactly one of eta (plain SGD with that step size) and optimizer (any optax "
            f"transformation); got eta={eta!r} and optimizer={optimizer!r}"
        )
    if eta is not None and not (
        isinstance(eta, int | float | np.floating | np.integer) and math.isfinite(eta) and eta > 0
    ):
        raise ValueError(f"eta must be a positive finite step size, got {eta!r}")
    check_int("steps", steps, minimum=0)
    problem = network_problem(x, y, y_clean, x_test=x_test, y_test_clean=y_test_clean, dtype=dtype)
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, problem.dtype), params)
    out0 = jax.eval_shape(apply_fn, params, problem.x)
    n = problem.n
    allowed = ((n,), (n, 1)) if problem.binary else (problem.y.shape,)
    if out0.shape not in allowed:
        raise ValueError(
            f"apply_fn(params, x) has shape {out0.shape}; the labels need "
            f"{(n,) if problem.binary else problem.y.shape}"
        )
    # apply_fn travels as a pytree when it is a `jax.tree_util.Partial` (as the model builders
    # return): its arrays (e.g. a frozen readout) are data, so a fresh network of the same shapes
    # reuses the compilation; a plain function is keyed on its identity, as a static argument.
    partial = isinstance(apply_fn, jax.tree_util.Partial)
    rule_list, single = as_rule_list(rules)
    eta_arr = jnp.asarray(0.0 if eta is None else eta, problem.dtype)
    parts = []
    for indices, group in group_rules(rule_list):
        static = None if isinstance(group, AffineRule) else group
        out = _train_group(
            None if static is not None else cast_rule(group, problem.dtype),
            apply_fn if partial else None,
            params,
            problem,
            eta_arr,
            apply_static=None if partial else apply_fn,
            optimizer=optimizer,
            static_rule=static,
            steps=steps,
            record=record,
        )
        parts.append((indices, out))
    run = _assemble(problem, parts, record.steps(steps), single)
    check_run_finite(run.dist_train_all, np.arange(steps + 1), "training")
    return run


def _assemble(problem, parts, rec_steps, single):
    fields = merge_groups(parts)
    for name in ("u_final", "f_test_final", "u_path"):
        fields[name] = problem.to_user(fields[name])
    run = TrainRun(steps=jnp.asarray(rec_steps), **fields)
    return drop_rule_axis(run) if single else run


_MOVED = {"two_layer_network": "models", "mlp_network": "models"}


def __getattr__(name):
    """Model builders moved to `ntk_air.models` (thin aliases that warn)."""
    return moved_attribute("training", _MOVED, name)
