"""The spectral core: checked by residual and orthonormality; negative eigenvalues reported."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from conftest import linalg_tol
from ntk_air import kernels
from ntk_air import spectral as eigen


def _kernel(n=30, d=5, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return np.array(kernels.two_layer_relu(x))


def test_residual_orthonormality_and_order(dtype):
    n = 30
    K = _kernel(n)
    eig = eigen.eigensystem(K.astype(dtype), dtype=dtype)
    lam, V = np.asarray(eig.eigenvalues, np.float64), np.asarray(eig.eigenvectors, np.float64)
    tol = linalg_tol(dtype, n)
    assert np.all(np.diff(lam) <= 0), "eigenvalues must be descending"
    assert np.linalg.norm(K @ V - V * lam) <= tol * np.linalg.norm(K)
    assert np.linalg.norm(V.T @ V - np.eye(n)) <= tol


def test_filters_are_functions_of_the_matrix(x64):
    """apply_spectral_filter(λ ↦ λ) = H z, (λ ↦ 1/λ) = H⁻¹ z, and a batch of filters at once."""
    K = _kernel(20)
    z = np.random.default_rng(1).standard_normal(20)
    eig = eigen.eigensystem(K)
    lam = eig.eigenvalues
    np.testing.assert_allclose(
        eigen.apply_spectral_filter(eig, lam, z), K @ z, rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(
        eigen.apply_spectral_filter(eig, 1 / lam, z), np.linalg.solve(K, z), rtol=1e-8
    )
    batch = eigen.apply_spectral_filter(eig, np.stack([lam, lam**2]), z)
    np.testing.assert_allclose(batch[1], K @ K @ z, rtol=1e-10, atol=1e-12)
    Z = np.stack([z, 2 * z], axis=1)
    np.testing.assert_allclose(
        eigen.apply_spectral_filter(eig, lam, Z), K @ Z, rtol=1e-10, atol=1e-12
    )
    coeffs = eigen.to_eigenbasis(eig, z)
    np.testing.assert_allclose(eig.eigenvectors @ coeffs, z, rtol=1e-12)


def test_rounding_negatives_clamped_real_negatives_reported(x64):
    K = _kernel(25)
    V = np.linalg.eigh(K)[1]
    lam = np.linalg.eigvalsh(K)
    # a rank-deficient PSD matrix: rounding makes some eigenvalues tiny negatives
    lam_low = np.where(np.arange(25) < 10, 0.0, lam)
    K_low = (V * lam_low) @ V.T
    K_low = (K_low + K_low.T) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eig = eigen.eigensystem(K_low)
    assert np.min(eig.eigenvalues) >= 0.0
    assert float(eig.most_negative) <= 0.0 and -float(eig.most_negative) < float(eig.clamp_tol)
    # a genuinely indefinite matrix: kept, and the warning names the value
    K_bad = K - 0.05 * np.eye(25) * (lam[0] + 1)
    with pytest.warns(eigen.NegativeEigenvalueWarning, match="most negative eigenvalue -"):
        eig_bad = eigen.eigensystem(K_bad)
    np.testing.assert_allclose(eig_bad.eigenvalues[-1], np.linalg.eigvalsh(K_bad)[0], rtol=1e-10)


def test_bad_input_errors(x64):
    with pytest.raises(ValueError, match="square"):
        eigen.eigensystem(np.ones((3, 4)))
    with pytest.raises(ValueError, match="symmetric"):
        eigen.eigensystem(np.array([[1.0, 2.0], [0.0, 1.0]]))
    K = _kernel(4)
    K[1, 2] = K[2, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        eigen.eigensystem(K)


def test_dtype_follows_the_kernel_and_float64_needs_x64():
    """One dtype rule: the decomposition keeps K's dtype; an explicit float64 needs x64 mode."""
    import jax
    import jax.numpy as jnp

    prev = jax.config.jax_enable_x64
    try:
        jax.config.update("jax_enable_x64", True)
        assert eigen.eigensystem(jnp.eye(3, dtype=jnp.float32)).eigenvalues.dtype == jnp.float32
        assert eigen.eigensystem(np.eye(3)).eigenvalues.dtype == jnp.float64
        jax.config.update("jax_enable_x64", False)
        assert eigen.eigensystem(np.eye(3)).eigenvalues.dtype == jnp.float32
        with pytest.raises(ValueError, match="jax_enable_x64"):
            eigen.eigensystem(np.eye(3), dtype="float64")
    finally:
        jax.config.update("jax_enable_x64", prev)
