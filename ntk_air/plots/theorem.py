"""Figures of the ℓ2 theorem check: distances over training, floors and gaps against width."""

from __future__ import annotations

import numpy as np

from . import _axes_or_new, _label_axes, _viridis

__all__ = [
    "plot_theorem_distance",
    "plot_theorem_floor",
    "plot_theorem_linearization",
    "plot_theorem_arora",
    "plot_harder_case",
]


def plot_theorem_distance(check, noise_norm, *, ax=None):
    """‖u(k) − ŷ‖₂ over steps: plain GD (dashed) and hard-target R3 (solid), each width and ∞.

    Args:
      check: a `theorem.TheoremCheck`.
      noise_norm: ‖e‖.
      ax: Axes (None: a new figure).
    """
    ax = _axes_or_new(ax, figsize=(8, 5))
    runs = [(f"m = {w.width}", w, 1.3) for w in check.networks]
    runs.append(("kernel limit", check.kernel_limit, 2.2))
    for (name, res, lw), c in zip(runs, _viridis(len(runs)), strict=True):
        k = np.asarray(res.steps_all) + 1
        ax.plot(k, res.plain_curve, ls="--", color=c, lw=lw, label=f"{name}, plain GD")
        ax.plot(
            k,
            np.maximum(res.self_distill_curve, 1e-6),
            color=c,
            lw=lw,
            label=f"{name}, R3 hard targets",
        )
    ax.axhline(noise_norm, color="k", ls=":", lw=1, label="‖e‖")
    return _label_axes(
        ax,
        xlabel="step k + 1",
        ylabel="‖u(k) − ŷ‖₂ (train, floored at 1e-6)",
        title="ℓ2 distance to the ground truth over training",
        xscale="log",
        yscale="log",
        legend=7,
        ncol=2,
    )


def plot_theorem_floor(check, noise_norm, *, ax=None):
    """Final distance against width: plain GD, best early stop, self-distillation; ∞ dotted."""
    ax = _axes_or_new(ax, figsize=(7, 5))
    m = np.array([w.width for w in check.networks])
    styles = {
        "plain_final_dist": ("plain GD (final)", "s-"),
        "best_early_stop_dist": ("best early stop", "^-"),
        "self_distill_final_dist": ("R3 hard targets (final)", "o-"),
    }
    for field, (label, st) in styles.items():
        vals = np.array([getattr(w, field) for w in check.networks])
        (line,) = ax.plot(m, np.maximum(vals, 1e-6), st, label=label)
        limit = getattr(check.kernel_limit, field)
        ax.axhline(max(limit, 1e-6), color=line.get_color(), ls=":", lw=1)
    ax.axhline(noise_norm, color="k", ls="--", lw=0.8, label="‖e‖")
    return _label_axes(
        ax,
        xlabel="width m (dotted: kernel limit)",
        ylabel="‖u − ŷ‖₂ (train, floored at 1e-6)",
        title="floor of the ℓ2 distance against width",
        xscale=("log", 2),
        yscale="log",
    )


def plot_theorem_linearization(check, *, axes=None):
    """Left: ‖u_net(k) − u_lin(k)‖ over steps per width; right: max gap vs width, over the whole
    run and over k ≤ the early horizon, with a 1/√m guide."""
    ax0, ax1 = _axes_or_new(axes, 1, 2, figsize=(12, 4.5))
    nets = check.networks
    for w, c in zip(nets, _viridis(len(nets)), strict=True):
        k = np.asarray(w.steps)[1:] + 1  # the gap is 0 at k = 0 (same u(0))
        gap = np.asarray(w.linearization_gap_curve)
        ax0.plot(k, gap[0][1:], "--", color=c, label=f"m={w.width}, plain")
        ax0.plot(k, gap[1][1:], color=c, label=f"m={w.width}, R3 hard")
    _label_axes(
        ax0,
        xlabel="step k + 1",
        ylabel="‖u_net(k) − u_lin(k)‖₂",
        title="network vs its linearization (H(W0), same u(0))",
        xscale="log",
        yscale="log",
        legend=7,
    )
    m = np.array([w.width for w in nets])
    for field, label in (
        ("linearization_gap_plain", "vs linearization, plain"),
        ("linearization_gap_self_distill", "vs linearization, R3 hard"),
        ("kernel_limit_gap_plain", "vs kernel limit H∞, plain"),
        ("kernel_limit_gap_self_distill", "vs kernel limit H∞, R3 hard"),
    ):
        (line,) = ax1.plot(m, [getattr(w, field) for w in nets], "o-", label=label)
        early = [getattr(w, f"{field}_early") for w in nets]
        ax1.plot(m, early, "s--", color=line.get_color(), ms=4)
    # The lazy-training rate holds at a fixed horizon: anchor the guide on the early gap.
    ref = nets[0].linearization_gap_plain_early * np.sqrt(m[0] / m)
    ax1.plot(m, ref, "k:", label="∝ 1/√m")
    _label_axes(
        ax1,
        xlabel="width m",
        ylabel="max gap over k",
        title=f"gap against width (solid: whole run; dashed: k ≤ {nets[0].early_horizon_step})",
        xscale=("log", 2),
        yscale="log",
        legend=7,
    )
    return ax0, ax1


def plot_theorem_arora(check, *, ax=None):
    """‖y − u(k)‖₂ of the trained network (plain GD) vs Arora et al.'s formula with H∞."""
    ax = _axes_or_new(ax, figsize=(7, 5))
    nets = check.networks
    for w, c in zip(nets, _viridis(len(nets)), strict=True):
        k = np.asarray(w.steps) + 1
        ax.plot(k, w.network_residual, color=c, label=f"network m={w.width}")
        ax.plot(k, w.arora_formula, ":", color=c, lw=2, label=f"formula (u(0) of m={w.width})")
    return _label_axes(
        ax,
        xlabel="step k + 1",
        ylabel="‖y − u(k)‖₂",
        title="Arora et al.: ‖y − u(k)‖² = Σᵢ (1 − ηλᵢ)^(2k) (vᵢᵀ(y − u(0)))², H∞",
        xscale="log",
        legend=7,
    )


def plot_harder_case(harder, *, ax=None):
    """Harder case: final distances vs width, i.i.d. and symmetric inits; kernel limit dotted.

    Args:
      harder: a `studies.HarderCase`.
      ax: Axes (None: a new figure).
    """
    ax = _axes_or_new(ax, figsize=(7, 5))
    for init, check, marker in (("iid", harder.iid, "o"), ("symmetric", harder.symmetric, "s")):
        m = np.array([w.width for w in check.networks])
        for field, ls, label in (
            ("self_distill_final_dist", "-", "R3 hard"),
            ("best_early_stop_dist", "--", "best early stop"),
        ):
            vals = np.maximum([getattr(w, field) for w in check.networks], 1e-6)
            ax.plot(m, vals, ls, marker=marker, label=f"{init} init, {label}")
    limit = harder.iid.kernel_limit
    ax.axhline(
        max(limit.self_distill_final_dist, 1e-6), color="k", ls=":", label="kernel limit, R3 hard"
    )
    ax.axhline(
        limit.best_early_stop_dist, color="gray", ls=":", label="kernel limit, best early stop"
    )
    ax.axhline(harder.noise_norm, color="k", ls="--", lw=0.8, label="‖e‖")
    d = harder.data
    return _label_axes(
        ax,
        xlabel="width m",
        ylabel="‖u − ŷ‖₂ (train, floored at 1e-6)",
        title=f"harder case: ε0 = {d['eps0']}, {100 * d['noise_rate']:.0f} % flips",
        xscale=("log", 2),
        yscale="log",
        legend=7,
    )
