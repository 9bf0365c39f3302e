"""`ntk-air air [DATA.npz]`: the AIR picture — label spectra, fitted fractions and the U-curve.

One eigendecomposition of the NTK of the training inputs gives everything: the energy of clean
labels, noise and noisy labels per eigenmode (SCIENCE.md §2), and the closed-form linearized GD
trajectory from u(0) = 0 at ~200 log-spaced steps (§3), on train and test points.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ._common import (
    CliError,
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

__all__ = ["add_parser", "run", "air_report", "default_max_step"]

# The default horizon: the step by which the noise is 99 % fitted (of what GD can ever fit).
NOISE_FIT_TARGET = 0.99
MAX_STEP_CAP = 1e12


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "air",
        help="AIR: label energy per NTK mode, fitted fractions and the early-stopping U-curve",
        description="Decomposes the NTK of the training inputs once, writes air.json (eigenvalues, "
        "energy of clean labels / noise / noisy labels per mode, ‖u(k) − ŷ‖ along closed-form "
        "linearized GD from u(0) = 0, the best early stop) and PNG figures into --out.",
    )
    p.add_argument("--out", default="air_out", help="output folder (default air_out)")
    p.add_argument(
        "--steps",
        type=float,
        default=None,
        metavar="MAX_STEP",
        help="largest GD step shown (default: 10^⌈log10(2k)⌉ with k the step by which 99 %% of "
        "the fittable noise is fitted, so the U-curve is complete)",
    )
    p.add_argument(
        "--num-steps", type=int, default=200, help="number of log-spaced steps (default 200)"
    )
    p.add_argument("--eta", type=float, default=None, help="GD step size η (default 1/λ_max)")
    p.add_argument(
        "--force", action="store_true", help="allow η ≥ 2/λ_max (diverging GD) instead of an error"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_data_options(p)
    add_kernel_options(p)
    p.set_defaults(func=run)


def default_max_step(
    eig, y_clean, y_noisy, *, eta, force: bool = False, target: float = NOISE_FIT_TARGET
) -> float:
    """A horizon that shows the whole U-curve: 10^⌈log10(2k)⌉, k the first step with
    F_e(k) ≥ target · F_e(∞) (F_y when there is no noise), searched on a grid up to 1e12.

    When some mode has no limit (|1 − ηλ| ≥ 1: a forced η ≥ 2/λ_max, or a negative eigenvalue),
    k is instead the step by which that mode has grown a millionfold (1000 if it only oscillates).
    """
    from ..dynamics import fitted_fractions

    lam = np.asarray(eig.eigenvalues)
    base = np.abs(1.0 - eta * lam[np.abs(lam) > float(eig.clamp_tol)])
    growth = float(base.max()) if base.size else 0.0
    if growth >= 1.0:
        k = np.log(1e6) / np.log(growth) if growth > 1.0 else 1e3
    else:
        grid = np.concatenate(
            [[0.0], np.unique(np.round(np.logspace(0, np.log10(MAX_STEP_CAP), 481)))]
        )
        steps = np.concatenate([grid, [np.inf]])
        ff = fitted_fractions(eig, y_clean, y_noisy, steps, eta=eta, force=force)
        f = np.asarray(ff.noise)
        if not np.isfinite(f).all():  # no noise: the noisy labels' own fitting sets the horizon
            f = np.asarray(ff.noisy)
        reached = np.flatnonzero(f[:-1] >= target * f[-1])
        k = grid[reached[0]] if reached.size else MAX_STEP_CAP
    return float(min(10 ** np.ceil(np.log10(max(2 * k, 10))), MAX_STEP_CAP))


def _first_step_reaching(steps, fractions, level):
    hit = np.flatnonzero(np.asarray(fractions) >= level)
    return float(steps[hit[0]]) if hit.size else None


def _scalar_info(info: dict) -> dict:
    """The data set's metadata that fits in a summary (scalars and strings; no index arrays)."""
    return {
        k: v
        for k, v in info.items()
        if v is None or isinstance(v, bool | int | float | str | np.generic)
    }


def air_report(
    dataset,
    kernel_fn,
    out_dir,
    *,
    steps=None,
    num_steps: int = 200,
    eta=None,
    force: bool = False,
    dtype: str = "float64",
    tile_size=None,
    kernel_config: dict | None = None,
    system: KernelSystem | None = None,
    progress: bool = True,
) -> dict:
    """AIR of a data set under a kernel: writes air.json and four PNGs; returns the summary.

    Args:
      dataset: `ntk_air.data.Dataset` (y noisy, y_clean ground truth; ±1 vectors or one-hot).
      kernel_fn: kernel_fn(x1, x2=None, *, tile_size, dtype) -> Kernel (its `.ntk` is used).
      out_dir: folder for air.json and the figures (created).
      steps: None (horizon from `default_max_step`), a max step (scalar), or an array of steps.
      num_steps: log-spaced points when `steps` is None or a scalar.
      eta: GD step size (default 1/λ_max); force: allow η ≥ 2/λ_max.
      dtype: "float64" (default) or "float32".
      tile_size: kernel tiling.
      kernel_config: recorded in the JSON as `kernel` (e.g. arch, depth).
      system: precomputed kernels and eigendecomposition (`_common.kernel_system`), so that
        several reports on one data set decompose once; None computes them here.
      progress: show a tqdm progress bar over the stages.

    Returns:
      dict written to air.json, plus `figures` (PNG file names in out_dir).
    """
    from tqdm.auto import tqdm

    from ..dynamics import (
        fitted_fractions,
        gd_half_lives,
        log_spaced_steps,
        resolve_step_size,
        u_curve,
    )
    from ..plots.air import plot_eigenvalues, plot_fitted_fractions, plot_label_energy, plot_u_curve
    from ..spectrum import air_spectra

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings = {}
    bar = tqdm(total=4, desc="ntk-air air", disable=not progress, unit="stage")

    def stage(name):
        bar.set_postfix_str(name)
        timings[name] = time.perf_counter()

    def done(name):
        timings[name] = time.perf_counter() - timings[name]
        bar.update(1)

    stage("kernel and eigendecomposition")
    if system is None:
        system = kernel_system(dataset, kernel_fn, dtype=dtype, tile_size=tile_size)
    K_test, eig = system.ntk_test, system.eig
    n_test = int(dataset.x_test.shape[0])
    eig.eigenvalues.block_until_ready()
    done("kernel and eigendecomposition")

    stage("spectra")
    eta = resolve_step_size(eig, eta, force=force)
    spectra = air_spectra(eig, dataset.y_clean, dataset.y)
    done("spectra")

    stage("dynamics")
    if steps is None:
        steps = log_spaced_steps(
            default_max_step(eig, dataset.y_clean, dataset.y, eta=eta, force=force), num_steps
        )
    elif np.ndim(steps) == 0:
        steps = log_spaced_steps(steps, num_steps)
    else:
        steps = np.sort(np.asarray(steps, dtype=np.float64))
    test_kwargs = {"k_test_train": K_test, "y_test_clean": dataset.y_test_clean} if n_test else {}
    curve = u_curve(eig, dataset.y, dataset.y_clean, steps, eta=eta, force=force, **test_kwargs)
    ff = fitted_fractions(eig, dataset.y_clean, dataset.y, steps, eta=eta, force=force)
    half_lives = gd_half_lives(eig, eta=eta, force=force)
    done("dynamics")

    stage("figures")
    title = f"{dataset.name}, n = {dataset.x.shape[0]}"
    figures = [
        plot_eigenvalues(
            eig.eigenvalues, out_dir / "air_spectrum.png", title=f"NTK spectrum ({title})"
        ),
        plot_label_energy(
            spectra, out_dir / "air_energy.png", title=f"label energy per NTK mode ({title})"
        ),
        plot_fitted_fractions(
            ff, out_dir / "air_fitted_fraction.png", title=f"fitted fraction ({title})"
        ),
        plot_u_curve(
            curve, out_dir / "air_u_curve.png", title=f"U-curve of GD on noisy labels ({title})"
        ),
    ]
    done("figures")
    bar.close()

    lam = np.asarray(eig.eigenvalues)
    fr = [float(f) for f in np.asarray(spectra.clean.fractions)]
    kinds = ("clean", "noise", "noisy")
    f_clean, f_noise = np.asarray(ff.clean), np.asarray(ff.noise)
    summary = {
        "dataset": {
            "name": dataset.name,
            "n": int(dataset.x.shape[0]),
            "d": int(dataset.x.shape[1]),
            "n_test": n_test,
            "label_shape": list(np.shape(dataset.y)),
            "one_hot": bool(np.ndim(dataset.y) == 2),
            **_scalar_info(dataset.info),
        },
        "kernel": kernel_config or {},
        "dtype": str(lam.dtype),  # of the decomposition used (a given `system` sets it)
        "eta": eta,
        "eta_times_lambda_max": eta * float(lam[0]),
        "lambda_max": float(lam[0]),
        "lambda_min": float(lam[-1]),
        "most_negative_eigenvalue": float(eig.most_negative),
        "clamp_tolerance": float(eig.clamp_tol),
        "n_nonpositive_eigenvalues": int((lam <= 0).sum()),
        "eigenvalues": lam,
        "energy_clean": spectra.clean.energy,
        "energy_noise": spectra.noise.energy,
        "energy_noisy": spectra.noisy.energy,
        "energy_fractions": fr,
        "modes_holding": {
            # None where the labels have no spectrum (no noise: e = 0)
            k: dict(
                zip(
                    [f"{f:g}" for f in fr],
                    [int(m) or None for m in np.asarray(getattr(spectra, k).modes_holding)],
                    strict=True,
                )
            )
            for k in kinds
        },
        "alignment": {k: float(getattr(spectra, k).alignment) for k in kinds},
        "complexity": {k: float(getattr(spectra, k).complexity) for k in kinds},
        "norm": {k: float(getattr(spectra, k).norm) for k in kinds},
        "steps": steps,
        "dist_to_clean": curve.train_dist,
        "best_step": float(curve.best_step),
        "best_dist": float(curve.best_dist),
        "start_dist": float(curve.start_dist),
        "final_dist": float(curve.final_dist),
        "test_dist_to_clean": curve.test_dist,
        "test_best_step": None if curve.test_best_step is None else float(curve.test_best_step),
        "test_best_dist": None if curve.test_best_dist is None else float(curve.test_best_dist),
        "fitted_clean": ff.clean,
        "fitted_noise": ff.noise,
        "fitted_noisy": ff.noisy,
        "steps_to_fit": {
            f"{level:g}": {
                "clean": _first_step_reaching(steps, f_clean, level),
                "noise": _first_step_reaching(steps, f_noise, level),
            }
            for level in (0.5, 0.9, 0.99)
        },
        "half_lives": half_lives,
        "seconds": timings,
        "figures": [Path(f).name for f in figures],
    }
    write_json(out_dir / "air.json", summary)
    return summary


def run(args) -> int:
    dtype = setup_dtype(args)
    dataset = load_dataset(args)
    kernel_fn = build_kernel_fn(args)
    try:
        s = air_report(
            dataset,
            kernel_fn,
            args.out,
            steps=args.steps,
            num_steps=args.num_steps,
            eta=args.eta,
            force=args.force,
            dtype=dtype,
            tile_size=args.tile_size,
            kernel_config=kernel_config(args),
            progress=not args.no_progress,
        )
    except ValueError as err:
        raise CliError(str(err)) from err
    mh = s["modes_holding"]
    fit = s["steps_to_fit"]["0.9"]

    def step(k):
        return "never (within the steps shown)" if k is None else f"{k:.0f}"

    noise_modes = "no noise" if mh["noise"]["0.9"] is None else f"{mh['noise']['0.9']} (noise)"
    print(
        f"{dataset.name}: n = {s['dataset']['n']}, "
        f"λ in [{s['lambda_min']:.3g}, {s['lambda_max']:.3g}], η = {s['eta']:.3g}\n"
        f"90 % of the energy in the top {mh['clean']['0.9']} modes (clean labels) vs "
        f"{noise_modes}\n"
        f"90 % fitted by step {step(fit['clean'])} (clean) vs "
        f"{step(fit['noise']) + ' (noise)' if mh['noise']['0.9'] else 'no noise'}\n"
        f"‖u(k) − ŷ‖: {s['start_dist']:.4g} at k = 0, best {s['best_dist']:.4g} at k = "
        f"{s['best_step']:.0f}, {s['final_dist']:.4g} at k = {s['steps'][-1]:.0f}\n"
        f"wrote {Path(args.out) / 'air.json'} and {', '.join(s['figures'])}"
    )
    return 0
