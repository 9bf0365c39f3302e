"""`ntk-air distill [DATA.npz]`: the self-distillation target rules in the kernel limit."""

from __future__ import annotations

from pathlib import Path

from .. import studies
from ..distillation._targets import RULE_NAMES
from . import _common as common
from ._config import add_config_options, config_from_args, option_map, option_message

__all__ = ["add_parser", "run", "RULE_NAMES"]

COMMAND = common.CommandText(
    "distill",
    help="self-distillation target rules (R1, R1-lag, R2, R3, bootstrapping, ξ-weighted, "
    "ridge rounds) in the kernel limit: ℓ2 distance to the clean labels, margin, accuracy",
    description="Simulates linearized training with each target rule from one NTK "
    "eigendecomposition (u(0) = 0, η = 1/λ_max by default) and writes distill.json and "
    "figures into --out.",
    examples="""
        ntk-air distill --out distill_out
        ntk-air distill --rule r3 --hard --alpha 0.8,0.9,0.95 --steps 5000
        ntk-air distill --dataset digits --noise pair --noise-rate 0.4 --n-train 300
        ntk-air distill big.npz --solver topk --rank 100 --soft
    """,
)


def add_parser(subparsers) -> None:
    p = COMMAND.add_to(subparsers)
    add_config_options(p, studies.DistillConfig, skip=("krylov_steps",))
    targets = p.add_mutually_exclusive_group()
    targets.add_argument("--soft", action="store_true", help="soft targets only (p = u)")
    targets.add_argument(
        "--hard",
        action="store_true",
        help="hard targets only (sign / one-hot argmax); default: both",
    )
    p.add_argument(
        "--save-predictions",
        default=None,
        metavar="FILE.npz",
        help="write the final training predictions u of each run (and labels) to FILE.npz",
    )
    common.add_output_options(p, "distill_out")
    common.add_data_options(p)
    common.add_kernel_options(p)
    common.add_solver_options(p)
    add_config_options(p, studies.DistillConfig, only=("krylov_steps",))
    common.add_time_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import report
    from ..report import OutputError, check_output_file

    options = option_map(studies.DistillConfig, alpha="--alpha", beta="--beta", xi="--xi")
    config = config_from_args(
        studies.DistillConfig, args, aliases=options, soft=not args.hard, hard=not args.soft
    )
    common.setup_dtype(args)
    budget = common.budget_from_args(args)

    def refusal(err) -> str:
        return option_message(str(err), options, options)

    def plan(data):  # memory and time decided (or refused) before anything large is allocated
        with common.cli_errors(refusal):
            return studies.distill_plan(data, config, budget, dtype=args.dtype)

    dataset = common.load_dataset(args, plan=plan)  # generated data: planned before it is generated
    kernel_fn = common.build_kernel_fn(args)
    writer = common.open_report(args.out)
    if args.save_predictions is not None:
        with common.cli_errors(lambda err: f"--save-predictions: {err}", OutputError):
            check_output_file(args.save_predictions)
        if writer.reserved(args.save_predictions):
            raise common.CliError(
                f"--save-predictions {args.save_predictions} would overwrite a file of the "
                "report in --out; give another name"
            )
        if common.same_file(args.save_predictions, getattr(args, "data", None)):
            raise common.CliError(f"--save-predictions {args.save_predictions} is the data file")
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
    with common.studying(args, "distill", refusal) as (bar, timer):
        study = studies.distill(dataset, kernel_fn, config, progress=bar, budget=budget)
    summary = report.write_distill(
        writer,
        study,
        kernel=common.kernel_config(args),
        save_predictions=args.save_predictions,
        dataset=dataset,
    )
    common.finish_report(writer, timer, "distill")
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
