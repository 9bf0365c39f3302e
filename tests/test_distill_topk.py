"""Matrix-free self-distillation (issue 11 item 4): the Rayleigh–Ritz reduction and `distill` on
the top-k path against the dense study.

What the mathematics guarantees and is checked here: the reduction's top k values are the
eigensolver's (dense `eigh` to 1e-8); y and ŷ lie in the reduced space; its values are the
Rayleigh quotients WᵀKW of the dense K (the stored products are exact); its `leak` bounds
‖(I − WWᵀ)KW‖₂. The soft rules on the reduction stay within their own error estimates of the
dense runs (train and test), R3 soft to 1e-6 relative; hard and adaptive rules, by one operator
pass per step, equal the dense runs to rounding; what does not fit the time limit is skipped and
listed, and a run left with nothing but plain GD is refused before any work.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import _set_x64, constant_dataset
from ntk_air import (
    cli,
    data,
    kernels,
    studies,
)
from ntk_air import (
    dynamics as early_stopping,
)
from ntk_air import (
    spectral as eigen,
)
from ntk_air import (
    spectral as matfree,
)
from ntk_air import (
    spectral as operators,
)
from ntk_air import (
    spectral as problem,
)
from ntk_air.spectral import Budget
from ntk_air.spectral import _topk as topk


def _dataset(n_per_cluster=100, seed=0):
    return data.clusters(n_per_cluster=n_per_cluster, eps0=0.6, noise_rate=0.25, seed=seed)


@pytest.fixture(scope="module")
def reduced():
    prev = _set_x64(True)
    ds = _dataset()
    fn = kernels.two_layer_relu_kernel_fn()
    K = np.asarray(fn(ds.x).ntk)
    op = operators.kernel_operator(fn, ds.x, tile_size=64)
    start = np.stack([-ds.y, ds.y_clean], axis=1)
    top = topk.topk_eigensystem(op, 20)
    kr = matfree.deflated_krylov(op, top, start, 12)
    yield ds, K, top, kr, matfree.ritz_reduction(top, kr)
    _set_x64(prev)


def test_reduction_keeps_the_top_k_and_the_labels(reduced):
    ds, K, top, kr, red = reduced
    dense = np.asarray(eigen.eigensystem(K).eigenvalues)
    w = np.asarray(red.eigenvectors)
    lam = np.asarray(red.eigenvalues)
    m = lam.shape[0]
    assert red.top == 20 and 20 < m < K.shape[0]
    np.testing.assert_allclose(lam[:20], dense[:20], rtol=1e-8)
    # the top k first, then the Ritz values of the Krylov part, each descending, all ≤ θ_1
    assert np.all(np.diff(lam[:20]) <= 0) and np.all(np.diff(lam[20:]) <= 0)
    assert lam[20] <= lam[0]
    np.testing.assert_allclose(w.T @ w, np.eye(m), atol=1e-8)  # G ⊥ V_k to one projection
    # The Ritz values are the Rayleigh quotients of the dense K on the reduced space, up to what
    # the reduction neglects: the coupling V_kᵀKG = R_kᵀG (R_k: the top-k residuals) and G's
    # rounding-level overlap with V_k times λ_1.
    coupling = float(np.max(np.asarray(top.residual_norms)))
    np.testing.assert_allclose(w.T @ K @ w, np.diag(lam), atol=coupling + 1e-9 * dense[0])
    for z in (ds.y, ds.y_clean):
        outside = z - w @ (w.T @ z)
        assert np.linalg.norm(outside) <= 1e-8 * np.linalg.norm(z)
    leak = np.linalg.norm(K @ w - w @ (w.T @ K @ w), 2)
    assert leak <= float(red.rest.leak) * (1 + 1e-6) + 1e-10
    # Fewer Krylov blocks: a smaller space with the same top k.
    coarse = matfree.ritz_reduction(top, kr, int(kr.steps) - 2)
    assert coarse.eigenvalues.shape[0] < m
    np.testing.assert_allclose(np.asarray(coarse.eigenvalues)[:20], dense[:20], rtol=1e-8)


def test_deflated_krylov_space_and_its_reduction(reduced):
    ds, K, top, kr, red = reduced
    b, kb = np.asarray(kr.basis), np.asarray(kr.products)
    v = np.asarray(top.eigenvectors)
    assert b.shape == (K.shape[0], 24) and int(kr.steps) == 12
    np.testing.assert_allclose(b.T @ b, np.eye(24), atol=1e-12)  # every block resolved
    assert np.max(np.abs(v.T @ b)) < 1e-12
    np.testing.assert_allclose(kb, K @ b, atol=1e-10 * np.max(np.abs(K)))  # exact products
    # Galerkin on the resolved space: plain GD's curve as the dense one's, and better with
    # more blocks
    lam = np.asarray(red.eigenvalues)
    eta = 1 / float(lam[0])
    steps = np.arange(801)
    exact = eigen.eigensystem(K)
    ref = np.asarray(
        early_stopping.u_curve(
            problem.linear_problem(exact, ds.y, ds.y_clean), steps=steps, eta=eta
        ).train_dist
    )

    def error(eig):
        p = problem.linear_problem(eig, ds.y, ds.y_clean)
        return np.max(
            np.abs(np.asarray(early_stopping.u_curve(p, steps=steps, eta=eta).train_dist) - ref)
        )

    fewer = matfree.ritz_reduction(top, kr, 3)
    assert error(red) < 1e-6 * ref[0] and error(red) < error(fewer)


@pytest.fixture(scope="module")
def both():
    prev = _set_x64(True)
    ds = _dataset()
    fn = kernels.two_layer_relu_kernel_fn()
    cfg = studies.DistillConfig(steps=800, rounds=6)
    dense = studies.distill(ds, fn, cfg, budget=Budget(solver="dense"))
    top = studies.distill(ds, fn, cfg, budget=Budget(solver="topk", rank=30))
    yield ds, dense, top
    _set_x64(prev)


def test_soft_rules_match_dense_within_their_error_estimates(both):
    _, dense, top = both
    assert dense.topk is None and dense.solver.solver == "dense"
    assert top.solver.solver == "topk" and top.topk.rank == 30
    by_label = {r.label: r for r in dense.runs}
    reduced = [r for r in top.runs if r.engine != "operator"]
    assert len(reduced) >= 6
    for r in reduced:
        d = by_label[r.label]
        assert r.error_estimate is not None and r.error_estimate_test is not None
        scale = float(np.max(d.dist_train))
        err = float(np.max(np.abs(r.dist_train - d.dist_train)))
        err_test = float(np.max(np.abs(r.dist_test - d.dist_test)))
        assert err <= r.error_estimate + 1e-9 * scale, (r.label, err, r.error_estimate)
        assert err_test <= r.error_estimate_test + 1e-9 * scale, (r.label, err_test)
        # and the estimate is an error, not a scale: under 1 % of the distances here
        assert r.error_estimate < 0.01 * scale
    r3 = {r.label: r for r in top.runs}["R3 soft α=0.9"]
    assert abs(r3.final_dist - by_label["R3 soft α=0.9"].final_dist) <= 1e-6 * r3.final_dist
    # plain GD's closed-form U-curve: its best early stop and its estimate
    pg_err = np.max(np.abs(np.asarray(top.plain_gd.train_dist - dense.plain_gd.train_dist)))
    assert pg_err <= top.topk.plain_error_estimate + 1e-9
    assert top.eta == pytest.approx(dense.eta, rel=1e-10)
    assert top.ridge == pytest.approx(dense.ridge, rel=1e-10)  # tr K from the diagonal


def test_hard_and_adaptive_rules_run_exactly_by_operator_passes(both):
    _, dense, top = both
    by_label = {r.label: r for r in dense.runs}
    operator = [r for r in top.runs if r.engine == "operator"]
    assert {"R2", "R3 hard α=0.9", "R1 hard α=0.5"} <= {r.label for r in operator}
    for r in operator:
        d = by_label[r.label]
        assert r.error_estimate is None  # exact: the same recursion, K never formed
        np.testing.assert_allclose(r.dist_train, d.dist_train, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(r.dist_test, d.dist_test, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(r.u_final, d.u_final, atol=1e-8)
        assert r.accuracy_test == d.accuracy_test and r.margin == pytest.approx(d.margin)
    # hard round rules are the only ones left out, and each says why
    ran = {r.label for r in top.runs}
    skipped = dict(top.topk.skipped)
    assert ran | set(skipped) == set(by_label) and not ran & set(skipped)
    assert skipped and all("hard" in lab and "ridge solve" in why for lab, why in skipped.items())
    assert 0 < top.topk.tail_energy["noise"] < 1 and top.topk.tail_energy["clean"] < 0.1


def test_operator_rules_beyond_the_time_limit_are_skipped_or_refused(x64):
    ds = _dataset(n_per_cluster=20)
    fn = kernels.two_layer_relu_kernel_fn()
    tight = Budget(solver="topk", rank=5, seconds=0.01)
    cfg = studies.DistillConfig(rules=("r3", "r2"), steps=10)  # soft and hard R3, R2
    study = studies.distill(ds, fn, cfg, budget=tight)
    skipped = dict(study.topk.skipped)
    assert {"R2", "R3 hard α=0.9"} <= set(skipped)
    assert "beyond the time limit" in skipped["R2"] and "--force" in skipped["R2"]
    assert "R3 soft α=0.9" in {r.label for r in study.runs}
    only_hard = studies.DistillConfig(rules=("r3", "r2"), soft=False, steps=10)
    with pytest.raises(ValueError, match="no rule besides plain GD can run"):
        studies.distill_plan(ds, only_hard, tight)
    forced = studies.distill(ds, fn, only_hard, budget=tight._replace(force=True))
    assert {r.label for r in forced.runs} >= {"R2", "R3 hard α=0.9"}


def test_cli_distill_topk_writes_the_solver_and_estimates(tmp_path, x64, capsys):
    out = tmp_path / "d"
    argv = ["distill", "--solver", "topk", "--rank", "12", "--steps", "300", "--rounds", "3"]
    code = cli.main([*argv, "--out", str(out), "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "solver: topk (topk; top-12)" in printed
    assert "skipped: a round rule with hard targets" in printed
    s = json.loads((out / "distill.json").read_text())
    assert s["solver"]["name"] == "topk" and s["topk"]["rank"] == 12
    assert {"label", "reason"} <= set(s["topk"]["skipped"][0])
    for r in s["runs"]:
        assert (r["error_estimate"] is None) == (r["engine"] == "operator")
    tight = ["--rule", "r2", "--time-limit", "0.001", "--out", str(tmp_path / "e")]
    code = cli.main([*argv, *tight, "--no-progress"])
    assert code == 2
    assert "no rule besides plain GD can run" in capsys.readouterr().err


def test_auto_goes_matrix_free_when_dense_does_not_fit(x64):
    big = constant_dataset(5000, 5)
    choice, _ = studies.distill_plan(
        big, studies.DistillConfig(steps=10), Budget(memory_bytes=5 * 10**8)
    )
    assert choice.solver == "topk"
    choice, _ = studies.distill_plan(_dataset(n_per_cluster=20), studies.DistillConfig(steps=10))
    assert choice.solver == "dense"


def test_krylov_passes_beyond_n_are_refused_with_the_bound():
    from ntk_air import data, studies

    ds = data.clusters(n_per_cluster=10, dim=5, n_test_per_cluster=2, seed=0)  # n = 40
    with pytest.raises(ValueError, match=r"krylov_steps 100000000 exceeds the 40 passes"):
        studies.distill_plan(ds, studies.DistillConfig(krylov_steps=10**8))
    studies.distill_plan(ds, studies.DistillConfig(krylov_steps=40))  # the bound itself is fine
