"""The noisy-label study's report: noisy_labels.json, figures, a markdown table and index.md.

noisy_labels.json holds `results`, one row per (dataset, noise, rate, method) with `seeds`,
`last_test_acc`, `best_test_acc` (each {mean, lo, hi}: the mean over seeds and its 95 %
Student-t interval), `best_epoch` and `curves` (per-epoch test accuracy, mean over seeds), plus
the per-epoch observables and the kernel limit's numbers; `comparisons` (every self-distillation
method's last epoch against both early stoppings, paired by seed) and `headlines` (per setting:
plain, early stopping and the best self-distillation method, with the verdict).
"""

from __future__ import annotations

import numpy as np

from ..plots import new_figure
from ..plots.noisy_labels import plot_last_vs_best, plot_test_accuracy
from ..studies._noisy_labels import (
    EARLY_STOPPING,
    SELF_DISTILLATION,
    compare_setting,
    summarize_setting,
    t_interval,
)
from ..studies._noisy_results import t_half_width
from ._files import safe_file_name

INTERVAL = (
    "95 % Student-t interval over seeds: mean ± t_{0.975, S−1}·sd/√S (sd with S − 1), "
    "intersected with [0, 1] for accuracies and [−1, 1] for their differences (where the mean "
    "lies by construction, so the coverage is unchanged); seeds differ in initialization, batch "
    "order and label-noise draw"
)


def accuracy_interval(values, lo: float = 0.0, hi: float = 1.0) -> dict:
    """{mean, lo, hi}: `t_interval` over seeds intersected with [lo, hi], where the mean lies
    (so the 95 % coverage is unchanged).

    >>> accuracy_interval([0.99, 1.0])["hi"]
    1.0
    """
    t = t_interval(values)
    return {"mean": t["mean"], "lo": max(lo, t["lo"]), "hi": min(hi, t["hi"])}


METHOD_TEXT = {
    "plain": "plain training on the given labels, last epoch",
    "early-stop-clean": "plain run stopped at its best epoch on the clean validation split "
    "(oracle)",
    "early-stop-noisy": "plain run stopped at its best epoch on the validation inputs with noisy "
    "labels (realistic)",
    "r1": "targets.r1(α): ỹ(e) = (1 − α) y + α u(e), teacher = the previous epoch's network",
    "r2": "targets.r2(): α_e = training accuracy against the given labels, hard pseudo-labels",
    "r3-soft": "targets.r3(α, hard=False): ỹ(e) = α ỹ(e − 1) + (1 − α) u(e), ỹ(0) = y",
    "r3-hard": "targets.r3(α, hard=True): ỹ(e) = α ỹ(e − 1) + (1 − α) onehot(argmax u(e))",
}
VERDICT_TEXT = {
    "better": "yes, above (interval > 0)",
    "tie": "yes within the interval (it contains 0)",
    "worse": "**no**: below (interval < 0)",
    "one seed": "no interval from one seed (run --seeds 2 or more)",
}


def _band(a):
    """(lo, hi): the per-epoch t-interval over seeds of (S, E + 1), within [0, 1] (one seed: the
    mean)."""
    mean, half = t_half_width(a, axis=0)
    half = np.nan_to_num(half)  # one seed has no interval
    return np.maximum(mean - half, 0.0), np.minimum(mean + half, 1.0)


def _round(x, digits=6):
    if isinstance(x, dict):
        return {k: _round(v, digits) for k, v in x.items()}
    arr = np.asarray(x, np.float64)
    if arr.ndim == 0:
        v = float(arr)
        return v if not np.isfinite(v) else round(v, digits)
    return [_round(v, digits) for v in arr]


def _accuracies(summary) -> dict:
    return {
        "last_test_acc": _round(accuracy_interval(summary.last_test_acc)),
        "best_test_acc": _round(accuracy_interval(summary.best_test_acc)),
        "best_epoch": summary.best_epoch,
    }


def _row(setting, summary, kernel_summary, seeds):
    c = summary.curves
    row = {
        "dataset": setting.dataset,
        "noise": setting.noise,
        "rate": setting.rate,
        "method": summary.method,
        "seeds": seeds,
        **_accuracies(summary),
        "curves": _round(c.test_acc.mean(0)),
        "curves_band": {k: _round(v) for k, v in zip(("lo", "hi"), _band(c.test_acc), strict=True)},
        "per_seed": {k: _round(getattr(summary, k)) for k in ("last_test_acc", "best_test_acc")},
        "observables": {
            name: _round(np.asarray(getattr(c, name)).mean(0))
            for name in (
                "train_acc_noisy",
                "train_acc_clean",
                "dist_clean",
                "flipped_fit",
                "val_acc_clean",
                "val_acc_noisy",
            )
        },
        "kernel_limit": None,
    }
    if summary.selected_epochs is not None:
        row["selected_epochs"] = [int(e) for e in summary.selected_epochs]
    if kernel_summary is not None:
        k = kernel_summary.curves
        row["kernel_limit"] = {
            **_accuracies(kernel_summary),
            "curves": _round(k.test_acc.mean(0)),
            **{name: _round(getattr(k, name).mean(0)) for name in ("dist_clean", "flipped_fit")},
        }
    return row


def _overlap(rows) -> tuple[bool, list[str]]:
    """Do all methods' last-epoch intervals share a point? (and which methods do not)."""
    lo = max(r["last_test_acc"]["lo"] for r in rows)
    hi = min(r["last_test_acc"]["hi"] for r in rows)
    if lo <= hi:
        return True, []
    top = max(rows, key=lambda r: r["last_test_acc"]["mean"])["last_test_acc"]
    outside = [r["method"] for r in rows if r["last_test_acc"]["hi"] < top["lo"]]
    return False, outside


def _noisy_labels_summary(study) -> dict:
    """noisy_labels.json's keys."""
    c = study.config
    methods = tuple(c["methods"])
    results, comparisons, headlines, zero = [], [], [], []
    for setting in study.settings:
        seeds = int(setting.network.test_acc.shape[1])
        rows = summarize_setting(setting, methods)
        k_rows = {r.method: r for r in summarize_setting(setting, methods, kernel=True)}
        json_rows = [_row(setting, r, k_rows.get(r.method), seeds) for r in rows]
        results += json_rows
        where = {"dataset": setting.dataset, "noise": setting.noise, "rate": setting.rate}
        cmp = compare_setting(rows)
        comparisons += [
            {**where, "sd_method": x.sd_method, "es_method": x.es_method, **_verdict(x)}
            for x in cmp
        ]
        k_cmp = compare_setting(list(k_rows.values()))
        headlines.append(_headline(where, json_rows, cmp, k_cmp))
        if setting.rate == 0:
            agree, outside = _overlap(json_rows)
            zero.append({**where, "all_methods_agree": agree, "outside": outside})
    return {
        "config": c,
        "warmup_epochs": int(study.warmup_epochs),
        "network": study.network,
        "lr": study.lr,
        "data": list(study.data),
        "interval": INTERVAL,
        "methods": {m: METHOD_TEXT[m] for m in methods},
        "predictions_seen_by_rules": (
            "softmax probabilities (targets are probability vectors or one-hot rows)"
            if c["loss"] == "xent"
            else "raw outputs (targets are one-hot rows mixed with outputs, or one-hot rows)"
        ),
        "best_test_acc_note": "trained methods: the best epoch of each seed's test curve (an "
        "oracle on the test set); early stopping: the test accuracy at the epoch it selects",
        "kernel_limit": study.kernel_limit,
        "results": results,
        "comparisons": comparisons,
        "headlines": headlines,
        "zero_noise_agreement": zero,
    }


def _verdict(comparison) -> dict:
    return {"difference": _round(comparison.difference), "verdict": comparison.verdict}


def _headline(where, rows, cmp, k_cmp) -> dict:
    by = {r["method"]: r for r in rows}
    sd = [m for m in SELF_DISTILLATION if m in by]
    best_sd = max(sd, key=lambda m: by[m]["last_test_acc"]["mean"]) if sd else None
    out = {
        **where,
        "plain_last": by["plain"]["last_test_acc"] if "plain" in by else None,
        "plain_best": by["plain"]["best_test_acc"] if "plain" in by else None,
        "best_sd_method": best_sd,
        "best_sd_selection": "highest mean last-epoch test accuracy (selected on the test set)",
        "best_sd_last": by[best_sd]["last_test_acc"] if best_sd else None,
    }
    for es in EARLY_STOPPING:
        out[es] = by[es]["best_test_acc"] if es in by else None
        for key, pairs in ((f"best_sd_vs_{es}", cmp), (f"kernel_limit_best_sd_vs_{es}", k_cmp)):
            x = next((x for x in pairs if (x.sd_method, x.es_method) == (best_sd, es)), None)
            out[key] = None if x is None else _verdict(x)
    if "plain" in by:
        per_seed = by["plain"]["per_seed"]
        drop = np.subtract(per_seed["best_test_acc"], per_seed["last_test_acc"])
        out["plain_best_minus_last"] = _round(accuracy_interval(drop, -1.0, 1.0))
    return out


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def _ci(d) -> str:
    if d is None:
        return "—"
    return f"{d['mean']:.3f} [{d['lo']:.3f}, {d['hi']:.3f}]"


def _setting_name(h) -> str:
    return "clean (0 %)" if h["noise"] == "none" else f"{h['noise']} {h['rate'] * 100:.0f} %"


def noisy_labels_table(summary: dict) -> str:
    """Markdown: last-epoch and best-epoch test accuracy per method and setting (with intervals),
    the kernel limit's last epoch beside each."""
    lines = [
        "| dataset | noise | method | last epoch | best epoch (epoch) | kernel limit: last |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in summary["results"]:
        k = r["kernel_limit"]
        lines.append(
            f"| {r['dataset']} | {_setting_name(r)} | {r['method']} | {_ci(r['last_test_acc'])} | "
            f"{_ci(r['best_test_acc'])} ({r['best_epoch']}) | "
            f"{'—' if k is None else _ci(k['last_test_acc'])} |"
        )
    return "\n".join(lines) + "\n"


def _verdict_cell(v) -> str:
    if v is None:
        return "—"
    return f"{_ci(v['difference'])}: {VERDICT_TEXT[v['verdict']]}"


def noisy_labels_index(summary: dict, figures: list[str]) -> str:
    """index.md: the claim per setting first (with intervals), then the full table and figures."""
    c = summary["config"]
    k = summary["kernel_limit"]
    lines = [
        "# ntk-air noisy-labels: self-distillation against early stopping under label noise",
        "",
        f"Network: {summary['network']}; optimizer {c['optimizer']} (lr "
        + ", ".join(f"{lr:g} on {name}" for name, lr in summary["lr"].items())
        + (f", momentum {c['momentum']:g}" if c["optimizer"] == "sgd" else "")
        + f"), loss {c['loss']}, {c['epochs']} epochs, batch {c['batch_size']}, "
        f"{c['seeds']} seeds; "
        f"R1 α = {c['r1_alpha']:g}, R3 α = {c['r3_alpha']:g}; targets refreshed once per epoch; "
        f"the self-distillation rules act from epoch {summary['warmup_epochs']} (every method "
        "trains on the given labels before).",
        "Data: "
        + "; ".join(
            f"{d['name']} ({d['n_train']} train / {d['n_val']} validation / {d['n_test']} test, "
            f"{d['n_classes']} classes)"
            for d in summary["data"]
        )
        + ".",
        f"Every number: {summary['interval']}.",
        "Kernel limit: "
        + (
            f"{k['kernel']}; {k['mapping']}; loss: {k['loss']}."
            if k.get("applies")
            else f"not run ({k.get('reason')})."
        ),
        "",
        "## Does self-distillation's last epoch reach early stopping's best?",
        "",
        "Best SD = the self-distillation method with the highest mean last-epoch test accuracy in "
        "that setting (selected on the test set; every pair is in `comparisons` of "
        "noisy_labels.json). Differences are paired by seed: SD last − ES.",
        "",
        "| dataset | noise | plain last | early stop (clean val) | early stop (noisy val) | "
        "best SD: last | SD − ES clean | SD − ES noisy | kernel limit: SD − ES clean |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    plain_statements, failures = [], []
    for h in summary["headlines"]:
        lines.append(
            f"| {h['dataset']} | {_setting_name(h)} | {_ci(h['plain_last'])} | "
            f"{_ci(h['early-stop-clean'])} | {_ci(h['early-stop-noisy'])} | "
            f"{h['best_sd_method'] or '—'}: {_ci(h['best_sd_last'])} | "
            f"{_verdict_cell(h['best_sd_vs_early-stop-clean'])} | "
            f"{_verdict_cell(h['best_sd_vs_early-stop-noisy'])} | "
            f"{_verdict_cell(h['kernel_limit_best_sd_vs_early-stop-clean'])} |"
        )
        for es in EARLY_STOPPING:
            v = h[f"best_sd_vs_{es}"]
            if v is not None and v["verdict"] == "worse":
                failures.append(
                    f"- **No** on {h['dataset']}, {_setting_name(h)}: the best self-distillation "
                    f"method ({h['best_sd_method']}) ends at {_ci(h['best_sd_last'])}, below "
                    f"{es.replace('-', ' ')}'s {_ci(h[es])} (difference "
                    f"{_ci(v['difference'])})."
                )
        drop = h.get("plain_best_minus_last")
        if drop is not None and h["noise"] != "none":
            fell = drop["lo"] > 0
            plain_statements.append(
                f"- {h['dataset']}, {_setting_name(h)}: plain's best epoch minus its last "
                f"{_ci(drop)} — "
                + (
                    "it memorises: the last epoch is below its own best."
                    if fell
                    else "no significant fall from its best epoch."
                )
            )
    lines += [""]
    if failures:
        lines += ["Where the claim fails:", "", *failures, ""]
    else:
        lines += [
            "In no setting is the best self-distillation method's last epoch significantly below "
            "early stopping's best.",
            "",
        ]
    if plain_statements:
        lines += [
            "Plain training against its own best epoch (memorisation):",
            "",
            *plain_statements,
            "",
        ]
    for z in summary["zero_noise_agreement"]:
        lines.append(
            f"- At 0 % noise on {z['dataset']}: "
            + (
                "all methods agree within their intervals."
                if z["all_methods_agree"]
                else "the methods do **not** all agree within their intervals; below the best: "
                + ", ".join(z["outside"])
                + "."
            )
        )
    lines += [
        "",
        "## Last-epoch and best-epoch test accuracy",
        "",
        noisy_labels_table(summary),
        "## Files",
        "",
        "- [`noisy_labels.json`](noisy_labels.json) (every number, curves and observables)",
        "- [`noisy_labels_table.md`](noisy_labels_table.md)",
        "",
    ]
    lines += [f"![{f}]({f})\n" for f in figures]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Figures and files
# ---------------------------------------------------------------------------------------------


def _draw_curves(ax, rows, title) -> None:
    """Test accuracy per epoch of each method (bands), early stops as marks, the kernel limit."""
    curves = {
        r["method"]: (r["curves"], r["curves_band"]["lo"], r["curves_band"]["hi"])
        for r in rows
        if r["method"] not in EARLY_STOPPING
    }
    stops = {
        r["method"]: (r["best_epoch"], r["best_test_acc"]["mean"])
        for r in rows
        if r["method"] in EARLY_STOPPING
    }
    kernel = {
        r["method"]: r["kernel_limit"]["curves"]
        for r in rows
        if r["kernel_limit"] is not None and r["method"] not in EARLY_STOPPING
    }
    plot_test_accuracy(curves, stops=stops, kernel=kernel or None, ax=ax, title=title)


def _draw_last_vs_best(ax, rows, title) -> None:
    """Last-epoch against best-epoch test accuracy of each method."""
    last = [np.array([r["last_test_acc"][k] for r in rows]) for k in ("mean", "lo", "hi")]
    best = [np.array([r["best_test_acc"][k] for r in rows]) for k in ("mean", "lo", "hi")]
    plot_last_vs_best([r["method"] for r in rows], last, best, ax=ax, title=title)


def _figures(writer, summary, prefix):
    figures = []
    datasets = list(dict.fromkeys(r["dataset"] for r in summary["results"]))
    for name in datasets:
        heads = [h for h in summary["headlines"] if h["dataset"] == name]
        file_name = safe_file_name(name)  # a data file's name entry is never a path
        cols = min(3, len(heads))
        nrows = -(-len(heads) // cols)
        for kind, draw in (("curves", _draw_curves), ("table", _draw_last_vs_best)):
            _, axes = new_figure(nrows, cols, figsize=(5.2 * cols, 3.8 * nrows))
            axes = np.atleast_1d(axes).ravel()
            for ax, h in zip(axes, heads, strict=False):
                rows = [
                    r
                    for r in summary["results"]
                    if r["dataset"] == name and r["noise"] == h["noise"] and r["rate"] == h["rate"]
                ]
                draw(ax, rows, f"{name}: {_setting_name(h)}")
            for ax in axes[len(heads) :]:
                ax.set_visible(False)
            axes[0].legend(fontsize=7, loc="lower right")
            figures += writer.figures(prefix, {f"noisy_labels_{file_name}_{kind}.png": axes})
    return figures


def write_noisy_labels(writer, study, *, prefix: str = "") -> dict:
    """noisy_labels.json, per-data-set figures (curves with bands; last vs best epoch),
    noisy_labels_table.md and index.md into the writer's folder. Returns the summary."""
    summary = _noisy_labels_summary(study)
    figures = _figures(writer, summary, prefix)
    summary["figures"] = figures
    summary["files"] = ["noisy_labels_table.md"]
    writer.text(f"{prefix}noisy_labels_table.md", noisy_labels_table(summary))
    writer.json(f"{prefix}noisy_labels.json", summary)
    writer.text(f"{prefix}index.md", noisy_labels_index(summary, figures))
    return summary
