"""The predict study's report: predict.json, predict.npz and, on 1-D inputs, predict_<get>.png."""

from __future__ import annotations

import numpy as np

from ..plots.predict import plot_predictions


def _predict_summary(study) -> dict:
    """predict.json's keys (times: null = end of training; per-get lists over times)."""
    times = [None if not np.isfinite(t) else float(t) for t in study.times]
    s = {
        "dataset": study.data,
        "times": times,
        "get": list(study.get),
        "test_mse": {g: np.asarray(v) for g, v in study.test_mse.items()},
        "train_mse": {g: np.asarray(v) for g, v in study.train_mse.items()},
        "condition_number": study.condition_number,
        "diag_reg_absolute": study.diag_reg_absolute,
    }
    var = {g: v for g, v in study.test_variance.items() if v is not None}
    if var:
        s["mean_test_variance"] = {g: np.mean(np.asarray(v), axis=1) for g, v in var.items()}
    return s


def write_predict(writer, study, dataset=None, *, prefix: str = "") -> dict:
    """predict.json, predict.npz (times, <get>_test_mean, <get>_test_variance, <get>_train_mean)
    and, when the inputs are one-dimensional and `dataset` is given, predict_<get>.png."""
    arrays = {"times": np.asarray(study.times)}
    for g in study.get:
        arrays[f"{g}_train_mean"] = study.train_mean[g]
        if study.test_mean[g] is not None:
            arrays[f"{g}_test_mean"] = study.test_mean[g]
        if study.test_variance.get(g) is not None:
            arrays[f"{g}_test_variance"] = study.test_variance[g]
    writer.npz(f"{prefix}predict.npz", **arrays)
    drawn = {}
    one_d = dataset is not None and np.prod(np.shape(dataset.x)[1:]) == 1
    if one_d and dataset.x_test.shape[0] > 0:
        test = (dataset.x_test, dataset.y_test_clean)
        for g in study.get:
            drawn[f"predict_{g}.png"] = plot_predictions(study, dataset.x, dataset.y, *test, get=g)
    figures = writer.figures(prefix, drawn)
    summary = _predict_summary(study)
    summary["files"] = [f"{prefix}predict.npz"]
    summary["figures"] = figures
    writer.json(f"{prefix}predict.json", summary)
    return summary
