"""Finite-width networks trained by full-batch gradient descent, plainly or with a target rule.

The network's outputs on the training set u(k) = f(θ_k, X) are trained on the squared loss
½‖u − ỹ(k)‖² with an optax optimizer (default `optax.sgd(η)`, i.e. θ ← θ − η Jᵀ(u − ỹ)); the
target ỹ(k) follows one of the rules of `ntk_air.distill` (the same `TargetRule` objects and the
same update `distill.target_step`, fed with the network's own predictions). In the kernel
limit this is `distill.self_distill` with H = H∞; at finite width the NTK moves, and this module
measures by how much.

The whole loop is one `jax.jit`-compiled `lax.scan`; ‖u(k) − ŷ‖₂ is recorded at every step
(it is free: u is computed for the gradient anyway), heavier quantities (test predictions,
‖θ(k) − θ(0)‖_F, u itself) every `record_every` steps. A grid of rules trains the same
initialization once per rule in one vmapped call.

Reference: Du et al. arXiv 1810.02054; Arora et al. arXiv 1901.08584; Dong et al. arXiv
1910.01255; Lee et al. arXiv 1902.06720 (linearized networks).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from ._checks import as_float_array, check_finite, check_rank
from .distill import (
    TargetRule,
    _as_batched_rule,
    _check_steps,
    _metrics_2d,
    _prepare_labels,
    _record_steps,
    initial_target,
    target_step,
)

__all__ = ["TrainRun", "train", "two_layer_network", "mlp_network", "tree_distance"]


class TrainRun(NamedTuple):
    """Metrics of finite-width training runs (leading (g,) axis for a grid of rules)."""

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
    u_path: jax.Array | None  # (g, r, n[, C]) u at the recorded steps (record_predictions=True)


def tree_distance(a, b):
    """‖a − b‖_F over all leaves of two pytrees of the same structure."""
    sq = jax.tree_util.tree_map(lambda x, y: jnp.sum((x - y) ** 2), a, b)
    return jnp.sqrt(sum(jax.tree_util.tree_leaves(sq)))


def _outputs(apply_fn, params, x):
    """(n, C) outputs: an (n,) output becomes (n, 1); an (n, 1) one (e.g. an MLP readout) stays."""
    out = apply_fn(params, x)
    return out[:, None] if out.ndim == 1 else out


@functools.partial(
    jax.jit,
    static_argnames=(
        "optimizer",
        "n_blocks",
        "record_every",
        "rem",
        "binary",
        "record_predictions",
    ),
)
def _train_jit(
    rule,
    apply_fn,
    params0,
    x,
    y,
    y_hat,
    x_test,
    y_test,
    *,
    optimizer,
    n_blocks,
    record_every,
    rem,
    binary,
    record_predictions,
):
    has_test = x_test is not None

    def run_one(r):
        u0 = _outputs(apply_fn, params0, x)
        t_init = initial_target(r, u0, y, binary=binary)
        state0 = (jnp.zeros((), jnp.int32), params0, optimizer.init(params0), t_init, u0)

        def step(s, _):
            k, params, opt_state, t_prev, u_prev = s
            u, vjp = jax.vjp(lambda p: _outputs(apply_fn, p, x), params)
            t = jnp.where(k == 0, t_init, target_step(r, k, t_prev, u_prev, u, y, binary=binary))
            (grads,) = vjp(u - t)  # ∇ ½‖u − ỹ‖² = Jᵀ(u − ỹ)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)
            return (k + 1, params, opt_state, t, u), jnp.linalg.norm(u - y_hat)

        def observe(s):
            params = s[1]
            u = _outputs(apply_fn, params, x)
            out = {"dist": jnp.linalg.norm(u - y_hat), "dw": tree_distance(params, params0)}
            if has_test:
                out["dist_test"] = jnp.linalg.norm(_outputs(apply_fn, params, x_test) - y_test)
            if record_predictions:
                out["u"] = u
            return out

        def block(s, _):
            s, d = lax.scan(step, s, None, length=record_every)
            return s, (d, observe(s))

        obs0 = observe(state0)
        s, (d_blocks, obs) = lax.scan(block, state0, None, length=n_blocks)
        d_all = [d_blocks.reshape(-1)]
        if rem:
            s, d_rem = lax.scan(step, s, None, length=rem)
            d_all.append(d_rem)
            obs = jax.tree_util.tree_map(
                lambda a, b: jnp.concatenate([a, b[None]]), obs, observe(s)
            )
        obs = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), obs0, obs)
        params = s[1]
        u = _outputs(apply_fn, params, x)
        d_all = jnp.concatenate(d_all + [jnp.linalg.norm(u - y_hat)[None]])
        acc, marg = _metrics_2d(u, y_hat, binary)
        if has_test:
            f_test = _outputs(apply_fn, params, x_test)
            acc_test = _metrics_2d(f_test, y_test, binary)[0]
            dist_test = obs["dist_test"]
        else:
            f_test = jnp.zeros((0, u.shape[1]), u.dtype)
            acc_test = jnp.asarray(jnp.nan, u.dtype)
            dist_test = jnp.full_like(obs["dist"], jnp.nan)
        return (
            obs["dist"],
            d_all,
            dist_test,
            obs["dw"],
            u,
            f_test,
            marg,
            acc,
            acc_test,
            obs.get("u"),
        )

    return jax.vmap(run_one)(rule)


def train(
    apply_fn,
    params,
    x,
    y,
    y_clean,
    rule: TargetRule,
    *,
    steps: int,
    eta: float,
    record_every: int = 1,
    x_test=None,
    y_test_clean=None,
    optimizer=None,
    record_predictions: bool = False,
    dtype=None,
) -> TrainRun:
    """Train a finite network by full-batch GD on ½‖f(θ, X) − ỹ(k)‖², ỹ(k) by a target rule.

    Per step k: u(k) = f(θ_k, X); ỹ(k) = the rule's target (ỹ(0) = `distill.initial_target`,
    then `distill.target_step` from ỹ(k−1), u(k−1), u(k)); θ_{k+1} = θ_k − η J(θ_k)ᵀ(u(k) − ỹ(k))
    with the default optimizer `optax.sgd(eta)` (any optax transformation may be passed). The
    linearization of this loop, u(k+1) = u(k) − ηH(u(k) − ỹ(k)), is `distill.self_distill`.

    Args:
      apply_fn: apply_fn(params, x) → (n,) or (n, C). A plain function is part of the compiled
        program (keep the same object across calls to reuse the compilation); a
        `jax.tree_util.Partial` passes its bound arrays as data, so any network of the same
        shapes reuses it. An (n, 1) output is read as the single output of ±1 labels.
      params: initial trainable parameters θ(0) (pytree).
      x: (n, d) training inputs. y: (n,) ±1 given labels or (n, C) one-hot; y_clean: ŷ, same.
      rule: TargetRule (scalar leaves, or (g,) leaves from `distill.stack_rules`: one vmapped
        training per rule, all from the same θ(0)).
      steps: number of GD steps. eta: step size η (also used by the default optimizer).
      record_every: record the heavier metrics at k = 0, r, 2r, …, steps.
      x_test, y_test_clean: optional (n_test, d) test inputs and their ground truth.
      optimizer: optax.GradientTransformation (default optax.sgd(eta)).
      record_predictions: also return u at the recorded steps (u_path).
      dtype: float32/float64 for the whole loop (parameters, labels, metrics); default x's
        dtype when it is a float array, else the x64 default.

    Returns:
      TrainRun; with a single rule the leading (g,) axis is dropped.

    Example:
      >>> apply_fn, params = two_layer_network(1024, x)
      >>> run = train(apply_fn, params, x, y, y_clean, r3(0.9), steps=2000, eta=1.0)

    Reference: Du et al. arXiv 1810.02054; Dong et al. arXiv 1910.01255.
    """
    x_dtype = getattr(x, "dtype", None)
    if dtype is None and x_dtype in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        dtype = x_dtype  # keep the inputs' precision (float32 trains ~2× faster on CPU)
    x = as_float_array(x, "x", dtype)
    check_rank(x, "x", 2)
    check_finite(x, "x")
    dtype = x.dtype
    _check_steps(steps, record_every)
    if not (np.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be a positive finite step size, got {eta!r}")
    n = x.shape[0]
    y2, yh2, binary = _prepare_labels(y, y_clean, dtype, n)
    rule_b, single = _as_batched_rule(rule, TargetRule)
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, dtype), params)
    out0 = jax.eval_shape(apply_fn, params, x)
    allowed = ((n,), (n, 1)) if binary else (y2.shape,)
    if out0.shape not in allowed:
        raise ValueError(
            f"apply_fn(params, x) has shape {out0.shape}; the labels need "
            f"{(n,) if binary else y2.shape}"
        )
    if x_test is not None:
        if y_test_clean is None:
            raise ValueError("x_test given without y_test_clean (the test ground truth)")
        x_test = as_float_array(x_test, "x_test", dtype)
        check_rank(x_test, "x_test", 2)
        check_finite(x_test, "x_test")
        if x_test.shape[1] != x.shape[1]:
            raise ValueError(f"x_test has {x_test.shape[1]} features, x has {x.shape[1]}")
        yt = as_float_array(y_test_clean, "y_test_clean", dtype)
        yt2 = yt[:, None] if binary and yt.ndim == 1 else yt
        if yt2.shape != (x_test.shape[0], y2.shape[1]):
            raise ValueError(
                f"y_test_clean has shape {tuple(yt.shape)}; expected "
                f"{x_test.shape[0]} rows like x_test"
            )
    elif y_test_clean is not None:
        raise ValueError("y_test_clean given without x_test")
    else:
        yt2 = None
    optimizer = _sgd(float(eta)) if optimizer is None else optimizer
    n_blocks, rem, rec = _record_steps(steps, record_every)
    rule_j = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), rule_b)
    # apply_fn travels as a pytree: a `jax.tree_util.Partial` (as `two_layer_network` returns)
    # carries its arrays (the frozen readout) as leaves, so a fresh network of the same shapes
    # reuses the compilation; a plain function is keyed on its identity, as a static argument.
    if not isinstance(apply_fn, jax.tree_util.Partial):
        apply_fn = jax.tree_util.Partial(apply_fn)
    out = _train_jit(
        rule_j,
        apply_fn,
        params,
        x,
        y2,
        yh2,
        x_test,
        yt2,
        optimizer=optimizer,
        n_blocks=n_blocks,
        record_every=record_every,
        rem=rem,
        binary=binary,
        record_predictions=record_predictions,
    )
    dist, d_all, dist_test, dw, u, f_test, marg, acc, acc_test, u_path = out
    if binary:
        u, f_test = u[..., 0], f_test[..., 0]
        u_path = None if u_path is None else u_path[..., 0]
    run = TrainRun(
        jnp.asarray(rec), dist, d_all, dist_test, dw, u, f_test, marg, acc, acc_test, u_path
    )
    if single:
        run = run._replace(
            **{
                f: (None if getattr(run, f) is None else getattr(run, f)[0])
                for f in run._fields
                if f != "steps"
            }
        )
    return run


@functools.lru_cache(maxsize=64)
def _sgd(eta):
    """optax.sgd(η), one object per η so that repeated `train` calls reuse the compilation."""
    return optax.sgd(eta)


@functools.lru_cache(maxsize=64)
def _two_layer_apply(width, kappa):
    """apply(frozen, params, x) of TwoLayerReLU(width, kappa): one function object per model."""
    from .models import TwoLayerReLU, two_layer_apply_fn

    model = TwoLayerReLU(width=width, kappa=kappa)

    def apply(frozen, params, x):
        # The closure is rebuilt at trace time only: the readout stays an argument (data).
        return two_layer_apply_fn(model, frozen)(params, x)

    return model, apply


def two_layer_network(width: int, x, *, kappa: float = 1.0, seed: int = 0, init: str = "iid"):
    """The theorem's network at width m: (apply_fn, params) with a frozen ±1 readout.

    f(x) = (1/√m) Σ_r a_r ReLU(w_r·x) (`ntk_air.models.TwoLayerReLU`); params = {'w': (m, d)}
    is what `train` trains; a stays fixed inside apply_fn.

    init="iid" (the theorem's): w_r ~ N(0, κ²I), a_r uniform ±1, all independent; f(W0) ≠ 0
    (each output has variance κ²/2 at any width). init="symmetric": the first m/2 neurons drawn
    as above, the second half copies them with opposite readout (w_{r+m/2} = w_r,
    a_{r+m/2} = −a_r), so f(W0) = 0 exactly and the kernel limit from u(0) = 0 is the right
    comparison; H(W0) is then an average over m/2 independent neurons (Chizat et al. 2019).

    Args:
      width: m (even for init="symmetric"). x: (n, d) inputs (for shapes and dtype).
      kappa: κ. seed: PRNG seed of the init. init: "iid" or "symmetric".

    Returns:
      (apply_fn, params): apply_fn(params, x) → (n,) is a `jax.tree_util.Partial` holding the
      readout as data, so `train` compiles once per (width, κ, shapes), not once per network.

    Reference: Du et al. arXiv 1810.02054; Chizat, Oyallon, Bach arXiv 1812.07956 (symmetric init).
    """
    if isinstance(width, bool) or not isinstance(width, int | np.integer) or width < 1:
        raise ValueError(f"width must be a positive int, got {width!r}")
    if init not in ("iid", "symmetric"):
        raise ValueError(f"init must be 'iid' or 'symmetric', got {init!r}")
    if init == "symmetric" and width % 2:
        raise ValueError(f"init='symmetric' pairs neurons: width must be even, got {width}")
    model, apply = _two_layer_apply(int(width), float(kappa))
    variables = model.init(jax.random.key(seed), jnp.asarray(x))
    params, frozen = variables["params"], variables["frozen"]
    if init == "symmetric":
        half = width // 2
        w, a = params["w"][:half], frozen["a"][:half]
        params = {"w": jnp.concatenate([w, w])}
        frozen = {"a": jnp.concatenate([a, -a])}
    return jax.tree_util.Partial(apply, frozen), params


def mlp_network(
    widths,
    x,
    *,
    out_dim: int = 1,
    w_std: float = 1.0,
    b_std: float = 0.0,
    activation: str = "relu",
    seed: int = 0,
):
    """A deep MLP in NTK parameterization (`ntk_air.models.MLP`): (apply_fn, params).

    Its infinite-width NTK is `ntk_air.kernels.fc_kernel_fn(len(widths), activation, w_std, b_std)`.
    apply_fn returns (n, out_dim); `train` reads (n, 1) as the output for ±1 labels.
    """
    from .models import MLP

    model = MLP(
        widths=tuple(int(w) for w in widths),
        out_dim=out_dim,
        w_std=w_std,
        b_std=b_std,
        activation=activation,
    )
    params = model.init(jax.random.key(seed), jnp.asarray(x))["params"]
    return _mlp_apply(model), params


@functools.lru_cache(maxsize=64)
def _mlp_apply(model):
    def apply_fn(params, x):
        return model.apply({"params": params}, x)

    return apply_fn
