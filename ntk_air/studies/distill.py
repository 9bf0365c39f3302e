"""The self-distillation study: every target rule on one data set and kernel, vs early stopping.

Plain GD's U-curve (closed form, every step) gives the best early stop; each step rule (R1,
R1-lag, R2, R3, bootstrapping, soft and hard, and any rule of your own) runs through
`distill.self_distill` on the fastest engine for it; round rules (ξ-weighted, repeated ridge)
through `rounds.distill_rounds`. The question each run answers: does it end below the best early
stop, without stopping early?
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from ..distill import engine_for, self_distill
from ..dynamics import resolve_step_size
from ..early_stopping import UCurve, u_curve
from ..problem import linear_problem
from ..record import Record
from ..resources import (
    DEFAULT_RATES,
    Budget,
    LoopEstimate,
    SolverChoice,
    check_loop,
    plan_solver,
)
from ..rounds import default_ridge, distill_rounds, rounds_from_names, stack_rounds
from ..targets import RULE_NAMES, AffineRule, rules_from_names
from ._system import KernelSystem, Progress, data_summary, kernel_system, report_progress

__all__ = [
    "DistillConfig",
    "DistillStudy",
    "RuleRun",
    "distill",
    "distill_plan",
    "best_run",
    "DEFAULT_STEPS",
]

DEFAULT_STEPS = 2000


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """Options of the self-distillation study.

    rules: rule family names (subset of `targets.RULE_NAMES`; None: all).
    alphas, betas, xis: values for R1/R2/R3, bootstrapping's β and the ξ rounds (None: defaults).
    ridge: c of the round students (None: `rounds.default_ridge`, 0.1·tr(H)/n).
    rounds: number of rounds. student_steps: GD student for ξ rounds (0: ridge).
    soft, hard: which target variants. schedule, ramp: α schedule (ramp None: steps/10).
    steps: GD steps. eta: step size (None: 1/λ_max). record_every: None: max(1, steps/500).
    extra_rules: ((label, rule), …) of your own — any `targets.TargetRule` or `AffineRule`.
    """

    rules: tuple | None = None
    alphas: tuple | None = None
    betas: tuple | None = None
    xis: tuple | None = None
    ridge: float | None = None
    rounds: int = 10
    student_steps: int = 0
    soft: bool = True
    hard: bool = True
    schedule: str = "constant"
    ramp: float | None = None
    steps: int = DEFAULT_STEPS
    eta: float | None = None
    record_every: int | None = None
    extra_rules: tuple = ()


class RuleRun(NamedTuple):
    """One rule's run, summarized (arrays on the recorded steps or rounds)."""

    label: str  # e.g. "R3 hard α=0.9"
    kind: str  # "steps" or "rounds"
    params: dict  # the rule's values (empty for a rule of your own)
    engine: str  # the engine it ran on
    final_dist: float  # ‖u − ŷ‖₂ at the last step (round)
    best_dist: float  # min over the recorded steps
    best_at: int  # where
    margin: float  # min_i ŷ_i u_i (binary) or the class margin
    accuracy_train: float
    accuracy_test: float  # NaN without test data
    final_test_dist: float  # NaN without test data
    steps: np.ndarray  # (r,) recorded steps (or rounds)
    dist_train: np.ndarray  # (r,)
    dist_test: np.ndarray  # (r,)
    u_final: np.ndarray  # (n[, C]) final training predictions


class DistillStudy(NamedTuple):
    """Every rule on one data set and kernel."""

    data: dict
    eta: float
    lambda_max: float
    steps: int
    record_every: int
    rounds: int
    ridge: float
    noise_norm: float  # ‖e‖ = ‖y − ŷ‖
    plain_gd: UCurve  # plain GD at every step (closed form): its best early stop
    runs: tuple  # (RuleRun, …): step rules in order, then round rules
    solver: SolverChoice | None = None  # the spectral path (dense) and its estimates
    loops: LoopEstimate | None = None  # the loops' time and recording estimate, checked first


def _summary(label, kind, params, engine, run, i):
    dist = np.asarray(run.dist_train[i])
    best = int(np.argmin(dist))
    steps = np.asarray(run.steps)
    return RuleRun(
        label=label,
        kind=kind,
        params=params,
        engine=engine,
        final_dist=float(dist[-1]),
        best_dist=float(dist[best]),
        best_at=int(steps[best]),
        margin=float(run.margin_train[i]),
        accuracy_train=float(run.accuracy_train[i]),
        accuracy_test=float(run.accuracy_test[i]),
        final_test_dist=float(np.asarray(run.dist_test[i])[-1]),
        steps=steps,
        dist_train=dist,
        dist_test=np.asarray(run.dist_test[i]),
        u_final=np.asarray(run.u_final[i]),
    )


def _params(rule) -> dict:
    if isinstance(rule, AffineRule):
        return {
            "alpha": float(rule.alpha),
            "moving": float(rule.moving),
            "lag": float(rule.lag),
            "ramp": float(rule.ramp),
            "hard": bool(rule.hard),
            "schedule": rule.schedule,
            "start": int(rule.start),
        }
    if hasattr(rule, "_asdict") and not callable(getattr(rule, "init", None)):
        return {k: float(v) for k, v in rule._asdict().items()}
    return {}


def _config_rules(c: DistillConfig, *, ramp: float, ridge: float) -> tuple[list, list]:
    """(step rules, round rules) that the config names, its extra rules included."""
    names = list(RULE_NAMES if c.rules is None else c.rules)
    step_rules = rules_from_names(
        names,
        alphas=c.alphas,
        betas=c.betas,
        soft=c.soft,
        hard=c.hard,
        schedule=c.schedule,
        ramp=float(ramp),
    ) + list(c.extra_rules)
    round_rules = rounds_from_names(
        names, xis=c.xis, ridge=ridge, student_steps=c.student_steps, soft=c.soft, hard=c.hard
    )
    return step_rules, round_rules


def _rule_counts(c: DistillConfig) -> tuple[int, int]:
    """(step rules, round rules) the config asks for (no kernel needed)."""
    step_rules, round_rules = _config_rules(c, ramp=1.0, ridge=1.0)
    return len(step_rules), len(round_rules)


def distill_plan(
    dataset, config: DistillConfig = DistillConfig(), budget: Budget | None = None, *, dtype=None
) -> tuple[SolverChoice, LoopEstimate]:
    """Memory and time of `distill` for this data set, decided (or refused) before any work.

    The kernel limit needs the dense path (K and all its eigenvectors; the matrix-free solver
    has no self-distillation engine yet). The loops: each of R step rules costs at most one
    product K·(u − target) per step (2n²C multiply-adds) plus a fixed step cost; plain GD's
    closed-form curve holds (steps + 1) × (n + n_test) numbers; recordings steps/record_every
    × R × (n + n_test). An upper bound: closed-form engines cost less.

    Args:
      dataset: `data.Dataset`. config: `DistillConfig`. budget: `resources.Budget`.
      dtype: float32/float64 (default: the dtype of dataset.x).

    Returns:
      (SolverChoice, LoopEstimate).

    Raises:
      resources.ResourceError: the kernel, or the loops' recordings, cannot fit the memory
        budget, or the loops exceed budget.seconds (unless budget.force).

    Example:
      >>> choice, loops = distill_plan(ntk_air.data.clusters(), DistillConfig(steps=500))
      >>> choice.solver, loops.seconds < 60
      ('dense', True)
    """
    budget = Budget() if budget is None else budget
    x, y = np.asarray(dataset.x), np.asarray(dataset.y)
    n, n_test = x.shape[0], int(np.shape(dataset.x_test)[0])
    cols = 1 if y.ndim == 1 else y.shape[1]
    dt = str(np.dtype(dtype or x.dtype))
    size = np.dtype(dt).itemsize
    c = config
    if not isinstance(c.steps, int) or isinstance(c.steps, bool) or c.steps < 1:
        raise ValueError(f"steps must be a positive int, got {c.steps!r}")
    choice = plan_solver(
        n,
        budget=budget,
        dtype=dt,
        n_test=n_test,
        n_labels=cols,
        d=int(np.prod(x.shape[1:])),
        solvers=("dense",),
        what="distill",
    )
    r_steps, r_rounds = _rule_counts(c)
    every = max(1, c.steps // 500) if c.record_every is None else max(1, int(c.record_every))
    r = DEFAULT_RATES
    per_step = 2.0 * n * n * cols * r["flop_seconds"] + r["step_seconds"]
    seconds = c.steps * r_steps * per_step + (c.steps + 1) * (n + n_test) * cols * 1e-9
    seconds += c.rounds * r_rounds * (c.student_steps + 1) * per_step
    memory = (c.steps + 1) * (n + n_test) * cols * size * 2  # plain GD's closed-form curve
    memory += (c.steps // every + 1) * (r_steps + 1) * (n + n_test) * cols * size
    loops = LoopEstimate(
        f"distill: {c.steps} steps × {r_steps} step rules, {c.rounds} rounds × {r_rounds} "
        "round rules",
        float(seconds),
        int(memory),
        {"per_step_seconds": per_step, "step_rules": r_steps, "round_rules": r_rounds},
    )
    return choice, check_loop(loops, budget)


def distill(
    dataset,
    kernel_fn,
    config: DistillConfig = DistillConfig(),
    *,
    system: KernelSystem | None = None,
    progress: Progress | None = None,
    budget: Budget | None = None,
) -> DistillStudy:
    """Every target rule on one data set and kernel (no files, no output).

    Args:
      dataset: `data.Dataset` (y noisy, y_clean ground truth; ±1 or one-hot).
      kernel_fn: a `KernelFn`; ignored when `system` is given.
      config: `DistillConfig`.
      system: precomputed kernels and eigendecomposition (`kernel_system`).
      progress: progress(stage, done, total).
      budget: `resources.Budget` (memory budget, time limit, force); default `Budget()`.
        Checked by `distill_plan` before anything is allocated.

    Returns:
      DistillStudy.

    Raises:
      resources.ResourceError: see `distill_plan`.

    Example:
      >>> study = distill(ntk_air.data.clusters(), ntk_air.kernels.two_layer_relu_kernel_fn(),
      ...                 DistillConfig(rules=("r3",), hard=True, soft=False, steps=500))
      >>> [run.label for run in study.runs]
      ['plain GD', 'R3 hard α=0.9']
    """
    c = config
    if c.rules is not None:
        unknown = [r for r in c.rules if r not in RULE_NAMES]
        if unknown:
            raise ValueError(f"unknown rule {unknown[0]!r}; choose from {RULE_NAMES}")
    if not isinstance(c.steps, int) or isinstance(c.steps, bool) or c.steps < 1:
        raise ValueError(f"steps must be a positive int, got {c.steps!r}")
    total = 4
    choice, loops = distill_plan(dataset, c, budget or Budget())
    if system is None:
        system = kernel_system(dataset, kernel_fn)
    eig = system.eig
    eta = resolve_step_size(eig, c.eta)
    record_every = max(1, c.steps // 500) if c.record_every is None else int(c.record_every)
    ramp = max(1, c.steps // 10) if c.ramp is None else c.ramp
    ridge = default_ridge(eig.eigenvalues) if c.ridge is None else float(c.ridge)
    step_rules, round_rules = _config_rules(c, ramp=ramp, ridge=ridge)
    test = system.ntk_test is not None
    problem = linear_problem(
        eig,
        dataset.y,
        dataset.y_clean,
        k_test_train=system.ntk_test,
        y_test_clean=dataset.y_test_clean if test else None,
        kernel=system.ntk,
    )
    report_progress(progress, "kernel and eigendecomposition", 1, total)

    plain = u_curve(problem, steps=np.arange(c.steps + 1), eta=eta)
    report_progress(progress, "plain GD (closed form)", 2, total)

    rules = [r for _, r in step_rules]
    run = self_distill(problem, rules, steps=c.steps, eta=eta, record=Record(record_every))
    runs = [
        _summary(label, "steps", _params(r), engine_for(r).name, run, i)
        for i, (label, r) in enumerate(step_rules)
    ]
    report_progress(progress, f"{len(step_rules)} step rules", 3, total)

    for hard_group in (False, True):
        group = [(lab, r) for lab, r in round_rules if bool(float(r.hard)) == hard_group]
        if not group:
            continue
        rrun = distill_rounds(
            problem, stack_rounds([r for _, r in group]), rounds=c.rounds, eta=eta
        )
        engine = "scan" if hard_group else "closed-form"
        runs += [
            _summary(lab, "rounds", _params(r), engine, rrun, i) for i, (lab, r) in enumerate(group)
        ]
    report_progress(progress, f"{len(round_rules)} round rules", 4, total)
    noise = np.asarray(dataset.y) - np.asarray(dataset.y_clean)
    return DistillStudy(
        data=data_summary(dataset),
        eta=float(eta),
        lambda_max=float(eig.eigenvalues[0]),
        steps=c.steps,
        record_every=record_every,
        rounds=c.rounds,
        ridge=ridge,
        noise_norm=float(np.linalg.norm(noise)),
        plain_gd=plain,
        runs=tuple(runs),
        solver=choice,
        loops=loops,
    )


def best_run(study: DistillStudy) -> RuleRun:
    """The run with the smallest final ‖u − ŷ‖₂."""
    return min(study.runs, key=lambda r: r.final_dist)
