"""The kernel-during-training study's report: entk.json, four figures, index.md, optionally the
kernels."""

from __future__ import annotations

import numpy as np

from ..plots.entk import (
    plot_entk_label_energy,
    plot_entk_motion,
    plot_entk_spectra,
    plot_entk_training,
)
from .air import _KINDS, _modes_holding
from .index import _INCOMPLETE_BANNER, _file_lines, _table


def _spectra_summary(spectra, eigenvalues) -> dict:
    """Energies per mode, modes holding each fraction, for one kernel or stacked checkpoints."""
    fractions = np.asarray(spectra.clean.fractions, dtype=np.float64)
    fractions = fractions[0] if fractions.ndim > 1 else fractions  # the same at each checkpoint
    out = {"eigenvalues": np.asarray(eigenvalues)}
    out["label_norms"] = {k: float(np.ravel(getattr(spectra, k).norm)[0]) for k in _KINDS}
    out.update({f"energy_{k}": np.asarray(getattr(spectra, k).energy) for k in _KINDS})
    out["modes_holding"] = {k: _modes_holding(getattr(spectra, k), fractions) for k in _KINDS}
    return out


ENTK_KEYS = (
    "dataset",
    "network",
    "training",
    "entk_plan",
    "dtype",
    "output_reduction",
    "alignment_definition",
    "checkpoints",
    "lambda_max",
    "lambda_min",
    "most_negative_eigenvalue",
    "eigenvalues",
    "label_norms",
    "energy_clean",
    "energy_noise",
    "energy_noisy",
    "modes_holding",
    "kernel_distance",
    "kernel_distance_test",
    "alignment",
    "curves",
    "limit",
)
"""The top-level keys of `entk.json` (`write_entk` adds `files` and `figures`)."""


def _entk_summary(study, network: dict | None = None, training: dict | None = None) -> dict:
    """entk.json's keys (`ENTK_KEYS`), checkpoints first: `eigenvalues` (T, n), `energy_*` (T, n)
    fractions p_i(z), `kernel_distance` (T,) ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F, `alignment.*` (T,),
    `modes_holding[kind][fraction]` (T,); `limit`: the same for Θ_∞ (no T axis), or None."""
    steps = np.asarray(study.steps)
    lam = np.asarray(study.eigenvalues)
    summary = {
        "dataset": study.data,
        "network": network or {},
        "training": {**(training or {}), "steps": int(steps[-1]), "eta": study.eta},
        "entk_plan": dict(study.plan),
        "dtype": str(lam.dtype),
        "output_reduction": "mean",
        "alignment_definition": (
            "A(Θ, z) = ⟨Θ, zzᵀ⟩_F / (‖Θ‖_F ‖zzᵀ‖_F): zᵀΘz / (‖Θ‖_F ‖z‖²) for ±1 labels, "
            "the trace form tr(ZᵀΘZ) / (‖Θ‖_F ‖ZᵀZ‖_F) for one-hot labels Z"
        ),
        "checkpoints": steps,
        "lambda_max": lam[:, 0],
        "lambda_min": lam[:, -1],
        "most_negative_eigenvalue": np.asarray(study.most_negative),
        **_spectra_summary(study.spectra, lam),
        "kernel_distance": study.kernel_distance,
        "kernel_distance_test": study.kernel_distance_test,
        "alignment": {k: np.asarray(getattr(study.alignment, k)) for k in _KINDS},
        "curves": study.curves._asdict(),
    }
    lim = study.limit
    summary["limit"] = None
    if lim is not None:
        summary["limit"] = {
            "name": lim.name,
            **_spectra_summary(lim.spectra, lim.eigenvalues),
            "alignment": {k: float(getattr(lim.alignment, k)) for k in _KINDS},
            "distance": lim.distance,
            "distance_test": lim.distance_test,
        }
    return summary


def write_entk(
    writer,
    study,
    *,
    prefix: str = "",
    network: dict | None = None,
    training: dict | None = None,
    kernels: bool = False,
) -> dict:
    """entk.json, entk_spectra / entk_label_energy / entk_motion / entk_training PNGs and, with
    `kernels`, entk_kernels.npz (steps (T,), ntk (T, n, n), ntk_test (T, n_test, n), limit_ntk
    (n, n), limit_ntk_test (n_test, n) where present).

    Args:
      writer: a `ReportWriter` on the output folder.
      study: `studies.EntkStudy`.
      prefix: prepended to every file name.
      network: the network's description for entk.json.
      training: how it was trained, for entk.json.
      kernels: also write the kernels at every checkpoint.

    Returns:
      The summary written to entk.json.
    """
    title = f"{study.data['name']}, n = {study.data['n']}"
    drawn = {
        "entk_spectra.png": plot_entk_spectra(
            study, title=f"eNTK spectrum during training ({title})"
        ),
        "entk_label_energy.png": plot_entk_label_energy(
            study, title=f"label energy per eNTK mode during training ({title})"
        ),
        "entk_motion.png": plot_entk_motion(
            study, title=f"kernel distance and alignment ({title})"
        ),
        "entk_training.png": plot_entk_training(study, title=f"the network's fit ({title})"),
    }
    figures = writer.figures(prefix, drawn)
    files = []
    if kernels:
        arrays = {"steps": study.steps, "ntk": study.ntk}
        if study.ntk_test is not None:
            arrays["ntk_test"] = study.ntk_test
        if study.limit is not None:
            arrays["limit_ntk"] = study.limit.ntk
            if study.limit.ntk_test is not None:
                arrays["limit_ntk_test"] = study.limit.ntk_test
        files.append(writer.npz(f"{prefix}entk_kernels.npz", **arrays).split("/")[-1])
    summary = _entk_summary(study, network, training)
    summary["files"] = files
    summary["figures"] = figures
    writer.json(f"{prefix}entk.json", summary)
    return summary


def _entk_headlines(s: dict) -> list[tuple[str, str, str]]:
    """(quantity, value, what it means) rows of index.md's results table."""
    steps = s["checkpoints"]
    last = len(steps) - 1
    held = s["modes_holding"]
    noise90 = held["noise"]["0.9"]
    rows = [
        (
            f"kernel distance ‖Θ_t − Θ_0‖/‖Θ_0‖ at t = {steps[last]}",
            f"{s['kernel_distance'][last]:.3g}",
            "How far the network's own kernel moved during training (0: the lazy, linearized "
            "regime of the NTK theory).",
        ),
        (
            "alignment A(Θ_t, ŷ): start → end",
            f"{s['alignment']['clean'][0]:.3g} → {s['alignment']['clean'][last]:.3g}",
            "The kernel turns towards the labels it is trained on when it moves.",
        ),
        (
            "modes holding 90 % of the energy (clean vs noise), start → end",
            f"{held['clean']['0.9'][0]} vs {noise90[0] if noise90[0] else '—'} → "
            f"{held['clean']['0.9'][last]} vs {noise90[last] if noise90[last] else '—'}",
            "AIR of the empirical kernel: the ground truth along few top eNTK modes, the noise "
            "spread over many.",
        ),
    ]
    if s.get("limit"):
        rows.append(
            (
                f"‖Θ_t − Θ_∞‖/‖Θ_∞‖ at t = 0 and t = {steps[last]}",
                f"{s['limit']['distance'][0]:.3g} and {s['limit']['distance'][last]:.3g}",
                f"Distance to the infinite-width kernel ({s['limit']['name']}): finite-width "
                "fluctuation at initialization, then the motion of training.",
            )
        )
    return rows


def render_entk_index(s: dict | None, *, title: str, context: list[str]) -> str:
    """index.md of an `ntk-air entk` folder: the headline table, then the files and figures.

    Args:
      s: the summary `write_entk` returned, or None while the run is going ("incomplete").
      title: the page title.
      context: lines about the data, network and training.

    Returns:
      The Markdown text.

    Example:
      >>> text = render_entk_index(None, title="eNTK", context=["digits"])
      >>> text.splitlines()[2].startswith("> **incomplete**")
      True
    """
    lines = [f"# {title}", ""]
    if s is None:
        return "\n".join(lines + [_INCOMPLETE_BANNER, ""] + context + [""])
    lines += context + ["", "## Results", ""]
    lines += _table(("quantity", "value", "what it means"), _entk_headlines(s))
    lines += [
        "",
        "Every number above was computed by this run; [`entk.json`](entk.json) has all of them "
        "(per checkpoint).",
        "",
    ]
    lines += _file_lines(s) + [""]
    return "\n".join(lines)


def entk_console_lines(s: dict, *, summary: str, optimizer: str, limit: str) -> str:
    """What `ntk-air entk` prints at the end: the run, the eNTK's motion and alignment, the
    limit kernel's distance (`limit`: what to say when there is none)."""
    last, lim = len(s["checkpoints"]) - 1, s["limit"]
    eta = "" if s["training"].get("eta") is None else f", η = {s['training']['eta']:.3g}"
    if lim:
        limit = f"{lim['name']}: ‖Θ_t − Θ_∞‖/‖Θ_∞‖ {lim['distance'][0]:.3g} → "
        limit += f"{lim['distance'][last]:.3g}"
    return (
        f"{s['dataset']['name']}: n = {s['dataset']['n']}, {summary}, "
        f"{s['training']['steps']} {optimizer} steps{eta}\n"
        f"eNTK: {s['entk_plan']['reason']}\n"
        f"‖Θ_t − Θ_0‖/‖Θ_0‖ at t = {s['checkpoints'][last]}: {s['kernel_distance'][last]:.3g}; "
        f"A(Θ_t, ŷ): {s['alignment']['clean'][0]:.3g} → {s['alignment']['clean'][last]:.3g}\n"
        f"infinite-width kernel: {limit}"
    )
