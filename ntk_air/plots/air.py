"""Figures of Anisotropic Information Retrieval: spectrum, label energies, fitting, U-curve."""

from __future__ import annotations

import numpy as np

from . import _KIND_COLORS, _against_steps, _axes_or_new, _label_axes

__all__ = ["plot_eigenvalues", "plot_label_energy", "plot_fitted_fractions", "plot_u_curve"]

_MODE = "mode i (descending eigenvalue)"
_STEP = "gradient-descent step k"


def plot_eigenvalues(eigenvalues, *, ax=None, title: str = "NTK spectrum"):
    """Eigenvalues λ_1 ≥ … ≥ λ_n of H on a log scale (non-positive ones counted in the title)."""
    lam = np.asarray(eigenvalues, dtype=np.float64)
    pos = lam > 0
    n_nonpositive = int((~pos).sum())
    ax = _axes_or_new(ax, figsize=(5.5, 4))
    ax.semilogy(np.arange(1, lam.size + 1)[pos], lam[pos], ".-", ms=3)
    if n_nonpositive:  # a log axis cannot show them; say how many are missing
        title = f"{title}\n{n_nonpositive} non-positive eigenvalues not shown"
    return _label_axes(ax, xlabel=_MODE, ylabel="eigenvalue λ_i", title=title, legend=None)


def plot_label_energy(
    spectra, *, axes=None, title: str = "label energy per NTK mode", n: int | None = None
):
    """Energy per mode p_i(z) (left, log y) and cumulative C_z(k) (right, log x) of ŷ, e and y.

    Args:
      spectra: `ntk_air.spectral.AIRSpectra` (clean, noise, noisy).
      axes: a pair of Axes to draw on (None: a new figure).
      title: the figure's title.
      n: the number of points (default: the modes shown; give it for a top-k spectrum).
    """
    ax0, ax1 = _axes_or_new(axes, 1, 2, figsize=(11, 4))
    fig = ax0.figure
    for name in ("noisy", "noise", "clean"):
        s = getattr(spectra, name)
        p = np.asarray(s.energy, dtype=np.float64)
        if not np.isfinite(p).all():  # e.g. no noise at all: nothing to draw
            continue
        k = np.arange(1, p.size + 1)
        held = ", ".join(
            f"{100 * f:g} % in {int(m) if m else f'> {p.size}'}"
            for f, m in zip(np.asarray(s.fractions), np.asarray(s.modes_holding), strict=True)
        )
        shown = p > 0
        ax0.semilogy(k[shown], p[shown], ".", ms=3, alpha=0.8, color=_KIND_COLORS[name], label=name)
        ax1.semilogx(
            k, np.asarray(s.cumulative), "-", color=_KIND_COLORS[name], label=f"{name} ({held})"
        )
    k = np.arange(1, np.asarray(spectra.clean.energy).size + 1)
    n = k.size if n is None else int(n)
    ax1.semilogx(k, k / n, ":", color="k", label=f"uniform k/n (n = {n})")
    ax1.set_ylim(0, 1.02)
    _label_axes(
        ax0, xlabel=_MODE, ylabel="energy p_i(z) = (v_i·z)² / ‖z‖²", title="energy per mode"
    )
    _label_axes(
        ax1,
        xlabel="number of top modes k",
        ylabel="cumulative energy C_z(k)",
        title="cumulative energy",
    )
    fig.suptitle(title)
    return ax0, ax1


def plot_fitted_fractions(fractions, *, ax=None, title: str = "fitted fraction of signal vs noise"):
    """F_ŷ(k), F_e(k) and F_y(k) against the step k (symlog x: k = 0 shown).

    Args:
      fractions: `ntk_air.dynamics.FittedFractions`.
      ax: the Axes to draw on (None: a new figure).
      title: the Axes' title.
    """
    ax, steps = _axes_or_new(ax, figsize=(6, 4)), np.asarray(fractions.steps, np.float64)
    for name, label in (
        ("clean", "clean labels ŷ"),
        ("noise", "noise e = y − ŷ"),
        ("noisy", "noisy labels y"),
    ):
        f = np.asarray(getattr(fractions, name), dtype=np.float64)
        if np.isfinite(f).all():
            ax.plot(steps, f, "-", color=_KIND_COLORS[name], label=label)
    ax.set_ylim(-0.02, 1.02)
    return _against_steps(ax, _STEP, "fitted fraction F_z(k) = ‖g_k(H) z‖² / ‖z‖²", title)


def plot_u_curve(curve, *, ax=None, title: str = "distance to the clean labels"):
    """‖u(k) − ŷ‖ on train (and ‖f_k(x_test) − ŷ_test‖ on test) against k, best steps marked.

    Args:
      curve: `ntk_air.dynamics.UCurve`.
      ax: the Axes to draw on (None: a new figure).
      title: the Axes' title.
    """
    ax, steps = _axes_or_new(ax, figsize=(6, 4)), np.asarray(curve.steps, np.float64)
    shown = []
    for side, prefix, what, color, marker in (
        ("train", "", "‖u(k) − ŷ‖", "tab:blue", "o"),
        ("test", "test_", "‖f_k − ŷ_test‖", "tab:orange", "s"),
    ):
        dist = getattr(curve, f"{side}_dist")
        if dist is None:
            continue
        ax.plot(steps, np.asarray(dist), "-", color=color, label=f"{side} {what}")
        k = float(getattr(curve, f"{prefix}best_step"))
        d = float(getattr(curve, f"{prefix}best_dist"))
        ax.plot([k], [d], marker, color=color, label=f"best {side} step {k:.0f} ({d:.3g})")
        shown.append(np.asarray(dist, dtype=np.float64).ravel())
    shown = np.concatenate(shown)
    shown = shown[np.isfinite(shown) & (shown > 0)]
    if shown.size and shown.max() > 1e3 * shown.min():  # e.g. a forced diverging η
        ax.set_yscale("log")
    return _against_steps(ax, _STEP, "ℓ2 distance to clean labels", title)
