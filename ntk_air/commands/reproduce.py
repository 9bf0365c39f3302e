"""`ntk-air reproduce`: the whole study as one report folder whose index.md tells the result.

Sections: kernel and spectrum, AIR (label spectra, fitted fractions, U-curve), self-distillation
rules, and the ℓ2 theorem check (kernel limit and real networks). Each section's JSON and figures
go to a sub-folder; index.md opens with a table of the headline numbers.
"""

from __future__ import annotations

from . import _common as common

__all__ = ["add_parser", "run", "SECTIONS", "THEOREM_STEPS"]

SECTIONS = ("kernel", "air", "distill", "theorem")
THEOREM_STEPS = 2_000
"""GD steps of the report's theorem section (the main job stays minutes long)."""


COMMAND = common.CommandText(
    "reproduce",
    help="run the whole study (kernel, AIR, distillation, theorem) into a report folder",
    description="Runs every study on the built-in default data (or DATA.npz; the theorem "
    "section always uses its own clusterable data) and writes a report folder whose index.md "
    "opens with the headline numbers.",
    examples="""
        ntk-air reproduce --out ntk_air_report
        ntk-air reproduce --sections air,distill --dataset digits --n-train 300
    """,
)


def add_parser(subparsers) -> None:
    p = COMMAND.add_to(subparsers)
    p.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    p.add_argument(
        "--theorem-steps",
        type=int,
        default=THEOREM_STEPS,
        help=f"GD steps of the theorem section (default {THEOREM_STEPS})",
    )
    common.add_output_options(p, "ntk_air_report")
    common.add_data_options(p)
    common.add_kernel_options(p)
    p.set_defaults(func=run)


def _context(dataset, args, sections) -> list[str]:
    from ..studies import data_summary

    info = data_summary(dataset)
    lines = [
        f"Data: `{dataset.name}` — n = {info['n']} training points, d = {info['d']}, "
        f"n_test = {info['n_test']}; noise: {info.get('noise')}, rate {info.get('noise_rate')}, "
        f"{info.get('n_corrupted', 0)} labels corrupted.",
        f"Kernel: arch = `{args.arch}`, backend = `{args.backend}`, dtype = `{args.dtype}`.",
    ]
    if "theorem" in sections:
        lines.append(
            "The theorem section runs on its own data: the clusterable model of "
            "docs/science/theorem.md#data-model "
            f"(`clusters`, data seed 1), not on the data above, with {args.theorem_steps} GD "
            "steps per run."
        )
    return lines


def run(args) -> int:
    from .. import report, studies
    from ..networks._theorem import DEFAULT_SEED

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        raise common.CliError(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    if args.theorem_steps < 1:
        raise common.CliError(f"--theorem-steps must be ≥ 1, got {args.theorem_steps}")
    common.setup_dtype(args)
    writer = common.open_report(args.out)
    dataset = common.load_dataset(args)
    kernel_fn = common.build_kernel_fn(args)
    kcfg = common.kernel_config(args)
    title = "ntk_air report"
    context = _context(dataset, args, sections)
    # Until the end of the run the index says it is incomplete (and the manifest is absent).
    writer.text(
        "index.md", report.render_index({}, {}, title=title, context=context, complete=False)
    )
    timer = common.Timer()
    results, headlines = {}, {}
    with common.progress_bar("ntk-air reproduce", not args.no_progress) as bar, common.cli_errors():
        total = len(sections) + 1
        system = None
        if any(s in sections for s in ("kernel", "air", "distill")):
            # One kernel system, planned (dense or top-k within the available memory),
            # serves three sections; the kernel section needs the dense matrix.
            plan = studies.air_plan(dataset)
            if plan.solver == "topk" and "kernel" in sections:
                raise ValueError(
                    f"the kernel section needs K(X, X) in memory, which does not fit "
                    f"({plan.reason}); leave it out with --sections or use --n-train"
                )
            system = studies.kernel_system(dataset, kernel_fn, plan)
        timer.lap("kernel_and_eigendecomposition")
        bar("kernel and eigendecomposition", 1, total)
        for i, name in enumerate(sections):
            if name == "theorem":
                config = studies.TheoremConfig(seed=DEFAULT_SEED, steps=args.theorem_steps)
                study = studies.theorem(config)
            else:  # studies.kernel, studies.air, studies.distill on the one kernel system
                study = getattr(studies, name)(dataset, kernel_fn, system=system)
            extra = {"kernel": kcfg} if name in ("air", "distill") else {}
            res = getattr(report, f"write_{name}")(writer, study, prefix=f"{name}/", **extra)
            headlines[name] = getattr(report, f"{name}_headlines")(res)
            results[name] = res
            timer.lap(name)
            bar(name, i + 2, total)
    summary = {
        "dataset": studies.data_summary(dataset),
        "kernel": kcfg,
        "sections": {k: f"{k}/{k}.json" for k in results},
        "headlines": {
            k: [{"quantity": q, "value": v, "meaning": m} for q, v, m in rows]
            for k, rows in headlines.items()
        },
    }
    writer.json("summary.json", summary)
    writer.json("timings.json", {"seconds": timer.seconds})
    writer.text(
        "index.md",
        report.render_index(results, headlines, title=title, context=context, complete=True),
    )
    writer.finish({"command": "reproduce", "sections": list(results)})
    took = ", ".join(f"{k} {v:.1f}s" for k, v in timer.seconds.items())
    print(f"report written to {args.out}/index.md ({took})")
    return 0
