"""The spectral core: decompose a kernel once, apply any function g of its eigenvalues: every
closed form of the toolkit is V g(Λ) Vᵀ z, on a dense or a top-k (`ritz_reduction`) `Eigensystem`.
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_float_array, check_finite, check_rank, is_concrete


class NegativeEigenvalueWarning(UserWarning):
    """A kernel had eigenvalues more negative than rounding explains (not PSD)."""


class SpectrumRest(NamedTuple):
    """What a top-k `Eigensystem` knows beyond its columns (a pytree of arrays)."""

    rank: jax.Array  # () int k: columns [0, k) are the top-k eigenpairs, descending; columns
    #   [k, m) Ritz pairs of K on the labels' Krylov space orthogonal to them, descending
    trace: jax.Array  # () tr K (from the diagonal), for the share of the spectrum beyond k
    residual_norms: jax.Array  # (k,) ‖K v_i − θ_i v_i‖₂ of the top k pairs
    next_eigenvalue: jax.Array  # () θ_{k+1}, estimate of λ_{k+1} (NaN when k = n)
    leak: jax.Array  # () ‖(I − P)KP‖₂ of the reduced space S (0: K S ⊂ S, exact dynamics)
    converged: jax.Array  # () bool, every residual ≤ tol · θ_1
    tol: jax.Array  # () that relative tolerance
    block_products: jax.Array  # () int, passes over K
    upcast: jax.Array = False  # () bool: a float32 request computed with float64 arithmetic


class Eigensystem(NamedTuple):
    """H = V diag(λ) Vᵀ on m ≤ n columns (a pytree; `rest` None when dense, m = n).

    Top-k (`rest` a `SpectrumRest`): the top k eigenpairs, then the Ritz pairs of the reduction,
    which then stands for H.
    """

    eigenvalues: jax.Array  # (m,) descending; tiny negatives within `clamp_tol` set to 0
    eigenvectors: jax.Array  # (n, m) orthonormal columns v_i, column i ↔ eigenvalues[i]
    most_negative: jax.Array  # () most negative eigenvalue before clamping (0.0 if none)
    clamp_tol: jax.Array  # () eigenvalues in (−clamp_tol, 0) were clamped to 0
    rest: SpectrumRest | None = None  # None: the whole spectrum (m = n)

    @property
    def top(self) -> int:
        """k: the leading columns that are eigenpairs of H (n when dense)."""
        return self.eigenvalues.shape[0] if self.rest is None else int(self.rest.rank)

    def top_k(self) -> Eigensystem:
        """The eigensystem of the top `self.top` eigenpairs alone (itself when dense)."""
        if self.rest is None:
            return self
        k = self.top
        return self._replace(
            eigenvalues=self.eigenvalues[:k], eigenvectors=self.eigenvectors[:, :k]
        )


@functools.partial(jax.jit, static_argnames=("clamp_factor",))
def _eigh_descending(K, clamp_factor):
    lam, V = jnp.linalg.eigh(K)
    lam, V = lam[::-1], V[:, ::-1]
    n = K.shape[0]
    # Rounding in eigh perturbs eigenvalues by about n·eps·‖K‖₂; only those are clamped.
    tol = clamp_factor * n * jnp.finfo(K.dtype).eps * jnp.max(jnp.abs(lam))
    most_negative = jnp.minimum(jnp.min(lam), 0.0)
    lam = jnp.where((lam < 0) & (lam > -tol), 0.0, lam)
    return lam, V, most_negative, tol


def require_symmetric(K, name: str) -> None:
    """Raise unless ‖K − Kᵀ‖_max ≤ 100·eps·‖K‖_max (concrete square arrays; skipped in a trace)."""
    if not is_concrete(K):
        return
    Kn = np.asarray(K)
    asym = float(np.max(np.abs(Kn - Kn.T))) if Kn.size else 0.0
    scale = float(np.max(np.abs(Kn))) if Kn.size else 0.0
    if asym > 100 * np.finfo(Kn.dtype).eps * max(scale, 1e-300):
        raise ValueError(
            f"{name} must be symmetric; max |K - K^T| = {asym:.3g} (max |K| = {scale:.3g})"
        )


def eigensystem(K, *, dtype=None, clamp_factor: float = 10.0, check_symmetric=True):
    """Decompose a symmetric kernel matrix once: H = Σ_i λ_i v_i v_iᵀ, λ_1 ≥ … ≥ λ_n.

    Eigenvalues in (−tol, 0), tol = clamp_factor · n · eps · max|λ|, are rounding and set to 0;
    more negative ones are kept and reported with a `NegativeEigenvalueWarning`.

    Args:
      K: (n, n) symmetric kernel matrix.
      dtype: float32 or float64; None (default) keeps K's dtype (float64 needs `jax_enable_x64`).
      clamp_factor: multiple of n·eps·‖K‖ treated as rounding.
      check_symmetric: raise if ‖K − Kᵀ‖_max > 100·eps·‖K‖_max.

    Returns:
      Eigensystem(eigenvalues (n,), eigenvectors (n, n), most_negative (), clamp_tol ()).

    Example:
      >>> eig = ntk_air.spectral.eigensystem(ntk_air.kernels.two_layer_relu(x))
      >>> bool(eig.eigenvalues[0] >= eig.eigenvalues[-1])
      True
    """
    K = as_float_array(K, "K", dtype)
    check_rank(K, "K", 2)
    if K.shape[0] != K.shape[1]:
        raise ValueError(f"K must be square, got shape {tuple(K.shape)}")
    if K.shape[0] == 0:
        raise ValueError("K is empty (0 × 0): an eigensystem needs at least one point")
    check_finite(K, "K")
    if check_symmetric:
        require_symmetric(K, "K")
    lam, V, most_negative, tol = _eigh_descending(K, float(clamp_factor))
    if is_concrete(most_negative) and float(most_negative) < -float(tol):
        warnings.warn(
            "kernel is not positive semidefinite: most negative eigenvalue "
            f"{float(most_negative):.3g} is beyond the rounding tolerance {float(tol):.3g}; "
            "it is kept, not clamped",
            NegativeEigenvalueWarning,
            stacklevel=2,
        )
    return Eigensystem(lam, V, most_negative, tol)


def to_eigenbasis(eig: Eigensystem, z):
    """Coefficients Vᵀ z: (n,) → (n,), or (n, c) → (n, c) for several label columns."""
    return eig.eigenvectors.T @ z


def apply_spectral_filter(eig: Eigensystem, g, z):
    """g(H) z = V diag(g) Vᵀ z for filter values g = g(λ).

    Args:
      eig: the decomposition of H.
      g: (n,) filter values in eigenvalue order, or (..., n) for a batch of filters.
      z: (n,) or (n, c) labels.

    Returns:
      (n,) / (n, c), or (..., n) / (..., n, c) for a batch of filters.
    """
    coeffs = to_eigenbasis(eig, z)
    if coeffs.ndim == 1:
        return (g * coeffs) @ eig.eigenvectors.T
    return jnp.einsum("ij,...j,jc->...ic", eig.eigenvectors, g, coeffs)


def _squared_coefficients(eig: Eigensystem, z) -> jax.Array:
    """‖v_iᵀ z‖², shape (n,): label columns of an (n, C) z summed (unnormalized energies)."""
    c = to_eigenbasis(eig, z)
    return c**2 if c.ndim == 1 else jnp.sum(c**2, axis=1)


def energy_per_mode_unchecked(eig: Eigensystem, z) -> jax.Array:
    """p_i(z) = ‖v_iᵀ z‖² / ‖z‖² without input checks (for use inside jit; NaN for z = 0)."""
    return _squared_coefficients(eig, z) / jnp.sum(z**2)
