"""Self-distillation in the kernel limit: the family of target rules, simulated exactly.

The linearized network trains on a moving target ỹ(k) (SCIENCE.md §3–4):

    u(k+1) = u(k) − η H (u(k) − ỹ(k)),      f_{k+1}(x) = f_k(x) − η K(x, X)(u(k) − ỹ(k)).

Every rule of SCIENCE.md §4 is one update of the target, written with the rule's α_k:

    ỹ(k+1) = m_k ỹ(k) + (1 − m_k)[(1 − a_k) y + a_k p(q_{k+1})],
    m_k = moving·α_k,  a_k = moving + (1 − moving)·α_k,  q_{k+1} = u(k+1) (or u(k) if lagged),
    ỹ(0) = (1 − a_0') y + a_0' p(u(0)),  a_0' = (1 − moving)·α_0,

with p the identity (soft) or the hard label (sign for ±1 labels, one-hot argmax for classes).
moving = 0 gives R1 ỹ(k) = (1 − α_k) y + α_k p(k); moving = 1 gives R3
ỹ(k+1) = α ỹ(k) + (1 − α) p(k+1), ỹ(0) = y. α_k is constant, increasing
(α·min(1, k/ramp)) or adaptive (α·accuracy of p against the given labels: R2).

Rules are *data* (`TargetRule`, a pytree of scalars), so a grid mixing R1, R3, lagged, soft and
hard settings is one `vmap`ped call; what is static is the engine that runs them:

* "closed-form" — soft rules with constant α are a linear recursion on (u, ỹ, Σ(u − ỹ), y) that is
  diagonal in the eigenbasis: a 4×4 matrix A_i per mode, advanced by exact powers A_i^r
  (repeated squaring), O(n log r) per record after one eigendecomposition.
* "eigen-scan" — soft rules with time-varying α: the same step, stepped with `lax.scan` in the
  eigenbasis, O(n) per step.
* "scan" — hard targets and adaptive α: sign/argmax need the original basis, so the step runs
  there, one H-product (O(n²)) per step; it is also the reference for the other two.

Round-based rules (a fresh student per round, trained on targets built from the previous
student) are `RoundsRule`: repeated ridge self-distillation y_{t+1} = H(H + cI)⁻¹ y_t
(Mobahi et al. 2020), ξ-weighted distillation y_{t+1} = (1 − ξ) y + ξ p(u_t) with ξ possibly > 1
(Das & Sanghavi 2023), and born-again rounds with a k-step GD student (Furlanello et al. 2018).

References: Dong et al. arXiv 1910.01255; Reed et al. arXiv 1412.6596 (bootstrapping);
Mobahi et al. arXiv 2002.05715; Das & Sanghavi arXiv 2301.13304; Furlanello et al.
arXiv 1805.04770; Kim et al. arXiv 2006.12000 (increasing α).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from ._checks import as_float_array, check_finite, check_rank, is_concrete
from .dynamics import check_step_size
from .eigen import eigensystem

__all__ = [
    "TargetRule",
    "RoundsRule",
    "DistillRun",
    "SCHEDULES",
    "ENGINES",
    "plain_gd",
    "r1",
    "r1_lag",
    "r2",
    "r3",
    "bootstrap",
    "ridge_rounds",
    "xi_distill",
    "born_again",
    "stack_rules",
    "rule_label",
    "rounds_label",
    "hard_targets",
    "margin",
    "accuracy",
    "r3_soft_limit_filter",
    "self_distill",
    "distill_rounds",
    "target_step",
    "initial_target",
]

SCHEDULES = {"constant": 0, "increasing": 1, "adaptive": 2}
ENGINES = ("auto", "closed-form", "eigen-scan", "scan")


# ---------------------------------------------------------------------------------------------
# Rules as data
# ---------------------------------------------------------------------------------------------


class TargetRule(NamedTuple):
    """One step-based target rule (scalars; stack with `stack_rules` for a grid of shape (g,))."""

    alpha: jax.Array  # () or (g,) the rule's α (weight on predictions for R1, momentum for R3)
    moving: jax.Array  # () or (g,) 1 = R3 moving target, 0 = R1 mix with the given labels
    lag: jax.Array  # () or (g,) 1 = predictions of the previous step, u(k − 1)
    hard: jax.Array  # () or (g,) 1 = hard targets (sign / one-hot argmax), 0 = soft
    schedule: jax.Array  # () or (g,) 0 constant, 1 increasing α·min(1, k/ramp), 2 adaptive α·acc
    ramp: jax.Array  # () or (g,) steps to reach α under the increasing schedule


class RoundsRule(NamedTuple):
    """One round-based rule: a fresh student per round (stack with `stack_rules`)."""

    xi: jax.Array  # () or (g,) y_{t+1} = (1 − ξ) y + ξ p(u_t); ξ = 1: pure self-distillation
    ridge: jax.Array  # () or (g,) student = kernel ridge with c = ridge (when student_steps = 0)
    student_steps: jax.Array  # () or (g,) student = GD from 0 for this many steps (0: ridge)
    hard: jax.Array  # () or (g,) 1 = hard targets p(u) = sign(u) / one-hot argmax


def _rule(alpha, moving, lag, hard, schedule, ramp) -> TargetRule:
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {tuple(SCHEDULES)}, got {schedule!r}")
    if not np.isfinite(alpha):
        raise ValueError(f"alpha must be finite, got {alpha!r}")
    if schedule == "increasing" and not ramp > 0:
        raise ValueError(f"the increasing schedule needs ramp > 0 steps, got {ramp!r}")
    return TargetRule(
        *(np.float64(v) for v in (alpha, moving, lag, hard, SCHEDULES[schedule], ramp))
    )


def plain_gd() -> TargetRule:
    """Plain gradient descent on the given labels: ỹ(k) = y (R1 with α = 0)."""
    return _rule(0.0, 0, 0, 0, "constant", 0.0)


def r1(alpha, *, hard=False, lag=False, schedule="constant", ramp=0.0) -> TargetRule:
    """R1, mix the given labels with the predictions.

    ỹ(k) = (1 − α_k) y + α_k p(k), p = u (soft) or sign/argmax (hard), p(k) = p(u(k − 1)) if lag.
    Soft with constant α this is plain GD with step η(1 − α) (SCIENCE.md §4).

    Args:
      alpha: α (weight on the predictions). hard: hard targets. lag: use u(k − 1).
      schedule: "constant", "increasing" (α_k = α·min(1, k/ramp)) or "adaptive" (α·accuracy).
      ramp: steps of the increasing schedule.

    Returns:
      TargetRule.

    Example:
      >>> run = self_distill(H, y, y_clean, r1(0.5, hard=True), steps=1000)

    Reference: Dong et al. arXiv 1910.01255; Kim et al. arXiv 2006.12000 (increasing α).
    """
    return _rule(alpha, 0, float(lag), float(hard), schedule, ramp)


def r1_lag(alpha, *, hard=False, schedule="constant", ramp=0.0) -> TargetRule:
    """R1-lag: ỹ(k) = (1 − α_k) y + α_k p(u(k − 1)), with u(−1) = u(0)."""
    return r1(alpha, hard=hard, lag=True, schedule=schedule, ramp=ramp)


def r2(scale=1.0) -> TargetRule:
    """R2: ỹ(k) = (1 − α_k) y + α_k sign(u(k)), α_k = scale · (training accuracy against y)."""
    return _rule(scale, 0, 0, 1, "adaptive", 0.0)


def r3(alpha, *, hard=True, lag=False, schedule="constant", ramp=0.0) -> TargetRule:
    """R3: ỹ(k+1) = α ỹ(k) + (1 − α) p(k+1), ỹ(0) = y (moving target)."""
    return _rule(alpha, 1, float(lag), float(hard), schedule, ramp)


def bootstrap(beta, *, hard=False) -> TargetRule:
    """Bootstrapping with the squared loss: R1 with α = 1 − β.

    ỹ(k) = β y + (1 − β) p(k), p soft (u) or hard (sign / one-hot argmax).

    Reference: Reed et al. arXiv 1412.6596.
    """
    return _rule(1.0 - beta, 0, 0, float(hard), "constant", 0.0)


def ridge_rounds(ridge) -> RoundsRule:
    """Repeated ridge self-distillation: each round a kernel-ridge student fits the last one.

    y_{t+1} = H(H + cI)⁻¹ y_t, y_0 = y, c = ridge > 0 (ξ = 1, soft); run with `distill_rounds`.

    Reference: Mobahi, Farajtabar, Bartlett arXiv 2002.05715.
    """
    return _rounds(1.0, ridge, 0, False)


def xi_distill(xi, *, ridge=None, student_steps=0, hard=False) -> RoundsRule:
    """ξ-weighted self-distillation: the student's target mixes labels and teacher, ξ may be > 1.

    y_{t+1} = (1 − ξ) y + ξ p(u_t), u_t = the round-t student (kernel ridge with c = ridge, or
    `student_steps` GD steps from 0), p soft or hard; run with `distill_rounds`.

    Reference: Das, Sanghavi arXiv 2301.13304.
    """
    return _rounds(xi, 0.0 if ridge is None else ridge, student_steps, hard)


def born_again(student_steps, *, hard=False) -> RoundsRule:
    """Born-again rounds: each student is GD from 0 for k steps on the previous student's outputs.

    y_{t+1} = p(u_t), u_t = (I − (I − ηH)^k) y_t; run with `distill_rounds`.

    Reference: Furlanello et al. arXiv 1805.04770.
    """
    return _rounds(1.0, 0.0, student_steps, hard)


def _rounds(xi, ridge, student_steps, hard) -> RoundsRule:
    if not np.isfinite(xi):
        raise ValueError(f"xi must be finite, got {xi!r}")
    if isinstance(student_steps, bool) or int(student_steps) != student_steps or student_steps < 0:
        raise ValueError(f"student_steps must be a non-negative int, got {student_steps!r}")
    if student_steps == 0 and not ridge > 0:
        raise ValueError(f"a ridge student needs ridge > 0 (got {ridge!r}); or set student_steps")
    return RoundsRule(np.float64(xi), np.float64(ridge), np.int64(student_steps), np.float64(hard))


def stack_rules(rules):
    """Stack rules of one type into a grid: leaves (g,), for one vmapped call."""
    rules = list(rules)
    if not rules:
        raise ValueError("stack_rules needs at least one rule")
    kinds = {type(r) for r in rules}
    if len(kinds) != 1:
        raise ValueError(
            f"cannot stack different rule types together: {sorted(k.__name__ for k in kinds)}"
        )
    return jax.tree_util.tree_map(lambda *v: np.stack(v), *rules)


def rule_label(rule: TargetRule) -> str:
    """Readable name of one (unstacked) step rule, e.g. 'R3 hard α=0.9'."""
    a, mv, lag, hard, sch, ramp = (float(v) for v in rule)
    if sch == SCHEDULES["adaptive"] and not mv and hard:
        name = "R2" if a == 1 else f"R2 ×{a:g}"
        return name + (" lag" if lag else "")
    if not mv and a == 0:
        return "plain GD"
    name = ("R3" if mv else "R1") + ("-lag" if lag else "") + (" hard" if hard else " soft")
    name += f" α={a:g}"
    if sch == SCHEDULES["increasing"]:
        name += f" ramp {ramp:g}"
    elif sch == SCHEDULES["adaptive"]:
        name += " adaptive"
    return name


def rounds_label(rule: RoundsRule) -> str:
    xi, c, k, hard = float(rule.xi), float(rule.ridge), int(rule.student_steps), float(rule.hard)
    student = f"GD {k} steps" if k else f"ridge c={c:g}"
    if xi == 1 and not k and not hard:
        return f"ridge rounds c={c:g}"
    return f"ξ={xi:g} {student}" + (" hard" if hard else "")


# ---------------------------------------------------------------------------------------------
# Hard labels and metrics (labels are handled as (n, C) internally; C = 1 means ±1 labels)
# ---------------------------------------------------------------------------------------------


def hard_targets(u, binary: bool):
    """sign(u) for ±1 labels (binary), one-hot argmax over the last axis for classes."""
    if binary:
        return jnp.sign(u)
    return jax.nn.one_hot(jnp.argmax(u, axis=-1), u.shape[-1], dtype=u.dtype)


def accuracy(u, labels, binary: bool):
    """0-1 accuracy: mean(sign(u) = y) for ±1 labels, mean(argmax u = argmax y) for one-hot."""
    if binary:
        return jnp.mean(jnp.sign(u) == jnp.sign(labels), dtype=u.dtype)
    return jnp.mean(jnp.argmax(u, axis=-1) == jnp.argmax(labels, axis=-1), dtype=u.dtype)


def margin(u, labels, binary: bool):
    """min_i ŷ_i u_i (±1 labels) or min_i (u_i[true] − max_{c≠true} u_i[c]) (one-hot)."""
    if binary:
        return jnp.min(jnp.sign(labels) * u)
    true = jnp.argmax(labels, axis=-1)
    u_true = jnp.take_along_axis(u, true[..., None], axis=-1)[..., 0]
    others = jnp.where(jax.nn.one_hot(true, u.shape[-1], dtype=bool), -jnp.inf, u)
    return jnp.min(u_true - jnp.max(others, axis=-1))


def _metrics_2d(u, labels, binary):
    """Metrics on internal (n, C) arrays (C = 1 for ±1 labels)."""
    if binary:
        return accuracy(u[:, 0], labels[:, 0], True), margin(u[:, 0], labels[:, 0], True)
    return accuracy(u, labels, False), margin(u, labels, False)


# ---------------------------------------------------------------------------------------------
# One target update, shared with training.py (real networks use the very same rule)
# ---------------------------------------------------------------------------------------------


def _alpha_at(rule: TargetRule, k, q, y, binary):
    """α_k: constant, increasing α·min(1, k/ramp), or adaptive α·accuracy(p(q) vs y)."""
    ramp = jnp.where(rule.ramp > 0, rule.ramp, 1.0)
    increasing = rule.alpha * jnp.minimum(1.0, k / ramp)
    adaptive = rule.alpha * accuracy(q, y, binary)  # sign/argmax agree on (n, 1) ±1 columns
    return jnp.select([rule.schedule == 1, rule.schedule == 2], [increasing, adaptive], rule.alpha)


def initial_target(rule: TargetRule, u0, y, *, binary: bool):
    """ỹ(0) = (1 − a_0') y + a_0' p(u(0)), a_0' = (1 − moving)·α_0 (R3: ỹ(0) = y)."""
    a0 = (1.0 - rule.moving) * _alpha_at(rule, 0, u0, y, binary)
    p = jnp.where(rule.hard > 0, hard_targets(u0, binary), u0)
    return ((1.0 - a0) * y + a0 * p).astype(u0.dtype)


def target_step(rule: TargetRule, k, t_prev, u_prev, u_new, y, *, binary: bool):
    """ỹ(k) from ỹ(k−1), u(k−1), u(k): m ỹ(k−1) + (1 − m)[(1 − a) y + a p(q)] (module docstring).

    Args:
      rule: one TargetRule (scalar leaves).
      k: the new step index k ≥ 1 (for the schedule).
      t_prev: ỹ(k − 1), (n,) or (n, C). u_prev, u_new: u(k − 1), u(k), same shape. y: given labels.
      binary: ±1 labels (sign) rather than one-hot classes (argmax).

    Returns:
      ỹ(k), same shape as y.
    """
    q = jnp.where(rule.lag > 0, u_prev, u_new)
    alpha = _alpha_at(rule, k, q, y, binary)
    p = jnp.where(rule.hard > 0, hard_targets(q, binary), q)
    m = rule.moving * alpha
    a = rule.moving + (1.0 - rule.moving) * alpha
    return (m * t_prev + (1.0 - m) * ((1.0 - a) * y + a * p)).astype(u_new.dtype)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


class DistillRun(NamedTuple):
    """Metrics of self-distillation runs (leading (g,) axis for a grid of rules)."""

    steps: jax.Array  # (r,) recorded step (or round) indices
    dist_train: jax.Array  # (g, r) ‖u(k) − ŷ‖₂ at the recorded steps
    dist_test: jax.Array  # (g, r) ‖f_k(X_test) − ŷ_test‖₂ (NaN without test data)
    u_final: jax.Array  # (g, n) or (g, n, C) final training predictions
    f_test_final: jax.Array  # (g, n_test) or (g, n_test, C) final test predictions (empty without)
    margin_train: jax.Array  # (g,) final min_i ŷ_i u_i (binary) or class margin (one-hot)
    accuracy_train: jax.Array  # (g,) final 0-1 accuracy of u against ŷ
    accuracy_test: jax.Array  # (g,) final 0-1 accuracy of f(X_test) against ŷ_test (NaN without)
    u_path: jax.Array | None  # (g, r, n[, C]) u at the recorded steps (record_predictions=True)


def _record_steps(steps: int, record_every: int):
    n_blocks, rem = divmod(steps, record_every)
    rec = list(range(0, n_blocks * record_every + 1, record_every))
    if rem:
        rec.append(steps)
    return n_blocks, rem, np.asarray(rec, dtype=np.int64)


def _scan_blocks(advance, observe, state, n_blocks, record_every, rem):
    """Observe at step 0, after each block of `record_every` steps, and after the remainder."""
    obs0 = observe(state)

    def body(s, _):
        s = advance(s, record_every)
        return s, observe(s)

    state, obs = lax.scan(body, state, None, length=n_blocks)
    if rem:
        state = advance(state, rem)
        obs = jax.tree_util.tree_map(
            lambda a, b: jnp.concatenate([a, b[None]]), obs, observe(state)
        )
    obs = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), obs0, obs)
    return state, obs


# ---------------------------------------------------------------------------------------------
# Engines for step-based rules (internal labels (n, C))
# ---------------------------------------------------------------------------------------------


def _transition_matrices(h, rule):
    """Per-mode 4×4 matrices A_i on (u, ỹ, S = Σ(u − ỹ), y) for soft constant-α rules; h = ηλ_i.

    u' = (1 − h) u + h ỹ;  S' = S + u − ỹ;  q = L u + (1 − L) u';
    ỹ' = m ỹ + (1 − m)(1 − a) y + (1 − m) a q.
    """
    m = rule.moving * rule.alpha
    a = rule.moving + (1.0 - rule.moving) * rule.alpha
    L = rule.lag
    q_u = L + (1.0 - L) * (1.0 - h)
    q_t = (1.0 - L) * h
    z, o = jnp.zeros_like(h), jnp.ones_like(h)
    rows = [
        [1.0 - h, h, z, z],
        [(1.0 - m) * a * q_u, m + (1.0 - m) * a * q_t, z, (1.0 - m) * (1.0 - a) * o],
        [o, -o, o, z],
        [z, z, z, o],
    ]
    return jnp.stack([jnp.stack([jnp.broadcast_to(e, h.shape) for e in r], -1) for r in rows], -2)


def _closed_form(
    rule,
    lam,
    V,
    y,
    y_hat,
    u0,
    kv_test,
    f0_test,
    y_test,
    eta,
    *,
    n_blocks,
    record_every,
    rem,
    binary,
    record_predictions,
):
    h = eta * lam
    A = _transition_matrices(h, rule)  # (n, 4, 4)
    c_y, c_hat, c_u0 = V.T @ y, V.T @ y_hat, V.T @ u0
    a0 = (1.0 - rule.moving) * rule.alpha
    c_t0 = (1.0 - a0) * c_y + a0 * c_u0
    z0 = jnp.stack([c_u0, c_t0, jnp.zeros_like(c_y), c_y], axis=1)  # (n, 4, C)

    # Powers computed once, outside the record loop: A^r by repeated squaring, O(n log r).
    powers = {r: jnp.linalg.matrix_power(A, r) for r in {record_every, rem} if r}

    def advance(z, r):
        return jnp.einsum("nij,njc->nic", powers[r], z)

    def observe(z):
        out = {"dist": jnp.linalg.norm(z[:, 0] - c_hat)}
        if kv_test is not None:
            f = f0_test - eta * kv_test @ z[:, 2]
            out["dist_test"] = jnp.linalg.norm(f - y_test)
        if record_predictions:
            out["u"] = V @ z[:, 0]
        return out

    z, obs = _scan_blocks(advance, observe, z0, n_blocks, record_every, rem)
    u = V @ z[:, 0]
    f_test = None if kv_test is None else f0_test - eta * kv_test @ z[:, 2]
    return u, f_test, obs


def _stepped(
    rule,
    apply_H,
    y,
    y_hat_norm_fn,
    u0,
    test_fn,
    eta,
    *,
    n_blocks,
    record_every,
    rem,
    binary,
    record_predictions,
    to_original,
):
    """Step u ← u − ηH(u − ỹ) and the target rule; `apply_H` diagonal (eigenbasis) or dense."""
    t0 = initial_target(rule, u0, y, binary=binary)
    state0 = (jnp.zeros((), jnp.int32), u0, t0, jnp.zeros_like(u0))

    def step(s, _):
        k, u, t, S = s
        r = u - t
        u_new = u - eta * apply_H(r)
        t_new = target_step(rule, k + 1, t, u, u_new, y, binary=binary)
        return (k + 1, u_new, t_new, S + r), None

    def advance(s, r):
        return lax.scan(step, s, None, length=r)[0]

    def observe(s):
        _, u, _, S = s
        out = {"dist": y_hat_norm_fn(u)}
        if test_fn is not None:
            out["dist_test"] = test_fn(S)[1]
        if record_predictions:
            out["u"] = to_original(u)
        return out

    s, obs = _scan_blocks(advance, observe, state0, n_blocks, record_every, rem)
    _, u, _, S = s
    f_test = None if test_fn is None else test_fn(S)[0]
    return to_original(u), f_test, obs


@functools.partial(
    jax.jit,
    static_argnames=("engine", "n_blocks", "record_every", "rem", "binary", "record_predictions"),
)
def _self_distill_jit(
    rule,
    H,
    lam,
    V,
    y,
    y_hat,
    u0,
    k_test,
    f0_test,
    y_test,
    eta,
    *,
    engine,
    n_blocks,
    record_every,
    rem,
    binary,
    record_predictions,
):
    has_test = k_test is not None
    kw = dict(
        n_blocks=n_blocks,
        record_every=record_every,
        rem=rem,
        binary=binary,
        record_predictions=record_predictions,
    )

    if engine == "closed-form":
        kv_test = (k_test @ V) if has_test else None

        def run_one(r):
            return _closed_form(r, lam, V, y, y_hat, u0, kv_test, f0_test, y_test, eta, **kw)

    elif engine == "eigen-scan":
        kv_test = (k_test @ V) if has_test else None
        c_hat = V.T @ y_hat

        def test_fn(S):
            f = f0_test - eta * kv_test @ S
            return f, jnp.linalg.norm(f - y_test)

        def run_one(r):
            return _stepped(
                r,
                lambda z: lam[:, None] * z,
                V.T @ y,
                lambda c: jnp.linalg.norm(c - c_hat),
                V.T @ u0,
                test_fn if has_test else None,
                eta,
                to_original=lambda c: V @ c,
                **kw,
            )

    else:

        def test_fn(S):
            f = f0_test - eta * k_test @ S
            return f, jnp.linalg.norm(f - y_test)

        def run_one(r):
            return _stepped(
                r,
                lambda z: H @ z,
                y,
                lambda u: jnp.linalg.norm(u - y_hat),
                u0,
                test_fn if has_test else None,
                eta,
                to_original=lambda u: u,
                **kw,
            )

    def metrics(r):
        u, f_test, obs = run_one(r)
        acc, marg = _metrics_2d(u, y_hat, binary)
        if has_test:
            acc_test = _metrics_2d(f_test, y_test, binary)[0]
            dist_test = obs["dist_test"]
        else:
            acc_test = jnp.asarray(jnp.nan, u.dtype)
            dist_test = jnp.full_like(obs["dist"], jnp.nan)
            f_test = jnp.zeros((0, u.shape[1]), u.dtype)
        return obs["dist"], dist_test, u, f_test, marg, acc, acc_test, obs.get("u")

    return jax.vmap(metrics)(rule)


def _prepare_labels(y, y_clean, dtype, n, name_y="y", name_clean="y_clean"):
    y = as_float_array(y, name_y, dtype)
    y_clean = as_float_array(y_clean, name_clean, dtype)
    for arr, name in ((y, name_y), (y_clean, name_clean)):
        check_finite(arr, name)
        if arr.ndim not in (1, 2) or arr.shape[0] != n:
            raise ValueError(f"{name} must have shape ({n},) or ({n}, C), got {tuple(arr.shape)}")
    if y.shape != y_clean.shape:
        raise ValueError(f"{name_y} and {name_clean} shapes differ: {y.shape} vs {y_clean.shape}")
    binary = y.ndim == 1
    if is_concrete(y_clean):
        yc = np.asarray(y_clean)
        if binary and not np.all(np.abs(yc) == 1):
            raise ValueError(
                f"{name_clean} must be ±1 for binary labels; found values {np.unique(yc)[:5]}"
            )
        if not binary and not (np.all((yc == 0) | (yc == 1)) and np.all(yc.sum(1) == 1)):
            raise ValueError(f"{name_clean} must be one-hot rows for class labels")
    as2d = (lambda a: a[:, None]) if binary else (lambda a: a)
    return as2d(y), as2d(y_clean), binary


def _as_batched_rule(rule, kind):
    if not isinstance(rule, kind):
        raise TypeError(f"rule must be a {kind.__name__}, got {type(rule).__name__}")
    leaves = [np.asarray(v) for v in rule]
    nd = {v.ndim for v in leaves}
    if nd - {0, 1} or len({v.shape for v in leaves}) != 1:
        raise ValueError(
            f"rule leaves must all be scalars or all (g,), got shapes {[v.shape for v in leaves]}"
        )
    single = nd == {0}
    batched = kind(*(np.atleast_1d(v) for v in leaves))
    return batched, single


def _pick_engine(engine, rule: TargetRule):
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    hard = bool(np.any(rule.hard > 0))
    adaptive = bool(np.any(rule.schedule == SCHEDULES["adaptive"]))
    varying = bool(np.any(rule.schedule != SCHEDULES["constant"]))
    if engine == "auto":
        return "scan" if (hard or adaptive) else ("eigen-scan" if varying else "closed-form")
    if engine in ("closed-form", "eigen-scan") and (hard or adaptive):
        raise ValueError(f"engine {engine!r} handles soft, non-adaptive rules only; use 'scan'")
    if engine == "closed-form" and varying:
        raise ValueError("engine 'closed-form' needs a constant α; use 'eigen-scan' or 'scan'")
    return engine


def self_distill(
    kernel,
    y,
    y_clean,
    rule: TargetRule,
    *,
    steps: int,
    eta=None,
    eig=None,
    record_every: int = 1,
    u0=None,
    k_test=None,
    y_test_clean=None,
    f0_test=None,
    engine: str = "auto",
    record_predictions: bool = False,
    force: bool = False,
):
    """Run linearized self-distillation with a target rule (or a grid of rules) for `steps` steps.

    u(k+1) = u(k) − ηH(u(k) − ỹ(k)), ỹ by the rule (module docstring), test predictions
    f_k(x) = f_0(x) − η K(x, X) Σ_{j<k}(u(j) − ỹ(j)). Soft constant-α rules run in closed form
    from one eigendecomposition; hard/adaptive rules are stepped in the original basis (O(n²) per
    step); soft rules with an increasing α are stepped in the eigenbasis (O(n) per step).

    Args:
      kernel: (n, n) NTK Gram matrix H on the training inputs.
      y: (n,) given (noisy) ±1 labels, or (n, C) one-hot/soft class labels.
      y_clean: the ground truth ŷ, same shape (±1 or one-hot rows).
      rule: a TargetRule, scalar leaves (one run) or (g,) leaves from `stack_rules` (a grid,
        vmapped in one call).
      steps: number of gradient steps k.
      eta: step size; default 1/λ_max(H). η ≥ 2/λ_max raises unless force=True.
      eig: Eigensystem of `kernel` (computed if needed and not given).
      record_every: record metrics at k = 0, r, 2r, … and at k = steps.
      u0: (n,)/(n, C) initial predictions u(0) (default 0). f0_test: f_0(X_test) (default 0).
      k_test: (n_test, n) K(X_test, X); y_test_clean: (n_test,)/(n_test, C) test ground truth.
      engine: "auto", "closed-form", "eigen-scan" or "scan" (module docstring).
      record_predictions: also return u at every recorded step (u_path).

    Returns:
      DistillRun (module docstring); with a single rule the leading (g,) axis is dropped.

    Example:
      >>> H = ntk_air.two_layer_relu(x)
      >>> run = self_distill(H, y, y_clean, r3(0.9, hard=True), steps=2000, record_every=10)
      >>> run.dist_train[-1], run.margin_train

    Reference: Dong et al. arXiv 1910.01255 (SCIENCE.md §4).
    """
    H = _prepare_kernel(kernel)
    n = H.shape[0]
    _check_steps(steps, record_every)
    y2, yh2, binary = _prepare_labels(y, y_clean, H.dtype, n)
    rule_b, single = _as_batched_rule(rule, TargetRule)
    engine = _pick_engine(engine, rule_b)
    if engine != "scan" and eig is None:
        eig = eigensystem(H, dtype=H.dtype)
    lam_max = (
        float(eig.eigenvalues[0])
        if eig is not None
        else float(np.linalg.eigvalsh(np.asarray(H))[-1])
    )
    eta = check_step_size(lam_max, eta, force=force)
    u0_2 = jnp.zeros_like(y2) if u0 is None else _shape_like(u0, y2, "u0", binary)
    k_test, f0_2, yt2 = _prepare_test(k_test, y_test_clean, f0_test, n, y2, binary, H.dtype)
    lam, V = (eig.eigenvalues, eig.eigenvectors) if eig is not None else (None, None)
    n_blocks, rem, rec = _record_steps(steps, record_every)
    rule_j = jax.tree_util.tree_map(lambda v: jnp.asarray(v, H.dtype), rule_b)
    out = _self_distill_jit(
        rule_j,
        H if engine == "scan" else None,
        lam,
        V,
        y2,
        yh2,
        u0_2,
        k_test,
        f0_2,
        yt2,
        jnp.asarray(eta, H.dtype),
        engine=engine,
        n_blocks=n_blocks,
        record_every=record_every,
        rem=rem,
        binary=binary,
        record_predictions=record_predictions,
    )
    dist, dist_test, u, f_test, marg, acc, acc_test, u_path = out
    if binary:
        u, f_test = u[..., 0], f_test[..., 0]
        u_path = None if u_path is None else u_path[..., 0]
    run = DistillRun(jnp.asarray(rec), dist, dist_test, u, f_test, marg, acc, acc_test, u_path)
    return _unbatch(run) if single else run


def _unbatch(run):
    return run._replace(
        **{
            f: (None if getattr(run, f) is None else getattr(run, f)[0])
            for f in run._fields
            if f != "steps"
        }
    )


def _check_int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
        raise ValueError(f"{name} must be an int ≥ {lo}, got {v!r}")


def _check_steps(steps, record_every):
    _check_int("steps", steps, 0)
    _check_int("record_every", record_every, 1)


def _prepare_kernel(kernel):
    H = as_float_array(kernel, "kernel")
    check_rank(H, "kernel", 2)
    if H.shape[0] != H.shape[1]:
        raise ValueError(f"kernel must be square, got {tuple(H.shape)}")
    check_finite(H, "kernel")
    return H


def _shape_like(a, ref2, name, binary):
    a = as_float_array(a, name, ref2.dtype)
    check_finite(a, name)
    a2 = a[:, None] if binary and a.ndim == 1 else a
    if a2.shape != ref2.shape:
        want = ref2.shape[:1] if binary else ref2.shape
        raise ValueError(f"{name} must have shape {tuple(want)}, got {tuple(a.shape)}")
    return a2


def _prepare_test(k_test, y_test_clean, f0_test, n, y2, binary, dtype):
    if k_test is None:
        if y_test_clean is not None or f0_test is not None:
            raise ValueError("y_test_clean / f0_test given without k_test = K(X_test, X)")
        return None, None, None
    if y_test_clean is None:
        raise ValueError("k_test given without y_test_clean (the test ground truth)")
    k_test = as_float_array(k_test, "k_test", dtype)
    check_rank(k_test, "k_test", 2)
    check_finite(k_test, "k_test")
    if k_test.shape[1] != n:
        raise ValueError(f"k_test must be (n_test, {n}) = K(X_test, X), got {tuple(k_test.shape)}")
    nt = k_test.shape[0]
    yt = as_float_array(y_test_clean, "y_test_clean", dtype)
    check_finite(yt, "y_test_clean")
    yt2 = yt[:, None] if binary and yt.ndim == 1 else yt
    if yt2.shape != (nt, y2.shape[1]):
        raise ValueError(
            f"y_test_clean must have {nt} rows like k_test and the labels' classes, "
            f"got {tuple(yt.shape)}"
        )
    f0 = jnp.zeros_like(yt2) if f0_test is None else _shape_like(f0_test, yt2, "f0_test", binary)
    return k_test, f0, yt2


def r3_soft_limit_filter(eigenvalues, alpha, eta):
    """g(λ) = ηλ / (1 − α + αηλ): soft R3 with constant α from u(0) = 0 ends at u(∞) = g(H) y.

    Equivalently u(∞) = ηH((1 − α)I + αηH)⁻¹ y; as α → 1 with (1 − α)/η = γ it is kernel ridge
    regression H(H + γI)⁻¹ y (SCIENCE.md §4). Per mode, (u, ỹ) evolves by a 2×2 matrix with
    eigenvalues 1 and α(1 − ηλ); u(∞) is the projection of (0, v_iᵀy) on the eigenvalue-1
    eigenvector (1, 1) along the other one.

    Args:
      eigenvalues: (n,) λ_i. alpha: α ∈ [0, 1). eta: step size.

    Returns:
      (n,) filter values g(λ_i).
    """
    lam = jnp.asarray(eigenvalues)
    return eta * lam / (1.0 - alpha + alpha * eta * lam)


# ---------------------------------------------------------------------------------------------
# Round-based rules
# ---------------------------------------------------------------------------------------------


def _student_filters(rule: RoundsRule, lam, eta):
    """f(λ) on training points and φ(λ) with test predictions K(x, X) V φ Vᵀ y_t (f = λφ).

    Ridge: φ = 1/(λ + c). GD from 0 for k steps: φ = η Σ_{j<k} (1 − ηλ)^j = −expm1(k log1p(−ηλ))/λ.
    """
    h = eta * lam
    k = rule.student_steps
    safe_h = jnp.where(h == 0, 1.0, h)
    # 1 − (1 − h)^k cancels for small h; expm1/log1p keeps it exact there (h < 1/2).
    small = -jnp.expm1(k * jnp.log1p(-jnp.minimum(h, 0.5))) / safe_h
    large = (1.0 - jnp.power(1.0 - h, k)) / safe_h  # integer power: fine for 1 − h < 0
    geo = jnp.where(h == 0, k.astype(lam.dtype), jnp.where(h < 0.5, small, large))
    phi_gd = eta * geo
    phi_ridge = 1.0 / (lam + jnp.where(rule.student_steps > 0, 1.0, rule.ridge))
    phi = jnp.where(rule.student_steps > 0, phi_gd, phi_ridge)
    return lam * phi, phi


def _geometric(r, t):
    """Σ_{s<t} r^s, stable near r = 1."""
    near = jnp.abs(1.0 - r) < 1e-6
    safe = jnp.where(near, 0.5, r)
    return jnp.where(near, t * (1.0 + 0.5 * (t - 1.0) * (r - 1.0)), (1.0 - safe**t) / (1.0 - safe))


@functools.partial(jax.jit, static_argnames=("rounds", "binary", "engine"))
def _rounds_jit(rule, lam, V, y, y_hat, kv_test, y_test, eta, *, rounds, binary, engine):
    has_test = kv_test is not None
    c_y, c_hat = V.T @ y, V.T @ y_hat

    def run_one(r):
        f, phi = _student_filters(r, lam, eta)
        if engine == "closed-form":
            ts = jnp.arange(rounds + 1, dtype=lam.dtype)
            ratio = (r.xi * f)[None, :]
            coef = ratio ** ts[:, None] + (1.0 - r.xi) * _geometric(ratio, ts[:, None])  # (T+1, n)
            c_targets = coef[:, :, None] * c_y[None]  # (T+1, n, C)
        else:

            def body(c_t, _):
                u = V @ (f[:, None] * c_t)
                p = jnp.where(r.hard > 0, hard_targets(u, binary), u)
                c_next = V.T @ ((1.0 - r.xi) * y + r.xi * p)
                return c_next, c_t

            _, c_targets = lax.scan(body, c_y, None, length=rounds + 1)
        c_u = f[None, :, None] * c_targets
        dist = jnp.linalg.norm(c_u - c_hat[None], axis=(1, 2))
        u = V @ c_u[-1]
        acc, marg = _metrics_2d(u, y_hat, binary)
        if has_test:
            f_t = jnp.einsum("tn,Tnc->Ttc", kv_test, phi[None, :, None] * c_targets)
            dist_test = jnp.linalg.norm(f_t - y_test[None], axis=(1, 2))
            f_test = f_t[-1]
            acc_test = _metrics_2d(f_test, y_test, binary)[0]
        else:
            dist_test = jnp.full_like(dist, jnp.nan)
            f_test = jnp.zeros((0, u.shape[1]), u.dtype)
            acc_test = jnp.asarray(jnp.nan, u.dtype)
        return dist, dist_test, u, f_test, marg, acc, acc_test

    return jax.vmap(run_one)(rule)


def distill_rounds(
    kernel,
    y,
    y_clean,
    rule: RoundsRule,
    *,
    rounds: int,
    eta=None,
    eig=None,
    k_test=None,
    y_test_clean=None,
    engine: str = "auto",
):
    """Round-based self-distillation: round t trains a fresh student from 0 on targets y_t.

    y_0 = y,  u_t = F(H) y_t,  y_{t+1} = (1 − ξ) y + ξ p(u_t), with the student's training map
    F(λ) = λ/(λ + c) (kernel ridge, c = rule.ridge) or 1 − (1 − ηλ)^k (k GD steps from 0), and p
    the identity (soft) or sign / one-hot argmax (hard). Soft rules in closed form per mode:
    v_iᵀy_t = [r^t + (1 − ξ)(1 − r^t)/(1 − r)] v_iᵀy, r = ξF(λ_i); hard ones stepped over rounds.
    Repeated ridge self-distillation (ξ = 1) is y_t = (H(H + cI)⁻¹)^t y.

    Args:
      kernel: (n, n) H. y, y_clean: (n,) ±1 or (n, C) labels and ground truth.
      rule: RoundsRule (scalar or (g,) leaves). rounds: number of distillation rounds T ≥ 0.
      eta: step size of GD students (default 1/λ_max). eig: Eigensystem of H (computed if None).
      k_test, y_test_clean: K(X_test, X) (n_test, n) and test ground truth, optional.
      engine: "auto", "closed-form" (soft only) or "scan".

    Returns:
      DistillRun whose `steps` are the rounds 0..T (u_t at round t), u_path None.

    Example:
      >>> run = distill_rounds(H, y, y_clean, ridge_rounds(0.1), rounds=5)

    Reference: Mobahi et al. arXiv 2002.05715; Das & Sanghavi arXiv 2301.13304.
    """
    H = _prepare_kernel(kernel)
    n = H.shape[0]
    _check_int("rounds", rounds, 0)
    y2, yh2, binary = _prepare_labels(y, y_clean, H.dtype, n)
    rule_b, single = _as_batched_rule(rule, RoundsRule)
    hard = bool(np.any(rule_b.hard > 0))
    if engine not in ("auto", "closed-form", "scan"):
        raise ValueError(f"engine must be 'auto', 'closed-form' or 'scan', got {engine!r}")
    if engine == "closed-form" and hard:
        raise ValueError("engine 'closed-form' handles soft round rules only; use 'scan'")
    engine = ("scan" if hard else "closed-form") if engine == "auto" else engine
    if eig is None:
        eig = eigensystem(H, dtype=H.dtype)
    lam_max = float(eig.eigenvalues[0])
    eta = check_step_size(lam_max, eta)
    k_test, _, yt2 = _prepare_test(k_test, y_test_clean, None, n, y2, binary, H.dtype)
    kv_test = None if k_test is None else k_test @ eig.eigenvectors
    rule_j = RoundsRule(
        *(jnp.asarray(v, H.dtype if i != 2 else jnp.int32) for i, v in enumerate(rule_b))
    )
    dist, dist_test, u, f_test, marg, acc, acc_test = _rounds_jit(
        rule_j,
        eig.eigenvalues,
        eig.eigenvectors,
        y2,
        yh2,
        kv_test,
        yt2,
        jnp.asarray(eta, H.dtype),
        rounds=rounds,
        binary=binary,
        engine=engine,
    )
    if binary:
        u, f_test = u[..., 0], f_test[..., 0]
    run = DistillRun(jnp.arange(rounds + 1), dist, dist_test, u, f_test, marg, acc, acc_test, None)
    return _unbatch(run) if single else run
