"""Mini-batch training by epochs with a target rule refreshed once per epoch, several seeds at once.

The practice of the paper's experiment (docs/science/noisy_labels.md), with the theory's target
rules (`ntk_air.targets`, the very objects `distill.self_distill` runs in the kernel limit):

    at the start of epoch e = 0, 1, …, E − 1:
        u(e) = view(f(θ, X))                        # the whole training set
        ỹ(e), state = rule.update(u(e), y, state, e)   # once per epoch (state = rule.init(u(0), y))
    then ⌊n/B⌋ optimizer steps on mini-batches b of a fresh permutation of the training set:
        θ ← optimizer(θ, ∇_θ L_b(θ)),   L_b = (1/B) Σ_{i∈b} ℓ(f(θ, x_i), ỹ_i(e)).

Losses ℓ and what the rule sees (`view`):

* ``"mse"`` (the theory): ℓ = ½‖f(θ, x) − ỹ‖², view = the raw outputs; targets are one-hot rows
  mixed with raw predictions (soft) or one-hot argmax rows (hard).
* ``"xent"`` (practice): ℓ = −Σ_c ỹ_c log softmax(f(θ, x))_c, view = softmax(f(θ, x)), the class
  probabilities; soft targets are then probability vectors (convex mixtures of one-hot labels and
  probabilities), hard targets one-hot rows.

"Previous epoch" is exact by refresh semantics: u(e) is the network as it left epoch e − 1, so an
unlagged rule (e.g. `targets.r1(α)`) uses the previous epoch's network as its teacher. Each epoch
visits ⌊n/B⌋·B examples of a seeded permutation (the n mod B left over change from epoch to
epoch). Everything is one `jax.jit`-compiled program per rule structure: `lax.scan` over epochs
(`record.scan_blocks`, which also records the observables after every epoch) around a `lax.scan`
over mini-batches, vmapped over the rules' values (a stacked `AffineRule` grid) and over seeds
(initial parameters, batch orders and, optionally, labels per seed).

In the kernel limit an epoch at a fixed target is gradient flow for a time T
(`epoch_gradient_time`), u − ỹ ← e^{−HT}(u − ỹ): one step of η = 1 on the kernel I − e^{−HT}
(`epoch_problem`), so `distill.self_distill` runs the same rule objects once per epoch.

Reference: Dong et al. arXiv 1910.01255 (self-distillation against label noise); Jacot et al.
arXiv 1806.07572 and Lee et al. arXiv 1902.06720 (the kernel limit of wide networks).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import as_float_array, check_finite, check_int
from .problem import LinearProblem, linear_problem
from .record import scan_blocks
from .targets import AffineRule, as_rule_list, cast_rule, group_rules

__all__ = [
    "LOSSES",
    "EpochRun",
    "epoch_filter",
    "epoch_problem",
    "train_epochs",
    "rule_view",
    "batch_loss",
    "epoch_gradient_time",
]

LOSSES = ("mse", "xent")
"""The losses: squared error (the theory) and softmax cross-entropy (practice)."""


def rule_view(outputs, loss: str):
    """What a target rule sees of the network's outputs: raw outputs (mse) or softmax (xent)."""
    return jax.nn.softmax(outputs, axis=-1) if loss == "xent" else outputs


def batch_loss(outputs, targets, loss: str):
    """Mean over the batch of ½‖f − ỹ‖² (mse) or −Σ_c ỹ_c log softmax(f)_c (xent); (B, C) → ()."""
    if loss == "xent":
        return -jnp.mean(jnp.sum(targets * jax.nn.log_softmax(outputs, axis=-1), axis=-1))
    return 0.5 * jnp.mean(jnp.sum((outputs - targets) ** 2, axis=-1))


def epoch_gradient_time(lr: float, n: int, batch_size: int, momentum: float = 0.0) -> float:
    """Gradient-flow time of one epoch of SGD, in the kernel limit's normalization.

    A step on the mean loss of a batch b moves the linearized outputs by
    −(lr/B) H[:, b](u_b − ỹ_b); over ⌊n/B⌋ batches of a random permutation this is, on average,
    −lr·⌊n/B⌋/n · H(u − ỹ): gradient flow du/dt = −H(u − ỹ) (H the NTK Gram matrix of the sum
    loss ½‖u − ỹ‖²) for a time T = lr_eff·⌊n/B⌋/n, with lr_eff = lr/(1 − momentum), heavy-ball's
    long-run step.

    Args:
      lr: the SGD learning rate.
      n: training examples.
      batch_size: B.
      momentum: heavy-ball momentum in [0, 1).

    Returns:
      T, the gradient-flow time of one epoch.

    Example:
      >>> round(epoch_gradient_time(0.5, 1000, 50, momentum=0.9), 12)
      0.1
    """
    nb = n // batch_size
    return float(lr) / (1.0 - float(momentum)) * nb / n


# ---------------------------------------------------------------------------------------------
# The kernel limit of an epoch
# ---------------------------------------------------------------------------------------------


def epoch_filter(eigenvalues, time, substeps=None):
    """λ'(λ) = 1 − φ(λ): one epoch at a fixed target as a single step of η = 1 on H' = λ'(H).

    φ(λ) = e^{−λT} (gradient flow for a time T, substeps=None) or (1 − λT/s)^s (s GD steps of
    size T/s): within an epoch the target is fixed, so u − ỹ ← φ(H)(u − ỹ), i.e.
    u ← u − (I − φ(H))(u − ỹ), a GD step with η = 1 on the kernel I − φ(H) (same eigenvectors).

    Args:
      eigenvalues: (n,) λ_i ≥ 0 of H.
      time: T > 0.
      substeps: None (flow) or s ≥ 1.

    Returns:
      (n,) λ'_i, in [0, 1) for the flow.

    Example:
      >>> epoch_filter(jnp.array([0.0, 1.0]), 2.0, substeps=1)
      Array([0., 2.], dtype=float64)
    """
    lam = jnp.asarray(eigenvalues)
    if substeps is None:
        return -jnp.expm1(-lam * time)
    return 1.0 - (1.0 - lam * time / substeps) ** substeps


def epoch_problem(
    eig,
    y,
    y_clean,
    *,
    time: float,
    substeps: int | None = None,
    u0=None,
    k_test_train=None,
    f0_test=None,
    y_test_clean=None,
) -> LinearProblem:
    """The kernel limit of training by epochs: a `LinearProblem` whose one step is one epoch.

    With the target ỹ(e) fixed during epoch e (refreshed once per epoch by the rule), the
    linearized network moves by u(e+1) = u(e) − (I − φ(H))(u(e) − ỹ(e)) on the training points
    and f_{e+1}(x) = f_e(x) − K(x, X) V diag((1 − φ(λ))/λ) Vᵀ(u(e) − ỹ(e)) elsewhere
    (`epoch_filter`; (1 − φ(λ))/λ → T as λ → 0). So `distill.self_distill(problem, rules,
    steps=E, eta=1.0)` runs any target rule with its `update` called once per epoch, k = the
    epoch, exactly as `train_epochs` does on the real network.

    Args:
      eig: the eigendecomposition of H = K(X, X) (`eigen.eigensystem`).
      y: (n, C) given labels ((n,) ±1 labels work too).
      y_clean: (n, C) ground truth.
      time: T, the gradient-flow time of one epoch (`epoch_gradient_time`).
      substeps: None (flow) or s GD steps of size T/s.
      u0: (n, C) initial outputs (default 0), as in `problem.linear_problem`.
      k_test_train: (n_test, n) K(X_test, X) of the original kernel (the epoch's test
        propagation is applied here), or None.
      f0_test: (n_test, C) initial test outputs (default 0).
      y_test_clean: (n_test, C) test ground truth.

    Returns:
      LinearProblem (its eigenvalues are λ'_i; its kernel is left implicit, V diag(λ') Vᵀ).

    Example:
      >>> T = epoch_gradient_time(0.5, 40, 10, momentum=0.9)
      >>> p = epoch_problem(eig, y, y_clean, time=T)
      >>> run = distill.self_distill(p, [targets.r3(0.9)], steps=60, eta=1.0)
      >>> run.dist_train.shape                              # (rules, epochs + 1)
      (1, 61)
    """
    if not (isinstance(time, int | float | np.floating) and math.isfinite(time) and time > 0):
        raise ValueError(f"time must be a positive finite gradient-flow time, got {time!r}")
    if substeps is not None:
        check_int("substeps", substeps, minimum=1)
    lam = eig.eigenvalues
    lam_epoch = epoch_filter(lam, time, substeps)
    k_epoch = None
    if k_test_train is not None:
        safe = jnp.where(lam > 0, lam, 1.0)
        ratio = jnp.where(lam > 0, lam_epoch / safe, time)  # (1 − φ(λ))/λ, → T at λ = 0
        V = eig.eigenvectors
        k_epoch = (jnp.asarray(k_test_train, lam.dtype) @ V) * ratio @ V.T
    return linear_problem(
        eig._replace(eigenvalues=lam_epoch),
        y,
        y_clean,
        u0=u0,
        k_test_train=k_epoch,
        f0_test=f0_test,
        y_test_clean=y_test_clean,
    )


# ---------------------------------------------------------------------------------------------
# Training by epochs
# ---------------------------------------------------------------------------------------------


class EpochRun(NamedTuple):
    """Per-epoch observables of mini-batch runs: leading (g, s) = (rules, seeds); a pytree.

    Index e = 0..E of the epoch axis is the network after e epochs (e = 0: at initialization).
    """

    epochs: np.ndarray  # (E + 1,) epoch indices 0..E
    train_acc_noisy: jax.Array  # (g, s, E + 1) argmax agreement with the given labels y
    train_acc_clean: jax.Array  # (g, s, E + 1) argmax agreement with the ground truth ŷ
    dist_clean: jax.Array  # (g, s, E + 1) ‖view(f(X)) − ŷ‖_F / √n
    flipped_fit: jax.Array  # (g, s, E + 1) fraction of corrupted rows (y ≠ ŷ) predicted as y
    eval_pred: jax.Array  # (g, s, E + 1, m) int32 argmax predictions on the evaluation inputs
    u_final: jax.Array  # (g, s, n, C) view(f(X)) after the last epoch
    target_final: jax.Array  # (g, s, n, C) the target of the last epoch ỹ(E − 1)


def _argmax_eq(a, b):
    return jnp.argmax(a, axis=-1) == jnp.argmax(b, axis=-1)


@functools.partial(
    jax.jit,
    static_argnames=(
        "apply_fn",
        "optimizer",
        "loss",
        "static_rule",
        "epochs",
        "batch_size",
        "vary_labels",
    ),
)
def _train_group(
    rules,
    params,
    keys,
    x,
    y,
    y_clean,
    x_eval,
    *,
    apply_fn,
    optimizer,
    loss,
    static_rule,
    epochs,
    batch_size,
    vary_labels,
):
    n = x.shape[0]
    nb = n // batch_size
    corrupted = jnp.any(y != y_clean[None], axis=-1)  # (s or 1, n)

    def run_one(rule, params0, key, y_s, corrupted_s):
        target_rule = rule.as_target_rule() if isinstance(rule, AffineRule) else rule

        def view(p, inputs):
            return rule_view(apply_fn(p, inputs), loss)

        def train_batch(carry, idx, target):
            p, opt_state = carry

            def objective(q):
                return batch_loss(apply_fn(q, x[idx]), target[idx], loss)

            grads = jax.grad(objective)(p)
            updates, opt_state = optimizer.update(grads, opt_state, p)
            p = jax.tree_util.tree_map(lambda a, b: a + b, p, updates)  # optax.apply_updates
            return (p, opt_state), None

        def one_epoch(s, _):
            e, p, opt_state, rs, u, _ = s
            target, rs = target_rule.update(u, y_s, rs, e)
            perm = jax.random.permutation(jax.random.fold_in(key, e), n)
            batches = perm[: nb * batch_size].reshape(nb, batch_size)
            (p, opt_state), _ = jax.lax.scan(
                functools.partial(train_batch, target=target), (p, opt_state), batches
            )
            return (e + 1, p, opt_state, rs, view(p, x), target), None

        def advance(s, r):
            return jax.lax.scan(one_epoch, s, None, length=r)[0]

        n_flipped = jnp.sum(corrupted_s)

        def observe(s):
            _, p, _, _, u, _ = s
            fitted = jnp.sum(jnp.where(corrupted_s, _argmax_eq(u, y_s), False))
            return {
                "train_acc_noisy": jnp.mean(_argmax_eq(u, y_s), dtype=u.dtype),
                "train_acc_clean": jnp.mean(_argmax_eq(u, y_clean), dtype=u.dtype),
                "dist_clean": jnp.linalg.norm(u - y_clean) / jnp.sqrt(jnp.asarray(n, u.dtype)),
                "flipped_fit": jnp.where(
                    n_flipped > 0, fitted / jnp.maximum(n_flipped, 1), jnp.nan
                ).astype(u.dtype),
                "eval_pred": jnp.argmax(apply_fn(p, x_eval), axis=-1).astype(jnp.int32),
            }

        u0 = view(params0, x)
        rs0 = target_rule.init(u0, y_s)
        state0 = (
            jnp.zeros((), jnp.int32),
            params0,
            optimizer.init(params0),
            rs0,
            u0,
            jnp.zeros_like(u0),
        )
        state, obs = scan_blocks(advance, observe, state0, steps=epochs, every=1)
        obs["u_final"] = state[4]
        obs["target_final"] = state[5]
        return obs

    label_axis = 0 if vary_labels else None

    def over_seeds(rule):
        return jax.vmap(run_one, in_axes=(None, 0, 0, label_axis, label_axis))(
            rule,
            params,
            keys,
            y if vary_labels else y[0],
            corrupted if vary_labels else corrupted[0],
        )

    if static_rule is not None:
        return jax.tree_util.tree_map(lambda a: a[None], over_seeds(static_rule))
    return jax.vmap(over_seeds)(rules)


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
    """Mini-batch training by epochs with targets refreshed once per epoch (module docstring).

    Args:
      apply_fn: apply_fn(params, x) → (n, C) outputs (logits for xent); keep the same function
        object across calls to reuse the compilation (`models.classifier` caches it).
      params: initial parameters with a leading seed axis (s, ...) on every leaf, e.g.
        `jax.vmap(net.init)(keys)`.
      x: (n, d) training inputs (their float dtype is the run's).
      y: given labels, one-hot: (n, C) shared by the seeds or (s, n, C) one set per seed.
      y_clean: (n, C) one-hot ground truth ŷ.
      rules: a sequence of target rules (`AffineRule`s, e.g. `targets.r3(0.9)`, or `TargetRule`s);
        affine rules of one static structure train together, vmapped.
      epochs: E ≥ 1.
      batch_size: B in 1..n.
      optimizer: an optax GradientTransformation (keep the same object to reuse the
        compilation).
      key: (s,) PRNG keys, one per seed, for the batch orders.
      loss: "mse" or "xent".
      x_eval: (m, d) evaluation inputs (validation and test) whose argmax predictions are
        recorded after every epoch; None: none.

    Returns:
      EpochRun with leading (g, s) axes (g = number of rules, in the given order).

    Example:
      >>> import optax
      >>> net = models.classifier("mlp", 5, 2, widths=(16,), dtype=x.dtype)
      >>> keys = jax.random.split(jax.random.key(0), 3)                     # 3 seeds
      >>> one_hot = lambda v: np.eye(2)[(v < 0).astype(int)]                # ±1 → 2 classes
      >>> run = train_epochs(net.apply, jax.vmap(net.init)(keys), x, one_hot(y),
      ...                    one_hot(y_clean), [targets.plain_gd(), targets.r3(0.9)], epochs=5,
      ...                    batch_size=10, optimizer=optax.sgd(0.5, momentum=0.9), key=keys,
      ...                    x_eval=x_test)
      >>> run.eval_pred.shape                               # (rules, seeds, epochs + 1, m)
      (2, 3, 6, 12)

    Reference: Dong et al. arXiv 1910.01255.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    check_int("epochs", epochs, minimum=1)
    x = as_float_array(x, "x")
    check_finite(x, "x")
    if x.ndim != 2:
        raise ValueError(f"x must be (n, d), got shape {tuple(x.shape)}")
    n = x.shape[0]
    check_int("batch_size", batch_size, minimum=1, maximum=n)
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
    y_in = y if vary else y[None]
    parts = []
    for indices, group in group_rules(rule_list):
        static = None if isinstance(group, AffineRule) else group
        out = _train_group(
            None if static is not None else cast_rule(group, x.dtype),
            params,
            key,
            x,
            y_in,
            y_clean,
            x_eval,
            apply_fn=apply_fn,
            optimizer=optimizer,
            loss=loss,
            static_rule=static,
            epochs=epochs,
            batch_size=batch_size,
            vary_labels=vary,
        )
        parts.append((indices, out))
    order = np.argsort(np.concatenate([np.asarray(i) for i, _ in parts]), kind="stable")

    def field(name):
        return jnp.concatenate([out[name] for _, out in parts])[order]

    return EpochRun(
        epochs=np.arange(epochs + 1),
        **{f: field(f) for f in EpochRun._fields if f != "epochs"},
    )
