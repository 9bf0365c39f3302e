"""`ntk-air air` round trip: air.json agrees with an independent numpy computation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ntk_air import cli, data
from ntk_air.kernels import two_layer_relu

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _numpy_two_layer_relu(x1, x2):
    """H∞ = ρ(π − arccos ρ)/(2π) from ntk_air.kernels (tested against Monte Carlo in its own
    suite), checked here against the formula written out in numpy.

    The kernel itself is taken from the package because arccos near ρ = 1 turns rounding of ρ
    into ~1e-8 differences between two equally valid evaluations; everything downstream of the
    kernel (eigh, energies, powers, distances) is recomputed independently below.
    """
    K = np.asarray(two_layer_relu(x1, x2))
    rho = np.clip(x1 @ x2.T, -1.0, 1.0)
    np.testing.assert_allclose(K, rho * (np.pi - np.arccos(rho)) / (2 * np.pi), atol=1e-7)
    return K


def _numpy_air(x, y, y_clean, x_test, y_test, steps, eta=None):
    """Everything air.json reports, from numpy's eigh and plain powers."""
    H = _numpy_two_layer_relu(x, x)
    lam, V = np.linalg.eigh(H)
    lam, V = lam[::-1], V[:, ::-1]
    eta = 1.0 / lam[0] if eta is None else eta

    def energy(z):
        c = V.T @ z
        return (c**2 if c.ndim == 1 else (c**2).sum(1)) / (z**2).sum()

    cy = V.T @ y
    cy = cy if cy.ndim == 2 else cy[:, None]
    dist, test_dist, fitted, fitted_noise = [], [], [], []
    e = (y - y_clean).reshape(len(lam), -1)
    Kt_V = _numpy_two_layer_relu(x_test, x) @ V if len(x_test) else None
    for k in steps:
        power = (1.0 - eta * lam) ** int(k)
        u = (V @ ((1.0 - power)[:, None] * cy)).reshape(y.shape)  # u(k) = (I − (I − ηH)^k) y
        dist.append(np.linalg.norm(u - y_clean))
        gc = (1.0 - power)[:, None] * (V.T @ y_clean).reshape(len(lam), -1)
        fitted.append((gc**2).sum() / (y_clean**2).sum())
        ge = (1.0 - power)[:, None] * (V.T @ e)
        fitted_noise.append((ge**2).sum() / (e**2).sum())
        if Kt_V is not None:
            f = (Kt_V @ (((1.0 - power) / lam)[:, None] * cy)).reshape(y_test.shape)
            test_dist.append(np.linalg.norm(f - y_test))
    return {
        "eigenvalues": lam,
        "eta": eta,
        "energy_clean": energy(y_clean),
        "energy_noise": energy(y - y_clean),
        "energy_noisy": energy(y),
        "dist_to_clean": np.array(dist),
        "test_dist_to_clean": np.array(test_dist),
        "fitted_clean": np.array(fitted),
        "fitted_noise": np.array(fitted_noise),
    }


def _check_against_numpy(out, ds, rtol=1e-10):
    summary = json.loads((out / "air.json").read_text())
    for key in (
        "eigenvalues",
        "energy_clean",
        "energy_noise",
        "energy_noisy",
        "steps",
        "dist_to_clean",
        "best_step",
        "best_dist",
        "final_dist",
        "figures",
    ):
        assert key in summary, key
    steps = np.array(summary["steps"])
    ref = _numpy_air(ds.x, ds.y, ds.y_clean, ds.x_test, ds.y_test_clean, steps)
    lam = ref["eigenvalues"]
    # per-mode energies are basis-independent only for simple eigenvalues
    assert np.min(-np.diff(lam)) > 1e-9 * lam[0]
    np.testing.assert_allclose(summary["eigenvalues"], lam, rtol=1e-10, atol=1e-12 * lam[0])
    assert summary["eta"] == pytest.approx(ref["eta"], rel=1e-10)
    # Per-mode energies depend on single eigenvectors, which two eigh implementations may
    # resolve differently by up to ~eps·λ_max/gap; the smallest gap of the default data is
    # ~3e-7·λ_max, so ~1e-9: hence 1e-8.
    for key in ("energy_clean", "energy_noise", "energy_noisy"):
        np.testing.assert_allclose(summary[key], ref[key], atol=1e-8)
    # Distances and fitted fractions are spectral functions of H (basis-independent): a
    # backward-stable eigh gives them to ~n·eps, hence rtol = 1e-10.
    np.testing.assert_allclose(summary["dist_to_clean"], ref["dist_to_clean"], rtol=rtol)
    for key in ("fitted_clean", "fitted_noise"):
        np.testing.assert_allclose(summary[key], ref[key], atol=rtol)
    if len(ds.x_test):
        np.testing.assert_allclose(
            summary["test_dist_to_clean"], ref["test_dist_to_clean"], rtol=rtol
        )
    i = int(np.argmin(ref["dist_to_clean"]))
    assert summary["best_step"] == steps[i]
    assert summary["best_dist"] == pytest.approx(ref["dist_to_clean"][i], rel=rtol)
    assert summary["final_dist"] == pytest.approx(ref["dist_to_clean"][-1], rel=rtol)
    for fig in summary["figures"]:
        assert (out / fig).read_bytes()[:8] == PNG_MAGIC
    return summary


def test_air_default_clusters_round_trip(tmp_path, x64):  # x64: restores the flag the CLI sets
    out = tmp_path / "air"
    rc = cli.main(["air", "--out", str(out), "--seed", "3", "--noise-rate", "0.2", "--no-progress"])
    assert rc == 0
    ds = data.load("clusters", seed=3, noise="flip", noise_rate=0.2)
    s = _check_against_numpy(out, ds)
    assert len(s["figures"]) == 4
    # the AIR picture: the U-curve dips well below both ends, clean labels fitted before noise
    assert s["best_dist"] < 0.8 * min(s["start_dist"], s["final_dist"])
    fit = s["steps_to_fit"]["0.9"]
    assert (
        fit["clean"] is not None and fit["noise"] is not None and 10 * fit["clean"] < fit["noise"]
    )
    assert s["modes_holding"]["clean"]["0.9"] <= 4 < s["modes_holding"]["noise"]["0.9"]


def test_air_one_hot_npz_round_trip(tmp_path, x64):
    ds = data.clusters(
        n_clusters=3, n_per_cluster=20, n_test_per_cluster=6, n_classes=3, noise_rate=0.2, seed=5
    )
    path = data.save_npz(ds, tmp_path / "onehot.npz")
    out = tmp_path / "air"
    rc = cli.main(
        ["air", path, "--out", str(out), "--steps", "1000", "--num-steps", "40", "--no-progress"]
    )
    assert rc == 0
    s = _check_against_numpy(out, data.from_npz(path))
    assert s["dataset"]["one_hot"] and s["steps"][-1] == 1000 and len(s["steps"]) <= 40


def test_air_without_noise_reports_no_noise_spectrum(tmp_path, capsys, x64):
    ds = data.clusters(n_clusters=3, n_per_cluster=15, n_test_per_cluster=0, noise="none", seed=1)
    path = data.save_npz(ds, tmp_path / "clean.npz")
    out = tmp_path / "air"
    rc = cli.main(["air", path, "--out", str(out), "--no-progress"])
    assert rc == 0
    s = json.loads((out / "air.json").read_text())
    # e = 0 has no spectrum: nothing may claim that "1 mode holds 90 % of the noise"
    assert all(v is None for v in s["modes_holding"]["noise"].values())
    assert all(v == "nan" for v in s["energy_noise"])
    assert s["modes_holding"]["clean"]["0.9"] <= 3
    assert "no noise" in capsys.readouterr().out


def test_air_forced_diverging_step_shows_the_divergence(tmp_path, x64):
    # --force must reach the default horizon too (which has no noise-fit limit to aim for).
    ds = data.clusters(n_clusters=3, n_per_cluster=10, n_test_per_cluster=2, seed=2)
    path = data.save_npz(ds, tmp_path / "small.npz")
    eta = 2.3 / np.linalg.eigvalsh(np.asarray(two_layer_relu(ds.x))).max()
    out = tmp_path / "air"
    rc = cli.main(
        ["air", path, "--out", str(out), "--eta", repr(float(eta)), "--force", "--no-progress"]
    )
    assert rc == 0
    s = json.loads((out / "air.json").read_text())
    assert s["eta_times_lambda_max"] == pytest.approx(2.3, rel=1e-10)
    assert s["steps"][-1] <= 1e4  # a millionfold growth of the top mode, not the 1e12 cap
    assert s["final_dist"] > 1e5 * s["start_dist"]


def test_air_refuses_diverging_step(tmp_path, capsys, x64):
    rc = cli.main(["air", "--out", str(tmp_path / "a"), "--eta", "5", "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "eta = 5" in err and "2/λ_max" in err
