"""Real-valued and multi-output regression targets through the kernel-limit science.

Closed forms: kernel-ridge self-distillation with targets α y + (1 − α) u_{t−1} (ntk_air's
ξ-rounds with ξ = 1 − α) has, per eigenmode of K with F = λ/(λ + c),

    v_iᵀ y_t = a_t v_iᵀ y,   a_t = (ξF)^t + (1 − ξ) Σ_{s<t} (ξF)^s,
    u_t = V diag(F a_t) Vᵀ y,   f_t(X_test) = K_x V diag(a_t / (λ + c)) Vᵀ y,

and the round limit a_∞ = α/(1 − (1 − α)F) gives u_∞ = αK(αK + cI)⁻¹ y and
f_∞ = αK_x(αK + cI)⁻¹ y (Borup & Andersen arXiv 2102.13088; ξ = 1: Mobahi et al. arXiv
2002.05715, u_t = (K(K + cI)⁻¹)^{t+1} y). Linearized GD on real targets equals explicit stepping;
the label energy of any target sums to ‖y‖²; hard rules refuse regression in one sentence.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from conftest import _set_x64
from ntk_air import cli, data
from ntk_air import distillation as R
from ntk_air import distillation as T
from ntk_air.distillation import self_distill
from ntk_air.dynamics import gd_predictor, u_curve
from ntk_air.kernels import two_layer_relu
from ntk_air.spectral import (
    air_spectra,
    eigensystem,
    energy_per_mode,
    infer_task,
    label_spectrum,
    linear_problem,
)


def _circle(n, rng):
    t = np.sort(rng.uniform(0, 2 * np.pi, n))
    return np.stack([np.cos(t), np.sin(t)], 1), t


@pytest.fixture(scope="module")
def sinusoid():
    """n = 24 points on the unit circle, y = sin 3t + noise, ŷ = sin 3t; 2-output variant."""
    prev = _set_x64(True)
    rng = np.random.default_rng(0)
    x, t = _circle(24, rng)
    xt, tt = _circle(10, rng)
    K = np.asarray(two_layer_relu(x, x), np.float64)
    Kx = np.asarray(two_layer_relu(xt, x), np.float64)
    y_clean = np.sin(3 * t)
    y = y_clean + 0.3 * rng.standard_normal(24)
    Y_clean = np.stack([np.sin(3 * t), np.cos(2 * t)], 1)
    Y = Y_clean + 0.3 * rng.standard_normal((24, 2))
    out = dict(
        x=x, xt=xt, K=K, Kx=Kx, y=y, y_clean=y_clean, yt=np.sin(3 * tt), Y=Y, Y_clean=Y_clean,
        Yt=np.stack([np.sin(3 * tt), np.cos(2 * tt)], 1), eig=eigensystem(K),
    )  # fmt: skip
    yield out
    _set_x64(prev)


def _problem(s, multi=False, **kw):
    y, yc, yt = (s["Y"], s["Y_clean"], s["Yt"]) if multi else (s["y"], s["y_clean"], s["yt"])
    return linear_problem(s["eig"], y, yc, k_test_train=s["Kx"], y_test_clean=yt, **kw)


def _ridge_rounds_loop(K, Kx, y, alpha, c, rounds):
    """Explicit rounds by linear solves: u_t = K(K + cI)⁻¹ y_t, y_{t+1} = α y + (1 − α) u_t."""
    A = K + c * np.eye(K.shape[0])
    target, us, fs = y, [], []
    for _ in range(rounds + 1):
        coef = np.linalg.solve(A, target)
        us.append(K @ coef)
        fs.append(Kx @ coef)
        target = alpha * y + (1 - alpha) * us[-1]
    return us, fs


def _eigen_closed_form(K, Kx, y, alpha, c, t):
    """u_t and f_t from a_t = (ξF)^t + (1 − ξ)Σ_{s<t}(ξF)^s in K's eigenbasis (numpy eigh)."""
    lam, V = np.linalg.eigh(K)
    xi, F = 1 - alpha, lam / (lam + c)
    a = (xi * F) ** t + (1 - xi) * sum((xi * F) ** s for s in range(t))
    cy = V.T @ y
    scale = (lambda d: d[:, None]) if y.ndim == 2 else (lambda d: d)
    return V @ (scale(F * a) * cy), Kx @ V @ (scale(a / (lam + c)) * cy)


@pytest.mark.parametrize("multi", [False, True], ids=["(n,)", "(n,2)"])
@pytest.mark.parametrize("alpha", [0.3, 0.8])
def test_ridge_rounds_with_label_mixing_match_the_closed_form_per_round(sinusoid, multi, alpha):
    s = sinusoid
    c = 0.05 * float(np.trace(s["K"])) / s["K"].shape[0]
    problem = _problem(s, multi)
    assert problem.task == "regression"
    y = s["Y"] if multi else s["y"]
    yc, yt = (s["Y_clean"], s["Yt"]) if multi else (s["y_clean"], s["yt"])
    rounds = 6
    us, fs = _ridge_rounds_loop(s["K"], s["Kx"], y, alpha, c, rounds)
    run = R.distill_rounds(problem, R.xi_distill(1 - alpha, ridge=c), rounds=rounds)
    want = [np.linalg.norm(u - yc) for u in us]
    np.testing.assert_allclose(np.asarray(run.dist_train), want, rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        np.asarray(run.dist_test), [np.linalg.norm(f - yt) for f in fs], rtol=0, atol=1e-10
    )
    for t in (1, rounds):
        one = R.distill_rounds(problem, R.xi_distill(1 - alpha, ridge=c), rounds=t)
        u_cf, f_cf = _eigen_closed_form(s["K"], s["Kx"], y, alpha, c, t)
        np.testing.assert_allclose(np.asarray(one.u_final), u_cf, rtol=0, atol=1e-10)
        np.testing.assert_allclose(np.asarray(one.f_test_final), f_cf, rtol=0, atol=1e-10)
        np.testing.assert_allclose(np.asarray(one.u_final), us[t], rtol=0, atol=1e-10)
        np.testing.assert_allclose(np.asarray(one.f_test_final), fs[t], rtol=0, atol=1e-10)
    assert np.isnan(float(run.accuracy_train)) and np.isnan(float(run.margin_train))


@pytest.mark.parametrize("multi", [False, True], ids=["(n,)", "(n,2)"])
def test_round_limit_is_alpha_ridge_with_amplified_regularization(sinusoid, multi):
    """u_∞ = αK(αK + cI)⁻¹ y and f_∞ = αK_x(αK + cI)⁻¹ y (Borup & Andersen 2021)."""
    s = sinusoid
    alpha, c = 0.4, 0.1 * float(np.trace(s["K"])) / s["K"].shape[0]
    y = s["Y"] if multi else s["y"]
    run = R.distill_rounds(_problem(s, multi), R.xi_distill(1 - alpha, ridge=c), rounds=300)
    A = alpha * s["K"] + c * np.eye(s["K"].shape[0])
    np.testing.assert_allclose(
        np.asarray(run.u_final), alpha * s["K"] @ np.linalg.solve(A, y), rtol=0, atol=1e-10
    )
    np.testing.assert_allclose(
        np.asarray(run.f_test_final), alpha * s["Kx"] @ np.linalg.solve(A, y), rtol=0, atol=1e-10
    )


def test_float32_regression_rounds_stay_float32_and_agree(sinusoid):
    """A float32 problem of real targets runs in float32 and matches float64 to its precision."""
    s = sinusoid
    alpha, c = 0.5, 0.1 * float(np.trace(s["K"])) / s["K"].shape[0]
    ref = R.distill_rounds(_problem(s), R.xi_distill(1 - alpha, ridge=c), rounds=4)
    _set_x64(False)  # restored after the test (tests/conftest.py)
    K32 = jax.numpy.asarray(s["K"], jax.numpy.float32)
    lp = linear_problem(
        eigensystem(K32),
        s["y"].astype(np.float32),
        s["y_clean"].astype(np.float32),
        k_test_train=s["Kx"].astype(np.float32),
        y_test_clean=s["yt"].astype(np.float32),
    )
    assert lp.task == "regression" and lp.dtype == jax.numpy.float32
    run = R.distill_rounds(lp, R.xi_distill(1 - alpha, ridge=c), rounds=4)
    assert run.u_final.dtype == jax.numpy.float32
    scale = float(np.max(np.abs(np.asarray(ref.u_final))))
    np.testing.assert_allclose(np.asarray(run.u_final), ref.u_final, rtol=0, atol=1e-4 * scale)


def test_pure_ridge_rounds_are_matrix_powers(sinusoid):
    """ξ = 1 (Mobahi et al. 2020): u_t = (K(K + cI)⁻¹)^{t+1} y on real targets."""
    s = sinusoid
    c = 0.1 * float(np.trace(s["K"])) / s["K"].shape[0]
    P = s["K"] @ np.linalg.inv(s["K"] + c * np.eye(s["K"].shape[0]))
    run = R.distill_rounds(_problem(s), R.ridge_rounds(c), rounds=4)
    want = np.linalg.matrix_power(P, 5) @ s["y"]
    np.testing.assert_allclose(np.asarray(run.u_final), want, rtol=0, atol=1e-10)


@pytest.mark.parametrize("multi", [False, True], ids=["(n,)", "(n,2)"])
def test_linearized_gd_on_real_targets_equals_explicit_stepping(sinusoid, multi):
    s = sinusoid
    problem = _problem(s, multi)
    y = np.asarray(s["Y"] if multi else s["y"])
    yc, yt = (s["Y_clean"], s["Yt"]) if multi else (s["y_clean"], s["yt"])
    eta = 1.0 / float(np.linalg.eigvalsh(s["K"])[-1])
    u, f = np.zeros_like(y), np.zeros((s["Kx"].shape[0],) + y.shape[1:])
    us, fs = [u], [f]
    for _ in range(40):
        f = f - eta * s["Kx"] @ (u - y)
        u = u - eta * s["K"] @ (u - y)
        us.append(u)
        fs.append(f)
    traj = gd_predictor(problem, eta=eta)(np.arange(41))
    np.testing.assert_allclose(np.asarray(traj.train), np.stack(us), rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.asarray(traj.test), np.stack(fs), rtol=0, atol=1e-10)
    curve = u_curve(problem, steps=np.arange(41), eta=eta)
    dist = [np.linalg.norm(a - yc) for a in us]
    np.testing.assert_allclose(np.asarray(curve.train_dist), dist, rtol=0, atol=1e-10)
    test_dist = [np.linalg.norm(a - yt) for a in fs]
    np.testing.assert_allclose(np.asarray(curve.test_dist), test_dist, rtol=0, atol=1e-10)
    # a soft self-distillation rule on real targets: ỹ(k) = (1 − α) y + α u(k)
    alpha, u = 0.5, np.zeros_like(y)
    for _ in range(30):
        u = u - eta * s["K"] @ (u - ((1 - alpha) * y + alpha * u))
    run = self_distill(problem, T.r1(alpha), steps=30, eta=eta)
    np.testing.assert_allclose(np.asarray(run.u_final), u, rtol=0, atol=1e-10)
    assert np.isnan(float(run.accuracy_train)) and np.isnan(float(run.accuracy_test))
    mse = float(np.mean((np.asarray(run.u_final) - yc) ** 2))
    assert mse == pytest.approx(float(run.dist_train[-1]) ** 2 / yc.size, rel=1e-12)


@pytest.mark.parametrize("multi", [False, True], ids=["(n,)", "(n,2)"])
def test_label_energy_of_a_real_target_sums_to_its_squared_norm(sinusoid, multi):
    s = sinusoid
    y = s["Y"] if multi else s["y"]
    spec = label_spectrum(s["eig"], y)
    total = float(spec.norm) ** 2 * np.asarray(spec.energy)
    assert total.sum() == pytest.approx(float(np.sum(y**2)), rel=1e-12)
    V = np.asarray(s["eig"].eigenvectors)
    per_mode = np.sum(np.atleast_2d((V.T @ y).T).T ** 2, axis=1) if multi else (V.T @ y) ** 2
    np.testing.assert_allclose(total, per_mode, rtol=0, atol=1e-10)
    np.testing.assert_allclose(energy_per_mode(s["eig"], y), spec.energy, rtol=0, atol=1e-12)
    both = air_spectra(s["eig"], s["y_clean"], s["y"])
    noise = s["y"] - s["y_clean"]
    assert float(both.noise.norm) ** 2 == pytest.approx(float(noise @ noise), rel=1e-12)


def test_hard_rules_refuse_regression_in_one_sentence(sinusoid):
    problem = _problem(sinusoid)
    c = 0.1
    for rule in (T.r3(0.9, hard=True), T.r2(), T.r1(0.5, schedule="adaptive")):
        with pytest.raises(ValueError, match="need class labels") as err:
            self_distill(problem, [T.plain_gd(), rule], steps=5)
        assert "\n" not in str(err.value) and "regression" in str(err.value)
    with pytest.raises(ValueError, match="need class labels") as err:
        R.distill_rounds(problem, R.xi_distill(0.5, ridge=c, hard=True), rounds=2)
    assert "\n" not in str(err.value)
    # soft rules of every schedule but the adaptive one run
    self_distill(problem, [T.r1(0.5), T.r3(0.9, hard=False), T.bootstrap(0.8)], steps=5)


def test_task_inferred_explicit_and_refused(sinusoid):
    s = sinusoid
    assert infer_task(np.array([1.0, -1.0])) == "classification"
    assert infer_task(np.eye(3)) == "classification"
    assert infer_task(np.array([0.5, -1.0])) == "regression"
    assert infer_task(np.ones((3, 1))) == "regression"  # one column: not one-hot classes
    with pytest.raises(ValueError, match="task 'classification'") as err:
        _problem(s, task="classification")
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="task must be one of"):
        _problem(s, task="ranking")
    signs = np.sign(s["y_clean"])
    cls = linear_problem(s["eig"], signs, signs)
    assert cls.task == "classification"
    reg = linear_problem(s["eig"], signs, signs, task="regression")
    assert reg.task == "regression"
    run = R.distill_rounds(reg, R.ridge_rounds(0.1), rounds=2)
    assert np.isnan(float(run.accuracy_train))
    ok = R.distill_rounds(cls, R.ridge_rounds(0.1), rounds=2)
    assert float(ok.accuracy_train) >= 0.5
    # the static task field survives jit and vmap
    leaves, tree = jax.tree_util.tree_flatten(reg)
    assert jax.tree_util.tree_unflatten(tree, leaves).task == "regression"


def test_data_task_inference_override_and_subsample():
    rng = np.random.default_rng(1)
    x, t = _circle(30, rng)
    ds = data.from_arrays(x, np.sin(t) + 0.1, np.sin(t))
    assert ds.info["task"] == "regression" and ds.info["n_classes"] is None
    assert data.dataset_task(ds) == "regression"
    multi = data.from_arrays(x, np.stack([np.sin(t), np.cos(t)], 1))
    assert multi.info["task"] == "regression"
    with pytest.raises(ValueError, match="must be ±1"):
        data.with_task(ds, "classification")
    forced = data.with_task(data.clusters(n_per_cluster=5, n_test_per_cluster=2), "regression")
    assert forced.info["task"] == "regression" and data.dataset_task(forced) == "regression"
    sub = data.subsample(ds, n_train=7, seed=0)
    assert sub.x.shape == (7, 2) and sub.info["task"] == "regression"


# ---------------------------------------------------------------------------------------------
# The CLI on a noisy sinusoid
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def sinusoid_npz(tmp_path):
    rng = np.random.default_rng(2)
    x, t = _circle(30, rng)
    xt, tt = _circle(12, rng)
    y_clean = np.sin(3 * t)
    path = tmp_path / "sin.npz"
    np.savez(
        path,
        x=x,
        y=y_clean + 0.3 * rng.standard_normal(30),
        y_clean=y_clean,
        x_test=xt,
        y_test=np.sin(3 * tt),
    )
    return str(path)


@pytest.mark.slow
def test_cli_air_and_distill_on_regression_data(tmp_path, capsys, sinusoid_npz):
    out = tmp_path / "air"
    rc = cli.main(["air", sinusoid_npz, "--out", str(out), "--num-steps", "20", "--no-progress"])
    assert rc in (0, None)
    printed = capsys.readouterr().out
    assert "task: regression (inferred from the labels" in printed
    s = json.loads((out / "air.json").read_text())
    assert s["task"] == "regression" and s["dataset"]["task"] == "regression"
    n = s["dataset"]["n"]
    assert s["final_mse"] == pytest.approx(s["final_dist"] ** 2 / n, rel=1e-12)
    assert s["test_best_mse"] == pytest.approx(s["test_best_dist"] ** 2 / 12, rel=1e-12)
    out = tmp_path / "distill"
    argv = ["distill", sinusoid_npz, "--out", str(out), "--steps", "50", "--rounds", "3"]
    rc = cli.main([*argv, "--no-progress", "--rule", "r3", "r2", "xi"])
    assert rc in (0, None)
    d = json.loads((out / "distill.json").read_text())
    assert d["task"] == "regression"
    labels = [r["label"] for r in d["runs"]]
    assert labels and not any("hard" in lab or lab.startswith("R2") for lab in labels)
    assert labels[:2] == ["plain GD", "R3 soft α=0.9"] and labels[2].startswith("ξ=0.5 ridge")
    assert len(labels) == 3
    assert {r["label"] for r in d["skipped_rules"]} >= {"R3 hard α=0.9", "R2"}
    for r in d["runs"]:
        assert r["final_mse"] == pytest.approx(r["final_dist"] ** 2 / n, rel=1e-9)
        assert r["final_test_mse"] == pytest.approx(r["final_test_dist"] ** 2 / 12, rel=1e-9)
        assert r["accuracy_test"] is None or np.isnan(float(r["accuracy_test"]))
    pg = d["plain_gd"]
    assert pg["best_early_stop_mse"] == pytest.approx(pg["best_early_stop_dist"] ** 2 / n)


@pytest.mark.slow
def test_cli_task_override(tmp_path, capsys, sinusoid_npz):
    rc = cli.main(["air", sinusoid_npz, "--task", "classification", "--out", str(tmp_path / "a")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--task classification" in err[0] and "±1" in err[0]
    out = tmp_path / "b"
    argv = ["air", "--task", "regression", "--n-train", "40", "--num-steps", "10", "--out"]
    rc = cli.main([*argv, str(out), "--no-progress"])
    assert rc in (0, None)
    assert "task: regression (forced by --task)" in capsys.readouterr().out
    assert json.loads((out / "air.json").read_text())["task"] == "regression"
