"""MkDocs hooks of the ntk_air site (mkdocs.yml `hooks:`).

* The home page opens with the README's opening (everything before its "## Quick start"), its
  links rewritten from the repository root to the site.
* Each notebook `notebooks/NN_name.py` (jupytext percent format, the source of truth) becomes the
  page `notebooks/NN_name.md`: markdown cells as they are, code cells as Python blocks. Nothing
  is executed at build time: the test suite executes the notebooks (tests/test_notebooks.py),
  and the build stays fast and offline.
* The command-line page lists `ntk-air COMMAND --help` of every command.
* Tables of measurements are rendered at build time from `benchmarks/results/*.json`, never
  copied by hand: a page asks for one with `<!-- benchmark: NAME -->` (NAME a key of
  `BENCHMARKS`), and `<!-- benchmark files -->` lists every results file with its page section.
* `<!-- nt adaptations -->` becomes the table of `ntk_air.nt_backend.compat.adaptations_markdown`,
  `<!-- nt upstream -->` the summary of `tools/nt_upstream/results.json`.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
RESULTS = ROOT / "benchmarks" / "results"
README_END = "## Quick start"


def readme_opening() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = text.split(f"\n{README_END}\n", 1)[0]
    head = head.split("\n", 1)[1] if head.startswith("# ") else head  # the page has its title
    return re.sub(r"\]\(docs/", "](", head).strip() + "\n"


def notebook_markdown(path: Path) -> str:
    """A jupytext percent notebook as a markdown page (no outputs)."""
    import jupytext

    nb = jupytext.read(path)
    parts = []
    for cell in nb.cells:
        source = cell.source.strip("\n")
        if not source:
            continue
        if cell.cell_type == "markdown":
            parts.append(source)
        else:
            parts.append(f"```python\n{source}\n```")
    note = (
        f'!!! note "Run it"\n'
        f"    This page is the source of `notebooks/{path.stem}.ipynb`, without outputs. Open the\n"
        f"    notebook in Jupyter to run it (`NTK_AIR_NOTEBOOK_SIZE=small` runs in under two\n"
        f"    minutes on a laptop CPU; see `notebooks/README.md`)."
    )
    title, rest = parts[0], parts[1:]  # the first cell is the markdown title
    return "\n\n".join([title, note, *rest]) + "\n"


def cli_help() -> str:
    from ntk_air.cli import COMMANDS, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    blocks = []
    for name in COMMANDS:
        out = io.StringIO()
        command = name.replace("_", "-")  # module noisy_labels registers noisy-labels
        with contextlib.redirect_stdout(out):
            sub.choices[command].print_help()
        blocks.append(f"### `ntk-air {command}`\n\n```text\n{out.getvalue().rstrip()}\n```")
    return "\n\n".join(blocks) + "\n"


# ---- measurements: benchmarks/results/*.json as tables ---------------------------------------


def _load(name: str):
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _get(d, *keys, default=None):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def _num(x, digits: int = 3) -> str:
    """A number to `digits` significant digits ('—' when absent)."""
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}".replace(",", " ")
    if x == 0:
        return "0"
    if abs(x) >= 1e6 or abs(x) < 1e-3:
        return f"{x:.{max(digits - 1, 0)}e}"
    if abs(x) >= 10**digits:
        return f"{x:,.0f}".replace(",", " ")
    return f"{x:.{digits}g}"


def _s(x) -> str:
    return "—" if x is None else f"{_num(x)} s"


def _gb(x) -> str:
    return "—" if x is None else f"{x / 1e9:.2f} GB"


def _table(head: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _source(*names: str) -> str:
    files = ", ".join(f"`benchmarks/results/{n}`" for n in names)
    return f"\n\n*Rendered from {files} at build time.*\n"


def bench_vs_neural_tangents() -> str:
    d = _load("vs_neural_tangents.json")
    rows = [
        [
            r.get("what", r.get("name")),
            r.get("dtype"),
            _s(_get(r, "ntk_air", "median_s")),
            _s(_get(r, "neural_tangents", "median_s")),
            _num(r.get("ratio_nt_over_ntk_air")),
            _num(r.get("rel_fro_ntk_air_vs_nt")),
        ]
        for r in d.get("results", [])
    ]
    m = d.get("machine", {})
    head = ["what", "dtype", "ntk_air", "neural-tangents", "NT / ntk_air", "rel. difference"]
    return (
        _table(head, rows) + f"\n\nMachine: {m.get('cpu_count', '?')} CPU cores, load "
        f"{_num(m.get('loadavg_1min_before'))} before, {_num(m.get('loadavg_1min_after'))} after."
        + _source("vs_neural_tangents.json")
    )


def _device(d) -> str:
    device = d.get("device") or ("cpu" if "gpu" not in str(d.get("platform", "")) else "gpu")
    return f"{device} ({d.get('cpu_count', '?')} CPU cores)"


def bench_dynamics() -> str:
    rows = []
    for name in ("dynamics.json", "gpu_h200/dynamics_gpu.json"):
        if not (RESULTS / name).is_file():
            continue
        d = _load(name)
        rows.append(
            [
                _device(d),
                d.get("n"),
                d.get("n_test"),
                d.get("times"),
                d.get("dtype"),
                _s(d.get("eigh_seconds_median")),
                _s(d.get("trajectories_seconds_median")),
                _num(d.get("ratio_trajectories_over_eigh")),
            ]
        )
    head = ["device", "n", "n_test", "time points", "dtype", "eigh", "all trajectories", "ratio"]
    return _table(head, rows) + _source("dynamics.json", "gpu_h200/dynamics_gpu.json")


def bench_distill() -> str:
    rows = []
    for name in ("distill.json", "gpu_h200/distill_gpu.json"):
        if not (RESULTS / name).is_file():
            continue
        d = _load(name)
        rows.append(
            [
                _device(d),
                d.get("n"),
                f"{d.get('settings')} × {_num(d.get('steps'))}",
                _s(d.get("eigh_seconds")),
                _s(d.get("grid_closed_form_seconds")),
                _num(d.get("grid_over_eigh")),
                f"{_num(d.get('speedup_over_naive_stepping'))}×",
                f"{d.get('round_settings')} × {d.get('rounds')}: "
                f"{_s(d.get('rounds_closed_form_seconds'))}, "
                f"{_num(d.get('speedup_over_rebuilding_per_round'))}×",
                _num(d.get("closed_form_vs_stepped_max_abs_diff")),
            ]
        )
    head = [
        "device",
        "n",
        "rule settings × steps",
        "eigh",
        "all settings",
        "ratio",
        "vs stepping",
        "round settings × rounds, vs a new predictor per round",
        "largest difference closed form vs stepped",
    ]
    return _table(head, rows) + _source("distill.json", "gpu_h200/distill_gpu.json")


def bench_kernels_gpu() -> str:
    d = _load("gpu_h200/kernels_gpu.json")
    rows = [
        [r.get("kernel"), r.get("n"), r.get("d"), r.get("dtype"), _s(r.get("median_s"))]
        for r in d.get("results", [])
    ]
    return (
        _table(["kernel", "n", "d", "dtype", "median"], rows)
        + f"\n\nDevice: {d.get('device', '?')}, jax {d.get('jax', '?')}."
        + _source("gpu_h200/kernels_gpu.json")
    )


def bench_empirical() -> str:
    d = _load("empirical.json")
    rows = [
        [
            r.get("n"),
            r.get("width"),
            r.get("depth"),
            r.get("implementation"),
            _s(r.get("median_s")),
            _num(r.get("ratio_vs_jacobian")),
            _num(r.get("rel_err_vs_first")),
        ]
        for r in d.get("results", [])
    ]
    head = ["n", "width", "depth", "implementation", "median", "vs jacobian", "rel. error"]
    return _table(head, rows) + _source("empirical.json")


def _entk_rows(d) -> list[list]:
    rows = []
    for r in d.get("rows", []):
        ours = _get(r, "ntk_air", default={}) or {}
        nt = _get(r, "neural_tangents", default={}) or {}
        ours_txt = ", ".join(
            f"{k} {_s(v.get('median_s'))}" if v.get("status") == "ok" else f"{k} {v.get('status')}"
            for k, v in ours.items()
        )
        nt_txt = ", ".join(
            f"{k}: {_s(v.get('median_s'))}"
            if v.get("status") == "ok"
            else f"{k}: {v.get('status')}"
            for k, v in nt.items()
        )
        rows.append(
            [
                r.get("model"),
                r.get("n"),
                r.get("dtype"),
                ours_txt,
                nt_txt,
                _num(r.get("ratio_nt_best_over_auto")),
                _num(r.get("max_rel_diff")),
            ]
        )
    return rows


def bench_entk() -> str:
    parts = []
    head = [
        "model",
        "n",
        "dtype",
        "ntk_air",
        "neural-tangents (impl.)",
        "NT best / auto",
        "max rel. diff.",
    ]
    for name in ("entk.json", "entk_other_implementations.json"):
        d = _load(name)
        targets = d.get("targets", {})
        met = ", ".join(f"{k}: {_num(v.get('met'))}" for k, v in targets.items())
        m = d.get("machine", {})
        parts.append(
            f"**`{name}`** — {d.get('note', '')}\n\n"
            + _table(head, _entk_rows(d))
            + f"\n\nTargets met: {met}. Machine: {m.get('cpu_count', '?')} CPU cores, load "
            f"{_num(m.get('loadavg_1min_before'))} before, {_num(m.get('loadavg_1min_after'))} "
            f"after; {_num(d.get('wall_minutes'))} min in all."
        )
    return "\n\n".join(parts) + _source("entk.json", "entk_other_implementations.json")


def bench_scale() -> str:
    d = _load("scale.json")
    rows = []
    sizes = sorted(d.get("sizes", {}).values(), key=lambda s: s.get("n", 0))
    for s in sizes:
        dense = s.get("dense") or {}
        rows.append(
            [
                _num(s.get("n")),
                s.get("k"),
                _s(_get(s, "topk", "seconds")),
                _num(_get(s, "topk", "max_relative_residual")),
                _s(s.get("total_seconds")),
                _gb(s.get("peak_rss_bytes")),
                _s(dense.get("seconds")) if dense.get("status") == "done" else "not run",
                _num(dense.get("speedup_topk_vs_dense")),
                _num(dense.get("max_relative_eigenvalue_error")),
            ]
        )
    head = [
        "n",
        "k",
        "top-k eigenpairs",
        "max rel. residual",
        "top-k + AIR + trajectory",
        "peak",
        "dense",
        "speedup",
        "eigenvalue error",
    ]
    out = "**AIR on the top-k path** (H∞, d = 20, float64)\n\n" + _table(head, rows)
    drows = []
    for _, s in sorted(d.get("distill", {}).items(), key=lambda kv: int(kv[0])):
        topk, dense = s.get("topk", {}), s.get("dense") or {}
        for label, run in (topk.get("runs") or {}).items():
            ref = _get(dense, "runs", label)
            err = abs(run["final_dist"] - ref["final_dist"]) if ref else None
            drows.append(
                [
                    _num(s.get("n")),
                    label,
                    _num(run.get("final_dist")),
                    _num(err),
                    _num(run.get("error_estimate")),
                ]
            )
        drows.append(
            [
                _num(s.get("n")),
                "*whole study*",
                f"top-k {_s(topk.get('seconds'))}, peak {_gb(topk.get('peak_rss_bytes'))}",
                f"dense {_s(dense.get('seconds'))}, peak {_gb(dense.get('peak_rss_bytes'))}"
                if dense
                else "dense not run",
                f"speedup {_num(dense.get('speedup_topk_vs_dense'))}" if dense else "",
            ]
        )
    if drows:
        head = ["n", "rule", "final ‖u − ŷ‖ (top-k)", "difference from dense", "error estimate"]
        out += "\n\n**`distill` on the top-k path** (2000 steps)\n\n" + _table(head, drows)
    md = d.get("multi_device")
    if md:
        out += (
            f"\n\n**Block products on {md.get('devices')} forced host devices** (n = "
            f"{_num(md.get('n'))}): {_num(_get(md, 'ratio_many_over_one', 'symmetric'))}× the "
            f"time of one device, results equal to "
            f"{_num(_get(md, 'max_relative_difference', 'symmetric'))}."
        )
    return out + _source("scale.json")


def _ci(x, sign: str = "") -> str:
    if not isinstance(x, dict):
        return "—"
    return f"{x['mean']:{sign}.3f} [{x['lo']:{sign}.3f}, {x['hi']:{sign}.3f}]"


def bench_noisy_labels() -> str:
    d = _load("noisy_labels.json")
    rows = []
    for h in d.get("headlines", []):
        noise = "clean" if h.get("rate") == 0 else f"{h.get('noise')} {round(100 * h['rate'])} %"
        diff = _get(h, "best_sd_vs_early-stop-clean", default={})
        rows.append(
            [
                h.get("dataset"),
                noise,
                _ci(h.get("plain_last")),
                _ci(h.get("early-stop-clean")),
                f"{h.get('best_sd_method')} {_ci(h.get('best_sd_last'))}",
                f"{_ci(diff.get('difference'), '+')} {diff.get('verdict', '')}",
            ]
        )
    head = ["data", "noise", "plain, last", "early stop (clean val.)", "best SD, last", "SD − ES"]
    lr = ", ".join(f"{k} {v:g}" for k, v in d.get("lr", {}).items())

    def load(when):
        return (d.get(f"load_average_{when}") or [None])[0]

    return (
        f"{d.get('settings')} settings × {len(d.get('methods', []))} methods × "
        f"{d.get('seeds')} seeds, {d.get('epochs')} epochs (warm-up {d.get('warmup_epochs')}), "
        f"{d.get('network')}, lr {lr}: **{_s(d.get('wall_seconds'))}** wall on "
        f"{d.get('cpu_count')} CPU cores (1-min load {_num(load('before'))} before, "
        f"{_num(load('after'))} after); target "
        f"{_s(d.get('target_seconds'))}. Intervals: {d.get('interval', '')}. Best SD = "
        "the self-distillation method with the highest mean last-epoch accuracy.\n\n"
        + _table(head, rows)
        + _source("noisy_labels.json")
    )


def bench_conv() -> str:
    d = _load("nt_conv.json")
    rows = []
    for key in sorted(d, key=lambda k: (d[k].get("arch", ""), d[k].get("n", 0), k)):
        v = d[key]
        speedup = v.get("speedup")
        rows.append(
            [
                f"`{v.get('arch')}`",
                _num(v.get("n")),
                v.get("dtype"),
                _s(_get(v, "native", "median_s")),
                f"> {_s(_get(v, 'neural_tangents', 'seconds'))} (stopped)"
                if _get(v, "neural_tangents", "status") == "timeout"
                else _s(_get(v, "neural_tangents", "median_s")),
                f"≥ {_num(v['speedup_at_least'])}×"
                if speedup is None and "speedup_at_least" in v
                else ("—" if speedup is None else f"{_num(speedup)}×"),
                _num(v.get("agreement_off_diagonal")),
                _num(v.get("agreement")),
            ]
        )
    head = ["network", "n", "dtype", "ntk_air", "neural-tangents", "speedup",
            "agreement (x ≠ x')", "agreement (all)"]  # fmt: skip
    out = _table(head, rows)
    scale = _load("conv_scale.json")
    rows = [
        [
            f"`{key}`",
            _num(v.get("n")),
            _s(v.get("seconds")),
            "yes" if v.get("compile_included") else "no",
            _num(v.get("peak_rss_mb")) + " MB" if v.get("peak_rss_mb") else "—",
            _s(v.get("extrapolated_seconds")) if v.get("n") != v.get("target_n") else "measured",
        ]
        for key, v in sorted(scale.items())
    ]
    head = ["case", "n", "time", "compilation included", "peak RSS", "at the target size"]
    return (
        out
        + "\n\n**At scale** (`benchmarks/conv_scale.py`)\n\n"
        + _table(head, rows)
        + _source("nt_conv.json", "conv_scale.json")
    )


def bench_nt_crash() -> str:
    d = _load("nt_crash.json")
    rows = [
        [f"`{k}`", v.get("runs"), v.get("crashes"), _s(v.get("median_wall_s"))]
        for k, v in d.items()
        if isinstance(v, dict)
    ]
    return _table(["case", "runs", "crashes", "median wall"], rows) + _source("nt_crash.json")


def bench_hostile_inputs() -> str:
    d = _load("hostile_inputs.json")
    by_group: dict[str, dict[str, int]] = {}
    for r in d.get("results", []):
        group = r["name"].split("_", 1)[0]
        group = (
            group
            if group in {"air", "api", "distill", "theorem", "kernel", "reproduce"}
            else "other"
        )
        by_group.setdefault(group, {}).setdefault(r["outcome"], 0)
        by_group[group][r["outcome"]] += 1
    rows = [
        [
            g if g != "api" else "Python API",
            sum(c.values()),
            c.get("refusal", 0),
            c.get("result", 0),
        ]
        for g, c in sorted(by_group.items())
    ]
    bad = d.get("bad", [])
    return (
        f"**{d.get('good')} of {d.get('cases')}** cases handled as expected "
        f"({', '.join(f'{v} {k}s' for k, v in d.get('by_outcome', {}).items())}); "
        f"{len(bad)} mishandled{': ' + ', '.join(map(str, bad)) if bad else ''}. "
        f"At commit `{d.get('ntk_air_commit', '?')}`. {d.get('note', '')}\n\n"
        + _table(["where", "cases", "clear refusals", "correct results"], rows)
        + _source("hostile_inputs.json")
    )


def bench_learning_curve() -> str:
    d = _load("learning_curve.json")
    rows = []
    for key, v in d.items():
        if not isinstance(v, dict) or "rows" not in v:
            continue
        cfg = v.get("config", {})
        worst = max((abs(r.get("relative_error", 0.0)) for r in v["rows"]), default=None)
        rows.append(
            [
                f"`{key}`",
                _cell(v.get("population", "")),
                cfg.get("solver", "dense"),
                cfg.get("tile_dtype") or "float64",
                _num(max(cfg.get("n", [0]))),
                _s(v.get("seconds")),
                _s(_get(v, "stages_cumulative", "population spectrum", "seconds")),
                _num(v.get("peak_rss_gb_time_v")) + " GB" if v.get("peak_rss_gb_time_v") else "—",
                _num(worst),
                len(v.get("off_by_more_than_10_percent", [])),
            ]
        )
    head = ["run", "population", "spectrum", "tiles", "largest n", "whole curve",
            "of which spectrum", "peak RSS", "largest relative error",
            "cases off by > 10 %"]  # fmt: skip
    return _table(head, rows) + _source("learning_curve.json")


def bench_predict() -> str:
    d = _load("predict.json")
    rows = [
        [
            f"`{key}`",
            _num(v.get("n")),
            _num(v.get("n_times")),
            _s(_get(v, "ntk_air", "run_s")),
            _s(_get(v, "neural_tangents", "run_s")),
            f"{_num(v.get('ratio_nt_over_ntk_air'))}×",
            _num(max((v.get("max_relative_difference") or {}).values(), default=None)),
        ]
        for key, v in d.items()
        if "ntk_air" in v
    ]
    head = ["run", "n", "times", "ntk_air", "neural-tangents", "neural-tangents / ntk_air",
            "largest relative difference"]  # fmt: skip
    matfree = [
        [
            f"`{key}`",
            _num(v.get("n")),
            _num(v.get("diag_reg_relative")),
            f"{v.get('preconditioner', 'topk')}, rank {v.get('preconditioner_rank')}"
            + (f", {v['landmarks']} landmarks" if v.get("landmarks") else ""),
            _num(v.get("relative_residual")),
            _num(v.get("cg_iterations")),
            _num(v.get("preconditioner_passes")),
            _s(v.get("seconds")),
            _num(v.get("peak_rss_gb")) + " GB",
        ]
        for key, v in d.items()
        if "cg_iterations" in v
    ]
    head2 = ["run", "n", "diag_reg (relative)", "preconditioner", "relative residual", "CG passes",
             "preconditioner block passes", "time", "peak RSS"]  # fmt: skip
    return (
        _table(head, rows)
        + "\n\n**Matrix-free mean** (`predict.gp_mean_matfree`, H∞, d = 20)\n\n"
        + _table(head2, matfree)
        + _source("predict.json")
    )


BENCHMARKS = {
    "vs_neural_tangents": (bench_vs_neural_tangents, ["vs_neural_tangents.json"]),
    "dynamics": (bench_dynamics, ["dynamics.json", "gpu_h200/dynamics_gpu.json"]),
    "distill": (bench_distill, ["distill.json", "gpu_h200/distill_gpu.json"]),
    "kernels_gpu": (bench_kernels_gpu, ["gpu_h200/kernels_gpu.json"]),
    "empirical": (bench_empirical, ["empirical.json"]),
    "entk": (bench_entk, ["entk.json", "entk_other_implementations.json"]),
    "scale": (bench_scale, ["scale.json"]),
    "noisy_labels": (bench_noisy_labels, ["noisy_labels.json"]),
    "nt_crash": (bench_nt_crash, ["nt_crash.json"]),
    "conv": (bench_conv, ["nt_conv.json", "conv_scale.json"]),
    "hostile_inputs": (bench_hostile_inputs, ["hostile_inputs.json"]),
    "learning_curve": (bench_learning_curve, ["learning_curve.json"]),
    "predict": (bench_predict, ["predict.json"]),
}
"""Table name → (renderer, the results files it reads)."""


ANCHORS = {"entk": "empirical-ntk", "empirical": "empirical-ntk"}
"""Table name → its section on the benchmarks page, where the two differ."""


def _cell(value) -> str:
    """A string as a table cell: one line, no column separator, at most 200 characters."""
    return " ".join(str(value).split()).replace("|", "\\|")[:200]


def generic_table(rel: str) -> str:
    """A results file no dedicated table reads: its top-level numbers, strings and flags."""
    d = _load(rel)
    items = d.items() if isinstance(d, dict) else []
    rows = [
        [f"`{k}`", _num(v) if isinstance(v, (int, float, bool)) or v is None else _cell(v)]
        for k, v in items
        if not isinstance(v, (dict, list))
    ]
    return _table(["key", "value"], rows) + _source(rel)


def benchmark_files() -> str:
    """Every results file with the table that renders it; a file that no dedicated table reads
    gets a generic one (its top-level values) below the list, so none is left out."""
    owner = {f: name for name, (_, files) in BENCHMARKS.items() for f in files}
    rows, generic = [], []
    for path in sorted(RESULTS.rglob("*.json")):
        rel = path.relative_to(RESULTS).as_posix()
        name = owner.get(rel)
        if name:
            anchor = ANCHORS.get(name, name.replace("_", "-"))
            rows.append([f"`{rel}`", f"[{name}](#{anchor})"])
        else:
            rows.append([f"`{rel}`", "its top-level values, below"])
            generic.append(f"### `{rel}`\n\n{generic_table(rel)}")
    return "\n\n".join([_table(["file", "table"], rows), *generic])


def render_benchmarks(markdown: str) -> str:
    def table(match):
        name = match.group(1)
        if name not in BENCHMARKS:
            raise KeyError(f"unknown benchmark table {name!r}; known: {sorted(BENCHMARKS)}")
        return BENCHMARKS[name][0]()

    markdown = re.sub(r"<!-- benchmark: (\w+) -->", table, markdown)
    return markdown.replace("<!-- benchmark files -->", benchmark_files())


def nt_upstream() -> str:
    """The last recorded run of neural-tangents' own tests (tools/nt_upstream/results.json)."""
    d = json.loads((ROOT / "tools" / "nt_upstream" / "results.json").read_text(encoding="utf-8"))
    meta, counts = d.get("meta", {}), d.get("counts", {})
    versions = meta.get("versions", {})
    rows = [
        [category, n, _get(d, "category_reasons", category, default="")]
        for category, n in d.get("failure_categories", {}).items()
    ]
    fixed = d.get("fixed_since", [])
    return (
        f"{meta.get('date', '?')}, jax {versions.get('jax', '?')}, NT's {meta.get('dtype', '?')}: "
        f"{d.get('total')} tests, **{counts.get('passed')} passed**, {counts.get('skipped')} "
        f"skipped by NT itself, **{counts.get('failed')} failed**, "
        f"{len(d.get('new_failures_since', []))} new since the compared run, "
        f"{len(fixed)} fixed since it.\n\n"
        + _table(["failure category", "tests", "why"], rows)
        + "\n\n*Rendered from `tools/nt_upstream/results.json` at build time.*\n"
    )


def nt_adaptations() -> str:
    from ntk_air.nt_backend.compat import adaptations_markdown

    return adaptations_markdown()


def on_files(files, config):
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")):
        files.append(
            File.generated(config, f"notebooks/{path.stem}.md", content=notebook_markdown(path))
        )
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "index.md":
        markdown = markdown.replace("<!-- README opening -->", readme_opening())
    if page.file.src_uri == "api/cli.md":
        markdown = markdown.replace("<!-- ntk-air help -->", cli_help())
    if "<!-- nt adaptations -->" in markdown:
        markdown = markdown.replace("<!-- nt adaptations -->", nt_adaptations())
    if "<!-- nt upstream -->" in markdown:
        markdown = markdown.replace("<!-- nt upstream -->", nt_upstream())
    if "<!-- benchmark" in markdown:
        markdown = render_benchmarks(markdown)
    return markdown
