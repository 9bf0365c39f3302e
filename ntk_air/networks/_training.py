"""Finite-width networks trained on a target rule's ỹ(k): one loop, two schedules.

Reference: Du et al. arXiv 1810.02054; Dong et al. arXiv 1910.01255; Lee et al. arXiv 1902.06720.
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._checks import as_float_array, check_choice, check_finite, check_int
from ..distillation._engines import check_run_finite
from ..distillation._targets import (
    AffineRule,
    accuracy,
    as_rule_list,
    cast_rule,
    drop_rule_axis,
    group_rules,
    margin,
    merge_groups,
)
from ..dynamics._record import Record, Snapshot, scan_blocks
from ..spectral._problem import network_problem


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


def _tree_distance(a, b):
    """‖a − b‖_F over all leaves of two pytrees of the same structure."""
    sq = jax.tree_util.tree_map(lambda x, y: jnp.sum((x - y) ** 2), a, b)
    return jnp.sqrt(sum(jax.tree_util.tree_leaves(sq)))


LOSSES = ("mse", "xent")
"""The losses: squared error (the theory) and softmax cross-entropy (practice)."""


class FullBatch(NamedTuple):
    """A step is one update on the summed loss of the whole set: SGD is θ ← θ − η Jᵀ(u − ỹ)."""


class Epochs(NamedTuple):
    """A step is an epoch: ỹ refreshed, then ⌊n/B⌋ mean-loss updates on a permutation's batches."""

    batch_size: int  # B in 1..n


_FULL_BATCH = FullBatch()


def rule_view(outputs, loss: str):
    """What a target rule sees of the network's outputs: raw outputs (mse) or softmax (xent)."""
    return jax.nn.softmax(outputs, axis=-1) if loss == "xent" else outputs


def batch_loss(outputs, targets, loss: str):
    """Mean over the batch of ½‖f − ỹ‖² (mse) or −Σ_c ỹ_c log softmax(f)_c (xent); (B, C) → ()."""
    if loss == "xent":
        return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(outputs, axis=-1), axis=-1))
    return 0.5 * jnp.mean(jnp.sum((outputs - targets) ** 2, axis=-1))


def _sum_loss_cotangent(outputs, targets, loss: str):
    """∂/∂f of the summed loss: f − ỹ (mse), softmax(f)·Σ_c ỹ_c − ỹ (xent)."""
    if loss == "xent":
        return jax.nn.softmax(outputs, axis=-1) * jnp.sum(targets, -1, keepdims=True) - targets
    return outputs - targets


OPTIMIZERS = ("sgd", "momentum", "adam")
"""The names `optimizer` knows: plain SGD, SGD with momentum, Adam."""


@functools.cache
def optimizer(name: str, learning_rate: float, momentum: float = 0.9):
    """An optax optimizer by name (one object per arguments: compilations are reused).

    Example:
      >>> optimizer("adam", 1e-3) is optimizer("adam", 1e-3)
      True
    """
    if check_choice("optimizer", name, OPTIMIZERS) == "adam":
        return optax.adam(learning_rate)
    return optax.sgd(learning_rate, momentum=momentum if name == "momentum" else None)


# SGD with η as data (optax.inject_hyperparams): one compilation for every η (`_init_optimizer`).
_SGD = optax.inject_hyperparams(optax.sgd)(learning_rate=0.0)


def _init_optimizer(optimizer, params, eta):
    if optimizer is not None:
        return optimizer, optimizer.init(params)
    state = _SGD.init(params)
    hyper = dict(state.hyperparams)
    hyper["learning_rate"] = jnp.asarray(eta, hyper["learning_rate"].dtype)
    return _SGD, state._replace(hyperparams=hyper)


class _Loop(NamedTuple):
    """The static settings of one compiled training loop (hashable: a jit static argument)."""

    optimizer: Any  # an optax transformation, or None: SGD with eta as data
    steps: int
    record: Record
    schedule: FullBatch | Epochs
    loss: str
    seeded: bool  # params and keys carry a leading seed axis
    vary_labels: bool  # y carries a leading seed axis
    apply_static: Any = None  # apply_fn when it is a plain function (else passed as data)
    static_rule: Any = None  # a TargetRule of its own (else the affine rules are data)


@functools.partial(jax.jit, static_argnames="loop")
def _train_group(rules, apply_fn, params0, keys, data, eta, loop: _Loop):
    """Every rule of a group (and, `seeded`, every seed) trained; data = (x, y, y_clean, x_test,
    y_test_clean)."""
    apply_fn = loop.apply_static if loop.apply_static is not None else apply_fn
    optimizer, steps, record, schedule, loss = loop[:5]
    x, y_all, y_clean, x_test, y_test_clean = data
    n = x.shape[0]
    full = isinstance(schedule, FullBatch)

    def outputs(params, inputs):  # (n, C): an (n,) output becomes (n, 1)
        out = apply_fn(params, inputs)
        return out[:, None] if out.ndim == 1 else out

    def view(params, inputs):
        return rule_view(outputs(params, inputs), loss)

    def run_one(rule, params0, key, y):
        target_rule = rule.as_target_rule() if isinstance(rule, AffineRule) else rule
        opt, opt_state0 = _init_optimizer(optimizer, params0, eta)
        u0 = view(params0, x)

        def train_batch(carry, idx, target):
            p, opt_state = carry
            grads = jax.grad(lambda q: batch_loss(outputs(q, x[idx]), target[idx], loss))(p)
            updates, opt_state = opt.update(grads, opt_state, p)
            return (optax.apply_updates(p, updates), opt_state), None

        def step(s):
            k, params, opt_state, rs, u, d_all = s
            if full:  # the rule's u and the gradient share one forward pass
                raw, vjp = jax.vjp(lambda p: outputs(p, x), params)
                u = rule_view(raw, loss)
                t, rs = target_rule.update(u, y, rs, k)
                (grads,) = vjp(_sum_loss_cotangent(raw, t, loss))  # ∇ ½‖u − ỹ‖² = Jᵀ(u − ỹ)
                updates, opt_state = opt.update(grads, opt_state, params)
                params, u_next = optax.apply_updates(params, updates), None
            else:  # u is the network as it left the previous epoch
                t, rs = target_rule.update(u, y, rs, k)
                perm = jax.random.permutation(jax.random.fold_in(key, k), n)
                nb = n // schedule.batch_size
                batches = perm[: nb * schedule.batch_size].reshape(nb, schedule.batch_size)
                (params, opt_state), _ = jax.lax.scan(
                    functools.partial(train_batch, target=t), (params, opt_state), batches
                )
                u_next = view(params, x)
            d_all = d_all.at[k].set(jnp.linalg.norm(u - y_clean))
            return (k + 1, params, opt_state, rs, u_next, d_all)

        def advance(s, r):  # r: a static int, or traced (the gaps of Record.at)
            return jax.lax.fori_loop(0, r, lambda _, s: step(s), s)

        def observe(s):
            k, params, _, rs, u, _ = s
            u = view(params, x) if u is None else u
            f_test = None if x_test is None else outputs(params, x_test)
            out = {"dist": jnp.linalg.norm(u - y_clean), "dw": _tree_distance(params, params0)}
            if y_test_clean is not None:
                out["dist_test"] = jnp.linalg.norm(rule_view(f_test, loss) - y_test_clean)
            if record.predictions:
                out["u"] = u
            if record.fn is not None:
                target = target_rule.update(u, y, rs, k)[0]
                snap = Snapshot(k, u, target, f_test, params, y, y_clean)
                out["observed"] = record.fn(snap)
            return out

        state0 = (
            jnp.zeros((), jnp.int32),
            params0,
            opt_state0,
            target_rule.init(u0, y),
            None if full else u0,
            jnp.zeros((steps + 1,), u0.dtype),
        )
        s, obs = scan_blocks(
            advance, observe, state0, steps=steps, every=record.every, at=record.at
        )
        params = s[1]
        u = outputs(params, x)
        d_all = s[5].at[steps].set(jnp.linalg.norm(rule_view(u, loss) - y_clean))
        if y_test_clean is not None:
            f_test = outputs(params, x_test)
            acc_test = accuracy(f_test, y_test_clean)
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
            "margin_train": margin(u, y_clean),
            "accuracy_train": accuracy(u, y_clean),
            "accuracy_test": acc_test,
            "u_path": obs.get("u"),
            "observed": obs.get("observed"),
        }

    def over_seeds(rule):
        if not loop.seeded:
            return run_one(rule, params0, keys, y_all)
        label_axis = 0 if loop.vary_labels else None
        return jax.vmap(run_one, in_axes=(None, 0, 0, label_axis))(rule, params0, keys, y_all)

    if loop.static_rule is not None:
        return jax.tree_util.tree_map(lambda a: a[None], over_seeds(loop.static_rule))
    return jax.vmap(over_seeds)(rules)


def _run_groups(rules, apply_fn, params, keys, data, eta, dtype, loop: _Loop):
    """`_train_group` over the rules grouped by structure: [(indices, outputs)]."""
    # A `jax.tree_util.Partial` travels as data (same shapes reuse the compilation); a plain
    # function is static, keyed on its identity.
    partial = isinstance(apply_fn, jax.tree_util.Partial)
    parts = []
    for indices, group in group_rules(rules):
        static_rule = None if isinstance(group, AffineRule) else group
        affine = None if static_rule is not None else cast_rule(group, dtype)
        group_loop = loop._replace(
            apply_static=None if partial else apply_fn, static_rule=static_rule
        )
        out = _train_group(
            affine, apply_fn if partial else None, params, keys, data, eta, group_loop
        )
        parts.append((indices, out))
    return parts


def _check_schedule(schedule, loss, key, n):
    if not isinstance(schedule, FullBatch | Epochs):
        raise ValueError(f"schedule must be FullBatch() or Epochs(batch_size), got {schedule!r}")
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    if isinstance(schedule, Epochs):
        check_int("batch_size", schedule.batch_size, minimum=1, maximum=n)
        if key is None:
            raise ValueError("schedule Epochs(batch_size) needs key= (the batch orders' PRNG key)")


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
    schedule: FullBatch | Epochs = _FULL_BATCH,
    loss: str = "mse",
    key=None,
    record: Record | None = None,
    x_test=None,
    y_test_clean=None,
    dtype=None,
) -> TrainRun:
    """Train a finite network on ỹ(k), a target rule's, by full-batch GD or by mini-batch epochs.

    Per step k: ỹ(k), state = rule.update(u(k), y, state, k) with u(k) = view(f(θ_k, X)), then
    FullBatch(): θ_{k+1} = θ_k − η J(θ_k)ᵀ(u(k) − ỹ(k)) (or any optax optimizer), whose
    linearization is `distillation.self_distill`; Epochs(B): ⌊n/B⌋ updates on the mean loss of
    the batches of a permutation drawn from fold_in(key, k). view: identity (mse), softmax (xent).

    Args:
      apply_fn: apply_fn(params, x) → (n,), (n, 1) or (n, C) (the same object reuses compilations).
      params: initial trainable parameters θ(0) (pytree).
      x: (n, ...) training inputs.
      y: (n,) ±1 given labels or (n, C) one-hot.
      y_clean: the ground truth ŷ, same shape.
      rules: an `AffineRule`, a stacked grid, a `TargetRule`, or a sequence of them.
      steps: number of steps (GD steps, or epochs with `Epochs`).
      eta: the SGD step size η — give exactly one of `eta` and `optimizer`.
      optimizer: an optax.GradientTransformation (keep the same object to reuse the compilation).
      schedule: `FullBatch()` (default) or `Epochs(batch_size)`.
      loss: 'mse' (½‖f − ỹ‖², the theory) or 'xent' (softmax cross-entropy, one-hot labels).
      key: PRNG key of the batch orders (`Epochs` only).
      record: a `Record` (default: every step).
      x_test: optional (n_test, ...) test inputs.
      y_test_clean: their ground truth (with x_test).
      dtype: float32/float64 for the whole loop (default: x's float dtype).

    Returns:
      TrainRun; with a single rule (not a sequence or grid) the leading (g,) axis is dropped.

    Example:
      >>> net = networks.network("two-layer-relu", x, widths=(256,))
      >>> eta = 1 / float(eig.eigenvalues[0])        # 1/λ_max of H∞(x, x), eig = eigensystem(H)
      >>> run = train(net.apply_fn, net.params, x, y, y_clean, distillation.r3(0.9), steps=300,
      ...             eta=eta, record=Record(every=10))
      >>> run.dist_train.shape, float(run.accuracy_train)   # 31 recorded steps; every ŷ_i right
      ((31,), 1.0)

    Reference: Du et al. arXiv 1810.02054; Dong et al. arXiv 1910.01255.
    """
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
    rec_steps = record.steps(steps)  # checks Record(at=) against steps before any work
    problem = network_problem(x, y, y_clean, x_test=x_test, y_test_clean=y_test_clean, dtype=dtype)
    _check_schedule(schedule, loss, key, problem.n)
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, problem.dtype), params)
    out0 = jax.eval_shape(apply_fn, params, problem.x)
    n = problem.n
    allowed = ((n,), (n, 1)) if problem.binary else (problem.y.shape,)
    if out0.shape not in allowed:
        raise ValueError(
            f"apply_fn(params, x) has shape {out0.shape}; the labels need "
            f"{(n,) if problem.binary else problem.y.shape}"
        )
    rule_list, single = as_rule_list(rules)
    data = (problem.x, problem.y, problem.y_clean, problem.x_test, problem.y_test_clean)
    eta_arr = jnp.asarray(0.0 if eta is None else eta, problem.dtype)
    loop = _Loop(optimizer, steps, record, schedule, loss, seeded=False, vary_labels=False)
    parts = _run_groups(rule_list, apply_fn, params, key, data, eta_arr, problem.dtype, loop)
    fields = merge_groups(parts)
    for name in ("u_final", "f_test_final", "u_path"):
        fields[name] = problem.to_user(fields[name])
    run = TrainRun(steps=jnp.asarray(rec_steps), **fields)
    run = drop_rule_axis(run) if single else run
    check_run_finite(run.dist_train_all, np.arange(steps + 1), "training")
    return run


class EpochRun(NamedTuple):
    """Per-epoch observables (index e: after e epochs) of mini-batch runs; leading (g, s) axes."""

    epochs: np.ndarray  # (E + 1,) epoch indices 0..E
    train_acc_noisy: jax.Array  # (g, s, E + 1) argmax agreement with the given labels y
    train_acc_clean: jax.Array  # (g, s, E + 1) argmax agreement with the ground truth ŷ
    dist_clean: jax.Array  # (g, s, E + 1) ‖view(f(X)) − ŷ‖_F / √n
    flipped_fit: jax.Array  # (g, s, E + 1) fraction of corrupted rows (y ≠ ŷ) predicted as y
    eval_pred: jax.Array  # (g, s, E + 1, m) int32 argmax predictions on the evaluation inputs
    u_final: jax.Array  # (g, s, n, C) view(f(X)) after the last epoch


def _argmax_eq(a, b):
    return jnp.argmax(a, axis=-1) == jnp.argmax(b, axis=-1)


def _epoch_observables(snap: Snapshot) -> dict:
    """Record.fn of `train_epochs`: accuracies against y and ŷ, flipped rows fitted, eval argmax."""
    u, y = snap.u, snap.labels
    corrupted = jnp.any(y != snap.clean, axis=-1)
    n_flipped = jnp.sum(corrupted)
    fitted = jnp.sum(jnp.where(corrupted, _argmax_eq(u, y), False))
    return {
        "train_acc_noisy": jnp.mean(_argmax_eq(u, y), dtype=u.dtype),
        "train_acc_clean": jnp.mean(_argmax_eq(u, snap.clean), dtype=u.dtype),
        "flipped_fit": jnp.where(n_flipped > 0, fitted / jnp.maximum(n_flipped, 1), jnp.nan).astype(
            u.dtype
        ),
        "eval_pred": jnp.argmax(snap.test, axis=-1).astype(jnp.int32),
    }


_EPOCH_RECORD = Record(every=1, fn=_epoch_observables)


def _check_labels(y, name, shape_tail, dtype):
    y = as_float_array(y, name, dtype)
    check_finite(y, name)
    if y.shape[-len(shape_tail) :] != shape_tail:
        raise ValueError(f"{name} must end in shape {shape_tail}, got {tuple(y.shape)}")
    rows = np.asarray(y).reshape(-1, shape_tail[-1])
    if not np.all(((rows == 0) | (rows == 1)).all(axis=1) & (rows.sum(axis=1) == 1)):
        raise ValueError(f"{name} must be one-hot rows (class labels), got other values")
    return y


def train_epochs(
    apply_fn,
    params,
    x,
    y,
    y_clean,
    rules,
    *,
    epochs: int,
    batch_size: int,
    optimizer,
    key,
    loss: str = "mse",
    x_eval=None,
) -> EpochRun:
    """`train` with `Epochs(batch_size)` for S seeds at once (one compiled program, vmapped).

    Epoch e: ỹ(e), state = rule.update(u(e), y, state, e) on the whole set, then ⌊n/B⌋ optimizer
    steps on L_b = (1/B) Σ_{i∈b} ℓ(f(θ, x_i), ỹ_i(e)), ℓ = ½‖f − ỹ‖² (mse) or −Σ_c ỹ_c log
    softmax(f)_c (xent).

    Args:
      apply_fn: apply_fn(params, x) → (n, C) outputs (logits for xent).
      params: initial parameters, a leading seed axis (s, ...) on every leaf.
      x: (n, d) training inputs (their float dtype is the run's).
      y: given labels, one-hot: (n, C) shared by the seeds or (s, n, C) one set per seed.
      y_clean: (n, C) one-hot ground truth ŷ.
      rules: a sequence of target rules.
      epochs: E ≥ 1.
      batch_size: B in 1..n.
      optimizer: an optax GradientTransformation.
      key: (s,) PRNG keys, one per seed, for the batch orders.
      loss: "mse" or "xent".
      x_eval: (m, d) inputs whose argmax predictions are recorded every epoch, or None.

    Returns:
      EpochRun with leading (g, s) axes (g = number of rules, in the given order).

    Example:
      >>> import optax
      >>> net = networks.network("mlp", 5, out_dim=2, widths=(16,), dtype=x.dtype)
      >>> keys = jax.random.split(jax.random.key(0), 3)                     # 3 seeds
      >>> one_hot = lambda v: np.eye(2)[(v < 0).astype(int)]                # ±1 → 2 classes
      >>> run = train_epochs(net.apply_fn, jax.vmap(net.init)(keys), x, one_hot(y),
      ...                    one_hot(y_clean), [distillation.plain_gd(), distillation.r3(0.9)],
      ...                    epochs=5,
      ...                    batch_size=10, optimizer=optax.sgd(0.5, momentum=0.9), key=keys,
      ...                    x_eval=x_test)
      >>> run.eval_pred.shape                               # (rules, seeds, epochs + 1, m)
      (2, 3, 6, 12)

    Reference: Dong et al. arXiv 1910.01255.
    """
    check_int("epochs", epochs, minimum=1)
    x = as_float_array(x, "x")
    check_finite(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must be (n, d), got shape {tuple(x.shape)}")
    n = x.shape[0]
    _check_schedule(Epochs(batch_size), loss, key, n)
    y_clean = _check_labels(y_clean, "y_clean", (n, np.shape(y_clean)[-1]), x.dtype)
    c = y_clean.shape[-1]
    y = _check_labels(y, "y", (n, c), x.dtype)
    if y.ndim not in (2, 3):
        raise ValueError(f"y must be (n, C) or (s, n, C), got shape {tuple(y.shape)}")
    leaves = jax.tree_util.tree_leaves(params)
    if not leaves:
        raise ValueError("params has no leaves")
    seeds = leaves[0].shape[0] if leaves[0].ndim else 0
    if seeds < 1 or any(leaf.ndim == 0 or leaf.shape[0] != seeds for leaf in leaves):
        raise ValueError("every leaf of params needs the same leading seed axis (s, ...)")
    if np.shape(key)[:1] != (seeds,):
        raise ValueError(f"key must hold one PRNG key per seed: shape ({seeds},)")
    vary = y.ndim == 3
    if vary and y.shape[0] != seeds:
        raise ValueError(f"y of shape {tuple(y.shape)} needs one label set per seed ({seeds})")
    x_eval = x[:0] if x_eval is None else as_float_array(x_eval, "x_eval", x.dtype)
    if x_eval.ndim != 2 or x_eval.shape[1] != x.shape[1]:
        raise ValueError(f"x_eval must be (m, {x.shape[1]}), got {tuple(x_eval.shape)}")
    out_shape = jax.eval_shape(apply_fn, jax.tree_util.tree_map(lambda a: a[0], params), x)
    if out_shape.shape != (n, c):
        raise ValueError(
            f"apply_fn(params, x) has shape {out_shape.shape}; the labels need {(n, c)}"
        )
    rule_list, _ = as_rule_list(list(rules))
    loop = _Loop(optimizer, epochs, _EPOCH_RECORD, Epochs(batch_size), loss, True, vary)
    data = (x, y, y_clean, x_eval, None)
    parts = _run_groups(rule_list, apply_fn, params, key, data, None, x.dtype, loop)
    fields = merge_groups(parts)
    return EpochRun(
        epochs=np.arange(epochs + 1),
        dist_clean=fields["dist_train"] / jnp.sqrt(jnp.asarray(n, x.dtype)),
        u_final=rule_view(fields["u_final"], loss),
        **fields["observed"],
    )
