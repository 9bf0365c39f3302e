"""The self-distillation study's report: distill.json and its figures."""

from __future__ import annotations

import numpy as np

from ..plots.distill import plot_distill_curves, plot_distill_summary
from ..studies._distill import best_run
from ._files import atomic_write
from .air import label_entries, mse_of_dist, solver_json


def _skipped(rules) -> list[dict]:
    return [{"label": label, "reason": why} for label, why in rules]


def _run_json(run) -> dict:
    d = run._asdict()
    d.pop("u_final")
    return d


def _distill_summary(study, kernel: dict | None = None) -> dict:
    """distill.json's keys; `*_mse` = ‖u − ŷ‖² / (label entries)."""
    pg = study.plain_gd
    best = best_run(study)
    n_train, n_test = label_entries(study.data), label_entries(study.data, "test")
    return {
        "task": study.task,
        "skipped_rules": _skipped(study.skipped_rules),
        "data": study.data,
        "kernel": kernel or {},
        "n": study.data["n"],
        "dtype": str(np.asarray(pg.train_dist).dtype),
        "eta": study.eta,
        "lambda_max": study.lambda_max,
        "u0": "zeros",
        "steps": study.steps,
        "record_every": study.record_every,
        "rounds": study.rounds,
        "ridge": study.ridge,
        "noise_norm": study.noise_norm,
        "plain_gd": {
            "final_dist": float(pg.final_dist),
            "best_early_stop_dist": float(pg.best_dist),
            "best_early_stop_step": int(pg.best_step),
            "test_best_dist": None if pg.test_best_dist is None else float(pg.test_best_dist),
            "final_mse": mse_of_dist(pg.final_dist, n_train),
            "best_early_stop_mse": mse_of_dist(pg.best_dist, n_train),
            "test_best_mse": mse_of_dist(pg.test_best_dist, n_test),
        },
        "best_rule": {
            "label": best.label,
            "final_dist": best.final_dist,
            "margin": best.margin,
            "final_mse": best.final_mse,
            "final_test_mse": best.final_test_mse,
        },
        "runs": [_run_json(r) for r in study.runs],
        **_solver_keys(study),
    }


def _solver_keys(study) -> dict:
    """`solver` (the spectral path) and, on the matrix-free path, `topk`: the reduction, its
    quality, the error estimates' method and the rules it skipped."""
    out = {} if study.solver is None else {"solver": solver_json(study.solver)}
    if study.topk is not None:
        top = study.topk._asdict()
        top["skipped"] = _skipped(study.topk.skipped)
        out["topk"] = top
    return out


def write_distill(
    writer,
    study,
    *,
    prefix: str = "",
    kernel: dict | None = None,
    save_predictions=None,
    dataset=None,
) -> dict:
    """distill.json, distill_curves / distill_summary (/ distill_rounds) PNGs, and optionally
    the final training predictions of every run (`save_predictions`: a path, written exactly as
    given, with `u` (runs, n[, C]), the run `labels`, and the data set's `y` and `y_clean`)."""
    summary = _distill_summary(study, kernel)
    best_es = summary["plain_gd"]["best_early_stop_dist"]
    name, runs = study.data["name"], study.runs

    def curves(kind, title, **kwargs):
        """‖u − ŷ‖ of each run of `kind` against its step (or round)."""
        curve = [(r.label, r.steps, r.dist_train) for r in runs if r.kind == kind]
        return plot_distill_curves(curve, study.noise_norm, best_es, title=title, **kwargs)

    drawn = {
        "distill_curves.png": curves(
            "steps", f"{name}: self-distillation rules (η = {study.eta:.3g})"
        ),
        "distill_summary.png": plot_distill_summary(
            [r.label for r in runs],
            [r.final_dist for r in runs],
            [r.best_dist for r in runs],
            best_es,
            study.noise_norm,
        ),
    }
    if any(r.kind == "rounds" for r in runs):
        title = f"{name}: round-based self-distillation"
        drawn["distill_rounds.png"] = curves("rounds", title, xlabel="round t + 1")
    figures = writer.figures(prefix, drawn)
    summary["files"] = []
    if save_predictions is not None:
        arrays = {
            "u": np.stack([r.u_final for r in runs]),
            "labels": np.array([r.label for r in runs]),
        }
        if dataset is not None:
            arrays.update(y=np.asarray(dataset.y), y_clean=np.asarray(dataset.y_clean))
        atomic_write(save_predictions, lambda f: np.savez(f, **arrays))
        summary["files"].append(str(save_predictions))
    summary["figures"] = figures
    writer.json(f"{prefix}distill.json", summary)
    return summary


def distill_headlines(s: dict) -> list[tuple[str, str, str]]:
    """(quantity, value, what it means) rows for the index's results table."""
    pg, best = s["plain_gd"], s["best_rule"]
    beats = best["final_dist"] < pg["best_early_stop_dist"]
    meaning = (
        f"{best['label']} ends {'below' if beats else 'above'} the best early stop of plain GD "
        + (
            "without stopping early: self-distillation beats early stopping here."
            if beats
            else "— here no rule beats early stopping."
        )
    )
    return [
        (
            "‖u − ŷ‖: best rule (final) vs plain GD (best early stop / final)",
            f"{best['final_dist']:.3g} ({best['label']}) vs {pg['best_early_stop_dist']:.3g} "
            f"(step {pg['best_early_stop_step']}) / {pg['final_dist']:.3g}; "
            f"‖e‖ = {s['noise_norm']:.3g}",
            meaning,
        )
    ]
