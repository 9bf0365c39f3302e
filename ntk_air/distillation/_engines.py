"""Self-distillation in the kernel limit: `self_distill` and the engines (strategy objects) that
run any target rule exactly on a `LinearProblem`.

Reference: Dong et al. arXiv 1910.01255 (docs/science/distillation.md).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._checks import NonFiniteError, check_int, first_nonfinite, is_concrete
from ..dynamics._linearized import resolve_step_size
from ..dynamics._record import Record, Snapshot, scan_blocks
from ..spectral._problem import LinearProblem
from ._targets import (
    AffineRule,
    TargetRule,
    _check_rules_task,
    accuracy,
    as_rule_list,
    cast_rule,
    drop_rule_axis,
    group_rules,
    margin,
    merge_groups,
)


class DistillRun(NamedTuple):
    """Metrics of self-distillation runs (leading (g,) axis for several rules; a pytree)."""

    steps: jax.Array  # (r,) recorded step (or round) indices
    dist_train: jax.Array  # (g, r) ‖u(k) − ŷ‖₂ at the recorded steps
    dist_test: jax.Array  # (g, r) ‖f_k(X_test) − ŷ_test‖₂ (NaN without test data)
    u_final: jax.Array  # (g, n) or (g, n, C) final training predictions
    f_test_final: jax.Array  # (g, n_test) or (g, n_test, C) final test predictions (empty without)
    margin_train: jax.Array  # (g,) final min_i ŷ_i u_i (binary) or class margin (one-hot)
    accuracy_train: jax.Array  # (g,) final 0-1 accuracy of u against ŷ
    accuracy_test: jax.Array  # (g,) final 0-1 accuracy of f(X_test) against ŷ_test (NaN without)
    u_path: jax.Array | None = None  # (g, r, n[, C]) u at the recorded steps (Record.predictions)
    observed: Any = None  # Record.fn's pytree, leaves (g, r, ...); None without Record.fn


class Engine:
    """A strategy for running target rules; subclasses are frozen dataclasses (hashable)."""

    name = "engine"

    def refuses(self, rule) -> str | None:
        """None if this engine runs `rule` (the default: any rule), else the reason it cannot."""
        return None

    def run(self, problem: LinearProblem, rule, eta, *, steps: int, record: Record):
        """Run one rule (traced; vmapped over a group): (u, f_test, observations)."""
        raise NotImplementedError


def _observe(problem, record, step, dist, u, target, f_test):
    """The observations at a recorded step (`u()` and `target()` are evaluated only if needed)."""
    out = {"dist": dist}
    if f_test is not None:
        out["dist_test"] = jnp.linalg.norm(f_test - problem.y_test_clean)
    if record.predictions:
        out["u"] = u()
    if record.fn is not None:
        out["observed"] = record.fn(Snapshot(step=step, u=u(), target=target(), test=f_test))
    return out


def _test_predictions(problem, eta, S):
    """f_k(X_test) = f_0 − η K(X_test, X) Σ_{j<k}(u(j) − ỹ(j)), with S in the eigenbasis."""
    if problem.kv_test is None:
        return None
    return problem.f0_test - eta * problem.kv_test @ S


def _refuses_unless_soft(name, rule):
    if not isinstance(rule, AffineRule) or rule.hard or rule.schedule == "adaptive":
        return f"engine '{name}' handles soft, non-adaptive affine rules only; use 'scan'"
    return None


@dataclasses.dataclass(frozen=True)
class ClosedForm(Engine):
    """Soft affine rules with constant α: exact per-mode 4×4 matrix powers."""

    name = "closed-form"

    def refuses(self, rule):
        if reason := _refuses_unless_soft(self.name, rule):
            return reason
        if rule.schedule != "constant":
            return "engine 'closed-form' needs a constant α; use 'eigen-scan' or 'scan'"
        if rule.start:
            return "engine 'closed-form' has no warm-up (start > 0); use 'eigen-scan' or 'scan'"
        return None

    def run(self, problem, rule, eta, *, steps, record):
        lam, V = problem.eig.eigenvalues, problem.eig.eigenvectors
        A = _transition_matrices(eta * lam, rule)  # (n, 4, 4)
        c_y, c_u0 = V.T @ problem.y, V.T @ problem.u0
        a0 = (1.0 - rule.moving) * rule.alpha
        c_t0 = (1.0 - a0) * c_y + a0 * c_u0
        # S(0) = 0·c_y, not a zeros constant: jaxlib 0.10.2 on CPU miscompiled that into a NaN
        # step-0 test distance (tests/test_distill.py checks it).
        z0 = jnp.stack([c_u0, c_t0, 0.0 * c_y, c_y], axis=1)  # (n, 4, C)
        every = record.every
        rem = steps % every
        # Powers computed once, outside the record loop: A^r by repeated squaring, O(n log r).
        powers = {r: jnp.linalg.matrix_power(A, r) for r in {every, rem} if r}

        def advance(s, r):
            k, z = s
            return k + r, jnp.einsum("nij,njc->nic", powers[r], z)

        c_hat = V.T @ problem.y_clean

        def observe(s):
            k, z = s
            return _observe(
                problem,
                record,
                k,
                jnp.linalg.norm(z[:, 0] - c_hat),
                lambda: V @ z[:, 0],
                lambda: V @ z[:, 1],
                _test_predictions(problem, eta, z[:, 2]),
            )

        k0 = jnp.zeros((), jnp.int32)
        (_, z), obs = scan_blocks(advance, observe, (k0, z0), steps=steps, every=every)
        return V @ z[:, 0], _test_predictions(problem, eta, z[:, 2]), obs


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


def _stepped(problem, rule: TargetRule, eta, *, steps, record, eigenbasis: bool):
    """Step ỹ(k) = rule(u(k)), u ← u − ηH(u − ỹ) in the original basis or the eigenbasis."""
    lam, V = problem.eig.eigenvalues, problem.eig.eigenvectors

    # The eigenbasis serves rules linear in (u, y): soft, α independent of u.
    def to_basis(a):
        return V.T @ a if eigenbasis else a

    def to_original(c):
        return V @ c if eigenbasis else c

    def apply_H(c):
        return lam[:, None] * c if eigenbasis else problem.apply_kernel(c)

    y, u0, y_hat = to_basis(problem.y), to_basis(problem.u0), to_basis(problem.y_clean)
    # S = Σ_{j<k}(u(j) − ỹ(j)) in the working basis; test predictions need it in the eigenbasis,
    # converted only at the recorded steps.
    state0 = (jnp.zeros((), jnp.int32), u0, rule.init(u0, y), jnp.zeros_like(u0))

    def step(s, _):
        k, u, rs, S = s
        t, rs = rule.update(u, y, rs, k)
        r = u - t
        return (k + 1, u - eta * apply_H(r), rs, S + r), None

    def advance(s, r):
        return lax.scan(step, s, None, length=r)[0]

    def test_predictions(S):
        return _test_predictions(problem, eta, S if eigenbasis else V.T @ S)

    def observe(s):
        k, u, rs, S = s
        return _observe(
            problem,
            record,
            k,
            jnp.linalg.norm(u - y_hat),
            lambda: to_original(u),
            lambda: to_original(rule.update(u, y, rs, k)[0]),  # the target of the next step
            test_predictions(S),
        )

    s, obs = scan_blocks(advance, observe, state0, steps=steps, every=record.every)
    return to_original(s[1]), test_predictions(s[3]), obs


@dataclasses.dataclass(frozen=True)
class EigenScan(Engine):
    """Soft affine rules with an α that varies with k: stepped in the eigenbasis, O(n) per step."""

    name = "eigen-scan"

    def refuses(self, rule):
        return _refuses_unless_soft(self.name, rule)

    def run(self, problem, rule, eta, *, steps, record):
        return _stepped(
            problem, rule.as_target_rule(), eta, steps=steps, record=record, eigenbasis=True
        )


@dataclasses.dataclass(frozen=True)
class DenseScan(Engine):
    """Any rule, stepped in the original basis: one H-product per step (the reference engine)."""

    name = "scan"

    def run(self, problem, rule, eta, *, steps, record):
        target_rule = rule.as_target_rule() if isinstance(rule, AffineRule) else rule
        return _stepped(problem, target_rule, eta, steps=steps, record=record, eigenbasis=False)


# Fastest first: `engine_for` picks the first that runs a rule.
_ENGINES = {"closed-form": ClosedForm(), "eigen-scan": EigenScan(), "scan": DenseScan()}


def engine_for(rule, engine: Engine | str | None = None) -> Engine:
    """The engine a rule runs on: the given one (an error if it cannot), else the fastest."""
    if isinstance(engine, str):
        if engine == "auto":
            engine = None
        elif engine not in _ENGINES:
            raise ValueError(f"engine must be one of {('auto', *_ENGINES)}, got {engine!r}")
        else:
            engine = _ENGINES[engine]
    if engine is not None:
        if not isinstance(engine, Engine):
            raise TypeError(f"engine must be an Engine or a name, got {engine!r}")
        if reason := engine.refuses(rule):
            raise ValueError(reason)
        return engine
    return next(e for e in _ENGINES.values() if e.refuses(rule) is None)


def _final_metrics(problem, u, f_test) -> dict:
    """The DistillRun fields of the final predictions u (n, C) and f_test (n_test, C) or None."""
    nan = jnp.asarray(jnp.nan, u.dtype)
    classes = not problem.regression  # accuracy and margin have no meaning for real targets
    return {
        "u_final": u,
        "f_test_final": jnp.zeros((0, u.shape[1]), u.dtype) if f_test is None else f_test,
        "margin_train": margin(u, problem.y_clean) if classes else nan,
        "accuracy_train": accuracy(u, problem.y_clean) if classes else nan,
        "accuracy_test": (
            nan if f_test is None or not classes else accuracy(f_test, problem.y_test_clean)
        ),
    }


def _distill_run(problem, steps, fields: dict) -> DistillRun:
    """DistillRun of `fields` (leading (g,) axis), predictions in the user's label shape."""
    for name in ("u_final", "f_test_final", "u_path"):
        fields[name] = problem.to_user(fields.get(name))
    return DistillRun(steps=jnp.asarray(steps), **fields)


@functools.partial(jax.jit, static_argnames=("engine", "static_rule", "steps", "record"))
def _run_group(problem, rules, eta, *, engine, static_rule, steps, record):
    def one(rule):
        u, f_test, obs = engine.run(problem, rule, eta, steps=steps, record=record)
        return {
            "dist_train": obs["dist"],
            "dist_test": obs.get("dist_test", jnp.full_like(obs["dist"], jnp.nan)),
            **_final_metrics(problem, u, f_test),
            "u_path": obs.get("u"),
            "observed": obs.get("observed"),
        }

    if static_rule is not None:
        return jax.tree_util.tree_map(lambda a: a[None], one(static_rule))
    return jax.vmap(one)(rules)


def self_distill(
    problem: LinearProblem,
    rules,
    *,
    steps: int,
    eta=None,
    engine: Engine | str | None = None,
    record: Record | None = None,
    force: bool = False,
) -> DistillRun:
    """Run linearized self-distillation with one rule or several, for `steps` steps.

    u(k+1) = u(k) − ηH(u(k) − ỹ(k)), ỹ(k) by the rule (`ntk_air.distillation`), test predictions
    f_k(x) = f_0(x) − η K(x, X) Σ_{j<k}(u(j) − ỹ(j)). Rules of one static structure run together,
    vmapped, on the fastest engine that handles them (`ClosedForm`, `EigenScan`, `DenseScan`).

    Args:
      problem: a `LinearProblem` (`problem.linear_problem(eig, y, y_clean, ...)`); it must hold
        the ground truth y_clean (±1 or one-hot rows).
      rules: an `AffineRule` (e.g. `targets.r3(0.9)`), a stacked grid (`targets.stack_rules`), a
        `TargetRule` of your own, or a sequence of any of these.
      steps: number of gradient steps k.
      eta: step size; default 1/λ_max(H). η ≥ 2/λ_max raises unless force=True.
      engine: None / "auto" (the fastest per group), or an `Engine` / its name to force one.
      record: a `Record` (default: every step, no predictions, no extra observable).
      force: allow η ≥ 2/λ_max.

    Returns:
      DistillRun; with a single rule (not a sequence or grid) the leading (g,) axis is dropped.

    Example:
      >>> run = self_distill(problem, [distillation.plain_gd(), distillation.r3(0.9, hard=True)],
      ...                    steps=2000, record=Record(every=10))
      >>> run.dist_train.shape                      # (rules, recorded steps)
      (2, 201)
      >>> run.dist_train[:, -1] < 0.01               # R3 ends near ŷ; plain GD fits the noise
      Array([False,  True], dtype=bool)
      >>> run.accuracy_train.tolist()
      [0.8, 1.0]

    Reference: Dong et al. arXiv 1910.01255 (docs/science/distillation.md).
    """
    if not isinstance(problem, LinearProblem):
        raise TypeError(
            "self_distill(problem, rules, ...) needs a LinearProblem, got "
            f"{type(problem).__name__}: build it with problem.linear_problem(eigensystem(K), y, "
            "y_clean, ...)"
        )
    record = Record() if record is None else record
    check_int("steps", steps, minimum=0)
    if record.at is not None:
        raise ValueError(
            "self_distill records every `every` steps; Record(at=...) is for training.train (the "
            "closed forms give any step directly: dynamics.gd_predictor)"
        )
    check_ground_truth(problem, "self-distillation")
    rule_list, single = as_rule_list(rules)
    _check_rules_task(rule_list, problem.task)  # hard / adaptive rules need classes
    eta = jnp.asarray(resolve_step_size(problem.eig, eta, force=force), problem.dtype)
    if isinstance(engine, OperatorScan):
        run = engine.distill(problem, rule_list, eta, steps=steps, record=record)
    else:
        parts = []
        for indices, group in group_rules(rule_list):
            eng = engine_for(rule_list[indices[0]], engine)
            for i in indices[1:]:
                engine_for(rule_list[i], eng)
            static = None if isinstance(group, AffineRule) else group
            # Rule values follow the problem's dtype (no float64 promotion of a float32 problem).
            data = None if static is not None else cast_rule(group, problem.dtype)
            out = _run_group(
                problem, data, eta, engine=eng, static_rule=static, steps=steps, record=record
            )
            parts.append((indices, out))
        run = _distill_run(problem, record.steps(steps), merge_groups(parts))
    check_run_finite(run.dist_train, run.steps, "self-distillation")
    return drop_rule_axis(run) if single else run


@dataclasses.dataclass(frozen=True, eq=False)
class OperatorScan(Engine):
    """Any rule, matrix-free: u ← u − ηK(u − ỹ) by one pass of a kernel operator per step.

    The recursion of `DenseScan`, the R rules sharing one (n, R·C) pass per step; outside jit.

    Fields:
      op: K(X, X) as an `operators.KernelOperator` (n × n).
      test_op: K(X_test, X) (n_test × n), or None (then the problem must have no test points).
      progress: progress(done, total) after each step, or None.

    Example:
      >>> op = spectral.kernel_operator(kernel_fn, x)
      >>> test_op = spectral.kernel_operator(kernel_fn, x_test, x)
      >>> rules = [distillation.r3(0.9, hard=True)]
      >>> run = self_distill(problem, rules, steps=50, engine=OperatorScan(op, test_op))
      >>> ref = self_distill(problem, rules, steps=50)     # the DenseScan engine
      >>> bool(jnp.allclose(run.dist_test, ref.dist_test, atol=1e-10))
      True
    """

    op: Any
    test_op: Any = None
    progress: Any = None
    name = "operator"

    def run(self, problem, rule, eta, *, steps, record):
        raise TypeError("OperatorScan runs outside jit: call self_distill(..., engine=it)")

    def distill(self, problem: LinearProblem, rules, eta, *, steps: int, record: Record):
        """All `rules` (a list) together; returns the DistillRun with a leading (R,) axis."""
        if record.predictions or record.fn is not None or record.at is not None:
            raise ValueError("OperatorScan records distances only: Record(every) alone")
        n, C = problem.y.shape
        if self.op.shape != (n, n):
            raise ValueError(f"op must have shape ({n}, {n}), got {self.op.shape}")
        if problem.has_test and (self.test_op is None or self.test_op.shape[1] != n):
            raise ValueError(
                "the problem has test points: pass test_op = K(X_test, X) (n_test × n)"
            )
        targets = [r.as_target_rule() if isinstance(r, AffineRule) else r for r in rules]
        Y, Yc, R = problem.y, problem.y_clean, len(targets)

        @jax.jit
        def residuals(u, states, k):
            out, new = [], []
            for i, t in enumerate(targets):
                target, state = t.update(u[i], Y, states[i], k)
                out.append(u[i] - target)
                new.append(state)
            return jnp.stack(out), new

        def flat(a):  # (R, n, C) → (n, R·C)
            return jnp.moveaxis(a, 0, 1).reshape(a.shape[1], R * C)

        def unflat(a):
            return jnp.moveaxis(a.reshape(a.shape[0], R, C), 1, 0)

        def distance(a, b):  # (R, m, C) vs (m, C) → (R,)
            return jnp.sqrt(jnp.sum((a - b[None]) ** 2, axis=(1, 2)))

        u = jnp.broadcast_to(problem.u0, (R, n, C)).astype(problem.dtype)
        S = jnp.zeros_like(u)
        states = [t.init(u[i], Y) for i, t in enumerate(targets)]
        test = problem.has_test

        def f_test():
            return problem.f0_test[None] - eta * unflat(self.test_op.apply(flat(S)))

        dist, dist_test = [], []

        def observe():  # reads the current u and S
            dist.append(distance(u, Yc))
            if test:
                dist_test.append(distance(f_test(), problem.y_test_clean))

        recorded = record.steps(steps)
        at = set(np.asarray(recorded)[1:].tolist())
        observe()
        for k in range(steps):
            r, states = residuals(u, states, jnp.asarray(k, jnp.int32))
            u, S = u - eta * unflat(self.op.apply(flat(r))), S + r
            if k + 1 in at:
                observe()
            if self.progress is not None:
                self.progress(k + 1, steps)
        f = f_test() if test else [None] * R
        metrics = [_final_metrics(problem, u[i], f[i]) for i in range(R)]
        fields = jax.tree_util.tree_map(lambda *a: jnp.stack(a), *metrics)
        fields["dist_train"] = jnp.stack(dist, axis=1)
        fields["dist_test"] = (
            jnp.stack(dist_test, axis=1) if test else jnp.full_like(fields["dist_train"], jnp.nan)
        )
        return _distill_run(problem, recorded, fields)


def check_ground_truth(problem: LinearProblem, what: str) -> None:
    """Refuse a problem without y_clean, or with test points but no y_test_clean."""
    if problem.y_clean is None:
        raise ValueError(f"the problem has no y_clean: {what} is measured against ŷ")
    if problem.has_test and problem.y_test_clean is None:
        raise ValueError("the problem has test points but no y_test_clean (the test ground truth)")


def check_run_finite(dist, steps, what: str) -> None:
    """NonFiniteError naming the rule and the first recorded step where ‖u − ŷ‖ is NaN/inf."""
    d = np.atleast_2d(np.asarray(dist)) if is_concrete(dist) else None
    if d is None or np.isfinite(d).all():
        return
    rule = int(np.argmax(~np.isfinite(d).all(axis=1)))
    k = first_nonfinite(d[rule])
    raise NonFiniteError(
        f"{what} diverged: rule {rule}'s predictions are not finite from recorded step "
        f"{int(np.asarray(steps)[k])} on (a step size η ≥ 2/λ_max, or targets that grow; "
        "lower eta)"
    )
