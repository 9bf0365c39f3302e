"""`ntk-air air [DATA.npz]`: the AIR picture — label spectra, fitted fractions and the U-curve."""

from __future__ import annotations

from pathlib import Path

from .. import studies
from . import _common as common
from ._config import add_config_options, config_from_args

__all__ = ["add_parser", "run"]

COMMAND = common.CommandText(
    "air",
    help="AIR: label energy per NTK mode, fitted fractions and the early-stopping U-curve",
    description="Decomposes the NTK of the training inputs once, writes air.json (eigenvalues, "
    "energy of clean labels / noise / noisy labels per mode, ‖u(k) − ŷ‖ along closed-form "
    "linearized GD from u(0) = 0, the best early stop) and PNG figures into --out.",
    examples="""
        ntk-air air --out air_out
        ntk-air air --dataset digits --noise pair --noise-rate 0.4 --n-train 300
        ntk-air air my_data.npz --normalize --arch fc --depth 3
        ntk-air air big.npz --solver topk --rank 100 --memory-budget 8
    """,
)


def add_parser(subparsers) -> None:
    p = COMMAND.add_to(subparsers)
    common.add_output_options(p, "air_out")
    add_config_options(p, studies.AIRConfig)
    common.add_data_options(p)
    common.add_kernel_options(p)
    common.add_solver_options(p)
    common.add_time_options(p, force=False)
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import report

    config = config_from_args(studies.AIRConfig, args)
    common.setup_dtype(args)
    budget = common.budget_from_args(args)._replace(force=False)  # air's --force is about η

    def plan(data):  # memory and time, decided (or refused) before anything large is allocated
        with common.cli_errors():
            return studies.air_plan(data, budget, dtype=args.dtype, config=config)

    dataset = common.load_dataset(args, plan=plan)  # generated data: planned before it is generated
    kernel_fn = common.build_kernel_fn(args)
    writer = common.open_report(args.out)
    choice = plan(dataset)
    note = ""
    if args.rank is not None and choice.solver == "dense":
        note = f" (--rank {args.rank} unused: the dense path computes all {choice.rank} modes)"
    print(choice.line() + note, flush=True)
    with common.studying(args, "air") as (bar, timer):
        study = studies.air(dataset, kernel_fn, config, progress=bar, budget=choice)
    s = report.write_air(writer, study, kernel=common.kernel_config(args))
    common.finish_report(writer, timer, "air")
    mh, fit = s["modes_holding"], s["steps_to_fit"]["0.9"]

    def step(k):
        if k is None:
            return "never (within the steps shown)"
        return f"{k:.0f}" if k < 1e15 else f"{k:.3g}"

    noise_modes = "no noise" if mh["noise"]["0.9"] is None else f"{mh['noise']['0.9']} (noise)"
    clean_modes = mh["clean"]["0.9"]
    lam_label = "λ"
    if "tail_energy" in s:  # top-k: None means "not within the k modes computed"
        k, tail = s["eigenvalues_computed"], s["tail_energy"]
        lam_label = f"top-{k} λ"

        def beyond(kind):
            return f">{k} (top {k}: {100 * (1 - tail[kind]):.3g} %)"

        if clean_modes is None:
            clean_modes = beyond("clean")
        if mh["noise"]["0.9"] is None and s["norm"]["noise"] > 0:
            noise_modes = beyond("noise") + " (noise)"
    print(
        f"{dataset.name}: n = {s['dataset']['n']}, "
        f"{lam_label} in [{s['lambda_min']:.3g}, {s['lambda_max']:.3g}], η = {s['eta']:.3g}\n"
        f"90 % of the energy in the top {clean_modes} modes (clean labels) vs "
        f"{noise_modes}\n"
        f"90 % fitted by step {step(fit['clean'])} (clean) vs "
        f"{step(fit['noise']) + ' (noise)' if s['norm']['noise'] > 0 else 'no noise'}\n"
        f"‖u(k) − ŷ‖: {s['start_dist']:.4g} at k = 0, best {s['best_dist']:.4g} at k = "
        f"{step(s['best_step'])}, {s['final_dist']:.4g} at k = {step(s['steps'][-1])}\n"
        f"wrote {Path(args.out) / 'air.json'} and {', '.join(s['figures'])}"
    )
    return 0
