"""`ntk-air theorem`: the ℓ2 theorem check (kernel limit and real networks) into theorem.json."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..theorem import (
    DEFAULT_SEED,
    DEFAULT_STEPS,
    DEFAULT_WIDTHS,
    HARDER_CASE,
    TUNING_SEED,
    split_numbers_and_curves,
    theorem_check,
)

__all__ = ["add_parser", "run", "theorem_report"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "theorem",
        help="check the ℓ2 theorem: plain GD, best early stop and hard-target self-distillation, "
        "kernel limit and real two-layer networks of several widths",
        description="On the clusterable model with flipped labels, compares plain GD (final), the "
        "best early stop, and R3 self-distillation with hard targets, in the kernel limit ('inf') "
        "and for trained two-layer ReLU networks; also the linearization gap, the kernel-limit "
        "gap and Arora et al.'s residual formula. Writes theorem.json and figures into --out.",
    )
    p.add_argument(
        "--widths",
        type=int,
        nargs="+",
        default=list(DEFAULT_WIDTHS),
        help=f"network widths m (default {' '.join(map(str, DEFAULT_WIDTHS))})",
    )
    p.add_argument(
        "--steps",
        type=int,
        default=DEFAULT_STEPS,
        help=f"full-batch GD steps per run (default {DEFAULT_STEPS})",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"data seed (default {DEFAULT_SEED}; defaults were tuned on {TUNING_SEED})",
    )
    p.add_argument("--init-seed", type=int, default=0, help="network init seed (default 0)")
    p.add_argument("--alpha", type=float, default=0.9, help="R3's α (default 0.9)")
    p.add_argument("--kappa", type=float, default=1.0, help="init scale κ (default 1)")
    p.add_argument(
        "--record-every", type=int, default=10, help="curve recording period (default 10)"
    )
    p.add_argument(
        "--network-dtype",
        default="float32",
        choices=("float32", "float64"),
        help="dtype of network training (default float32; the kernel limit is float64)",
    )
    p.add_argument(
        "--no-harder",
        action="store_true",
        help=f"skip the harder case ({HARDER_CASE}, i.i.d. and symmetric inits)",
    )
    p.add_argument("--out", default="theorem_report", help="output folder (default theorem_report)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=run)


def theorem_report(
    out_dir,
    *,
    widths=DEFAULT_WIDTHS,
    steps: int = DEFAULT_STEPS,
    seed: int = DEFAULT_SEED,
    alpha: float = 0.9,
    kappa: float = 1.0,
    init_seed: int = 0,
    record_every: int = 10,
    harder: bool = True,
    harder_widths=None,
    network_dtype="float32",
    progress: bool = True,
) -> dict:
    """Run the theorem check on the clusterable data (`ntk_air.data.clusters(seed=seed)`).

    Writes out_dir/theorem.json: for each width (and "inf", the kernel limit H∞ from u(0) = 0)
    plain_final_dist, best_early_stop_dist (+ step), self_distill_final_dist,
    self_distill_margin, accuracies; for widths also the linearization and kernel-limit gaps,
    ‖H(W0) − H∞‖/‖H∞‖, ‖W − W(0)‖_F and Arora's formula error (max over the run, and `*_early`
    over the first `early_horizon` steps); the data description (seed,
    and the seed the defaults were tuned on), ‖e‖, η = 1/λ_max(H∞), the `claims` checked, the
    curves, the harder case (i.i.d. and symmetric inits), and the figures.

    Args:
      out_dir: folder to write into. widths: network widths (≥ 2, even for the harder case's
        symmetric init). steps: GD steps per run. seed: data seed (default 1, data the defaults
        were not tuned on). alpha: R3's α. kappa: init scale κ. init_seed: network init seed.
      record_every: recording period of the curves. harder: also run `HARDER_CASE`.
      harder_widths: widths for the harder case (default: `widths`).
      network_dtype: dtype of network training. progress: tqdm bars.

    Returns:
      The JSON-able summary, with a `figures` list (file names inside out_dir).
    """
    from ..data import clusters
    from ..plots.distill import (
        plot_harder_case,
        plot_theorem_arora,
        plot_theorem_distance,
        plot_theorem_floor,
        plot_theorem_linearization,
    )
    from ..theorem import EARLY_HORIZON
    from ._common import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    widths = tuple(int(w) for w in widths)
    if not widths or any(w < 2 for w in widths):
        raise ValueError(f"widths must be integers ≥ 2, got {widths}")
    t0 = time.perf_counter()
    ds = clusters(seed=seed)
    res = theorem_check(
        ds,
        widths,
        steps=steps,
        alpha=alpha,
        kappa=kappa,
        init_seed=init_seed,
        record_every=record_every,
        network_dtype=network_dtype,
        progress=progress,
    )
    numbers, curves = split_numbers_and_curves(res)
    noise_norm = float(np.linalg.norm(ds.y - ds.y_clean))
    figures = [
        plot_theorem_distance(curves, noise_norm, out_dir / "theorem_distance.png"),
        plot_theorem_floor(numbers, noise_norm, out_dir / "theorem_floor_vs_width.png"),
        plot_theorem_linearization(curves, numbers, out_dir / "theorem_linearization.png"),
        plot_theorem_arora(curves, out_dir / "theorem_arora.png"),
    ]
    info_keys = (
        "n_train",
        "n_test",
        "dim",
        "noise",
        "noise_rate",
        "eps0",
        "delta",
        "clusters_disjoint",
    )
    summary = {
        "data": {
            "name": ds.name,
            "seed": seed,
            "tuning_seed": TUNING_SEED,
            "note": f"data you did not tune on: the defaults were chosen on data seed "
            f"{TUNING_SEED}; this report uses data seed {seed}",
            **{k: ds.info[k] for k in info_keys if k in ds.info},
        },
        "noise_norm": noise_norm,
        "eta": res["_eta"],
        "lambda_max": res["_lambda_max"],
        "lambda_min": res["_lambda_min"],
        "steps": steps,
        "alpha": alpha,
        "kappa": kappa,
        "init": "iid",
        "init_seed": init_seed,
        "rule": f"R3 with hard targets: y~(k+1) = {alpha} y~(k) + {1 - alpha:.3g} sign(u(k+1)), "
        "y~(0) = y",
        "network_dtype": str(network_dtype),
        "early_horizon": EARLY_HORIZON,
        "gap_note": "linearization_gap_* / kernel_limit_gap_* / arora_max_rel_error are maxima "
        "over the whole run; the *_early keys are maxima over recorded steps k <= "
        "early_horizon_step. Lazy-training bounds are O(1/sqrt(m)) at a fixed horizon; over long "
        "runs plain GD fits the flipped labels along small-eigenvalue modes, W moves far from "
        "W(0), and its whole-run gap need not shrink with width.",
        **numbers,
        "claims": _claims(numbers, widths),
    }
    if harder:
        hw = tuple(int(w) for w in (harder_widths or widths))
        ds_h = clusters(seed=seed, **HARDER_CASE)
        harder_out = {
            "data": {
                **HARDER_CASE,
                "seed": seed,
                "clusters_disjoint": ds_h.info["clusters_disjoint"],
            },
            "noise_norm": float(np.linalg.norm(ds_h.y - ds_h.y_clean)),
        }
        kernel_limit = None  # the same for both inits: computed once
        for init in ("iid", "symmetric"):
            r = theorem_check(
                ds_h,
                hw,
                steps=steps,
                alpha=alpha,
                kappa=kappa,
                init=init,
                init_seed=init_seed,
                record_every=record_every,
                network_dtype=network_dtype,
                progress=progress,
                kernel_limit=kernel_limit,
            )
            kernel_limit = r["_kernel_limit"]
            harder_out[init] = split_numbers_and_curves(r)[0]
            harder_out[f"claims_{init}"] = _claims(harder_out[init], hw)
        summary["harder_case"] = harder_out
        figures.append(plot_harder_case(harder_out, out_dir / "theorem_harder_case.png"))
    summary["curves"] = curves
    summary["seconds"] = time.perf_counter() - t0
    summary["figures"] = [Path(f).name for f in figures]
    write_json(out_dir / "theorem.json", summary)
    return summary


def _decreasing(values) -> bool | None:
    """Strictly decreasing; None (not checked) with fewer than two widths."""
    if len(values) < 2:
        return None
    return bool(np.all(np.diff(np.asarray(values, dtype=float)) < 0))


def _claims(numbers: dict, widths) -> dict:
    """The statements the report checks, each a bool computed from the numbers next to it
    (None where a trend over widths cannot be checked: a single width)."""
    keys = ["inf"] + [str(w) for w in widths]
    beats = {
        k: bool(numbers[k]["self_distill_final_dist"] < numbers[k]["best_early_stop_dist"])
        for k in keys
    }
    order = [str(w) for w in sorted(widths)]
    inf_sd = numbers["inf"]["self_distill_final_dist"]
    return {
        "self_distill_below_best_early_stop": beats,
        "self_distill_below_best_early_stop_everywhere": all(beats.values()),
        "self_distill_gap_to_kernel_limit_decreases_with_width": _decreasing(
            [abs(numbers[k]["self_distill_final_dist"] - inf_sd) for k in order]
        ),
        "linearization_gap_self_distill_decreases_with_width": _decreasing(
            [numbers[k]["linearization_gap_self_distill"] for k in order]
        ),
        "linearization_gap_plain_decreases_with_width": _decreasing(
            [numbers[k]["linearization_gap_plain"] for k in order]
        ),
        "kernel_limit_gap_plain_decreases_with_width": _decreasing(
            [numbers[k]["kernel_limit_gap_plain"] for k in order]
        ),
        **{
            f"{gap}_early_decreases_with_width": _decreasing(
                [numbers[k][f"{gap}_early"] for k in order]
            )
            for gap in (
                "linearization_gap_plain",
                "linearization_gap_self_distill",
                "kernel_limit_gap_plain",
                "kernel_limit_gap_self_distill",
            )
        },
    }


def run(args) -> int:
    import jax

    from ._common import CliError

    jax.config.update("jax_enable_x64", True)  # the kernel limit is computed in float64
    if args.steps < 1:
        raise CliError(f"--steps must be ≥ 1, got {args.steps}")
    if any(w < 2 for w in args.widths):
        raise CliError(f"--widths must be integers ≥ 2, got {args.widths}")
    if not args.no_harder and any(w % 2 for w in args.widths):
        raise CliError(
            f"the harder case's symmetric init needs even widths, got {args.widths} "
            "(or pass --no-harder)"
        )
    summary = theorem_report(
        args.out,
        widths=args.widths,
        steps=args.steps,
        seed=args.seed,
        alpha=args.alpha,
        kappa=args.kappa,
        init_seed=args.init_seed,
        record_every=args.record_every,
        harder=not args.no_harder,
        network_dtype=args.network_dtype,
        progress=not args.no_progress,
    )
    keys = ["inf"] + [str(w) for w in args.widths]
    print(
        f"‖e‖ = {summary['noise_norm']:.4g}; ‖u − ŷ‖₂ per width (plain final / best early stop / "
        "self-distillation final, margin):"
    )
    for k in keys:
        r = summary[k]
        print(
            f"  {k:>6}: {r['plain_final_dist']:.4g} / {r['best_early_stop_dist']:.4g} / "
            f"{r['self_distill_final_dist']:.4g}, margin {r['self_distill_margin']:.3g}"
        )
    print(f"written to {Path(args.out) / 'theorem.json'}")
    return 0
