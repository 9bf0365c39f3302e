"""`ntk-air theorem`: the ℓ2 theorem check (kernel limit and real networks) into theorem.json."""

from __future__ import annotations

from pathlib import Path

from ..networks._theorem import (
    DEFAULT_SEED,
    DEFAULT_STEPS,
    DEFAULT_WIDTHS,
    HARDER_CASE,
    TUNING_SEED,
)
from ._common import (
    CliError,
    Timer,
    add_command,
    add_output_options,
    add_solver_options,
    add_time_options,
    budget_from_args,
    open_report,
    progress_bar,
    whole_number,
)
from ._config import build_config
from ._lists import comma_list

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> None:
    p = add_command(
        subparsers,
        "theorem",
        help="check the ℓ2 theorem: plain GD, best early stop and hard-target self-distillation, "
        "kernel limit and real two-layer networks of several widths",
        description="On the clusterable model with flipped labels, compares plain GD (final), the "
        "best early stop, and R3 self-distillation with hard targets, in the kernel limit ('inf') "
        "and for trained two-layer ReLU networks; also the linearization gap, the kernel-limit "
        "gap and Arora et al.'s residual formula. Writes theorem.json and figures into --out.",
        examples=(
            "ntk-air theorem --out theorem_report",
            "ntk-air theorem --widths 512,2048 --steps 20000 --no-harder",
            "ntk-air theorem --seed 0 --alpha 0.95 --network-dtype float64",
        ),
    )
    p.add_argument(
        "--widths",
        type=comma_list(int, "--widths"),
        action="extend",
        default=None,
        metavar="M[,M…]",
        help=f"network widths m, comma-separated (default {','.join(map(str, DEFAULT_WIDTHS))})",
    )
    p.add_argument(
        "--steps",
        type=whole_number,
        default=DEFAULT_STEPS,
        help=f"full-batch GD steps per run (default {DEFAULT_STEPS}; 2e4 style accepted)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"data seed (default {DEFAULT_SEED}; defaults were tuned on {TUNING_SEED})",
    )
    p.add_argument("--init-seed", type=int, default=0, help="network init seed (default 0)")
    p.add_argument("--alpha", type=float, default=0.9, help="R3's α (default 0.9)")
    p.add_argument("--kappa", type=float, default=1.0, help="init scale κ (default 1)")
    p.add_argument(
        "--record-every", type=int, default=10, help="curve recording period (default 10)"
    )
    p.add_argument(
        "--network-dtype",
        default="float32",
        choices=("float32", "float64"),
        help="dtype of network training (default float32; the initial weights are drawn in "
        "float64 either way; the kernel limit is float64)",
    )
    p.add_argument(
        "--no-harder",
        action="store_true",
        help=f"skip the harder case ({HARDER_CASE}, i.i.d. and symmetric inits)",
    )
    add_output_options(p, "theorem_report")
    add_solver_options(
        p,
        solvers=("dense",),
        why="no top-k path: the study works on the clusterable model's fixed 160 points and "
        "compares each network's NTK with H∞ entrywise (dense by nature; it fits any budget "
        "the networks fit)",
    )
    add_time_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import jax

    from .. import report, studies

    config = build_config(  # every option is checked here, before any work
        studies.TheoremConfig,
        widths=tuple(args.widths or DEFAULT_WIDTHS),
        steps=args.steps,
        seed=args.seed,
        alpha=args.alpha,
        kappa=args.kappa,
        init_seed=args.init_seed,
        record_every=args.record_every,
        harder=not args.no_harder,
        network_dtype=args.network_dtype,
    )
    budget = budget_from_args(args)
    try:  # memory and time decided (or refused) before anything runs
        choice, loops = studies.theorem_plan(config, budget)
    except ValueError as err:
        raise CliError(str(err)) from err
    jax.config.update("jax_enable_x64", True)  # the kernel limit is computed in float64
    writer = open_report(args.out)
    print(choice.line(), flush=True)
    print(loops.line(), flush=True)
    timer = Timer()
    with progress_bar("ntk-air theorem", not args.no_progress) as bar:
        try:
            study = studies.theorem(config, progress=bar, budget=budget)
        except ValueError as err:
            raise CliError(str(err)) from err
    timer.lap("study")
    summary = report.write_theorem(writer, study)
    timer.lap("report")
    writer.json("timings.json", {"seconds": timer.seconds})
    writer.finish({"command": "theorem"})
    keys = ["inf"] + [str(w) for w in config.widths]
    print(
        f"‖e‖ = {summary['noise_norm']:.4g}; ‖u − ŷ‖₂ per width (plain final / best early stop / "
        "self-distillation final, margin):"
    )
    for k in keys:
        r = summary[k]
        print(
            f"  {k:>6}: {r['plain_final_dist']:.4g} / {r['best_early_stop_dist']:.4g} / "
            f"{r['self_distill_final_dist']:.4g}, margin {r['self_distill_margin']:.3g}"
        )
    print(f"written to {Path(args.out) / 'theorem.json'}")
    return 0
