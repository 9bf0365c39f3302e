"""Figures of the predict study: the ensemble's mean ± 2 standard deviations on 1-D inputs."""

from __future__ import annotations

import numpy as np

from . import _axes_or_new

__all__ = ["plot_predictions"]


def plot_predictions(
    study, x_train, y_train, x_test, y_test=None, *, get: str = "ntk", time_index=-1, ax=None
):
    """Mean ± 2 sd of the ensemble on one-dimensional test inputs, with the training points.

    Args:
      study: a `studies.PredictStudy` (with test predictions and, for the band, variances).
      x_train: (n, 1) training inputs.
      y_train: (n,) or (n, 1) targets.
      x_test: (m, 1) test inputs.
      y_test: optional (m,) test targets (drawn as a line).
      get: which kernel's predictions ("nngp" or "ntk").
      time_index: which of `study.times`.
      ax: an Axes, or None for a new figure.
    """
    ax = _axes_or_new(ax, figsize=(7, 4))
    x_tr = np.asarray(x_train).reshape(-1)
    x_te = np.asarray(x_test).reshape(-1)
    order = np.argsort(x_te)
    mean = np.asarray(study.test_mean[get][time_index]).reshape(x_te.size, -1)[:, 0]
    t = float(study.times[time_index])
    label = "t = ∞" if not np.isfinite(t) else f"t = {t:g}"
    ax.plot(x_te[order], mean[order], color="C0", label=f"{get} mean, {label}")
    var = study.test_variance.get(get)
    if var is not None:
        sd = np.sqrt(np.maximum(np.asarray(var[time_index]), 0.0))
        ax.fill_between(
            x_te[order],
            (mean - 2 * sd)[order],
            (mean + 2 * sd)[order],
            color="C0",
            alpha=0.25,
            label="mean ± 2 sd",
        )
    if y_test is not None:
        yt = np.asarray(y_test).reshape(x_te.size, -1)[:, 0]
        ax.plot(x_te[order], yt[order], "k--", lw=1, label="test targets")
    ax.plot(
        x_tr,
        np.asarray(y_train).reshape(x_tr.size, -1)[:, 0],
        "o",
        color="C3",
        ms=4,
        label="training points",
    )
    ax.set(xlabel="x", ylabel="f(x)", title=f"infinite ensemble ({get}), {label}")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return ax
