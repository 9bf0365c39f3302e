"""The automatic solver choice and the resource refusals (issue 11 item 4, issue 13 item 3).

`ntk-air air --solver topk` equals the dense path on the top-k eigenvalues, per-mode energies and
the tail energy; the dense and top-k paths and the loops of distill/theorem are refused before
anything is allocated or run, with the estimate (in GB, seconds) and the options that fit;
`--force` lifts the time limit but never the memory budget; auto picks dense at small n.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import constant_dataset
from ntk_air import cli, data, studies
from ntk_air import spectral as resources
from ntk_air.kernels import two_layer_relu
from ntk_air.spectral import Budget, LoopEstimate, ResourceError
from ntk_air.spectral._resources import _max_dense_n


class _Ran(Exception):
    """Raised by a stubbed study: the command got past its resource checks."""


def _stub(monkeypatch, name):
    def ran(*args, **kwargs):
        raise _Ran(name)

    monkeypatch.setattr(studies, name, ran)


def _cli(argv, capsys):
    code = cli.main([*argv, "--no-progress"])
    out = capsys.readouterr()
    return code, out.out, out.err


def _big_npz(tmp_path, n=5000, d=5):
    """n unit rows (a small file; its dense kernel path needs 7n² floats = 1.4 GB)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    path = tmp_path / "big.npz"
    np.savez(path, x=x, y=np.sign(x[:, 0]) + (x[:, 0] == 0))
    return path


@pytest.mark.slow
def test_air_topk_equals_dense_on_the_top_modes(tmp_path, x64, capsys):
    k = 6  # the clusters' spectrum has a clear gap after mode 6 (0.371 vs 0.339)
    common = ["air", "--steps", "300", "--num-steps", "30"]
    code, out_dense, _ = _cli([*common, "--out", str(tmp_path / "dense")], capsys)
    assert code == 0
    assert "solver: dense (auto" in out_dense and " GB of " in out_dense  # auto: dense at n = 160
    code, out_topk, _ = _cli(
        [*common, "--solver", "topk", "--rank", str(k), "--out", str(tmp_path / "topk")], capsys
    )
    assert code == 0 and f"solver: topk (topk; top-{k})" in out_topk
    dense = json.loads((tmp_path / "dense" / "air.json").read_text())
    top = json.loads((tmp_path / "topk" / "air.json").read_text())
    assert dense["solver"]["name"] == "dense" and top["solver"]["name"] == "topk"
    assert set(dense) <= set(top)  # air.json keeps its keys
    lam = np.array(dense["eigenvalues"])
    assert lam[k - 1] - lam[k] > 0.05 * lam[k - 1]  # the gap that makes the modes well defined
    np.testing.assert_allclose(top["eigenvalues"], lam[:k], rtol=1e-8)
    assert top["eigenvalues_computed"] == k and top["converged"]
    assert top["max_relative_residual"] <= 1e-6
    for kind in ("clean", "noise", "noisy"):
        e_dense = np.array(dense[f"energy_{kind}"], float)
        np.testing.assert_allclose(top[f"energy_{kind}"], e_dense[:k], atol=1e-7)
        np.testing.assert_allclose(top["tail_energy"][kind], e_dense[k:].sum(), atol=1e-7)
    # The trajectory on the reduction (top k exact, the tail by Galerkin on the Krylov space of
    # (y, ŷ)): ‖u(k) − y‖ as numpy's eigh gives it, and the tail part inside its bracket.
    ds = data.clusters()
    lam_np, V = np.linalg.eigh(np.asarray(two_layer_relu(ds.x, ds.x)))
    lam_np, V = lam_np[::-1], V[:, ::-1]
    steps, eta = np.array(top["steps"]), top["eta"]
    c = V.T @ ds.y
    exact = np.sqrt([np.sum((1 - eta * lam_np) ** (2 * t) * c**2) for t in steps])
    exact_tail = np.sqrt([np.sum((1 - eta * lam_np[k:]) ** (2 * t) * c[k:] ** 2) for t in steps])
    tail = top["trajectory_tail"]
    np.testing.assert_allclose(tail["residual_norm"], exact, rtol=1e-6)
    lower, upper = np.array(tail["tail_lower"]), np.array(tail["tail_upper"])
    # (1e-6: the top-k part carries the Ritz vectors' residual-level error, tol 1e-7)
    assert np.all(lower <= exact_tail * (1 + 1e-6)) and np.all(exact_tail <= upper * (1 + 1e-6))
    assert np.max(upper - lower) > 0  # a bracket, not an identity
    np.testing.assert_allclose(top["start_dist"], dense["start_dist"], rtol=1e-10)
    # ‖u(k) − ŷ‖ on the reduction (16 Krylov blocks of (y, ŷ) at n = 160: the whole space)
    np.testing.assert_allclose(top["best_dist"], dense["best_dist"], rtol=1e-6)
    np.testing.assert_allclose(top["dist_to_clean"], dense["dist_to_clean"], rtol=1e-6)


def test_auto_picks_dense_at_small_n_and_topk_when_dense_does_not_fit(x64):
    ds = data.clusters()
    assert studies.air_plan(ds).solver == "dense"
    big = constant_dataset(5000, 5)
    choice = studies.air_plan(big, Budget(memory_bytes=5 * 10**8))
    assert choice.solver == "topk" and choice.rank == 100
    assert choice.memory_bytes <= 5 * 10**8 < choice.estimates["dense"].memory_bytes


def test_forced_dense_too_large_is_refused_before_allocating(tmp_path, x64, capsys, monkeypatch):
    _stub(monkeypatch, "air")  # the study must never be reached
    path = _big_npz(tmp_path)
    argv = ["air", str(path), "--solver", "dense", "--memory-budget", "0.5"]
    code, _, err = _cli([*argv, "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert "dense at n = 5000 needs 1.4 GB > memory budget 0.5 GB" in err
    assert "--solver topk --rank 100 (0.2" in err
    n_fit = int(err.split("--n-train ")[1].split()[0])
    assert resources.estimate_dense(n_fit).memory_bytes <= 0.5e9
    assert resources.estimate_dense(n_fit + 1).memory_bytes > 0.5e9
    assert "Traceback" not in err
    # auto with the same budget goes matrix-free (and would run: the stub says so)
    with pytest.raises(_Ran):
        cli.main(
            [
                "air",
                str(path),
                "--memory-budget",
                "0.5",
                "--no-progress",
                "--out",
                str(tmp_path / "o2"),
            ]
        )
    assert "solver: topk (auto; top-100)" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["distill", "theorem"])
def test_long_loops_refused_with_the_estimate_unless_forced(
    command, tmp_path, x64, capsys, monkeypatch
):
    _stub(monkeypatch, command)
    out = ["--out", str(tmp_path / "o")]
    code, _, err = _cli([command, "--steps", "1e9", *out], capsys)
    assert code == 2 and "is estimated to take" in err and "--force" in err
    assert "nothing was run" in err
    # --force lifts the time limit, not the memory budget: 10⁹ recorded steps cannot fit
    code, _, err = _cli([command, "--steps", "1e9", "--force", *out], capsys)
    assert code == 2 and "would need" in err and "TB" not in err and " GB" in err
    # a run within memory but above a (tiny) time limit: refused, and runs with --force
    few = [command, "--steps", "200", "--time-limit", "1e-9", *out]
    code, _, err = _cli(few, capsys)
    assert code == 2 and "is estimated to take" in err
    with pytest.raises(_Ran):
        cli.main([*few, "--force", "--no-progress"])


def test_plan_solver_options_and_check_loop():
    # the largest dense n is exact at the budget boundary
    n = _max_dense_n(10**9)
    assert resources.estimate_dense(n).memory_bytes <= 10**9
    assert resources.estimate_dense(n + 1).memory_bytes > 10**9
    with pytest.raises(ResourceError, match="--solver topk is not available for distill"):
        resources.plan_solver(100, budget=Budget(solver="topk"), solvers=("dense",), what="distill")
    with pytest.raises(
        ResourceError, match=r"needs 5.6e\+04 GB > memory budget 0.001 GB.*--n-train"
    ):
        resources.plan_solver(10**6, budget=Budget(memory_bytes=10**6))
    est = LoopEstimate("loop", 10.0, 10, {})
    with pytest.raises(ResourceError, match="estimated to take"):
        resources.check_loop(est, Budget(seconds=1.0))
    assert resources.check_loop(est, Budget(seconds=1.0, force=True)) is est
    with pytest.raises(ResourceError, match="would need"):
        resources.check_loop(est, Budget(memory_bytes=5, force=True))


def test_theorem_refuses_a_width_whose_network_cannot_fit(tmp_path, capsys):
    """`--widths 100000000` was killed by the OS; the network's weights and activations now
    count in the estimate, so it is refused in seconds even with --force."""
    code = cli.main(
        ["theorem", "--widths", "100000000", "--steps", "10", "--force", "--no-harder"]
        + ["--out", str(tmp_path / "th")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "would need" in err and "GB" in err


def test_auto_respects_the_memory_budget(x64):
    """n = 2000: dense needs 7n² floats (0.22 GB, the measured peak) > 0.2 GB: auto goes top-k."""
    ds = constant_dataset(2000, 5)
    choice = studies.air_plan(ds, Budget(memory_bytes=2 * 10**8))
    assert choice.solver == "topk" and choice.rank == 100 and choice.memory_bytes <= 2 * 10**8
    assert studies.air_plan(ds, Budget(memory_bytes=3 * 10**8)).solver == "dense"


def _tiny(n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    y_clean = y.copy()
    y_clean[-1] = -y_clean[-1]
    return data.Dataset(
        x=x, y=y, y_clean=y_clean, x_test=np.zeros((0, 4)), y_test_clean=np.zeros(0),
        name=f"tiny{n}", info={},
    )  # fmt: skip


@pytest.mark.slow
def test_topk_studies_take_every_rank_up_to_n(x64):
    """The least n (2) and rank = n (the top-k system is then the whole spectrum): air and
    distill on the top-k path give the dense numbers. (Every tiny n takes one path: the default
    block is n columns, so the solver's whole-space branch; n = 3 repeated it.)"""
    from ntk_air.kernels import two_layer_relu_kernel_fn

    n = 2
    ds, fn = _tiny(n), two_layer_relu_kernel_fn()
    for rank in sorted({1, n}):
        budget = Budget(solver="topk", rank=rank)
        a = studies.air(ds, fn, studies.AIRConfig(steps=50, num_steps=10), budget=budget)
        assert a.eigenvalues.shape == (rank,) and a.topk is not None
    dense = studies.air(ds, fn, studies.AIRConfig(steps=50, num_steps=10))
    np.testing.assert_allclose(a.eigenvalues, dense.eigenvalues, rtol=1e-10)
    np.testing.assert_allclose(a.curve.train_dist, dense.curve.train_dist, rtol=1e-10)
    cfg = studies.DistillConfig(rules=("r3",), steps=20, rounds=2)
    d_top = studies.distill(ds, fn, cfg, budget=Budget(solver="topk", rank=n))
    d_dense = studies.distill(ds, fn, cfg, budget=Budget(solver="dense"))
    for r in d_top.runs:
        ref = {q.label: q for q in d_dense.runs}[r.label]
        np.testing.assert_allclose(r.dist_train, ref.dist_train, rtol=1e-8, atol=1e-10)
