"""`ntk-air distill [DATA.npz]`: the self-distillation target rules, simulated in the kernel limit.

One NTK of the training inputs (and one eigendecomposition) serves every rule: soft rules with a
constant α run in closed form, hard and adaptive ones are stepped (SCIENCE.md §4,
`ntk_air.distill`). Defaults follow `ntk-air air`: u(0) = 0 and η = 1/λ_max.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ._common import (
    CliError,
    KernelSystem,
    add_data_options,
    add_kernel_options,
    build_kernel_fn,
    kernel_config,
    kernel_system,
    load_dataset,
    setup_dtype,
    write_json,
)

__all__ = ["add_parser", "run", "distill_report", "build_rules", "RULE_NAMES"]

RULE_NAMES = ("plain", "r1", "r1-lag", "r2", "r3", "bootstrap", "xi", "ridge-rounds")
DEFAULT_ALPHA = {"r1": 0.5, "r1-lag": 0.5, "r2": 1.0, "r3": 0.9}
DEFAULT_BETA = (0.8,)
DEFAULT_XI = (1.5,)
DEFAULT_STEPS = 2000


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "distill",
        help="self-distillation target rules (R1, R1-lag, R2, R3, bootstrapping, ξ-weighted, "
        "ridge rounds) in the kernel limit: ℓ2 distance to the clean labels, margin, accuracy",
        description="Simulates linearized training with each target rule from one NTK "
        "eigendecomposition and writes distill.json and figures into --out.",
    )
    p.add_argument(
        "--rule",
        nargs="+",
        choices=RULE_NAMES,
        default=None,
        help="rules to run (default: all); 'plain' is plain GD on the given labels",
    )
    p.add_argument(
        "--alpha",
        type=float,
        nargs="+",
        default=None,
        help="α values for r1, r1-lag, r3 (and the scale of r2's adaptive α); default "
        "r1/r1-lag 0.5, r3 0.9, r2 1",
    )
    p.add_argument(
        "--beta",
        type=float,
        nargs="+",
        default=None,
        help=f"bootstrapping β (weight on the given labels; default {DEFAULT_BETA[0]})",
    )
    p.add_argument(
        "--xi",
        type=float,
        nargs="+",
        default=None,
        help=f"ξ of ξ-weighted rounds, may exceed 1 (default {DEFAULT_XI[0]})",
    )
    p.add_argument(
        "--ridge",
        type=float,
        default=None,
        help="ridge c of the round-based students (default 0.1·tr(H)/n)",
    )
    p.add_argument(
        "--rounds", type=int, default=10, help="rounds of round-based rules (default 10)"
    )
    p.add_argument(
        "--student-steps",
        type=int,
        default=0,
        help="ξ rounds: train each student by this many GD steps instead of ridge",
    )
    targets = p.add_mutually_exclusive_group()
    targets.add_argument("--soft", action="store_true", help="soft targets only (p = u)")
    targets.add_argument(
        "--hard",
        action="store_true",
        help="hard targets only (sign / one-hot argmax); default: both",
    )
    p.add_argument(
        "--schedule",
        choices=("constant", "increasing"),
        default="constant",
        help="α schedule of r1/r1-lag/r3 (r2 is adaptive by definition)",
    )
    p.add_argument(
        "--ramp",
        type=int,
        default=None,
        help="steps for the increasing schedule to reach α (default steps/10)",
    )
    p.add_argument(
        "--steps", type=int, default=DEFAULT_STEPS, help=f"GD steps (default {DEFAULT_STEPS})"
    )
    p.add_argument("--eta", type=float, default=None, help="GD step size η (default 1/λ_max)")
    p.add_argument(
        "--record-every",
        type=int,
        default=None,
        help="record ‖u − ŷ‖ every this many steps (default steps/500)",
    )
    p.add_argument(
        "--save-predictions",
        default=None,
        metavar="FILE.npz",
        help="write the final training predictions u of each run (and labels) to FILE.npz",
    )
    p.add_argument("--out", default="distill_out", help="output folder (default distill_out)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_data_options(p)
    add_kernel_options(p)
    p.set_defaults(func=run)


def build_rules(
    names=None,
    *,
    alphas=None,
    betas=None,
    xis=None,
    ridge=1.0,
    student_steps=0,
    soft=True,
    hard=True,
    schedule="constant",
    ramp=0.0,
):
    """Step rules and round rules for the named rule families: (step_rules, rounds_rules) lists.

    Each list holds (label, rule) pairs; r2 is hard by definition, plain GD has no targets.
    """
    from .. import distill as D

    names = list(RULE_NAMES if names is None else names)
    variants = [v for v, on in (("soft", soft), ("hard", hard)) if on]
    step, rounds, names_of = [], [], {}
    ramp_kw = {"schedule": schedule, "ramp": ramp} if schedule == "increasing" else {}
    for name in names:
        if name == "plain":
            step.append(D.plain_gd())
        elif name in ("r1", "r1-lag", "r3"):
            for a in alphas or (DEFAULT_ALPHA[name],):
                for v in variants:
                    if name == "r3":
                        step.append(D.r3(a, hard=v == "hard", **ramp_kw))
                    else:
                        step.append(D.r1(a, hard=v == "hard", lag=name == "r1-lag", **ramp_kw))
        elif name == "r2":
            if hard:
                for a in alphas or (DEFAULT_ALPHA["r2"],):
                    step.append(D.r2(a))
        elif name == "bootstrap":
            for b in betas or DEFAULT_BETA:
                for v in variants:
                    step.append(D.bootstrap(b, hard=v == "hard"))
                    names_of[len(step) - 1] = f"bootstrap {v} β={b:g}"
        elif name == "xi":
            for xi in xis or DEFAULT_XI:
                for v in variants:
                    rounds.append(
                        D.xi_distill(xi, ridge=ridge, student_steps=student_steps, hard=v == "hard")
                    )
        elif name == "ridge-rounds":
            rounds.append(D.ridge_rounds(ridge))
        else:
            raise ValueError(f"unknown rule {name!r}; choose from {RULE_NAMES}")
    step_labelled = [(names_of.get(i, D.rule_label(r)), r) for i, r in enumerate(step)]
    rounds_labelled = [(D.rounds_label(r), r) for r in rounds]
    if "plain" not in names:  # plain GD is always reported as the reference
        step_labelled.insert(0, (D.rule_label(D.plain_gd()), D.plain_gd()))
    return step_labelled, rounds_labelled


def _run_summary(label, kind, rule, run, i, engine):
    dist = np.asarray(run.dist_train[i])
    best = int(np.argmin(dist))
    steps = np.asarray(run.steps)
    return {
        "label": label,
        "kind": kind,
        "params": {k: float(v) for k, v in rule._asdict().items()},
        "engine": engine,
        "final_dist": float(dist[-1]),
        "best_dist": float(dist[best]),
        "best_at": int(steps[best]),
        "margin": float(run.margin_train[i]),
        "accuracy_train": float(run.accuracy_train[i]),
        "accuracy_test": float(run.accuracy_test[i]),
        "final_test_dist": float(np.asarray(run.dist_test[i])[-1]),
        "steps": steps,
        "dist_train": dist,
        "dist_test": np.asarray(run.dist_test[i]),
    }


def distill_report(
    dataset,
    kernel_fn,
    out_dir,
    *,
    progress: bool = True,
    rules=None,
    alphas=None,
    betas=None,
    xis=None,
    ridge=None,
    rounds: int = 10,
    student_steps: int = 0,
    soft: bool = True,
    hard: bool = True,
    schedule: str = "constant",
    ramp=None,
    steps: int = DEFAULT_STEPS,
    eta=None,
    record_every=None,
    dtype: str = "float64",
    tile_size=None,
    save_predictions=None,
    kernel_config: dict | None = None,
    system: KernelSystem | None = None,
) -> dict:
    """Every target rule on one data set and kernel: writes distill.json and figures.

    Args:
      dataset: `ntk_air.data.Dataset` (y noisy, y_clean ground truth; ±1 or one-hot).
      kernel_fn: kernel_fn(x1, x2=None, *, tile_size, dtype) -> Kernel (`.ntk` used).
      out_dir: output folder (created).
      progress: tqdm bar over the stages.
      rules: rule family names (subset of RULE_NAMES; default all). alphas, betas, xis: values
        (defaults DEFAULT_ALPHA, DEFAULT_BETA, DEFAULT_XI). ridge: c of round students
        (default 0.1·tr(H)/n). rounds: number of rounds. student_steps: GD student for ξ rounds.
      soft, hard: which target variants to run. schedule, ramp: α schedule (ramp default steps/10).
      steps: GD steps; eta: step size (default 1/λ_max); record_every: default max(1, steps/500).
      dtype: "float64" (default) or "float32". tile_size: kernel tiling.
      save_predictions: optional .npz path for the final training predictions of each run.
      kernel_config: recorded in the JSON as `kernel`.
      system: precomputed kernels and eigendecomposition (`_common.kernel_system`); None
        computes them here.

    Returns:
      The JSON-able summary (also out_dir/distill.json), with a `figures` list. Each entry of
      `runs` (in rule order) names the engine it ran on; its `best_dist`/`best_at` are taken
      over the recorded steps, `plain_gd.best_early_stop_dist` over every step (closed form).
    """
    from tqdm.auto import tqdm

    from .. import distill as D
    from ..dynamics import resolve_step_size, u_curve
    from ..plots.distill import plot_distill_curves, plot_distill_summary

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (soft or hard):
        raise ValueError("at least one of soft / hard targets must be selected")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    record_every = max(1, steps // 500) if record_every is None else int(record_every)
    ramp = max(1, steps // 10) if ramp is None else ramp
    t0 = time.perf_counter()
    bar = tqdm(total=4, desc="ntk-air distill", disable=not progress, unit="stage")
    bar.set_postfix_str("kernel and eigendecomposition")
    if system is None:
        system = kernel_system(dataset, kernel_fn, dtype=dtype, tile_size=tile_size)
    H, k_test, eig = system
    y_test = dataset.y_test_clean if k_test is not None else None
    eta = resolve_step_size(eig, eta)
    n = H.shape[0]
    ridge = 0.1 * float(np.trace(np.asarray(H))) / n if ridge is None else float(ridge)
    step_rules, round_rules = build_rules(
        rules,
        alphas=alphas,
        betas=betas,
        xis=xis,
        ridge=ridge,
        student_steps=student_steps,
        soft=soft,
        hard=hard,
        schedule=schedule,
        ramp=float(ramp),
    )
    bar.update()

    bar.set_postfix_str("plain GD (closed form)")
    uc = u_curve(
        eig,
        dataset.y,
        dataset.y_clean,
        np.arange(steps + 1),
        eta=eta,
        k_test_train=k_test,
        y_test_clean=y_test,
    )
    bar.update()

    bar.set_postfix_str(f"{len(step_rules)} step rules")
    # One vmapped call per engine (closed form, eigenbasis scan, dense scan), so that a hard rule
    # does not drag the linear ones onto the O(n²)-per-step engine; results keep the rule order.
    by_engine = {}
    for i, (_, r) in enumerate(step_rules):
        by_engine.setdefault(D._pick_engine("auto", D.stack_rules([r])), []).append(i)
    step_out = {}
    for engine, idx in by_engine.items():
        run = D.self_distill(
            H,
            dataset.y,
            dataset.y_clean,
            D.stack_rules([step_rules[i][1] for i in idx]),
            steps=steps,
            eta=eta,
            eig=eig,
            record_every=record_every,
            k_test=k_test,
            y_test_clean=y_test,
            engine=engine,
        )
        for j, i in enumerate(idx):
            lab, r = step_rules[i]
            step_out[i] = (_run_summary(lab, "steps", r, run, j, engine), run.u_final[j])
    runs = [step_out[i][0] for i in range(len(step_rules))]
    predictions = [np.asarray(step_out[i][1]) for i in range(len(step_rules))]
    bar.update()

    bar.set_postfix_str(f"{len(round_rules)} round rules")
    round_runs = []
    for hard_group in (False, True):
        group = [(lab, r) for lab, r in round_rules if bool(float(r.hard)) == hard_group]
        if not group:
            continue
        run = D.distill_rounds(
            H,
            dataset.y,
            dataset.y_clean,
            D.stack_rules([r for _, r in group]),
            rounds=rounds,
            eta=eta,
            eig=eig,
            k_test=k_test,
            y_test_clean=y_test,
        )
        for i, (lab, r) in enumerate(group):
            round_runs.append(
                _run_summary(lab, "rounds", r, run, i, "scan" if hard_group else "closed-form")
            )
            predictions.append(np.asarray(run.u_final[i]))
    bar.update()
    bar.close()

    noise_norm = float(np.linalg.norm(np.asarray(dataset.y) - np.asarray(dataset.y_clean)))
    best_es = float(uc.best_dist)
    all_runs = runs + round_runs
    figures = [
        plot_distill_curves(
            [(r["label"], r["steps"], r["dist_train"]) for r in runs],
            noise_norm,
            best_es,
            out_dir / "distill_curves.png",
            title=f"{dataset.name}: self-distillation rules (η = {eta:.3g})",
        ),
        plot_distill_summary(
            [r["label"] for r in all_runs],
            [r["final_dist"] for r in all_runs],
            [r["best_dist"] for r in all_runs],
            best_es,
            noise_norm,
            out_dir / "distill_summary.png",
        ),
    ]
    if round_runs:
        figures.append(
            plot_distill_curves(
                [(r["label"], r["steps"], r["dist_train"]) for r in round_runs],
                noise_norm,
                best_es,
                out_dir / "distill_rounds.png",
                title=f"{dataset.name}: round-based self-distillation",
                xlabel="round t + 1",
            )
        )
    files = []
    if save_predictions is not None:
        np.savez(
            save_predictions,
            u=np.stack(predictions),
            labels=np.array([r["label"] for r in all_runs]),
            y=np.asarray(dataset.y),
            y_clean=np.asarray(dataset.y_clean),
        )
        files.append(str(save_predictions))
    best_run = min(all_runs, key=lambda r: r["final_dist"])
    summary = {
        "data": {
            "name": dataset.name,
            **{
                k: v
                for k, v in dataset.info.items()
                if v is None or isinstance(v, bool | int | float | str | np.generic)
            },
        },
        "kernel": kernel_config or {},
        "n": n,
        "dtype": dtype,
        "eta": eta,
        "lambda_max": float(eig.eigenvalues[0]),
        "u0": "zeros",
        "steps": steps,
        "record_every": record_every,
        "rounds": rounds,
        "ridge": ridge,
        "noise_norm": noise_norm,
        "plain_gd": {
            "final_dist": float(uc.final_dist),
            "best_early_stop_dist": best_es,
            "best_early_stop_step": int(uc.best_step),
            "test_best_dist": None if uc.test_best_dist is None else float(uc.test_best_dist),
        },
        "best_rule": {
            "label": best_run["label"],
            "final_dist": best_run["final_dist"],
            "margin": best_run["margin"],
        },
        "runs": all_runs,
        "seconds": time.perf_counter() - t0,
        "files": files,
        "figures": [Path(f).name for f in figures],
    }
    write_json(out_dir / "distill.json", summary)
    return summary


def run(args) -> int:
    dtype = setup_dtype(args)
    dataset = load_dataset(args)
    kernel_fn = build_kernel_fn(args)
    if args.steps < 1:
        raise CliError(f"--steps must be ≥ 1, got {args.steps}")
    if args.rounds < 0:
        raise CliError(f"--rounds must be ≥ 0, got {args.rounds}")
    try:
        summary = distill_report(
            dataset,
            kernel_fn,
            args.out,
            progress=not args.no_progress,
            rules=args.rule,
            alphas=args.alpha,
            betas=args.beta,
            xis=args.xi,
            ridge=args.ridge,
            rounds=args.rounds,
            student_steps=args.student_steps,
            soft=not args.hard,
            hard=not args.soft,
            schedule=args.schedule,
            ramp=args.ramp,
            steps=args.steps,
            eta=args.eta,
            record_every=args.record_every,
            dtype=dtype,
            tile_size=args.tile_size,
            save_predictions=args.save_predictions,
            kernel_config=kernel_config(args),
        )
    except ValueError as err:
        raise CliError(str(err)) from err
    pg = summary["plain_gd"]
    print(
        f"‖e‖ = {summary['noise_norm']:.4g}; plain GD final {pg['final_dist']:.4g}, best early "
        f"stop {pg['best_early_stop_dist']:.4g} (step {pg['best_early_stop_step']})"
    )
    for r in summary["runs"]:
        print(
            f"  {r['label']:<28} final {r['final_dist']:.4g}  best {r['best_dist']:.4g}  "
            f"margin {r['margin']:.3g}  acc {r['accuracy_train']:.3f}"
        )
    print(f"written to {Path(args.out) / 'distill.json'}")
    return 0
