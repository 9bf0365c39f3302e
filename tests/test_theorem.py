"""The ℓ2 theorem check (docs/science/theorem.md): Arora's formula, the kernel-limit numbers against
numpy recursions, and `ntk-air theorem` at tiny sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ntk_air import cli, data
from ntk_air import networks as TH
from ntk_air.kernels import two_layer_relu
from ntk_air.networks._theorem import _arora_residual


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
    np.testing.assert_allclose(_arora_residual(lam, V, y, u0, eta, np.arange(30)), res, rtol=1e-10)


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
    res = TH.kernel_limit(ds, steps=steps, alpha=alpha)._asdict()
    H = _h_inf_numpy(ds.x, ds.x)
    eta = 1.0 / np.linalg.eigvalsh(H)[-1]
    plain, r3, v = _numpy_runs(H, ds.y, ds.y_clean, eta, steps, alpha)
    assert res["plain_final_dist"] == pytest.approx(plain[-1], rel=1e-8)
    assert res["best_early_stop_dist"] == pytest.approx(plain.min(), rel=1e-8)
    assert res["best_early_stop_step"] == int(np.argmin(plain))
    assert res["self_distill_final_dist"] == pytest.approx(r3[-1], rel=1e-6, abs=1e-10)
    assert res["self_distill_margin"] == pytest.approx(np.min(ds.y_clean * v), abs=1e-8)
    np.testing.assert_allclose(res["self_distill_curve"], r3, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(res["plain_curve"], plain, rtol=1e-8)
    # record_every thins the curves only; every number is the same (best stop over all steps).
    coarse = TH.kernel_limit(ds, steps=steps, alpha=alpha, record_every=40)._asdict()
    assert list(coarse["steps_all"]) == [*range(0, steps + 1, 40), steps]
    np.testing.assert_allclose(coarse["self_distill_curve"], r3[coarse["steps_all"]], rtol=1e-6)
    for key, value in res.items():
        if not key.startswith("_") and np.ndim(value) == 0:
            assert coarse[key] == pytest.approx(value, rel=1e-12, abs=1e-14), key
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
    from ntk_air import distillation as RT
    from ntk_air import networks as M
    from ntk_air import networks as T
    from ntk_air.dynamics import Record
    from ntk_air.spectral import eigensystem

    eig = eigensystem(H)
    eta = 1.0 / float(eig.eigenvalues[0])
    steps, width, alpha = 40, 64, 0.9
    res = TH.network_check(
        ds,
        width,
        steps=steps,
        eta=eta,
        H_inf=H,
        eig_inf=eig,
        alpha=alpha,
        record_every=5,
        dtype="float64",
        init="symmetric",
        early_steps=8,
    )._asdict()
    assert res["initial_output_norm"] < 1e-12  # symmetric init: f(W0) = 0
    assert (
        res["best_early_stop_dist"]
        <= min(res["plain_curve"].min(), res["plain_final_dist"]) + 1e-12
    )
    rec = np.arange(0, steps + 1, 5)
    assert list(res["steps"]) == list(rec)
    # At step 0 all runs start from the same u(0): the gaps vanish there.
    assert res["linearization_gap_curve"][:, 0] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert res["network_residual"][0] == pytest.approx(res["arora_formula"][0], rel=1e-12)

    # Independently: H(W0)_ij = (x_i·x_j/m) Σ_r 1{w_r·x_i ≥ 0} 1{w_r·x_j ≥ 0} in numpy, its
    # linear recursions from u(0) = 0, and the same network trained by `train`.
    x = np.asarray(ds.x)
    apply_fn, params = M.two_layer_network(width, x, seed=0, init="symmetric")
    act = (x @ np.asarray(params["w"]).T >= 0).astype(float)
    H0 = (x @ x.T) * (act @ act.T) / width
    H_np = _h_inf_numpy(x, x)
    assert res["ntk_init_rel_dist_to_inf"] == pytest.approx(
        np.linalg.norm(H0 - H_np) / np.linalg.norm(H_np), rel=1e-8
    )
    net = T.train(
        apply_fn,
        params,
        x,
        ds.y,
        ds.y_clean,
        [RT.plain_gd(), RT.r3(alpha)],
        steps=steps,
        eta=eta,
        record=Record(every=5, predictions=True),
    )
    u_net = np.asarray(net.u_path)  # (2, r, n)
    lin = np.zeros((2, steps + 1, len(x)))
    u, v, t = np.zeros(len(x)), np.zeros(len(x)), ds.y.copy()
    for k in range(steps + 1):
        lin[:, k] = u, v
        u = u - eta * H0 @ (u - ds.y)
        v = v - eta * H0 @ (v - t)
        t = alpha * t + (1 - alpha) * np.sign(v)
    gap = np.linalg.norm(u_net - lin[:, rec], axis=2)
    np.testing.assert_allclose(res["linearization_gap_curve"], gap, rtol=1e-7, atol=1e-10)
    assert gap[:, 1:].min() > 1e-6  # the network is not its linearization at m = 64
    # The early gaps are maxima over the records k ≤ 10 (the first record at/after 8 steps).
    assert res["early_horizon_step"] == 10
    assert res["linearization_gap_plain_early"] == pytest.approx(gap[0, :3].max(), rel=1e-7)
    assert res["linearization_gap_self_distill_early"] == pytest.approx(gap[1, :3].max(), rel=1e-7)
    assert res["linearization_gap_plain"] == pytest.approx(gap[0].max(), rel=1e-7)
    err = np.abs(res["network_residual"] - res["arora_formula"]) / res["arora_formula"][0]
    assert res["arora_max_rel_error_early"] == pytest.approx(err[:3].max(), rel=1e-12)


def test_theorem_check_reuses_a_given_kernel_limit(x64):
    ds = data.clusters(n_clusters=2, n_per_cluster=6, dim=5, seed=4, n_test_per_cluster=0)
    first = TH.check_theorem(ds, (8,), steps=12, record_every=4)
    again = TH.check_theorem(
        ds, (8,), steps=12, record_every=4, init="symmetric", limit=first.kernel_limit
    )
    assert again.kernel_limit is first.kernel_limit
    assert again.networks[0].initial_output_norm < 1e-12 < first.networks[0].initial_output_norm
    with pytest.raises(ValueError, match="steps=12"):
        TH.check_theorem(ds, (8,), steps=13, limit=first.kernel_limit)
    with pytest.raises(ValueError, match="alpha"):
        TH.check_theorem(ds, (8,), steps=12, alpha=0.5, limit=first.kernel_limit)


def test_network_dtype_changes_precision_not_the_initial_weights(x64):
    """--network-dtype float32 and float64 train the same draw of W(0): their initial outputs
    agree to float32 rounding, not merely in distribution."""
    ds = data.clusters(n_clusters=2, n_per_cluster=6, dim=5, seed=4, n_test_per_cluster=0)
    H = _h_inf_numpy(ds.x, ds.x)
    from ntk_air.spectral import eigensystem

    eig = eigensystem(H)
    eta = 1.0 / float(eig.eigenvalues[0])
    kw = dict(steps=3, eta=eta, H_inf=H, eig_inf=eig, record_every=1, seed=2)
    a = TH.network_check(ds, 32, dtype="float32", **kw)
    b = TH.network_check(ds, 32, dtype="float64", **kw)
    assert a.initial_output_norm == pytest.approx(b.initial_output_norm, rel=1e-6)
    assert a.ntk_init_rel_dist_to_inf == pytest.approx(b.ntk_init_rel_dist_to_inf, rel=1e-5)


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
    for key in ("16", "32"):
        assert rep[key]["early_horizon_step"] == 10
        for gap in ("linearization_gap_plain", "kernel_limit_gap_self_distill"):
            assert 0 < rep[key][f"{gap}_early"] <= rep[key][gap]
    claims = rep["claims"]
    assert isinstance(claims["linearization_gap_plain_early_decreases_with_width"], bool)
    assert rep["early_horizon"] == 10 and "early_horizon_step" in rep["gap_note"]
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
    linearization falling with width, and the early-horizon gaps of plain GD too."""
    from ntk_air import studies

    # The default data, widths and α at 2 000 steps (a tenth of the default, for CI's time):
    # the claims already hold there.
    study = studies.theorem(studies.TheoremConfig(harder=False, steps=2000))
    claims = study.claims
    assert claims["self_distill_below_best_early_stop_everywhere"]
    assert claims["self_distill_gap_to_kernel_limit_decreases_with_width"]
    assert claims["linearization_gap_self_distill_decreases_with_width"]
    # Lazy training at a fixed short horizon: both gaps fall with width for plain GD as well.
    assert claims["linearization_gap_plain_early_decreases_with_width"]
    assert claims["kernel_limit_gap_plain_early_decreases_with_width"]
    assert study.check.kernel_limit.self_distill_margin > 0.9
