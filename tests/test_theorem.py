"""The ℓ2 theorem check (SCIENCE.md §5): Arora's formula, the kernel-limit numbers against numpy
recursions, and `ntk-air theorem` at tiny sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ntk_air import cli, data
from ntk_air import theorem as TH
from ntk_air.kernels import two_layer_relu


def _h_inf_numpy(a, b):
    rho = np.clip(a @ b.T, -1, 1)
    return rho * (np.pi - np.arccos(rho)) / (2 * np.pi)


def _numpy_runs(H, y, y_clean, eta, steps, alpha):
    """Plain GD and R3 with sign targets, stepped in numpy: (plain dists, R3 dists, R3 final u)."""
    u, plain = np.zeros_like(y), []
    for _ in range(steps + 1):
        plain.append(np.linalg.norm(u - y_clean))
        u = u - eta * H @ (u - y)
    v, t, r3 = np.zeros_like(y), y.copy(), []
    for _ in range(steps):
        r3.append(np.linalg.norm(v - y_clean))
        v = v - eta * H @ (v - t)
        t = alpha * t + (1 - alpha) * np.sign(v)
    r3.append(np.linalg.norm(v - y_clean))
    return np.array(plain), np.array(r3), v


def test_arora_residual_is_the_linear_recursion(x64):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    H = _h_inf_numpy(x, x)
    lam, V = np.linalg.eigh(H)
    y, u0 = np.sign(rng.standard_normal(12)), 0.3 * rng.standard_normal(12)
    eta = 1.5 / lam[-1]  # ηλ_max > 1: the formula must use |1 − ηλ|^{2k}
    u, res = u0.copy(), []
    for _ in range(30):
        res.append(np.linalg.norm(y - u))
        u = u - eta * H @ (u - y)
    np.testing.assert_allclose(
        TH.arora_residual(lam, V, y, u0, eta, np.arange(30)), res, rtol=1e-10
    )


def test_kernel_limit_numbers_match_numpy(x64):
    ds = data.clusters(
        n_clusters=4,
        n_per_cluster=10,
        dim=8,
        eps0=0.2,
        noise_rate=0.2,
        seed=3,
        n_test_per_cluster=3,
    )
    steps, alpha = 300, 0.9
    res = TH.kernel_limit_check(ds, steps=steps, alpha=alpha, record_every=10)
    H = _h_inf_numpy(ds.x, ds.x)
    eta = 1.0 / np.linalg.eigvalsh(H)[-1]
    plain, r3, v = _numpy_runs(H, ds.y, ds.y_clean, eta, steps, alpha)
    assert res["plain_final_dist"] == pytest.approx(plain[-1], rel=1e-8)
    assert res["best_early_stop_dist"] == pytest.approx(plain.min(), rel=1e-8)
    assert res["best_early_stop_step"] == int(np.argmin(plain))
    assert res["self_distill_final_dist"] == pytest.approx(r3[-1], rel=1e-6, abs=1e-10)
    assert res["self_distill_margin"] == pytest.approx(np.min(ds.y_clean * v), abs=1e-8)
    np.testing.assert_allclose(res["self_distill_curve"], r3, rtol=1e-6, atol=1e-10)
    # the theorem's claim on tight clusters with ρ < 1/2, in the kernel limit
    assert res["self_distill_final_dist"] < 0.1 * res["best_early_stop_dist"]


def test_finite_width_check_is_consistent(x64):
    ds = data.clusters(
        n_clusters=2,
        n_per_cluster=8,
        dim=6,
        eps0=0.2,
        noise_rate=0.25,
        seed=2,
        n_test_per_cluster=2,
    )
    H = two_layer_relu(ds.x)
    from ntk_air.eigen import eigensystem

    eig = eigensystem(H)
    eta = 1.0 / float(eig.eigenvalues[0])
    res = TH.finite_width_check(
        ds,
        64,
        steps=40,
        eta=eta,
        H_inf=H,
        eig_inf=eig,
        record_every=5,
        dtype="float64",
        init="symmetric",
    )
    assert res["initial_output_norm"] < 1e-12  # symmetric init: f(W0) = 0
    assert (
        res["best_early_stop_dist"]
        <= min(res["plain_curve"].min(), res["plain_final_dist"]) + 1e-12
    )
    assert list(res["steps"]) == list(range(0, 41, 5))
    # At step 0 all runs start from the same u(0): the gaps vanish there.
    assert res["linearization_gap_curve"][:, 0] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert res["network_residual"][0] == pytest.approx(res["arora_formula"][0], rel=1e-12)


def test_cli_theorem_tiny(tmp_path, x64, capsys):
    out = tmp_path / "thm"
    code = cli.main(
        [
            "theorem",
            "--widths",
            "16",
            "32",
            "--steps",
            "30",
            "--record-every",
            "5",
            "--out",
            str(out),
            "--no-progress",
            "--no-harder",
        ]
    )
    assert code == 0
    assert "self-distillation" in capsys.readouterr().out
    rep = json.loads((out / "theorem.json").read_text())
    for key in ("inf", "16", "32"):
        for field in (
            "plain_final_dist",
            "best_early_stop_dist",
            "self_distill_final_dist",
            "self_distill_margin",
        ):
            assert np.isfinite(rep[key][field]), (key, field)
    assert rep["data"]["seed"] == 1 and rep["data"]["tuning_seed"] == 0
    assert "did not tune on" in rep["data"]["note"]
    for fig in rep["figures"]:
        assert (out / fig).stat().st_size > 0
    ds = data.clusters(seed=1)
    H = _h_inf_numpy(ds.x, ds.x)
    eta = 1.0 / np.linalg.eigvalsh(H)[-1]
    plain, r3, _ = _numpy_runs(H, ds.y, ds.y_clean, eta, 30, 0.9)
    assert rep["eta"] == pytest.approx(eta, rel=1e-8)
    assert rep["inf"]["plain_final_dist"] == pytest.approx(plain[-1], rel=1e-8)
    assert rep["inf"]["best_early_stop_dist"] == pytest.approx(plain.min(), rel=1e-8)
    assert rep["inf"]["self_distill_final_dist"] == pytest.approx(r3[-1], rel=1e-6)
    assert rep["noise_norm"] == pytest.approx(np.linalg.norm(ds.y - ds.y_clean))


def test_cli_theorem_rejects_odd_widths_with_harder_case(tmp_path, capsys):
    code = cli.main(["theorem", "--widths", "15", "--steps", "5", "--out", str(tmp_path)])
    assert code == 2
    assert "even" in capsys.readouterr().err


@pytest.mark.slow
def test_theorem_defaults_show_the_claim(tmp_path, x64):
    """Default study (data seed 1, not tuned on): self-distillation below the best early stop
    at every width and in the kernel limit, its gap to the kernel limit and to the
    linearization falling with width."""
    from ntk_air.commands.theorem import theorem_report

    rep = theorem_report(tmp_path, progress=False, harder=False)
    claims = rep["claims"]
    assert claims["self_distill_below_best_early_stop_everywhere"]
    assert claims["self_distill_gap_to_kernel_limit_decreases_with_width"]
    assert claims["linearization_gap_self_distill_decreases_with_width"]
    assert rep["inf"]["self_distill_margin"] > 0.9
