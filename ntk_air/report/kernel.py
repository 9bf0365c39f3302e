"""The kernel study's report: kernel.json, kernel.npz and the kernel/spectrum figure."""

from __future__ import annotations

import numpy as np

from ..plots.kernels import plot_kernel_and_spectrum


def _kernel_summary(study) -> dict:
    """kernel.json's keys."""
    lam = np.asarray(study.eigenvalues)
    return {
        "n": int(lam.shape[0]),
        "dtype": str(lam.dtype),
        "lambda_max": study.lambda_max,
        "lambda_min": study.lambda_min,
        "condition_number": study.condition_number,
        "most_negative_eigenvalue": study.most_negative_eigenvalue,
        "clamp_tolerance": study.clamp_tolerance,
        "eigenvalues": lam,
    }


def write_kernel(writer, study, *, prefix: str = "") -> dict:
    """kernel.json, kernel.npz (ntk, eigenvalues) and kernel_spectrum.png."""
    writer.npz(f"{prefix}kernel.npz", ntk=study.ntk, eigenvalues=study.eigenvalues)
    drawn = plot_kernel_and_spectrum(study.ntk, study.eigenvalues, title=study.data["name"])
    figures = writer.figures(prefix, {"kernel_spectrum.png": drawn})
    summary = _kernel_summary(study)
    summary["files"] = ["kernel.npz"]
    summary["figures"] = figures
    writer.json(f"{prefix}kernel.json", summary)
    return summary


def kernel_headlines(s: dict) -> list[tuple[str, str, str]]:
    """(quantity, value, what it means) rows for the index's results table."""
    return [
        (
            "NTK eigenvalues λ_max / λ_min (condition number)",
            f"{s['lambda_max']:.4g} / {s['lambda_min']:.3g} ({s['condition_number']:.3g})",
            "The spread of the spectrum sets how fast each mode is fitted: GD with η = 1/λ_max "
            "fits mode i at rate ηλ_i.",
        )
    ]
