"""Round-based self-distillation in the kernel limit: a fresh student per round (`distill_rounds`).

References: Mobahi et al. arXiv 2002.05715; Das & Sanghavi arXiv 2301.13304; Furlanello et al.
arXiv 1805.04770; Borup & Andersen arXiv 2102.13088.
"""

from __future__ import annotations

import functools
import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._checks import check_int, is_concrete
from ..dynamics._linearized import gd_mode_factors, resolve_step_size
from ..spectral._problem import LinearProblem
from ._engines import DistillRun, _distill_run, _final_metrics, check_ground_truth
from ._targets import _stack, drop_rule_axis, hard_targets

DEFAULT_XI = (0.5,)
"""Default ξ values of ξ-weighted distillation (`rounds_from_names`)."""


class RoundsRule(NamedTuple):
    """One round-based rule: a fresh student per round (stack with `stack_rounds`)."""

    xi: jax.Array  # () or (g,) y_{t+1} = (1 − ξ) y + ξ p(u_t); ξ = 1: pure self-distillation
    ridge: jax.Array  # () or (g,) student = kernel ridge with c = ridge (when student_steps = 0)
    student_steps: jax.Array  # () or (g,) student = GD from 0 for this many steps (0: ridge)
    hard: jax.Array  # () or (g,) 1 = hard targets p(u) = sign(u) / one-hot argmax


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
    if not np.isfinite(xi) or xi < 0:
        raise ValueError(f"xi must be finite and ≥ 0 (ξ > 1 is allowed), got {xi!r}")
    if not np.isfinite(ridge) or ridge < 0:
        raise ValueError(f"ridge must be finite and ≥ 0, got {ridge!r}")
    if isinstance(student_steps, bool) or int(student_steps) != student_steps or student_steps < 0:
        raise ValueError(f"student_steps must be a non-negative int, got {student_steps!r}")
    if student_steps == 0 and not ridge > 0:
        raise ValueError(f"a ridge student needs ridge > 0 (got {ridge!r}); or set student_steps")
    return RoundsRule(np.float64(xi), np.float64(ridge), np.int64(student_steps), np.float64(hard))


def stack_rounds(rules) -> RoundsRule:
    """Stack round rules into a grid: leaves (g,), one vmapped call."""
    rules = list(rules)
    if not rules or not all(isinstance(r, RoundsRule) for r in rules):
        raise ValueError(
            f"stack_rounds needs RoundsRules, got {sorted({type(r).__name__ for r in rules})}"
        )
    return _stack(rules)


def rounds_label(rule: RoundsRule) -> str:
    """Readable name of one (unstacked) round rule, e.g. 'ridge rounds c=0.1'."""
    xi, c, k, hard = float(rule.xi), float(rule.ridge), int(rule.student_steps), float(rule.hard)
    student = f"GD {k} steps" if k else f"ridge c={c:g}"
    if xi == 1 and not k and not hard:
        return f"ridge rounds c={c:g}"
    return f"ξ={xi:g} {student}" + (" hard" if hard else "")


def _student_filters(rule: RoundsRule, eig, eta):
    """f(λ) = λφ(λ) on training points, φ: test predictions K(x, X) V φ Vᵀ y_t; φ = 1/(λ + c)
    (ridge) or (1 − (1 − ηλ)^k)/λ (k GD steps from 0, `gd_mode_factors`)."""
    lam = eig.eigenvalues
    phi_gd = gd_mode_factors(eig, rule.student_steps, eta=eta).test_weight[0]
    phi_ridge = 1.0 / (lam + jnp.where(rule.student_steps > 0, 1.0, rule.ridge))
    phi = jnp.where(rule.student_steps > 0, phi_gd, phi_ridge)
    return lam * phi, phi


def _geometric(r, t):
    """Σ_{s<t} r^s, stable near r = 1."""
    near = jnp.abs(1.0 - r) < 1e-6
    safe = jnp.where(near, 0.5, r)
    return jnp.where(near, t * (1.0 + 0.5 * (t - 1.0) * (r - 1.0)), (1.0 - safe**t) / (1.0 - safe))


@functools.partial(jax.jit, static_argnames=("rounds", "engine"))
def _rounds_jit(rule, problem: LinearProblem, eta, *, rounds, engine):
    lam, V = problem.eig.eigenvalues, problem.eig.eigenvectors
    y = problem.y
    c_y, c_hat = V.T @ y, V.T @ problem.y_clean

    def run_one(r):
        f, phi = _student_filters(r, problem.eig, eta)
        if engine == "closed-form":
            ts = jnp.arange(rounds + 1, dtype=lam.dtype)
            ratio = (r.xi * f)[None, :]
            coef = ratio ** ts[:, None] + (1.0 - r.xi) * _geometric(ratio, ts[:, None])  # (T+1, n)
            c_targets = coef[:, :, None] * c_y[None]  # (T+1, n, C)
        else:

            def body(c_t, _):
                u = V @ (f[:, None] * c_t)
                p = jnp.where(r.hard > 0, hard_targets(u), u)
                c_next = V.T @ ((1.0 - r.xi) * y + r.xi * p)
                return c_next, c_t

            _, c_targets = lax.scan(body, c_y, None, length=rounds + 1)
        c_u = f[None, :, None] * c_targets
        dist = jnp.linalg.norm(c_u - c_hat[None], axis=(1, 2))
        u = V @ c_u[-1]
        if problem.kv_test is None:
            dist_test, f_test = jnp.full_like(dist, jnp.nan), None
        else:
            f_t = jnp.einsum("tn,Tnc->Ttc", problem.kv_test, phi[None, :, None] * c_targets)
            dist_test = jnp.linalg.norm(f_t - problem.y_test_clean[None], axis=(1, 2))
            f_test = f_t[-1]
        return {"dist_train": dist, "dist_test": dist_test, **_final_metrics(problem, u, f_test)}

    return jax.vmap(run_one)(rule)


_ROUND_ENGINES = ("auto", "closed-form", "scan")


def distill_rounds(
    problem: LinearProblem,
    rule: RoundsRule,
    *,
    rounds: int,
    eta=None,
    engine: str = "auto",
    check_convergence: bool = True,
) -> DistillRun:
    """Round-based self-distillation: round t trains a fresh student from 0 on targets y_t.

    y_0 = y,  u_t = F(H) y_t,  y_{t+1} = (1 − ξ) y + ξ p(u_t), with the student's training map
    F(λ) = λ/(λ + c) (kernel ridge, c = rule.ridge) or 1 − (1 − ηλ)^k (k GD steps from 0), and p
    the identity (soft) or sign / one-hot argmax (hard). Soft rules in closed form per mode:
    v_iᵀy_t = [r^t + (1 − ξ)(1 − r^t)/(1 − r)] v_iᵀy, r = ξF(λ_i); hard ones stepped over rounds.
    Repeated ridge self-distillation (ξ = 1) is y_t = (H(H + cI)⁻¹)^t y.

    Args:
      problem: a `LinearProblem` holding y_clean (u0 and f0_test are not used: every student
        starts from 0); classification (±1 / one-hot) or regression (any real targets: soft
        rules only, accuracy and margin NaN).
      rule: RoundsRule (scalar or (g,) leaves from `stack_rounds`).
      rounds: number of distillation rounds T ≥ 0.
      eta: step size of GD students (default 1/λ_max).
      engine: "auto", "closed-form" (soft only) or "scan".
      check_convergence: refuse (ValueError with the bound on ξ) soft rules whose ratio ξF(λ_max)
        exceeds 1, where the targets grow like (ξF)^t; False computes that recursion anyway.

    Returns:
      DistillRun whose `steps` are the rounds 0..T (u_t at round t), u_path None.

    Example:
      >>> run = distill_rounds(problem, ridge_rounds(0.1), rounds=5)
      >>> run.steps.tolist(), run.dist_train.shape   # rounds 0..5; ‖u_t − ŷ‖ per round
      ([0, 1, 2, 3, 4, 5], (6,))

    Reference: Mobahi et al. arXiv 2002.05715; Das & Sanghavi arXiv 2301.13304; Borup &
    Andersen arXiv 2102.13088 (targets mixed with the labels, regression).
    """
    if not isinstance(problem, LinearProblem):
        raise TypeError(
            "distill_rounds(problem, rule, ...) needs a LinearProblem, got "
            f"{type(problem).__name__}"
        )
    if not isinstance(rule, RoundsRule):
        raise TypeError(f"rule must be a RoundsRule, got {type(rule).__name__}")
    check_int("rounds", rounds, minimum=0)
    check_ground_truth(problem, "distillation")
    leaves = [np.asarray(v) for v in rule]
    if {v.ndim for v in leaves} - {0, 1} or len({v.shape for v in leaves}) != 1:
        raise ValueError(
            f"rule leaves must all be scalars or all (g,), got shapes {[v.shape for v in leaves]}"
        )
    single = leaves[0].ndim == 0
    hard = bool(np.any(leaves[3] > 0))
    if hard and problem.regression:
        raise ValueError(
            "round rules with hard targets (the sign or argmax of the student) need class labels, "
            "but the targets are real-valued (task 'regression'): use soft round rules"
        )
    if engine not in _ROUND_ENGINES:
        raise ValueError(f"engine must be one of {_ROUND_ENGINES}, got {engine!r}")
    if engine == "closed-form" and hard:
        raise ValueError("engine 'closed-form' handles soft round rules only; use 'scan'")
    engine = ("scan" if hard else "closed-form") if engine == "auto" else engine
    dtype = problem.dtype
    eta = jnp.asarray(resolve_step_size(problem.eig, eta), dtype)
    dtypes = (dtype, dtype, jnp.int32, dtype)  # ξ, ridge, student steps, hard
    rule_j = RoundsRule(
        *(jnp.atleast_1d(jnp.asarray(v, t)) for v, t in zip(leaves, dtypes, strict=True))
    )
    if check_convergence:
        _check_soft_rounds_converge(rule_j, problem.eig, eta, rounds)
    fields = _rounds_jit(rule_j, problem, eta, rounds=rounds, engine=engine)
    run = _distill_run(problem, jnp.arange(rounds + 1), fields)
    return drop_rule_axis(run) if single else run


def _check_soft_rounds_converge(rule: RoundsRule, eig, eta, rounds: int) -> None:
    """Refuse soft rounds whose ratio r = ξF(λ) exceeds 1 (y_t grows like r^t); not when traced."""
    if rounds == 0 or not is_concrete(eig.eigenvalues):
        return
    for i in range(rule.xi.shape[0]):
        one = RoundsRule(*(v[i] for v in rule))
        if float(one.hard) > 0:
            continue
        f_max = float(jnp.max(_student_filters(one, eig, eta)[0]))
        ratio = float(one.xi) * f_max
        if ratio > 1.0 + 1e-12:
            raise ValueError(
                f"soft ξ-rounds with ξ = {float(one.xi):g} diverge: ξ·F(λ_max) = {ratio:.4g} > 1, "
                f"so the targets grow like {ratio:.4g}^t over the {rounds} rounds; choose "
                f"ξ < {1.0 / f_max:.4g} for this kernel and student, or hard targets"
            )


def default_ridge(trace: float, n: int) -> float:
    """c = 0.1 · tr(H)/n = 0.1 · mean eigenvalue: a ridge on the scale of the kernel."""
    return 0.1 * float(trace) / int(n)


def rounds_from_names(
    names,
    *,
    xis=None,
    ridge: float,
    student_steps: int = 0,
    soft: bool = True,
    hard: bool = True,
) -> list[tuple[str, RoundsRule]]:
    """Round rules for the round-based names in `names` ('xi', 'ridge-rounds'): [(label, rule)].

    Other names (step rules, see `targets.rules_from_names`) are skipped.

    Example:
      >>> [label for label, _ in rounds_from_names(["ridge-rounds"], ridge=0.1)]
      ['ridge rounds c=0.1']
    """
    hards = [h for h, on in ((False, soft), (True, hard)) if on]
    rules = []
    for name in names:
        if name == "xi":
            for xi, h in itertools.product(xis or DEFAULT_XI, hards):
                rules.append(xi_distill(xi, ridge=ridge, student_steps=student_steps, hard=h))
        elif name == "ridge-rounds":
            rules.append(ridge_rounds(ridge))
    return [(rounds_label(rule), rule) for rule in rules]
