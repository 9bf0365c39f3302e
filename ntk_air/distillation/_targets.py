"""Target rules of self-distillation, optax-style: a rule is a pair of pure functions.

    state = rule.init(u0, y)                   # u0 = u(0) the initial predictions, y the labels
    target, state = rule.update(u, y, state, k)  # ỹ(k) from the predictions u = u(k), k = 0, 1, …

Training then steps u(k+1) = u(k) − ηH(u(k) − ỹ(k)) on (n, C) arrays. The family of
docs/science/distillation.md is one affine update, `AffineRule`:

    ỹ(k) = m_k ỹ(k−1) + (1 − m_k)[(1 − a_k) y + a_k p(q_k)],     k ≥ 1,
    m_k = moving·α_k,  a_k = moving + (1 − moving)·α_k,  q_k = u(k) (or u(k−1) if lagged),
    ỹ(0) = (1 − a_0') y + a_0' p(u(0)),  a_0' = (1 − moving)·α_0,

with p the identity (soft) or the hard label (sign or one-hot argmax: classes only); moving = 0 is
R1, moving = 1 is R3; α_k constant, increasing (α·min(1, k/ramp)) or adaptive (α·accuracy: R2).
A warm-up `start=W` trains on y for k < W, then runs the rule on the clock k − W. Your own rule:

    >>> def tanh_mix(beta):
    ...     def init(u0, y):
    ...         return ()
    ...     def update(u, y, state, k):
    ...         return (1 - beta) * y + beta * jnp.tanh(u), state
    ...     return TargetRule(init, update)
    >>> run = distillation.self_distill(problem, tanh_mix(0.5), steps=200)   # on the dense scan
    >>> run.dist_train.shape                      # ‖u(k) − ŷ‖ at k = 0, 1, …, 200
    (201,)

References: Dong et al. arXiv 1910.01255; Reed et al. arXiv 1412.6596 (bootstrapping);
Kim et al. arXiv 2006.12000 (increasing α).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_bool

SCHEDULES = ("constant", "increasing", "adaptive")
"""α schedules of an `AffineRule`: constant, increasing (α·min(1, k/ramp)), adaptive."""


class TargetRule(NamedTuple):
    """init(u0, y) -> state;  update(u, y, state, k) -> (ỹ(k), state); u, y, ỹ are (n, C)."""

    init: Callable[[jax.Array, jax.Array], Any]
    update: Callable[[jax.Array, jax.Array, Any, jax.Array], tuple[jax.Array, Any]]


def _binary(u) -> bool:
    """±1 outputs: (n,) vectors or (n, 1) columns (C ≥ 2 columns are classes)."""
    return u.ndim == 1 or u.shape[-1] == 1


def hard_targets(u):
    """sign(u) for ±1 outputs ((n,) or (n, 1)); the one-hot argmax for (n, C ≥ 2) classes."""
    if _binary(u):
        return jnp.sign(u)
    return jax.nn.one_hot(jnp.argmax(u, axis=-1), u.shape[-1], dtype=u.dtype)


def accuracy(u, labels):
    """0-1 accuracy: sign agreement for ±1 outputs ((n,) or (n, 1)), else argmax agreement."""
    if _binary(u):
        return jnp.mean(jnp.sign(u) == jnp.sign(labels), dtype=u.dtype)
    return jnp.mean(jnp.argmax(u, axis=-1) == jnp.argmax(labels, axis=-1), dtype=u.dtype)


def margin(u, labels):
    """min_i ŷ_i u_i (±1 outputs) or min_i (u_i[true] − max_{c≠true} u_i[c]) (C ≥ 2 classes)."""
    if _binary(u):
        return jnp.min(jnp.sign(labels) * u)
    true = jnp.argmax(labels, axis=-1)
    u_true = jnp.take_along_axis(u, true[..., None], axis=-1)[..., 0]
    others = jnp.where(jax.nn.one_hot(true, u.shape[-1], dtype=bool), -jnp.inf, u)
    return jnp.min(u_true - jnp.max(others, axis=-1))


class AffineState(NamedTuple):
    """State of an `AffineRule` (a pytree)."""

    target: jax.Array  # (n, C) ỹ(k − 1), the previous target (ỹ(0) before the first update)
    u_prev: jax.Array  # (n, C) u(k − 1), for lagged rules


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class AffineRule:
    """One rule of the affine family (module docstring): scalar data fields ((g,) for a stacked
    grid), static `hard`, `schedule` and `start`."""

    alpha: Any = 0.0  # α: weight on the predictions (R1) or the momentum (R3)
    moving: Any = 0.0  # 1 = R3 moving target, 0 = R1 mix with the given labels
    lag: Any = 0.0  # 1 = predictions of the previous step, u(k − 1)
    ramp: Any = 0.0  # steps for the increasing schedule to reach α
    hard: bool = dataclasses.field(default=False, metadata={"static": True})
    schedule: str = dataclasses.field(default="constant", metadata={"static": True})
    start: int = dataclasses.field(default=0, metadata={"static": True})  # warm-up steps W

    @property
    def linear(self) -> bool:
        """Soft with a constant α and no warm-up: linear and diagonal in the eigenbasis."""
        return not self.hard and self.schedule == "constant" and self.start == 0

    def alpha_at(self, k, q, y):
        """α_k: α, α·min(1, k/ramp) (increasing) or α·accuracy(q against y) (adaptive)."""
        if self.schedule == "increasing":
            return self.alpha * jnp.minimum(1.0, k / jnp.where(self.ramp > 0, self.ramp, 1.0))
        if self.schedule == "adaptive":
            return self.alpha * accuracy(q, y)
        return self.alpha

    def predictions(self, q):
        """p(q): the hard label of q, or q itself."""
        return hard_targets(q) if self.hard else q

    def first_target(self, u, y):
        """ỹ at the rule's step 0: (1 − a_0') y + a_0' p(u), a_0' = (1 − moving)·α_0 (R3: y)."""
        a0 = (1.0 - self.moving) * self.alpha_at(0, u, y)
        return ((1.0 - a0) * y + a0 * self.predictions(u)).astype(u.dtype)

    def init(self, u0, y) -> AffineState:
        """ỹ(0) = `first_target`(u(0), y); with a warm-up ỹ(0) = y."""
        t0 = self.first_target(u0, y) if self.start == 0 else jnp.asarray(y, u0.dtype)
        return AffineState(target=t0, u_prev=u0)

    def update(self, u, y, state: AffineState, k):
        """ỹ(k) from ỹ(k−1), u(k−1) and u(k) = u (warm-up: y for k < W, restarted at k = W)."""
        k = k - self.start
        q = jnp.where(self.lag > 0, state.u_prev, u)
        alpha = self.alpha_at(k, q, y)
        m = self.moving * alpha
        a = self.moving + (1.0 - self.moving) * alpha
        stepped = m * state.target + (1.0 - m) * ((1.0 - a) * y + a * self.predictions(q))
        first = state.target if self.start == 0 else self.first_target(u, y)
        target = jnp.where(k == 0, first, stepped)
        if self.start:
            target = jnp.where(k < 0, y, target)
        target = target.astype(u.dtype)
        return target, AffineState(target=target, u_prev=u)

    def as_target_rule(self) -> TargetRule:
        """This rule as the generic (init, update) pair."""
        return TargetRule(self.init, self.update)


def _check_weight(name, value):
    """`value` as a float in [0, 1]: a weight mixing two targets, ỹ = (1 − w) a + w b."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(
            f"{name} must lie in [0, 1] (a weight between the labels and the predictions), got "
            f"{value!r}; outside it the rule extrapolates and soft R1 diverges"
        )
    return float(value)


def _affine(
    alpha,
    *,
    moving=0.0,
    lag=False,
    hard=False,
    schedule="constant",
    ramp=0.0,
    name="alpha",
    start=0,
):
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    check_bool("hard", hard)
    check_bool("lag", lag)
    _check_weight(name, alpha)
    if schedule == "increasing" and not ramp > 0:
        raise ValueError(f"the increasing schedule needs ramp > 0 steps, got {ramp!r}")
    if isinstance(start, bool) or not isinstance(start, int | np.integer) or start < 0:
        raise ValueError(f"start (warm-up steps) must be an integer ≥ 0, got {start!r}")
    return AffineRule(
        alpha=np.float64(alpha),
        moving=np.float64(moving),
        lag=np.float64(bool(lag)),
        ramp=np.float64(ramp),
        hard=bool(hard),
        schedule=schedule,
        start=int(start),
    )


def plain_gd() -> AffineRule:
    """Plain gradient descent on the given labels: ỹ(k) = y (R1 with α = 0)."""
    return _affine(0.0)


def r1(alpha, *, hard=False, lag=False, schedule="constant", ramp=0.0, start=0) -> AffineRule:
    """R1, mix the given labels with the predictions.

    ỹ(k) = (1 − α_k) y + α_k p(k), p = u (soft) or sign/argmax (hard), p(k) = p(u(k − 1)) if lag.
    Soft with constant α this is plain GD with step η(1 − α) (docs/science/distillation.md#r1).

    Args:
      alpha: α ∈ [0, 1] (weight on the predictions).
      hard: hard targets.
      lag: use u(k − 1).
      schedule: "constant", "increasing" (α_k = α·min(1, k/ramp)) or "adaptive" (α·accuracy).
      ramp: steps of the increasing schedule.
      start: warm-up W ≥ 0: ỹ(k) = y for k < W, then the rule on the clock k − W.

    Returns:
      AffineRule.

    Example:
      >>> rule = r1(0.5, hard=True)
      >>> rule.hard, float(rule.alpha)
      (True, 0.5)

    Reference: Dong et al. arXiv 1910.01255; Kim et al. arXiv 2006.12000 (increasing α).
    """
    return _affine(alpha, lag=lag, hard=hard, schedule=schedule, ramp=ramp, start=start)


def r1_lag(alpha, *, hard=False, schedule="constant", ramp=0.0, start=0) -> AffineRule:
    """R1-lag: ỹ(k) = (1 − α_k) y + α_k p(u(k − 1))."""
    return r1(alpha, hard=hard, lag=True, schedule=schedule, ramp=ramp, start=start)


def r2(scale=1.0, *, start=0) -> AffineRule:
    """R2: ỹ(k) = (1 − α_k) y + α_k p(u(k)), α_k = scale · (training accuracy against y), hard p.

    start: warm-up W (ỹ(k) = y for k < W; see the module docstring).
    """
    return _affine(scale, hard=True, schedule="adaptive", name="scale", start=start)


def r3(alpha, *, hard=True, lag=False, schedule="constant", ramp=0.0, start=0) -> AffineRule:
    """R3: ỹ(k) = α ỹ(k − 1) + (1 − α) p(k), ỹ(0) = y (moving target); hard targets by default.

    start: warm-up W (ỹ(k) = y for k < W, then R3 restarted from ỹ = y at step W).
    """
    return _affine(alpha, moving=1.0, lag=lag, hard=hard, schedule=schedule, ramp=ramp, start=start)


def bootstrap(beta, *, hard=False) -> AffineRule:
    """Bootstrapping with the squared loss: R1 with α = 1 − β, ỹ(k) = β y + (1 − β) p(k).

    Reference: Reed et al. arXiv 1412.6596.
    """
    return _affine(1.0 - _check_weight("beta", beta), hard=hard)


def rule_label(rule: AffineRule) -> str:
    """Readable name of one (unstacked) affine rule, e.g. 'R3 hard α=0.9'."""
    a, mv, lag, ramp = (float(v) for v in (rule.alpha, rule.moving, rule.lag, rule.ramp))
    warm = f" from step {rule.start}" if rule.start else ""
    if rule.schedule == "adaptive" and not mv and rule.hard:
        name = "R2" if a == 1 else f"R2 ×{a:g}"
        return name + (" lag" if lag else "") + warm
    if not mv and a == 0:
        return "plain GD"
    name = ("R3" if mv else "R1") + ("-lag" if lag else "") + (" hard" if rule.hard else " soft")
    name += f" α={a:g}"
    if rule.schedule == "increasing":
        name += f" ramp {ramp:g}"
    elif rule.schedule == "adaptive":
        name += " adaptive"
    return name + warm


def stack_rules(rules: Sequence):
    """Rules as one grid: an `AffineRule` with (g,) data leaves when they share one static
    structure (one vmapped call), else the tuple of rules; a ValueError for none or mixed kinds."""
    rules = list(rules)
    if not rules:
        raise ValueError("stack_rules needs at least one rule")
    kinds = {type(r) for r in rules}
    if len(kinds) != 1:
        raise ValueError(
            f"cannot stack different rule types together: {sorted(k.__name__ for k in kinds)}"
        )
    structures = {jax.tree_util.tree_structure(r) for r in rules}
    return _stack(rules) if len(structures) == 1 else tuple(rules)


def group_rules(rules: Sequence) -> list[tuple[list[int], Any]]:
    """Rules grouped by static structure, in first-appearance order: [(indices, stacked or rule)].

    Affine rules of one structure are stacked (a vmappable grid); any other rule stands alone.
    """
    groups: dict[Any, list[int]] = {}
    for i, rule in enumerate(rules):
        stackable = isinstance(rule, AffineRule) and np.ndim(rule.alpha) == 0
        groups.setdefault(jax.tree_util.tree_structure(rule) if stackable else i, []).append(i)
    return [
        (idx, rules[key] if isinstance(key, int) else _stack([rules[i] for i in idx]))
        for key, idx in groups.items()
    ]


def _stack(rules):
    return jax.tree_util.tree_map(lambda *v: np.stack(v), *rules)


def merge_groups(parts) -> dict:
    """Outputs of rule groups, [(indices, {field: leading (g_i,) axis})], merged back into the
    order the rules were given: {field: leading (g,) axis}. Fields that are None stay None."""
    order = np.argsort(np.concatenate([np.asarray(idx) for idx, _ in parts]), kind="stable")
    merged = {}
    for name in parts[0][1]:
        values = [out[name] for _, out in parts]
        merged[name] = (
            None
            if values[0] is None
            else jax.tree_util.tree_map(lambda *a: jnp.concatenate(a)[order], *values)
        )
    return merged


def drop_rule_axis(run, keep=("steps",)):
    """A run of one rule: the leading (g,) axis (g = 1) dropped from every field but `keep`."""
    return run._replace(
        **{
            f: jax.tree_util.tree_map(lambda a: a[0], getattr(run, f))
            for f in run._fields
            if f not in keep and getattr(run, f) is not None
        }
    )


def as_rule_list(rules) -> tuple[list, bool]:
    """(list of single rules, was one rule) from a rule, a stacked grid or a sequence of rules."""
    if isinstance(rules, TargetRule):
        return [rules], True
    if isinstance(rules, AffineRule):
        if np.ndim(rules.alpha) == 0:
            return [rules], True
        g = np.shape(rules.alpha)[0]
        return [jax.tree_util.tree_map(lambda v, i=i: v[i], rules) for i in range(g)], False
    if isinstance(rules, Sequence) and not isinstance(rules, str):
        out = []
        for r in rules:
            out += as_rule_list(r)[0]
        if not out:
            raise ValueError("no rules given")
        return out, False
    raise TypeError(
        "rules must be an AffineRule, a TargetRule or a sequence of them, got "
        f"{type(rules).__name__}"
    )


def needs_classes(rule) -> str | None:
    """Why a rule needs class labels (its hard targets or its accuracy-driven α), else None.

    Example:
      >>> needs_classes(r3(0.9, hard=True)), needs_classes(r1(0.5))
      ('hard targets (the sign or argmax of the predictions)', None)
    """
    if isinstance(rule, AffineRule):
        if rule.hard:
            return "hard targets (the sign or argmax of the predictions)"
        if rule.schedule == "adaptive":
            return "an adaptive α (the training accuracy of the predictions)"
    return None


def _check_rules_task(rules, task: str) -> None:
    """Refuse a rule that needs classes (`needs_classes`) on a regression task."""
    if task != "regression":
        return
    for rule in as_rule_list(rules)[0]:
        why = needs_classes(rule)
        if why is not None:
            raise ValueError(
                f"rule {rule_label(rule)!r} uses {why}, which need class labels, but the targets "
                "are real-valued (task 'regression'): use a soft rule with a constant or "
                "increasing α"
            )


def cast_rule(rule: AffineRule, dtype) -> AffineRule:
    """An affine rule (or grid) with its values as arrays of `dtype` (no dtype promotion)."""
    return jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), rule)


def r3_soft_limit_filter(eigenvalues, alpha, eta):
    """g(λ) = ηλ / (1 − α + αηλ): soft R3 with constant α from u(0) = 0 ends at u(∞) = g(H) y.

    As α → 1 with (1 − α)/η = γ it is kernel ridge regression H(H + γI)⁻¹ y
    (docs/science/distillation.md#r3).

    Args:
      eigenvalues: (n,) λ_i.
      alpha: α ∈ [0, 1).
      eta: step size.

    Returns:
      (n,) filter values g(λ_i).

    Example:
      >>> r3_soft_limit_filter(jnp.array([1.0, 0.0]), 0.5, 1.0).tolist()
      [1.0, 0.0]
    """
    lam = jnp.asarray(eigenvalues)
    return eta * lam / (1.0 - alpha + alpha * eta * lam)


RULE_NAMES = ("plain", "r1", "r1-lag", "r2", "r3", "bootstrap", "xi", "ridge-rounds")
"""Rule families by name (the CLI's `--rule`, `studies.DistillConfig.rules`)."""
_DEFAULT_ALPHA = {"r1": 0.5, "r1-lag": 0.5, "r2": 1.0, "r3": 0.9}
DEFAULT_BETA = (0.8,)
"""Default β of bootstrapping."""


def rules_from_names(
    names=None,
    *,
    alphas=None,
    betas=None,
    soft: bool = True,
    hard: bool = True,
    schedule: str = "constant",
    ramp: float = 0.0,
) -> list[tuple[str, AffineRule]]:
    """Step rules for named rule families: [(label, rule)], plain GD always first.

    Round-based names are skipped (`rounds_from_names`); `alphas` and `betas` override the
    default α of each family and DEFAULT_BETA; soft/hard choose the variants (r2 is hard).

    Example:
      >>> [label for label, _ in rules_from_names(["r3"], hard=True, soft=False)]
      ['plain GD', 'R3 hard α=0.9']
    """
    names = list(RULE_NAMES if names is None else names)
    unknown = [n for n in names if n not in RULE_NAMES]
    if unknown:
        raise ValueError(f"unknown rule {unknown[0]!r}; choose from {RULE_NAMES}")
    if not (soft or hard):
        raise ValueError("at least one of soft / hard targets must be selected")
    variants = [v for v, on in (("soft", soft), ("hard", hard)) if on]
    sched = {"schedule": schedule, "ramp": ramp} if schedule == "increasing" else {}
    out: list[tuple[str, AffineRule]] = [("plain GD", plain_gd())]
    for name in names:
        if name in ("r1", "r1-lag", "r3"):
            make = {"r1": r1, "r1-lag": r1_lag, "r3": r3}[name]
            for a, v in itertools.product(alphas or (_DEFAULT_ALPHA[name],), variants):
                rule = make(a, hard=v == "hard", **sched)
                out.append((rule_label(rule), rule))
        elif name == "r2" and hard:
            for a in alphas or (_DEFAULT_ALPHA["r2"],):
                out.append((rule_label(r2(a)), r2(a)))
        elif name == "bootstrap":
            for b, v in itertools.product(betas or DEFAULT_BETA, variants):
                out.append((f"bootstrap {v} β={b:g}", bootstrap(b, hard=v == "hard")))
    return out
