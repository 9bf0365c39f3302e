"""`ntk-air reproduce`: the full study on the built-in default data, as a report folder.

Sections: kernel and spectrum, AIR (label spectra, fitted fractions, U-curve), self-distillation
rules, and the ℓ2 theorem check (kernel limit and real networks). Writes one sub-folder per
section with its JSON and figures, `summary.json`, and an `index.md` linking all of them.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ._common import (
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

__all__ = ["add_parser", "run", "kernel_report", "SECTIONS"]

SECTIONS = ("kernel", "air", "distill", "theorem")


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="run the whole study (kernel, AIR, distillation, theorem) into a report folder",
        description="Runs every study on the built-in default data (or DATA.npz) and writes a "
        "report folder with an index.md linking figures and JSON.",
    )
    p.add_argument("--out", default="ntk_air_report", help="report folder (default ntk_air_report)")
    p.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)} (default: all)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_data_options(p)
    add_kernel_options(p)
    p.set_defaults(func=run)


def kernel_report(dataset, system: KernelSystem, out_dir, *, dtype="float64") -> dict:
    """Kernel of the training inputs, its eigenvalues and a figure; returns the JSON summary."""
    from ..plots.kernels import plot_kernel_and_spectrum

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    K, eig = system.ntk, system.eig
    lam = np.asarray(eig.eigenvalues)
    np.savez(out_dir / "kernel.npz", ntk=np.asarray(K), eigenvalues=lam)
    fig = plot_kernel_and_spectrum(K, lam, out_dir / "kernel_spectrum.png", title=dataset.name)
    summary = {
        "n": int(K.shape[0]),
        "dtype": dtype,
        "lambda_max": float(lam[0]),
        "lambda_min": float(lam[-1]),
        "condition_number": float(lam[0] / lam[-1]) if lam[-1] > 0 else float("inf"),
        "most_negative_eigenvalue": float(eig.most_negative),
        "clamp_tolerance": float(eig.clamp_tol),
        "eigenvalues": lam,
        "files": ["kernel.npz"],
        "figures": [Path(fig).name],
    }
    write_json(out_dir / "kernel.json", summary)
    return summary


def _scalar_info(info: dict) -> dict:
    """The scalar entries of a dataset's info (arrays such as centres stay in the JSON files)."""
    return {k: v for k, v in info.items() if isinstance(v, str | int | float | bool | type(None))}


def _write_index(out: Path, results: dict, dataset, args) -> None:
    lines = [
        "# ntk_air report",
        "",
        f"Data: `{dataset.name}` — n = {dataset.x.shape[0]} training points, "
        f"d = {dataset.x.shape[1]}, n_test = {dataset.x_test.shape[0]}; "
        f"info: {', '.join(f'{k}={v}' for k, v in _scalar_info(dataset.info).items())}.",
        f"Kernel: arch = `{args.arch}`, backend = `{args.backend}`, dtype = `{args.dtype}`.",
        "",
        "Every number below was computed by this run; see each section's JSON for all of them.",
        "",
    ]
    for name, res in results.items():
        lines += [f"## {name}", "", f"- data: [`{name}/{name}.json`]({name}/{name}.json)"]
        for f in res.get("files", []):
            lines.append(f"- file: [`{name}/{f}`]({name}/{f})")
        for fig in res.get("figures", []):
            lines += ["", f"![{fig}]({name}/{fig})"]
        lines.append("")
    (out / "index.md").write_text("\n".join(lines))


def run(args) -> int:
    from tqdm.auto import tqdm

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        from ._common import CliError

        raise CliError(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    dtype = setup_dtype(args)
    progress = not args.no_progress
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(args)
    kernel_fn = build_kernel_fn(args)

    t0 = time.perf_counter()
    needs_system = any(s in sections for s in ("kernel", "air", "distill"))
    # One kernel evaluation and one eigendecomposition serve the kernel, AIR and distill sections.
    system = (
        kernel_system(dataset, kernel_fn, dtype=dtype, tile_size=args.tile_size)
        if needs_system
        else None
    )
    results: dict = {}
    timings: dict = {"kernel_and_eigendecomposition": time.perf_counter() - t0}
    bar = tqdm(sections, desc="ntk-air reproduce", disable=not progress, unit="section")
    for name in bar:
        bar.set_postfix_str(name)
        t0 = time.perf_counter()
        section_dir = out / name
        if name == "kernel":
            res = kernel_report(dataset, system, section_dir, dtype=dtype)
        elif name in ("air", "distill"):
            from .air import air_report
            from .distill import distill_report

            report = air_report if name == "air" else distill_report
            res = report(
                dataset,
                kernel_fn,
                section_dir,
                dtype=dtype,
                tile_size=args.tile_size,
                kernel_config=kernel_config(args),
                system=system,
                progress=progress,
            )
        else:
            from .theorem import theorem_report

            res = theorem_report(section_dir, progress=progress)
        timings[name] = time.perf_counter() - t0
        results[name] = res

    summary = {
        "dataset": {"name": dataset.name, **_scalar_info(dataset.info)},
        "kernel": kernel_config(args),
        "section_seconds": timings,
        "sections": {k: f"{k}/{k}.json" for k in results},
    }
    write_json(out / "summary.json", summary)
    _write_index(out, results, dataset, args)
    took = ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
    print(f"report written to {out}/index.md ({took})")
    return 0
