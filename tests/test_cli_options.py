"""Options every command shares: --n-train/--n-test subsamples, data options that do not apply to
a data file, examples in --help; and the data helpers behind them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ntk_air import cli, data


def _run(argv, capsys):
    code = cli.main([*argv, "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.err


@pytest.mark.parametrize("command", ["air", "distill", "reproduce", "kernel", "theorem"])
def test_every_command_help_lists_an_example(command, capsys):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and f"ntk-air {command}" in out


def test_n_train_subsamples_built_in_data(tmp_path, x64, capsys):
    code, _ = _run(
        [
            "air",
            "--dataset",
            "digits",
            "--n-train",
            "90",
            "--n-test",
            "30",
            "--steps",
            "50",
            "--out",
            str(tmp_path),
        ],
        capsys,
    )
    assert code == 0
    rep = json.loads((tmp_path / "air.json").read_text())
    assert rep["dataset"]["n"] == 90 and rep["dataset"]["n_test"] == 30
    assert len(rep["eigenvalues"]) == 90


def test_built_in_data_options_with_a_data_file_are_an_error(tmp_path, x64, capsys):
    path = tmp_path / "d.npz"
    data.save_npz(data.clusters(n_per_cluster=5, n_test_per_cluster=0), path)
    for extra in (["--dataset", "digits"], ["--seed", "3"], ["--noise", "pair"]):
        code, err = _run(["air", str(path), *extra, "--out", str(tmp_path / "o")], capsys)
        assert code == 2 and extra[0] in err and "built-in data only" in err
    code, err = _run(["air", "--normalize", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "--normalize applies to a data file" in err
    # above the default rows clusters and mnist1d generate more; digits has 1797 in all
    code, err = _run(
        ["air", "--dataset", "digits", "--n-train", "5000", "--out", str(tmp_path / "o")], capsys
    )
    assert code == 2 and "digits has 1797 examples in all" in err


def test_subsample_is_stratified_seeded_and_keeps_the_corruption():
    ds = data.digits(n_train=300, n_test=100, noise_rate=0.2, seed=1)
    small = data.subsample(ds, n_train=50, n_test=20, seed=4)
    again = data.subsample(ds, n_train=50, n_test=20, seed=4)
    np.testing.assert_array_equal(small.x, again.x)
    assert small.x.shape == (50, 64) and small.x_test.shape == (20, 64)
    counts = np.bincount(np.argmax(ds.y_clean, 1), minlength=10)
    sub = np.bincount(np.argmax(small.y_clean, 1), minlength=10)
    assert np.all(np.abs(sub - counts * 50 / 300) < 1)  # each class keeps its share
    rows = small.info["subsample_rows"]
    np.testing.assert_array_equal(small.x, ds.x[rows])
    flipped = np.flatnonzero(np.any(small.y != small.y_clean, axis=1))
    np.testing.assert_array_equal(small.info["corrupted"], flipped)
    with pytest.raises(ValueError, match="n_train must be an integer"):
        data.subsample(ds, n_train=0)


def test_npz_unknown_keys_are_an_error_with_a_suggestion(tmp_path):
    ds = data.clusters(n_per_cluster=4, n_test_per_cluster=0)
    path = tmp_path / "typo.npz"
    np.savez(path, x=ds.x, y=ds.y, yclean=ds.y_clean)
    with pytest.raises(ValueError, match=r"'yclean' \(did you mean 'y_clean'\?\)"):
        data.from_npz(path)


def test_from_arrays_is_what_from_npz_reads(tmp_path):
    ds = data.clusters(n_per_cluster=4, n_test_per_cluster=2)
    path = data.save_npz(ds, tmp_path / "c.npz")
    a = data.from_npz(path)
    b = data.from_arrays(ds.x, ds.y, ds.y_clean, ds.x_test, ds.y_test_clean, name=ds.name)
    for field in ("x", "y", "y_clean", "x_test", "y_test_clean"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert a.info["n_corrupted"] == b.info["n_corrupted"] == ds.info["n_corrupted"]


def test_the_way_of_rank_from_the_cli_to_the_solver(tmp_path, x64, capsys, monkeypatch):
    """`ntk-air air --rank K` (issue 18): commands/_solver.py parses it into a `resources.Budget`
    (budget_from_args, the one check of K), commands/air.py hands it to studies/_air.py, which
    plans once (air_plan → studies/_system.py plan_spectrum → spectral/_resources.py
    plan_solver: the SolverChoice holds K), and the study builds the top-k kernel system with K
    (`kernel_system`) — five files, no round trip to the CLI."""
    import importlib

    from ntk_air.spectral import _resources as resources

    air_study = importlib.import_module("ntk_air.studies._air")  # the module, not the function
    system_module = importlib.import_module("ntk_air.studies._system")

    plans = []
    real_plan = system_module.plan_solver

    def recording_plan(n, *, budget, **kw):
        plans.append(budget.rank)
        return real_plan(n, budget=budget, **kw)

    monkeypatch.setattr(system_module, "plan_solver", recording_plan)
    seen = []
    real_system = air_study.kernel_system

    def recording_system(dataset, kernel_fn, plan=None, **kw):
        seen.append((plan.solver, plan.rank))
        return real_system(dataset, kernel_fn, plan, **kw)

    monkeypatch.setattr(air_study, "kernel_system", recording_system)
    argv = ["air", "--solver", "topk", "--rank", "7", "--n-train", "40", "--steps", "50"]
    assert cli.main([*argv, "--no-progress", "--out", str(tmp_path / "o")]) == 0
    assert plans == [7] and seen == [("topk", 7)]  # one plan; the system is built with K
    assert isinstance(resources.Budget(rank=7), tuple)


@pytest.mark.parametrize("name, n_train, n_test", [("clusters", 400, 200), ("mnist1d", 900, 100)])
def test_n_train_above_the_default_rows_generates_them(name, n_train, n_test):
    import argparse

    from ntk_air.commands._data import load_dataset

    args = argparse.Namespace(data=None, dataset=name, noise=None, noise_rate=None, seed=None)
    args.n_train, args.n_test, args.normalize = n_train, n_test, False
    ds = load_dataset(args)
    assert ds.x.shape[0] == n_train and ds.x_test.shape[0] == n_test
    assert np.unique(ds.x, axis=0).shape[0] == n_train  # generated rows, not repeats
