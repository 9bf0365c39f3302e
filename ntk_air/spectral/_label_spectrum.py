"""AIR, measured: the energy of labels over the NTK's eigenmodes (docs/science/air.md#label-energy).

Targets (n, C) are summed over columns: ‖c_i‖² = Σ_c (v_iᵀz_c)², ‖Z‖ the Frobenius norm.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._checks import is_concrete
from ._eigen import Eigensystem, _squared_coefficients, energy_per_mode_unchecked
from ._problem import check_labels

_ENERGY_FRACTIONS = (0.5, 0.9, 0.99)


class LabelSpectrum(NamedTuple):
    """Spectrum of one label vector/matrix z in the eigenbasis of H (a pytree).

    On a top-k eigensystem (`eig.rest` set) the per-mode arrays hold the top k modes, `tail`
    the energy beyond them, `modes_holding` is 0 where the top k do not hold the fraction, and
    alignment and complexity (which need the whole spectrum) are NaN.
    """

    energy: jax.Array  # (n,) p_i(z) = ‖v_iᵀz‖² / ‖z‖², eigenvalue order; sums to 1 (NaN if z = 0)
    cumulative: jax.Array  # (n,) C_z(k) = Σ_{i≤k} p_i(z), k = 1..n
    fractions: jax.Array  # (F,) energy fractions asked for, e.g. (0.5, 0.9, 0.99)
    modes_holding: jax.Array  # (F,) int, smallest k with C_z(k) ≥ fraction; 0 if z = 0 (undefined)
    norm: jax.Array  # () ‖z‖ (Frobenius for (n, C) targets)
    alignment: jax.Array  # () kernel-target alignment ⟨H, zzᵀ⟩_F / (‖H‖_F ‖zzᵀ‖_F)
    complexity: jax.Array  # () zᵀH⁻¹z (trace for matrices); inf when H is singular along z
    tail: jax.Array | float = 0.0  # () ‖(I − V_kV_kᵀ)z‖²/‖z‖²: energy beyond the columns' top k


class AIRSpectra(NamedTuple):
    """Label spectra of clean labels, noise and noisy labels from one decomposition (a pytree)."""

    clean: LabelSpectrum  # of ŷ
    noise: LabelSpectrum  # of e = y − ŷ (energy NaN when there is no noise, e = 0)
    noisy: LabelSpectrum  # of y


def _modes_holding(cumulative, fractions, *, top_k: bool = False):
    # 1 + #{i : C_i < f − n·eps} (a cumulative sum's rounding: 0.6 + 0.3 < 0.9), capped at n;
    # 0 for a zero z (NaN energies) and, over the top k of a larger spectrum, for f not held.
    tol = cumulative.shape[0] * jnp.finfo(cumulative.dtype).eps
    below = jnp.sum(cumulative[None, :] < fractions[:, None] - tol, axis=1)
    k = jnp.minimum(below + 1, cumulative.shape[0])
    if top_k:
        k = jnp.where(below < cumulative.shape[0], k, 0)
    return jnp.where(jnp.isnan(cumulative[-1]), 0, k)


def _alignment(eig, z):
    c2 = _squared_coefficients(eig, z)
    lam = eig.eigenvalues
    zz = z[:, None] if z.ndim == 1 else z
    gram = zz.T @ zz  # ‖zzᵀ‖_F = ‖zᵀz‖_F
    return jnp.sum(lam * c2) / (jnp.sqrt(jnp.sum(lam**2)) * jnp.sqrt(jnp.sum(gram**2)))


def _complexity(eig, z, null_energy_factor):
    c2 = _squared_coefficients(eig, z)
    lam = eig.eigenvalues
    n = lam.shape[0]
    eps = jnp.finfo(lam.dtype).eps
    # z is along the numerical null space (λ ≤ clamp_tol) beyond what rounding of Vᵀz explains.
    null = lam <= eig.clamp_tol
    energy_in_null = jnp.sum(jnp.where(null, c2, 0.0))
    singular = energy_in_null > null_energy_factor * n * eps * jnp.sum(c2)
    value = jnp.sum(jnp.where(null, 0.0, c2 / jnp.where(null, 1.0, lam)))
    return jnp.where(singular, jnp.inf, value)


def _spectrum(eig, z, fractions, null_energy_factor):
    """The dense statistics, or the top-k ones on the top-k columns when `eig` is a reduction."""
    return _spectrum_jit(eig if eig.rest is None else eig.top_k(), z, fractions, null_energy_factor)


@functools.partial(jax.jit, static_argnames=("fractions", "null_energy_factor"))
def _spectrum_jit(eig, z, fractions, null_energy_factor):
    energy = energy_per_mode_unchecked(eig, z)
    cumulative = jnp.cumsum(energy)
    fr = jnp.asarray(fractions, dtype=energy.dtype)
    norm2 = jnp.sum(z**2)
    top_k = eig.rest is not None
    if top_k:  # alignment and complexity need the whole spectrum; the tail from the projection
        v = eig.eigenvectors  # itself stays accurate (and ≥ 0) when tiny, unlike 1 − Σ p_i
        alignment = complexity = jnp.asarray(jnp.nan, energy.dtype)
        tail = jnp.sum((z - v @ (v.T @ z)) ** 2) / norm2
    else:
        alignment = _alignment(eig, z)
        complexity = _complexity(eig, z, null_energy_factor)
        tail = jnp.zeros((), energy.dtype)
    return LabelSpectrum(
        energy=energy,
        cumulative=cumulative,
        fractions=fr,
        modes_holding=_modes_holding(cumulative, fr, top_k=top_k),
        norm=jnp.sqrt(norm2),
        alignment=alignment,
        complexity=complexity,
        tail=tail,
    )


def _check_labels(eig: Eigensystem, z, name: str):
    return check_labels(z, name, eig.eigenvectors.shape[0], eig.eigenvalues.dtype)


def _check_fractions(fractions):
    fractions = tuple(float(f) for f in fractions)
    if not fractions or any(not (0.0 < f < 1.0) for f in fractions):
        raise ValueError(f"energy fractions must lie in (0, 1), got {fractions}")
    return fractions


def energy_per_mode(eig: Eigensystem, z) -> jax.Array:
    """Energy of labels z per eigenmode of H: p_i(z) = ‖v_iᵀ z‖² / ‖z‖², Σ_i p_i = 1.

    Args:
      eig: decomposition of H (n × n), eigenvalues descending.
      z: (n,) or (n, C) labels or real targets; nonzero.

    Returns:
      (n,) energies in eigenvalue order.

    Example:
      >>> p = energy_per_mode(eig, y_clean)
      >>> float(p.sum())
      1.0

    Reference: Dong et al. arXiv 1910.01255 (AIR); Arora et al. arXiv 1901.08584.
    """
    z = _check_labels(eig, z, "z")
    if is_concrete(z) and float(jnp.sum(z**2)) == 0.0:
        raise ValueError(
            "z is identically zero; its energy per mode p_i = (v_i·z)²/‖z‖² is undefined"
        )
    return jax.jit(energy_per_mode_unchecked)(eig, z)


def modes_holding(energy, fractions=_ENERGY_FRACTIONS) -> jax.Array:
    """Number of top modes holding each fraction of the energy: min{k : C(k) ≥ f − n·eps}.

    Args:
      energy: (n,) energies p_i in eigenvalue order (descending λ).
      fractions: energy fractions in (0, 1).

    Returns:
      (F,) ints, 1 ≤ k ≤ n; 0 when the energies are NaN (a zero label vector has no spectrum).

    Example:
      >>> modes_holding(jnp.array([0.6, 0.3, 0.1]), (0.5, 0.9)).tolist()
      [1, 2]
    """
    fractions = _check_fractions(fractions)
    energy = jnp.asarray(energy)
    return _modes_holding(jnp.cumsum(energy), jnp.asarray(fractions, dtype=energy.dtype))


def kernel_target_alignment(eig: Eigensystem, z) -> jax.Array:
    """Kernel-target alignment A(H, z) = ⟨H, zzᵀ⟩_F / (‖H‖_F ‖zzᵀ‖_F) = Σ_i λ_i ‖v_iᵀz‖² /
    ((Σ λ_i²)^½ ‖zᵀz‖_F) ∈ [−1, 1].

    Args:
      eig: decomposition of H.
      z: (n,) or (n, C) labels, nonzero.

    Returns:
      () alignment (NaN for z = 0).

    Example:
      >>> clean, noisy = kernel_target_alignment(eig, y_clean), kernel_target_alignment(eig, y)
      >>> bool(clean > noisy)   # clean labels lie more along the top modes
      True

    Reference: Cristianini et al., "On kernel-target alignment", NIPS 2001.
    """
    z = _check_labels(eig, z, "z")
    return jax.jit(_alignment)(eig, z)


def label_spectrum(
    eig: Eigensystem, z, *, fractions=_ENERGY_FRACTIONS, null_energy_factor: float = 100.0
) -> LabelSpectrum:
    """All spectral statistics of labels z from one decomposition of H (`LabelSpectrum`).

    p_i = ‖v_iᵀz‖²/‖z‖², C(k) = Σ_{i≤k} p_i, min{k : C(k) ≥ f}, alignment as in
    `kernel_target_alignment`, complexity zᵀH⁺z = Σ_{λ_i > clamp_tol} ‖v_iᵀz‖²/λ_i (inf when z
    puts more than null_energy_factor·n·eps of its energy on λ_i ≤ clamp_tol); a zero z has NaN
    energies, modes_holding 0.

    Args:
      eig: decomposition of H (n × n).
      z: (n,) or (n, C) labels.
      fractions: energy fractions in (0, 1) for `modes_holding`.
      null_energy_factor: rounding allowance of the complexity, in units of n·eps of the energy.

    Returns:
      LabelSpectrum.

    Example:
      >>> label_spectrum(eig, y_clean).modes_holding.tolist()   # 4 clusters: 4 modes hold 99 %
      [3, 4, 4]

    Reference: Dong et al. arXiv 1910.01255 (AIR); Arora et al. arXiv 1901.08584, Thm 5.1.
    """
    z = _check_labels(eig, z, "z")
    return _spectrum(eig, z, _check_fractions(fractions), float(null_energy_factor))


def air_spectra(
    eig: Eigensystem,
    y_clean,
    y_noisy,
    *,
    fractions=_ENERGY_FRACTIONS,
    null_energy_factor: float = 100.0,
) -> AIRSpectra:
    """Label spectra of clean labels ŷ, noise e = y − ŷ and noisy labels y, at once.

    AIR (docs/science/air.md#label-energy): C_ŷ(k) reaches ≈ 1 within few modes, C_e(k) ≈ k/n.

    Args:
      eig: decomposition of H (n × n).
      y_clean: (n,) or (n, C) ground-truth labels ŷ.
      y_noisy: same shape, observed labels y.
      fractions: see `label_spectrum`, and so is null_energy_factor.

    Returns:
      AIRSpectra(clean, noise, noisy), each a LabelSpectrum; noise energies are NaN if y = ŷ.

    Example:
      >>> s = air_spectra(eig, y_clean, y)         # n = 40 points in 4 clusters
      >>> round(float(s.clean.cumulative[3]), 2), round(float(s.noise.cumulative[3]), 2)
      (0.99, 0.2)

    Reference: Dong et al. arXiv 1910.01255.
    """
    y_clean = _check_labels(eig, y_clean, "y_clean")
    y_noisy = _check_labels(eig, y_noisy, "y_noisy")
    if y_clean.shape != y_noisy.shape:
        raise ValueError(
            f"y_clean and y_noisy must have the same shape, got {tuple(y_clean.shape)} "
            f"and {tuple(y_noisy.shape)}"
        )
    fr = _check_fractions(fractions)
    nf = float(null_energy_factor)
    return AIRSpectra(
        clean=_spectrum(eig, y_clean, fr, nf),
        noise=_spectrum(eig, y_noisy - y_clean, fr, nf),
        noisy=_spectrum(eig, y_noisy, fr, nf),
    )
