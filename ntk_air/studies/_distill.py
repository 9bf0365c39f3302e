"""The self-distillation study: every target rule on one data set and kernel, vs early stopping.

Plain GD's closed form gives the best early stop. On the top-k path the soft rules with a fixed α
run on the Rayleigh–Ritz reduction, the others by one operator pass per step if that fits the time
limit, else not at all (docs/guide/distill.md, docs/science/distillation.md).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from .._checks import (
    check_bool,
    check_choice,
    check_dataset,
    check_int,
    check_optional,
    check_real,
    check_sequence,
    param,
)
from ..data import dataset_task
from ..distillation._engines import OperatorScan, engine_for, self_distill
from ..distillation._rounds import (
    DEFAULT_XI,
    default_ridge,
    distill_rounds,
    rounds_from_names,
    stack_rounds,
)
from ..distillation._targets import (
    DEFAULT_BETA,
    RULE_NAMES,
    SCHEDULES,
    AffineRule,
    needs_classes,
    rules_from_names,
)
from ..dynamics._early_stopping import UCurve, u_curve
from ..dynamics._linearized import resolve_step_size
from ..dynamics._record import Record
from ..spectral import DEFAULT_RATES, Budget, LoopEstimate, SolverChoice, check_loop
from ..spectral._label_spectrum import air_spectra
from ..spectral._operators import kernel_operator
from ._system import (
    DEFAULT_KRYLOV_STEPS,
    KernelSystem,
    data_summary,
    kernel_system,
    plan_spectrum,
    report_progress,
    sizes,
)


@dataclasses.dataclass(frozen=True)
class DistillConfig:
    """Options of the self-distillation study (each option's help says what it is).

    soft, hard: which target variants run. extra_rules: ((label, rule), …) of your own, any
    `targets.TargetRule` or `AffineRule`.
    """

    rules: tuple | None = param(
        None,
        "rules to run, comma-separated; 'plain' is plain GD on the given labels",
        option="--rule", item=str, choices=RULE_NAMES, metavar="RULE", default_help="all",
    )  # fmt: skip
    alphas: tuple | None = param(
        None,
        "α values of r1, r1-lag, r3 (and the scale of r2's adaptive α)",
        option="--alpha", item=float, metavar="ALPHA", default_help="r1/r1-lag 0.5, r3 0.9, r2 1",
    )  # fmt: skip
    betas: tuple | None = param(
        None, "bootstrapping β (weight on the given labels)",
        option="--beta", item=float, metavar="BETA", default_help=f"{DEFAULT_BETA[0]}",
    )  # fmt: skip
    xis: tuple | None = param(
        None,
        "ξ ≥ 0 of ξ-weighted rounds; soft rules may exceed 1 while ξ·λ_max/(λ_max + c) < 1, "
        "where the rounds still contract",
        option="--xi", item=float, metavar="XI", default_help=f"{DEFAULT_XI[0]}",
    )  # fmt: skip
    ridge: float | None = param(None, "ridge c of the round students", default_help="0.1·tr(H)/n")
    rounds: int = param(10, "rounds of round-based rules")
    student_steps: int = param(0, "ξ rounds: train each student by this many GD steps, not ridge")
    soft: bool = True
    hard: bool = True
    schedule: str = param(
        "constant", "α schedule of r1/r1-lag/r3 (r2 is adaptive)", choices=SCHEDULES[:2]
    )
    ramp: float | None = param(
        None, "steps for the increasing schedule to reach α", default_help="steps/10"
    )
    steps: int = param(2000, "GD steps (2e4 style accepted)")
    eta: float | None = param(None, "GD step size η", default_help="1/λ_max")
    record_every: int | None = param(
        None, "record ‖u − ŷ‖ every this many steps", type=int, default_help="steps/500"
    )
    extra_rules: tuple = ()
    krylov_steps: int = param(
        DEFAULT_KRYLOV_STEPS,
        "top-k path: passes over K (width 2C) that build the Krylov space of y and ŷ on the "
        "deflated operator behind the reduction (0 or 1: the labels alone, one pass, least "
        "accurate)",
        metavar="S",
    )

    def __post_init__(self):
        """Every option checked, one sentence naming the bad one (α, β, ξ by the rules)."""
        check_int("steps", self.steps, minimum=1)
        check_int("rounds", self.rounds, minimum=0)
        check_int("student_steps", self.student_steps, minimum=0)
        check_int("krylov_steps", self.krylov_steps, minimum=0)
        check_optional(check_int, "record_every", self.record_every, minimum=1)
        for name in ("eta", "ridge", "ramp"):
            check_optional(check_real, name, getattr(self, name), minimum=0, open_min=True)
        if not (check_bool("soft", self.soft) or check_bool("hard", self.hard)):
            raise ValueError("soft and hard are both False: no target variant would run")
        check_choice("schedule", self.schedule, SCHEDULES)
        for rule in check_optional(check_sequence, "rules", self.rules) or ():
            check_choice("rules", rule, RULE_NAMES)
        for name in ("alphas", "betas", "xis"):
            for v in check_optional(check_sequence, name, getattr(self, name)) or ():
                check_real(name, v)
        extra = check_sequence("extra_rules", self.extra_rules, allow_empty=True)
        if not all(
            isinstance(e, tuple | list) and len(e) == 2 and isinstance(e[0], str) for e in extra
        ):
            raise ValueError(
                f"extra_rules must be ((label, rule), …) pairs, got {self.extra_rules!r}"
            )


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
    error_estimate: float | None = None  # top-k: max change of dist_train on a coarser reduction
    error_estimate_test: float | None = None  # the same for dist_test
    final_mse: float | None = None  # ‖u − ŷ‖²/(n·C) at the last step (round)
    final_test_mse: float | None = None  # the same on the test points (NaN without)


class DistillTopK(NamedTuple):
    """What the matrix-free path adds to a `DistillStudy`: the reduction and its quality."""

    rank: int  # k eigenpairs computed
    dimension: int  # m = k + r columns of the Rayleigh–Ritz reduction
    krylov_steps: int  # s Krylov blocks of (y, ŷ) behind the reduction
    extra_passes: int  # passes over K beyond the eigensolver's (the deflated Krylov space)
    converged: bool  # every top-k residual ≤ tol · θ_1
    max_relative_residual: float  # max ‖Kv_i − θ_i v_i‖ / θ_1
    block_products: int  # passes over K
    next_eigenvalue: float  # θ_{k+1}
    leak: float  # ‖(I − P)KP‖₂ of the reduced space (0: the reduction is exact)
    tail_energy: dict  # {clean, noise, noisy}: share of ‖z‖² outside the top k modes
    plain_error_estimate: float  # the error estimate of plain GD's closed-form curve
    plain_error_estimate_test: float | None
    skipped: tuple  # ((label, reason), …): rules the matrix-free path did not run, and why
    method: str  # how the tail was computed, in words
    computed_in_float64: bool = False  # a float32 request that did not converge in float32


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
    solver: SolverChoice | None = None  # the spectral path (dense or topk) and its estimates
    loops: LoopEstimate | None = None  # the loops' time and recording estimate, checked first
    topk: DistillTopK | None = None  # the matrix-free path only
    task: str = "classification"  # or "regression": accuracy and margin NaN, MSE is the metric
    skipped_rules: tuple = ()  # ((label, reason), …): rules needing classes, on a regression task


def _summary(label, kind, params, engine, run, i):
    """One rule's numbers; accuracy and margin are NaN on a regression task (the engines')."""
    dist = np.asarray(run.dist_train[i])
    best = int(np.argmin(dist))
    steps = np.asarray(run.steps)
    u = np.asarray(run.u_final[i])
    test_dist = np.asarray(run.dist_test[i])
    test_entries = np.size(run.f_test_final[i]) if run.f_test_final is not None else 0
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
        final_test_dist=float(test_dist[-1]),
        steps=steps,
        dist_train=dist,
        dist_test=test_dist,
        u_final=u,
        final_mse=float(dist[-1]) ** 2 / max(u.size, 1),
        final_test_mse=float(test_dist[-1]) ** 2 / test_entries if test_entries else float("nan"),
    )


def _params(rule) -> dict:
    if isinstance(rule, AffineRule):
        types = {"hard": bool, "schedule": str, "start": int}
        fields = dataclasses.fields(rule)
        return {f.name: types.get(f.name, float)(getattr(rule, f.name)) for f in fields}
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


def _task_rules(step_rules, round_rules, task: str):
    """(step rules, round rules, skipped): regression leaves out the rules that need classes."""
    if task != "regression":
        return step_rules, round_rules, ()
    hard = "hard targets (the sign or argmax)"
    reasons = [needs_classes(r) for _, r in step_rules]
    reasons += [hard if _is_hard(r) else None for _, r in round_rules]
    rules = list(zip(step_rules + round_rules, reasons, strict=True))
    kept_steps = [rule for rule, why in rules[: len(step_rules)] if why is None]
    kept_rounds = [rule for rule, why in rules[len(step_rules) :] if why is None]
    skipped = [
        (lab, f"uses {why}, which need class labels (task 'regression')")
        for (lab, _), why in rules
        if why is not None
    ]
    if skipped and len(kept_steps) + len(kept_rounds) <= 1:
        raise ValueError(
            "distill: the targets are real-valued (task 'regression') and every rule asked for "
            f"({', '.join(lab for lab, _ in skipped)}) needs class labels; ask for soft rules"
        )
    return kept_steps, kept_rounds, tuple(skipped)


def _is_hard(rule) -> bool:
    return bool(float(rule.hard))


def _record_every(c: DistillConfig) -> int:
    return max(1, c.steps // 500) if c.record_every is None else int(c.record_every)


class _TopKRules(NamedTuple):
    """Which rules the matrix-free path runs how, decided before any work."""

    reduced_steps: list  # (label, rule): soft, α independent of u → the Rayleigh–Ritz reduction
    reduced_rounds: list  # soft round rules → the reduction
    operator_steps: list  # hard / adaptive / own rules → one operator pass per step (exact)
    skipped: tuple  # ((label, reason), …)
    operator_seconds: float  # the estimate for operator_steps (0 when none run)


_ROUNDS_SKIP = (
    "a round rule with hard targets needs a ridge solve over all n points per round: not run "
    "on the matrix-free path; use --solver dense on a subsample (--n-train)"
)


def _runs_on_reduction(rule) -> bool:
    """Soft rules with an α that does not depend on the predictions: linear in (u, y)."""
    return isinstance(rule, AffineRule) and engine_for(rule).name in ("closed-form", "eigen-scan")


def _pass_seconds(rows: int, n: int, width: int, *, symmetric: bool = False) -> float:
    """Time of one pass of K(rows, X) over `width` vectors (half the entries when symmetric)."""
    r = DEFAULT_RATES
    entries = (0.5 if symmetric else 1.0) * rows * n * r["entry_seconds"]
    return entries + 2.0 * rows * n * width * r["flop_seconds"]


def _operator_seconds(n, n_test, cols, rules, steps, every) -> float:
    """Time of `distill.OperatorScan`: a pass of width R·C per step, K(X_test, X) per record."""
    per_step = _pass_seconds(n, n, rules * cols, symmetric=True)
    return steps * (per_step + 1e-3) + (steps // every + 1) * _pass_seconds(n_test, n, rules * cols)


def _topk_plan(dataset, c: DistillConfig, budget: Budget, step_rules, round_rules) -> _TopKRules:
    """Split the rules for the matrix-free path; operator rules past the time limit are skipped."""
    reduced = [(lab, r) for lab, r in step_rules if _runs_on_reduction(r)]
    others = [(lab, r) for lab, r in step_rules if not _runs_on_reduction(r)]
    rounds = [(lab, r) for lab, r in round_rules if not _is_hard(r)]
    skipped = [(lab, _ROUNDS_SKIP) for lab, r in round_rules if _is_hard(r)]
    n, n_test, cols = sizes(dataset)
    op_s = 0.0
    if others:
        op_s = _operator_seconds(n, n_test, cols, len(others), c.steps, _record_every(c))
    if others and not (budget.force or op_s <= budget.seconds):
        why = (
            f"one pass over K per step (exact, never forming K) would take ~{op_s:.3g} s for "
            f"these rules, beyond the time limit; --force or a larger --time-limit runs them, "
            "--solver dense on a subsample (--n-train) is faster"
        )
        skipped = [(lab, why) for lab, _ in others] + skipped
        others, op_s = [], 0.0
    return _TopKRules(reduced, rounds, others, tuple(skipped), op_s)


def distill_plan(
    dataset, config: DistillConfig = DistillConfig(), budget: Budget | None = None, *, dtype=None
) -> tuple[SolverChoice, LoopEstimate]:
    """Memory and time of `distill` for this data set, decided (or refused) before any work.

    Dense when K fits the budget, else top-k (`budget.solver` "auto"). Each of R step rules
    costs at most 2n²C multiply-adds per step (2nmC on a reduction of m columns) plus a fixed
    step cost; plain GD's curve holds (steps + 1)·(n + n_test) numbers, the recordings
    steps/record_every·R·(n + n_test). Refuses a top-k run where no rule but plain GD is left.

    Args:
      dataset: `data.Dataset`.
      config: `DistillConfig`.
      budget: `resources.Budget`.
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
    n, n_test, cols = sizes(dataset)
    size = np.dtype(dtype or np.asarray(dataset.x).dtype).itemsize
    c = config
    if c.krylov_steps > max(n, DEFAULT_KRYLOV_STEPS):  # each pass adds a dimension or ends it
        raise ValueError(
            f"krylov_steps {c.krylov_steps} exceeds the {n} passes that can add to the Krylov "
            f"space of {n} points (each adds at least one dimension until the space is "
            f"invariant); give at most {max(n, DEFAULT_KRYLOV_STEPS)}"
        )
    choice = plan_spectrum(dataset, budget, dtype, "distill")
    step_rules, round_rules = _config_rules(c, ramp=1.0, ridge=1.0)  # placeholders: same kinds
    r_steps, r_rounds = len(step_rules), len(round_rules)
    r = DEFAULT_RATES
    width = choice.rank + 2 * cols * 16 if choice.solver == "topk" else n
    per_step = 2.0 * n * width * cols * r["flop_seconds"] + r["step_seconds"]
    operator_s = 0.0
    if choice.solver == "topk":
        split = _topk_plan(dataset, c, budget, step_rules, round_rules)
        kept = [lab for lab, _ in split.reduced_steps + split.operator_steps if lab != "plain GD"]
        if split.skipped and not (kept or split.reduced_rounds):
            raise ValueError(
                f"distill: on the matrix-free path (n = {n}) no rule besides plain GD can run: "
                + "; ".join(f"{lab}: {why}" for lab, why in split.skipped)
            )
        # reduced rules run twice (full and coarse reduction, for the error estimate)
        r_steps, r_rounds = 2 * len(split.reduced_steps), 2 * len(split.reduced_rounds)
        operator_s = split.operator_seconds
        # the deflated Krylov space: krylov_steps symmetric passes of width 2C
        operator_s += c.krylov_steps * _pass_seconds(n, n, 2 * cols, symmetric=True)
    seconds = c.steps * r_steps * per_step + (c.steps + 1) * (n + n_test) * cols * 1e-9
    seconds += c.rounds * r_rounds * (c.student_steps + 1) * per_step + operator_s
    memory = (c.steps + 1) * (n + n_test) * cols * size * 2  # plain GD's closed-form curve
    memory += (c.steps // _record_every(c) + 1) * (r_steps + 1) * (n + n_test) * cols * size
    what = f"{c.steps} steps × {r_steps} step rules, {c.rounds} rounds × {r_rounds} round rules"
    if choice.solver == "topk":
        what = (
            f"{c.steps} steps × {len(split.reduced_steps)} rules on the reduction and "
            f"{len(split.operator_steps)} by operator passes, {c.rounds} rounds × "
            f"{len(split.reduced_rounds)} round rules (reduced rules twice: the error estimate)"
        )
    loops = LoopEstimate(
        f"distill: {what}",
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
    progress=None,
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
    check_dataset(dataset)
    c = config
    budget = budget or Budget()
    choice, loops = distill_plan(dataset, c, budget)
    if system is None:
        system = kernel_system(dataset, kernel_fn, choice, krylov_steps=c.krylov_steps)
    eig = system.eig
    topk = eig.rest is not None
    total = 5 if topk else 4
    stage = "kernel and eigendecomposition"
    if topk:
        stage = f"top-{eig.top} eigenpairs and Krylov space of (y, ŷ)"
    report_progress(progress, stage, 1, total)
    eta = resolve_step_size(eig, c.eta)
    record_every = _record_every(c)
    ramp = max(1, c.steps // 10) if c.ramp is None else c.ramp
    trace = float(eig.rest.trace) if topk else float(np.sum(np.asarray(eig.eigenvalues)))
    ridge = default_ridge(trace, len(dataset.x)) if c.ridge is None else float(c.ridge)
    task = dataset_task(dataset)
    step_rules, round_rules, task_skipped = _task_rules(
        *_config_rules(c, ramp=ramp, ridge=ridge), task
    )
    order = {lab: i for i, (lab, _) in enumerate(step_rules + round_rules)}
    operator_steps, skipped = [], ()
    if topk:
        split = _topk_plan(dataset, c, budget, step_rules, round_rules)
        step_rules, round_rules = split.reduced_steps, split.reduced_rounds
        operator_steps, skipped = split.operator_steps, split.skipped
    problem = system.problem(dataset, kernel=True)
    coarse = None if system.coarse is None else system.coarse.problem(dataset)
    # The top-k pairs are exact only to their residuals: no estimate goes below this floor.
    floor = 0.0
    if topk:
        floor = float(np.max(np.asarray(eig.rest.residual_norms)) / float(eig.eigenvalues[0]))
        floor *= float(np.linalg.norm(np.asarray(dataset.y)))

    def both(run_on):
        return run_on(problem), (None if coarse is None else run_on(coarse))

    plain, plain_c = both(lambda p: u_curve(p, steps=np.arange(c.steps + 1), eta=eta))
    report_progress(progress, "plain GD (closed form)", 2, total)

    runs = []
    if step_rules:
        rules = [r for _, r in step_rules]
        record = Record(record_every)
        run, run_c = both(lambda p: self_distill(p, rules, steps=c.steps, eta=eta, record=record))
        mine = [
            _summary(label, "steps", _params(r), engine_for(r).name, run, i)
            for i, (label, r) in enumerate(step_rules)
        ]
        runs += _with_estimates(mine, run_c, floor)
    report_progress(progress, f"{len(step_rules)} step rules", 3, total)
    for hard_group in (False, True):
        group = [(lab, r) for lab, r in round_rules if _is_hard(r) == hard_group]
        if not group:
            continue
        stacked = stack_rounds([r for _, r in group])
        rrun, rrun_c = both(lambda p, st=stacked: distill_rounds(p, st, rounds=c.rounds, eta=eta))
        engine = "scan" if hard_group else "closed-form"
        mine = [
            _summary(lab, "rounds", _params(r), engine, rrun, i) for i, (lab, r) in enumerate(group)
        ]
        runs += _with_estimates(mine, rrun_c, floor)
    report_progress(progress, f"{len(round_rules)} round rules", 4, total)
    if topk:
        runs += _operator_runs(dataset, kernel_fn, problem, operator_steps, c, eta, progress)
        report_progress(progress, f"{len(operator_steps)} rules by operator passes", 5, total)
    return DistillStudy(
        data=data_summary(dataset),
        eta=float(eta),
        lambda_max=float(eig.eigenvalues[0]),
        steps=c.steps,
        record_every=record_every,
        rounds=c.rounds,
        ridge=ridge,
        noise_norm=float(np.linalg.norm(np.asarray(dataset.y) - np.asarray(dataset.y_clean))),
        plain_gd=plain,
        runs=tuple(sorted(runs, key=lambda r: order[r.label])),
        solver=system.solver if system.solver is not None else choice,
        loops=loops,
        topk=_topk_info(system, dataset, plain, plain_c, floor, skipped) if topk else None,
        task=task,
        skipped_rules=task_skipped,
    )


def _operator_runs(dataset, kernel_fn, problem, rules, c: DistillConfig, eta, progress):
    """The rules that leave every fixed subspace, exactly: one pass over K per step."""
    if not rules:
        return []
    stage = f"{len(rules)} rules by one pass over K per step"

    def step_progress(done, steps_total):
        if done % max(1, steps_total // 100) == 0:
            report_progress(progress, f"{stage} ({done}/{steps_total})", 4, 5)

    test_op = kernel_operator(kernel_fn, dataset.x_test, dataset.x) if len(dataset.x_test) else None
    engine = OperatorScan(kernel_operator(kernel_fn, dataset.x), test_op, step_progress)
    record = Record(_record_every(c))
    orun = self_distill(
        problem, [r for _, r in rules], steps=c.steps, eta=eta, engine=engine, record=record
    )
    return [
        _summary(lab, "steps", _params(r), "operator", orun, i) for i, (lab, r) in enumerate(rules)
    ]


def _change(a, b, floor=0.0):
    """max |a − b| over recorded steps, at least `floor` (None when either is missing)."""
    if a is None or b is None:
        return None
    return max(float(np.max(np.abs(np.asarray(a) - np.asarray(b)))), floor)


def _with_estimates(runs, coarse, floor):
    """RuleRuns with the change against the coarse reduction's runs as error estimates."""
    if coarse is None:
        return runs
    return [
        run._replace(
            error_estimate=_change(run.dist_train, coarse.dist_train[i], floor),
            error_estimate_test=None
            if np.all(np.isnan(run.dist_test))
            else _change(run.dist_test, coarse.dist_test[i], floor),
        )
        for i, run in enumerate(runs)
    ]


def _topk_info(system, dataset, plain, plain_c, floor, skipped) -> DistillTopK:
    eig, rest = system.eig, system.eig.rest
    spectra = air_spectra(eig, dataset.y_clean, dataset.y)
    lam0 = float(eig.eigenvalues[0])
    test_est = _change(plain.test_dist, None if plain_c is None else plain_c.test_dist, floor)
    return DistillTopK(
        rank=eig.top,
        dimension=int(eig.eigenvalues.shape[0]),
        krylov_steps=system.krylov_steps,
        extra_passes=system.krylov_steps,
        converged=bool(rest.converged),
        max_relative_residual=float(np.max(np.asarray(rest.residual_norms)) / lam0),
        block_products=int(rest.block_products),
        next_eigenvalue=float(rest.next_eigenvalue),
        leak=float(rest.leak),
        tail_energy={k: float(getattr(spectra, k).tail) for k in ("clean", "noise", "noisy")},
        plain_error_estimate=np.nan
        if plain_c is None
        else _change(plain.train_dist, plain_c.train_dist, floor),
        plain_error_estimate_test=test_est,
        skipped=skipped,
        method="Rayleigh–Ritz reduction of K to the top-k eigenvectors plus the Krylov space of "
        "(y, ŷ) on the deflated operator (matfree.deflated_krylov, matfree.ritz_reduction): "
        "the top k modes exact (up to the residuals), "
        "the tail by the Galerkin approximation of the same dynamics; error estimate (not a "
        "bound) = the change when the Krylov space loses two blocks' worth of columns, at least "
        "the top-k residual level max‖Kv − θv‖/θ_1·‖y‖; rules "
        "with engine 'operator' ran exactly, one pass over K per step (no estimate)",
        computed_in_float64=bool(rest.upcast),
    )


def best_run(study: DistillStudy) -> RuleRun:
    """The run with the smallest final ‖u − ŷ‖₂."""
    return min(study.runs, key=lambda r: r.final_dist)
