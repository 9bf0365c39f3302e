"""`ntk-air distill [DATA.npz]`: the self-distillation target rules in the kernel limit."""

from __future__ import annotations

from pathlib import Path

from ..distillation._rounds import DEFAULT_XI
from ..distillation._targets import DEFAULT_BETA, RULE_NAMES
from ..studies._distill import DEFAULT_STEPS
from ..studies._system import DEFAULT_KRYLOV_STEPS
from ._common import (
    CliError,
    Timer,
    add_command,
    add_data_options,
    add_kernel_options,
    add_output_options,
    add_solver_options,
    add_time_options,
    budget_from_args,
    build_kernel_fn,
    kernel_config,
    load_dataset,
    open_report,
    progress_bar,
    setup_dtype,
    whole_number,
)
from ._config import build_config, option_message
from ._lists import comma_list

__all__ = ["add_parser", "run", "RULE_NAMES"]


def add_parser(subparsers) -> None:
    p = add_command(
        subparsers,
        "distill",
        help="self-distillation target rules (R1, R1-lag, R2, R3, bootstrapping, ξ-weighted, "
        "ridge rounds) in the kernel limit: ℓ2 distance to the clean labels, margin, accuracy",
        description="Simulates linearized training with each target rule from one NTK "
        "eigendecomposition (u(0) = 0, η = 1/λ_max by default) and writes distill.json and "
        "figures into --out.",
        examples=(
            "ntk-air distill --out distill_out",
            "ntk-air distill --rule r3 --hard --alpha 0.8,0.9,0.95 --steps 5000",
            "ntk-air distill --dataset digits --noise pair --noise-rate 0.4 --n-train 300",
            "ntk-air distill big.npz --solver topk --rank 100 --soft",
        ),
    )
    p.add_argument(
        "--rule",
        type=comma_list(str, "--rule", RULE_NAMES),
        action="extend",
        default=None,
        metavar="RULE[,RULE…]",
        help=f"rules to run, comma-separated ({', '.join(RULE_NAMES)}; default: all); 'plain' "
        "is plain GD on the given labels",
    )
    p.add_argument(
        "--alpha",
        type=comma_list(float, "--alpha"),
        action="extend",
        default=None,
        metavar="ALPHA[,ALPHA…]",
        help="α values for r1, r1-lag, r3 (and the scale of r2's adaptive α); default "
        "r1/r1-lag 0.5, r3 0.9, r2 1",
    )
    p.add_argument(
        "--beta",
        type=comma_list(float, "--beta"),
        action="extend",
        default=None,
        metavar="BETA[,BETA…]",
        help=f"bootstrapping β (weight on the given labels; default {DEFAULT_BETA[0]})",
    )
    p.add_argument(
        "--xi",
        type=comma_list(float, "--xi"),
        action="extend",
        default=None,
        metavar="XI[,XI…]",
        help=f"ξ ≥ 0 of ξ-weighted rounds (default {DEFAULT_XI[0]}); soft rules may exceed 1 "
        "while ξ·λ_max/(λ_max + c) < 1, where the rounds still contract",
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
        "--steps",
        type=whole_number,
        default=DEFAULT_STEPS,
        help=f"GD steps (default {DEFAULT_STEPS}; 2e4 style accepted)",
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
    add_output_options(p, "distill_out")
    add_data_options(p)
    add_kernel_options(p)
    add_solver_options(p)
    p.add_argument(
        "--krylov-steps",
        type=int,
        default=DEFAULT_KRYLOV_STEPS,
        metavar="S",
        help="top-k path: passes over K (width 2C) that build the Krylov space of y and ŷ on "
        f"the deflated operator behind the reduction (default {DEFAULT_KRYLOV_STEPS}; 0 or 1: "
        "the labels alone, one pass, least accurate)",
    )
    add_time_options(p)
    p.set_defaults(func=run)


# Options whose config field is named differently (one value per rule family).
DISTILL_OPTIONS = {
    "rules": "--rule",
    "alphas": "--alpha",
    "betas": "--beta",
    "xis": "--xi",
    "alpha": "--alpha",  # the checks of one value of a list
    "beta": "--beta",
    "xi": "--xi",
}


def run(args) -> int:
    from .. import report, studies
    from ..report import OutputError, check_output_file

    config = build_config(
        studies.DistillConfig,
        DISTILL_OPTIONS,
        rules=None if args.rule is None else tuple(args.rule),
        alphas=None if args.alpha is None else tuple(args.alpha),
        betas=None if args.beta is None else tuple(args.beta),
        xis=None if args.xi is None else tuple(args.xi),
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
        krylov_steps=args.krylov_steps,
    )
    setup_dtype(args)
    budget = budget_from_args(args)

    def plan(data):  # memory and time decided (or refused) before anything large is allocated
        try:
            return studies.distill_plan(data, config, budget, dtype=args.dtype)
        except ValueError as err:
            raise CliError(option_message(str(err), DISTILL_OPTIONS)) from err

    dataset = load_dataset(args, plan=plan)  # generated data: planned before it is generated
    kernel_fn = build_kernel_fn(args)
    writer = open_report(args.out)
    if args.save_predictions is not None:
        try:
            check_output_file(args.save_predictions)
        except OutputError as err:
            raise CliError(f"--save-predictions: {err}") from err
        if writer.reserved(args.save_predictions):
            raise CliError(
                f"--save-predictions {args.save_predictions} would overwrite a file of the "
                "report in --out; give another name"
            )
    choice, loops = plan(dataset)
    print(choice.line(), flush=True)
    if choice.solver == "topk":
        print(
            "top-k path: soft rules with a fixed α schedule and soft rounds run on the "
            "Rayleigh–Ritz reduction (top-k modes exact, tail Galerkin, with an error "
            "estimate); hard and adaptive rules run exactly with one pass over K per step "
            "when that fits the time limit, else they are skipped",
            flush=True,
        )
    print(loops.line(), flush=True)
    timer = Timer()
    with progress_bar("ntk-air distill", not args.no_progress) as bar:
        try:
            study = studies.distill(dataset, kernel_fn, config, progress=bar, budget=budget)
        except ValueError as err:
            raise CliError(option_message(str(err), DISTILL_OPTIONS)) from err
    timer.lap("study")
    summary = report.write_distill(
        writer,
        study,
        kernel=kernel_config(args),
        save_predictions=args.save_predictions,
        dataset=dataset,
    )
    timer.lap("report")
    writer.json("timings.json", {"seconds": timer.seconds})
    writer.finish({"command": "distill"})
    pg = summary["plain_gd"]
    print(
        f"‖e‖ = {summary['noise_norm']:.4g}; plain GD final {pg['final_dist']:.4g}, best early "
        f"stop {pg['best_early_stop_dist']:.4g} (step {pg['best_early_stop_step']})"
    )
    regression = summary.get("task") == "regression"
    for r in summary["runs"]:
        est = r.get("error_estimate")
        metrics = (
            f"mse {r['final_mse']:.4g}  test mse {r['final_test_mse']:.4g}"
            if regression
            else f"margin {r['margin']:.3g}  acc {r['accuracy_train']:.3f}"
        )
        print(
            f"  {r['label']:<28} final {r['final_dist']:.4g}  best {r['best_dist']:.4g}  "
            + metrics
            + ("" if est is None else f"  (± ~{est:.2g}, top-k estimate)")
        )
    skipped_all = summary.get("skipped_rules", []) + summary.get("topk", {}).get("skipped", [])
    for skipped in skipped_all:
        print(f"  {skipped['label']:<28} skipped: {skipped['reason']}")
    print(f"written to {Path(args.out) / 'distill.json'}")
    return 0
