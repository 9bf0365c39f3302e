"""Label spectra (docs/science/air.md#label-energy) against independent numpy linear algebra and the
data model."""

from __future__ import annotations

import numpy as np
import pytest

from ntk_air import data
from ntk_air.kernels import two_layer_relu
from ntk_air.spectral import (
    air_spectra,
    eigensystem,
    energy_per_mode,
    kernel_target_alignment,
    label_spectrum,
    modes_holding,
)


def _unit_rows(rng, n, d):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def problem(x64):
    rng = np.random.default_rng(0)
    x = _unit_rows(rng, 40, 6)
    H = np.asarray(two_layer_relu(x))
    y = np.sign(rng.normal(size=40))
    Y = np.eye(3)[rng.integers(0, 3, size=40)]
    return H, y, Y


def test_eigensystem_residual_and_orthonormality(problem):
    H, _, _ = problem
    eig = eigensystem(H)
    lam, V = np.asarray(eig.eigenvalues), np.asarray(eig.eigenvectors)
    n = H.shape[0]
    scale = np.abs(lam).max()
    assert np.all(np.diff(lam) <= 0), "eigenvalues must be descending"
    assert np.linalg.norm(H @ V - V * lam) <= 50 * n * np.finfo(float).eps * scale * np.sqrt(n)
    assert np.abs(V.T @ V - np.eye(n)).max() <= 50 * n * np.finfo(float).eps


def test_energy_matches_numpy_and_sums_to_one(problem):
    H, y, Y = problem
    eig = eigensystem(H)
    lam_np, V_np = np.linalg.eigh(H)
    V_np = V_np[:, ::-1]
    # Eigenvalues of this kernel are simple, so per-mode energies are sign- and basis-invariant.
    assert np.min(np.abs(np.diff(lam_np))) > 1e-8
    for z in (y, Y):
        c = V_np.T @ z
        ref = (c**2 if c.ndim == 1 else (c**2).sum(1)) / (z**2).sum()
        p = np.asarray(energy_per_mode(eig, z))
        np.testing.assert_allclose(p, ref, atol=1e-12)
        assert abs(p.sum() - 1.0) < 1e-12


def test_one_hot_energy_is_weighted_column_energies(problem):
    H, _, Y = problem
    eig = eigensystem(H)
    weights = (Y**2).sum(0) / (Y**2).sum()
    combined = sum(w * np.asarray(energy_per_mode(eig, Y[:, c])) for c, w in enumerate(weights))
    np.testing.assert_allclose(np.asarray(energy_per_mode(eig, Y)), combined, atol=1e-13)


def test_modes_holding_is_the_smallest_k():
    rng = np.random.default_rng(1)
    p = rng.random(50) ** 4
    p /= p.sum()
    fractions = (0.5, 0.9, 0.99)
    got = np.asarray(modes_holding(p, fractions))
    C = np.cumsum(p)
    for f, k in zip(fractions, got, strict=True):
        assert C[k - 1] >= f and (k == 1 or C[k - 2] < f)
    assert list(np.asarray(modes_holding(np.array([0.6, 0.3, 0.1]), (0.5, 0.9)))) == [1, 2]
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        modes_holding(p, (0.5, 1.0))


def test_alignment_matches_frobenius_definition(problem):
    H, y, Y = problem
    eig = eigensystem(H)
    for z in (y, Y):
        Z = z[:, None] if z.ndim == 1 else z
        zz = Z @ Z.T
        ref = np.sum(H * zz) / (np.linalg.norm(H) * np.linalg.norm(zz))
        assert abs(float(kernel_target_alignment(eig, z)) - ref) < 1e-12


def test_complexity_matches_solve_and_is_inf_along_null_space(x64):
    rng = np.random.default_rng(2)
    x = _unit_rows(rng, 30, 5)
    H = np.asarray(two_layer_relu(x))
    y = rng.normal(size=30)
    eig = eigensystem(H)
    ref = y @ np.linalg.solve(H, y)
    assert abs(float(label_spectrum(eig, y).complexity) - ref) <= 1e-9 * ref
    Y = rng.normal(size=(30, 2))
    refY = np.trace(Y.T @ np.linalg.solve(H, Y))
    assert abs(float(label_spectrum(eig, Y).complexity) - refY) <= 1e-9 * refY

    # A rank-3 linear kernel: labels in its range have a finite pseudo-inverse complexity,
    # labels with a component in the null space make H singular along z → inf.
    F = rng.normal(size=(30, 3))
    K = F @ F.T
    eig_low = eigensystem(K)
    z_in = F @ rng.normal(size=3)
    ref_in = z_in @ np.linalg.pinv(K, rcond=1e-10) @ z_in
    assert abs(float(label_spectrum(eig_low, z_in).complexity) - ref_in) <= 1e-8 * ref_in
    assert np.isinf(float(label_spectrum(eig_low, z_in + 1e-3 * rng.normal(size=30)).complexity))


def test_air_on_clusters_with_flips(x64):
    ds = data.clusters(n_clusters=4, n_per_cluster=40, noise="flip", noise_rate=0.25, seed=0)
    eig = eigensystem(two_layer_relu(ds.x))
    s = air_spectra(eig, ds.y_clean, ds.y)
    K, n = 4, ds.x.shape[0]
    for spec in s:
        assert abs(float(spec.cumulative[-1]) - 1.0) < 1e-12
    # Clean labels are constant per cluster: they live in the top-K (cluster) eigenspace.
    assert float(s.clean.cumulative[K - 1]) >= 0.9
    # Flips inside clusters put a fraction ≈ ρ of the noise energy there (the cluster means of e),
    # the rest is spread over the other n − K modes.
    assert float(s.noise.cumulative[K - 1]) <= 0.25 + 0.1
    assert int(s.noise.modes_holding[1]) >= n // 2  # 90 % of the noise needs half the spectrum
    assert int(s.clean.modes_holding[1]) <= K
    assert float(s.clean.alignment) > 3 * float(s.noise.alignment)
    assert float(s.clean.complexity) < float(s.noise.complexity)


def test_air_on_clusters_with_zero_mean_noise(x64):
    # Gaussian noise has no preferred direction: its top-K energy is ≈ K/n.
    ds = data.clusters(n_clusters=4, n_per_cluster=40, noise="gaussian", noise_rate=0.5, seed=1)
    eig = eigensystem(two_layer_relu(ds.x))
    s = air_spectra(eig, ds.y_clean, ds.y)
    K, n = 4, ds.x.shape[0]
    assert float(s.clean.cumulative[K - 1]) >= 0.9
    assert float(s.noise.cumulative[K - 1]) <= 5 * K / n


def test_one_hot_multiclass_spectra(x64):
    ds = data.clusters(n_clusters=4, n_per_cluster=30, n_classes=4, noise_rate=0.2, seed=3)
    assert ds.y.ndim == 2
    eig = eigensystem(two_layer_relu(ds.x))
    s = air_spectra(eig, ds.y_clean, ds.y)
    assert float(s.clean.cumulative[3]) >= 0.9
    assert float(s.noise.cumulative[3]) <= 0.5


def test_label_spectrum_errors_and_zero_noise(problem):
    H, y, _ = problem
    eig = eigensystem(H)
    with pytest.raises(ValueError, match="shape"):
        label_spectrum(eig, y[:-1])
    with pytest.raises(ValueError, match="non-finite"):
        label_spectrum(eig, np.where(np.arange(40) == 3, np.nan, y))
    with pytest.raises(ValueError, match="zero"):
        energy_per_mode(eig, np.zeros(40))
    with pytest.raises(ValueError, match="same shape"):
        air_spectra(eig, y, np.stack([y, y], 1))
    s = air_spectra(eig, y, y)  # no noise: its spectrum is undefined, reported as NaN
    assert np.isnan(np.asarray(s.noise.energy)).all()
    assert list(np.asarray(s.noise.modes_holding)) == [0, 0, 0]  # not "1 mode holds it all"
    assert list(np.asarray(modes_holding(np.full(5, np.nan)))) == [0, 0, 0]
    assert abs(float(s.noisy.cumulative[-1]) - 1.0) < 1e-12
