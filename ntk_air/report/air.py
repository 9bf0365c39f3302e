"""The AIR study's report: air.json (keys kept stable for other tools) and four figures."""

from __future__ import annotations

import numpy as np

from ..plots.air import plot_eigenvalues, plot_fitted_fractions, plot_label_energy, plot_u_curve

_KINDS = ("clean", "noise", "noisy")


def label_entries(data: dict, split: str = "train") -> int:
    """Entries of the label array of a split ((n,) or (n, C)), from a study's data summary."""
    cols = int(np.prod(data.get("label_shape", [0])[1:], dtype=np.int64))
    return int(data["n" if split == "train" else "n_test"]) * max(cols, 1)


def mse_of_dist(dist, entries: int):
    """Mean squared error ‖u − ŷ‖²/(entries) from the distance ‖u − ŷ‖ (None without entries or
    distance)."""
    if dist is None or entries <= 0:
        return None
    out = np.asarray(dist, np.float64) ** 2 / entries
    return float(out) if out.ndim == 0 else out


def _modes_holding(spectrum, fractions) -> dict:
    """{fraction: modes holding it}, None where the labels have no spectrum (no noise: e = 0);
    stacked checkpoints (T, F): {fraction: (T,) modes, 0 for none}."""
    modes = np.asarray(spectrum.modes_holding)
    if modes.ndim > 1:
        return {f"{f:g}": modes[:, j] for j, f in enumerate(fractions)}
    return {f"{f:g}": int(m) or None for f, m in zip(fractions, modes, strict=True)}


def _air_summary(study, kernel: dict | None = None) -> dict:
    """air.json's keys; `*_mse` = ‖u − ŷ‖² / (label entries)."""
    lam = np.asarray(study.eigenvalues)
    spectra, curve, ff = study.spectra, study.curve, study.fitted
    fr = [float(f) for f in np.asarray(spectra.clean.fractions)]
    n_train, n_test = label_entries(study.data), label_entries(study.data, "test")
    test_final = None if curve.test_dist is None else np.asarray(curve.test_dist)[-1]
    return {
        "task": study.task,
        "start_mse": mse_of_dist(curve.start_dist, n_train),
        "best_mse": mse_of_dist(curve.best_dist, n_train),
        "final_mse": mse_of_dist(curve.final_dist, n_train),
        "test_best_mse": mse_of_dist(curve.test_best_dist, n_test),
        "test_final_mse": mse_of_dist(test_final, n_test),
        "dataset": study.data,
        "kernel": kernel or {},
        "dtype": str(lam.dtype),
        "eta": study.eta,
        "eta_times_lambda_max": study.eta * float(lam[0]),
        "lambda_max": float(lam[0]),
        "lambda_min": float(lam[-1]),
        "most_negative_eigenvalue": float(study.most_negative),
        "clamp_tolerance": float(study.clamp_tol),
        "n_nonpositive_eigenvalues": int((lam <= 0).sum()),
        "eigenvalues": lam,
        "energy_clean": spectra.clean.energy,
        "energy_noise": spectra.noise.energy,
        "energy_noisy": spectra.noisy.energy,
        "energy_fractions": fr,
        "modes_holding": {k: _modes_holding(getattr(spectra, k), fr) for k in _KINDS},
        "alignment": {k: float(getattr(spectra, k).alignment) for k in _KINDS},
        "complexity": {k: float(getattr(spectra, k).complexity) for k in _KINDS},
        "norm": {k: float(getattr(spectra, k).norm) for k in _KINDS},
        "steps": study.steps,
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
        "steps_to_fit": study.steps_to_fit,
        "half_lives": study.half_lives,
        **_solver_keys(study),
    }


def solver_json(choice) -> dict:
    """A `resources.SolverChoice` for a report (deterministic parts only: no budget)."""
    return {
        "name": choice.solver,
        "requested": choice.requested,
        "rank": choice.rank,
        "memory_estimate_bytes": choice.memory_bytes,
        "seconds_estimate": choice.seconds,
    }


def _solver_keys(study) -> dict:
    """The spectral path (deterministic parts only: no budget) and, with top-k, what it adds."""
    if study.solver is None:
        return {}
    out, top = {"solver": solver_json(study.solver)}, study.topk
    if top is None:
        return out
    lam0 = float(np.asarray(study.eigenvalues)[0])
    res = np.asarray(top.residual_norms)
    out.update(
        {
            "eigenvalues_computed": int(res.shape[0]),
            "tail_energy": {k: float(getattr(top, f"tail_{k}")) for k in _KINDS},
            "residual_norms": res,
            "max_relative_residual": float(res.max() / lam0),
            "next_eigenvalue": float(top.next_eigenvalue),
            "converged": bool(top.converged),
            "residual_tolerance": float(top.tol),
            "block_products": int(top.block_products),
            "computed_in_float64": bool(top.upcast),
            "trajectory_tail": {
                "method": top.tail_method,
                "residual_norm": top.residual_norm,
                "tail_lower": top.tail_lower,
                "tail_upper": top.tail_upper,
            },
            "topk_note": "eigenvalues and per-mode arrays hold the top k modes (largest first); "
            "lambda_min is the k-th; fitted fractions and the U-curve come from the Rayleigh-Ritz "
            "reduction to the top k modes and the Krylov space of (y, y_clean); "
            "alignment, complexity and most_negative_eigenvalue need the whole spectrum (nan)",
        }
    )
    return out


def write_air(writer, study, *, prefix: str = "", kernel: dict | None = None) -> dict:
    """air.json and air_spectrum / air_energy / air_fitted_fraction / air_u_curve PNGs."""
    title, n = f"{study.data['name']}, n = {study.data['n']}", study.data["n"]
    drawn = {
        "air_spectrum.png": plot_eigenvalues(study.eigenvalues, title=f"NTK spectrum ({title})"),
        "air_energy.png": plot_label_energy(
            study.spectra, title=f"label energy per NTK mode ({title})", n=n
        ),
        "air_fitted_fraction.png": plot_fitted_fractions(
            study.fitted, title=f"fitted fraction ({title})"
        ),
        "air_u_curve.png": plot_u_curve(
            study.curve, title=f"U-curve of GD on noisy labels ({title})"
        ),
    }
    summary = _air_summary(study, kernel)
    summary["figures"] = writer.figures(prefix, drawn)
    writer.json(f"{prefix}air.json", summary)
    return summary


def air_headlines(s: dict) -> list[tuple[str, str, str]]:
    """(quantity, value, what it means) rows for the index's results table."""
    mh, fit = s["modes_holding"], s["steps_to_fit"]["0.9"]
    rows = [
        (
            "modes holding 90 % of the label energy",
            f"clean {mh['clean']['0.9']} vs noise {mh['noise']['0.9'] or '— (no noise)'}",
            "AIR: the ground truth lies along a few top NTK modes, the noise spreads over many.",
        ),
    ]
    if fit["clean"] is not None:
        noise_fit = (
            "never (within the steps shown)" if fit["noise"] is None else f"{fit['noise']:.0f}"
        )
        rows.append(
            (
                "GD step by which 90 % is fitted",
                f"clean {fit['clean']:.0f} vs noise {noise_fit}",
                "Gradient descent fits the informative labels long before the noise.",
            )
        )
    rows.append(
        (
            "‖u(k) − ŷ‖ of plain GD: start / best early stop / end",
            f"{s['start_dist']:.4g} / {s['best_dist']:.4g} (step {s['best_step']:.0f}) / "
            f"{s['final_dist']:.4g}",
            "The U-curve: the distance to the clean labels falls, then climbs as the noise is "
            "memorized.",
        )
    )
    if s.get("task") == "regression" and s.get("test_best_mse") is not None:
        rows.append(
            (
                "test mean squared error against ŷ: best early stop / end",
                f"{s['test_best_mse']:.4g} / {s['test_final_mse']:.4g}",
                "Regression targets: the error that accuracy measures for classes.",
            )
        )
    return rows
