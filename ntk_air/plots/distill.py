"""Figures of self-distillation runs and of the ℓ2 theorem check (PNG)."""

from __future__ import annotations

import numpy as np

from . import colormaps, new_figure, save_figure

__all__ = [
    "plot_distill_curves",
    "plot_distill_summary",
    "plot_theorem_distance",
    "plot_theorem_floor",
    "plot_theorem_linearization",
    "plot_theorem_arora",
    "plot_harder_case",
]


def plot_distill_curves(
    runs, noise_norm, best_early_stop, path, *, title="self-distillation", xlabel="step k + 1"
):
    """‖u(k) − ŷ‖₂ against k for each run; runs = [(label, steps (r,), dist (r,)), ...]."""
    fig, ax = new_figure(figsize=(8, 5))
    for label, steps, dist in runs:
        ax.plot(np.asarray(steps) + 1, np.asarray(dist), label=label, lw=1.4)
    ax.axhline(noise_norm, color="k", ls=":", lw=1, label="‖e‖ = ‖y − ŷ‖ (memorized noise)")
    ax.axhline(best_early_stop, color="gray", ls="--", lw=1, label="best early stop (plain GD)")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("‖u(k) − ŷ‖₂ (train)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def plot_distill_summary(
    labels,
    final,
    best,
    best_early_stop,
    noise_norm,
    path,
    *,
    title="final and best ℓ2 distance per rule",
):
    """Bars: final and best ‖u − ŷ‖₂ per rule, with the best early stop of plain GD as a line.

    Log scale: hard-target rules end orders of magnitude below the others (floored at 1e-6).
    """
    fig, ax = new_figure(figsize=(max(6, 0.6 * len(labels) + 2), 5))
    idx = np.arange(len(labels))
    final, best = np.maximum(final, 1e-6), np.maximum(best, 1e-6)
    ax.bar(idx - 0.2, final, width=0.4, label="final")
    ax.bar(idx + 0.2, best, width=0.4, label="best over recorded steps")
    values = np.concatenate([final, best, [best_early_stop, noise_norm]])
    # Room below the smallest bar (so it shows) and above the largest (for the legend).
    ax.set_ylim(values.min() / 3, values.max() * 10)
    ax.axhline(best_early_stop, color="gray", ls="--", lw=1, label="best early stop (plain GD)")
    ax.axhline(noise_norm, color="k", ls=":", lw=1, label="‖e‖")
    ax.set_xticks(idx)
    ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("‖u − ŷ‖₂ (train, floored at 1e-6)")
    ax.set_title(title)
    ax.legend(fontsize=8, ncol=4, loc="upper center")
    ax.grid(True, axis="y", alpha=0.3)
    return save_figure(fig, path)


def _width_keys(curves):
    return [k for k in curves if k != "inf"]


def plot_theorem_distance(curves, noise_norm, path):
    """‖u(k) − ŷ‖₂ over steps: plain GD (dashed) and hard-target R3 (solid), each width and ∞."""
    fig, ax = new_figure(figsize=(8, 5))
    keys = _width_keys(curves) + ["inf"]
    colors = colormaps["viridis"](np.linspace(0, 0.9, len(keys)))
    for key, c in zip(keys, colors, strict=True):
        cv = curves[key]
        name = "kernel limit" if key == "inf" else f"m = {key}"
        lw = 2.2 if key == "inf" else 1.3
        ax.plot(
            cv["steps_all"] + 1,
            cv["plain_curve"],
            ls="--",
            color=c,
            lw=lw,
            label=f"{name}, plain GD",
        )
        ax.plot(
            cv["steps_all"] + 1,
            np.maximum(cv["self_distill_curve"], 1e-6),
            color=c,
            lw=lw,
            label=f"{name}, R3 hard targets",
        )
    ax.axhline(noise_norm, color="k", ls=":", lw=1, label="‖e‖")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step k + 1")
    ax.set_ylabel("‖u(k) − ŷ‖₂ (train, floored at 1e-6)")
    ax.set_title("ℓ2 distance to the ground truth over training")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return save_figure(fig, path)


def plot_theorem_floor(numbers, noise_norm, path):
    """Final distance against width: plain GD, best early stop, self-distillation; ∞ as lines."""
    keys = [k for k in numbers if k != "inf"]
    m = np.array([int(k) for k in keys])
    fig, ax = new_figure(figsize=(7, 5))
    styles = {
        "plain_final_dist": ("plain GD (final)", "s-"),
        "best_early_stop_dist": ("best early stop", "^-"),
        "self_distill_final_dist": ("R3 hard targets (final)", "o-"),
    }
    for field, (label, st) in styles.items():
        vals = np.array([numbers[k][field] for k in keys])
        (line,) = ax.plot(m, np.maximum(vals, 1e-6), st, label=label)
        ax.axhline(max(numbers["inf"][field], 1e-6), color=line.get_color(), ls=":", lw=1)
    ax.axhline(noise_norm, color="k", ls="--", lw=0.8, label="‖e‖")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width m (dotted: kernel limit)")
    ax.set_ylabel("‖u − ŷ‖₂ (train, floored at 1e-6)")
    ax.set_title("floor of the ℓ2 distance against width")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_theorem_linearization(curves, numbers, path):
    """Left: ‖u_net(k) − u_lin(k)‖ over steps per width; right: max gap vs width, over the whole
    run and over k ≤ the early horizon, with a 1/√m guide."""
    keys = _width_keys(curves)
    fig, (ax0, ax1) = new_figure(1, 2, figsize=(12, 4.5))
    colors = colormaps["viridis"](np.linspace(0, 0.9, len(keys)))
    for key, c in zip(keys, colors, strict=True):
        cv = curves[key]
        k = cv["steps"][1:] + 1  # the gap is 0 at k = 0 (same u(0)): start at the first record
        ax0.plot(k, cv["linearization_gap_curve"][0][1:], "--", color=c, label=f"m={key}, plain")
        ax0.plot(k, cv["linearization_gap_curve"][1][1:], color=c, label=f"m={key}, R3 hard")
    ax0.set_xscale("log")
    ax0.set_yscale("log")
    ax0.set_xlabel("step k + 1")
    ax0.set_ylabel("‖u_net(k) − u_lin(k)‖₂")
    ax0.set_title("network vs its linearization (H(W0), same u(0))")
    ax0.grid(True, which="both", alpha=0.3)
    ax0.legend(fontsize=7)
    m = np.array([int(k) for k in keys])
    k_early = numbers[keys[0]]["early_horizon_step"]
    for field, label in (
        ("linearization_gap_plain", "vs linearization, plain"),
        ("linearization_gap_self_distill", "vs linearization, R3 hard"),
        ("kernel_limit_gap_plain", "vs kernel limit H∞, plain"),
        ("kernel_limit_gap_self_distill", "vs kernel limit H∞, R3 hard"),
    ):
        (line,) = ax1.plot(m, [numbers[k][field] for k in keys], "o-", label=label)
        ax1.plot(
            m, [numbers[k][f"{field}_early"] for k in keys], "s--", color=line.get_color(), ms=4
        )
    # The lazy-training rate holds at a fixed horizon: anchor the guide on the early gap.
    ref = numbers[keys[0]]["linearization_gap_plain_early"] * np.sqrt(m[0] / m)
    ax1.plot(m, ref, "k:", label="∝ 1/√m")
    ax1.set_xscale("log", base=2)
    ax1.set_yscale("log")
    ax1.set_xlabel("width m")
    ax1.set_ylabel("max gap over k")
    ax1.set_title(f"gap against width (solid: whole run; dashed: k ≤ {k_early})")
    ax1.grid(True, which="both", alpha=0.3)
    ax1.legend(fontsize=7)
    return save_figure(fig, path)


def plot_theorem_arora(curves, path):
    """‖y − u(k)‖₂ of the trained network (plain GD) vs Arora et al.'s formula with H∞."""
    keys = _width_keys(curves)
    fig, ax = new_figure(figsize=(7, 5))
    colors = colormaps["viridis"](np.linspace(0, 0.9, len(keys)))
    for key, c in zip(keys, colors, strict=True):
        cv = curves[key]
        ax.plot(cv["steps"] + 1, cv["network_residual"], color=c, label=f"network m={key}")
        ax.plot(
            cv["steps"] + 1,
            cv["arora_formula"],
            ":",
            color=c,
            lw=2,
            label=f"formula (u(0) of m={key})",
        )
    ax.set_xscale("log")
    ax.set_xlabel("step k + 1")
    ax.set_ylabel("‖y − u(k)‖₂")
    ax.set_title("Arora et al.: ‖y − u(k)‖² = Σᵢ (1 − ηλᵢ)^(2k) (vᵢᵀ(y − u(0)))², H∞")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)


def plot_harder_case(harder, path):
    """Harder case: final distances vs width, i.i.d. and symmetric inits; kernel limit dotted."""
    fig, ax = new_figure(figsize=(7, 5))
    for init, marker in (("iid", "o"), ("symmetric", "s")):
        numbers = harder[init]
        keys = [k for k in numbers if k != "inf"]
        m = np.array([int(k) for k in keys])
        for field, ls, label in (
            ("self_distill_final_dist", "-", "R3 hard"),
            ("best_early_stop_dist", "--", "best early stop"),
        ):
            ax.plot(
                m,
                np.maximum([numbers[k][field] for k in keys], 1e-6),
                ls,
                marker=marker,
                label=f"{init} init, {label}",
            )
    inf = harder["iid"]["inf"]
    ax.axhline(
        max(inf["self_distill_final_dist"], 1e-6), color="k", ls=":", label="kernel limit, R3 hard"
    )
    ax.axhline(
        inf["best_early_stop_dist"], color="gray", ls=":", label="kernel limit, best early stop"
    )
    ax.axhline(harder["noise_norm"], color="k", ls="--", lw=0.8, label="‖e‖")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("width m")
    ax.set_ylabel("‖u − ŷ‖₂ (train, floored at 1e-6)")
    d = harder["data"]
    ax.set_title(f"harder case: ε0 = {d['eps0']}, {100 * d['noise_rate']:.0f} % flips")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    return save_figure(fig, path)
