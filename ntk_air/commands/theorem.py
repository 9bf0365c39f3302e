"""`ntk-air theorem`: the ℓ2 theorem check (kernel limit and real networks) into theorem.json."""

from __future__ import annotations

from pathlib import Path

from .. import studies
from . import _common as common
from ._config import add_config_options, config_from_args

__all__ = ["add_parser", "run"]

COMMAND = common.CommandText(
    "theorem",
    help="check the ℓ2 theorem: plain GD, best early stop and hard-target self-distillation, "
    "kernel limit and real two-layer networks of several widths",
    description="On the clusterable model with flipped labels, compares plain GD (final), the "
    "best early stop, and R3 self-distillation with hard targets, in the kernel limit ('inf') "
    "and for trained two-layer ReLU networks; also the linearization gap, the kernel-limit "
    "gap and Arora et al.'s residual formula. Writes theorem.json and figures into --out.",
    examples="""
        ntk-air theorem --out theorem_report
        ntk-air theorem --widths 512,2048 --steps 20000 --no-harder
        ntk-air theorem --seed 0 --alpha 0.95 --network-dtype float64
    """,
)


def add_parser(subparsers) -> None:
    p = COMMAND.add_to(subparsers)
    add_config_options(p, studies.TheoremConfig)
    common.add_output_options(p, "theorem_report")
    common.add_solver_options(
        p,
        solvers=("dense",),
        why="no top-k path: the study compares each network's NTK with H∞ entrywise",
    )
    common.add_time_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import jax

    from .. import report

    config = config_from_args(studies.TheoremConfig, args)  # checked before any work
    budget = common.budget_from_args(args)
    with common.cli_errors():  # memory and time decided (or refused) before anything runs
        choice, loops = studies.theorem_plan(config, budget)
    jax.config.update("jax_enable_x64", True)  # the kernel limit is computed in float64
    writer = common.open_report(args.out)
    print(choice.line(), flush=True)
    print(loops.line(), flush=True)
    with common.studying(args, "theorem") as (bar, timer):
        study = studies.theorem(config, progress=bar, budget=budget)
    summary = report.write_theorem(writer, study)
    common.finish_report(writer, timer, "theorem")
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
