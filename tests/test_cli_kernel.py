"""`ntk-air kernel`: round trip against the library and the mathematics, and clear errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from ntk_air import cli


def _unit_rows(n, d, seed):
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _run(args, capsys):
    code = cli.main(args)
    return code, capsys.readouterr()


def test_two_layer_relu_round_trip(tmp_path, capsys):
    x, x2 = _unit_rows(9, 4, 0), _unit_rows(5, 4, 1)
    np.savez(tmp_path / "in.npz", x=x, x2=x2)
    code, _ = _run(["kernel", str(tmp_path / "in.npz"), "--out", str(tmp_path / "out.npz")], capsys)
    assert code == 0
    with np.load(tmp_path / "out.npz") as f:
        ntk, nngp = f["ntk"], f["nngp"]
    rho = np.clip(x @ x2.T, -1, 1)
    np.testing.assert_allclose(ntk, rho * (np.pi - np.arccos(rho)) / (2 * np.pi), rtol=1e-12)
    theta = np.arccos(rho)
    np.testing.assert_allclose(
        nngp, (np.sin(theta) + (np.pi - theta) * rho) / (2 * np.pi), rtol=1e-12
    )
    assert ntk.dtype == np.float64


def test_fc_round_trip_matches_numpy_recursion(tmp_path, capsys):
    """--depth 2 --w-std 1.5 --b-std 0.2: independent numpy arc-cosine recursion, K(x, x)."""
    x = np.random.default_rng(2).standard_normal((7, 3))
    np.savez(tmp_path / "in.npz", x=x)
    out = tmp_path / "k.npz"
    args = ["kernel", str(tmp_path / "in.npz"), "--out", str(out), "--arch", "fc", "--depth", "2"]
    code, _ = _run(args + ["--w-std", "1.5", "--b-std", "0.2"], capsys)
    assert code == 0
    w2, b2 = 1.5**2, 0.2**2
    S = x @ x.T / 3
    T = np.zeros_like(S)
    for _ in range(2):
        S = w2 * S + b2
        T = S + w2 * T
        c = np.sqrt(np.diag(S))
        cos = np.clip(S / np.outer(c, c), -1, 1)
        th = np.arccos(cos)
        S, T = (
            np.outer(c, c) * (np.sin(th) + (np.pi - th) * cos) / (2 * np.pi),
            T * (np.pi - th) / (2 * np.pi),
        )
    S = w2 * S + b2
    T = S + w2 * T
    with np.load(out) as f:
        np.testing.assert_allclose(f["nngp"], S, rtol=1e-6)  # arccos near 1 limits numpy's side
        np.testing.assert_allclose(f["ntk"], T, rtol=1e-6)


def test_float32_output(tmp_path, capsys):
    np.savez(tmp_path / "in.npz", x=_unit_rows(4, 3, 3))
    code, _ = _run(
        [
            "kernel",
            str(tmp_path / "in.npz"),
            "--out",
            str(tmp_path / "o.npz"),
            "--dtype",
            "float32",
        ],
        capsys,
    )
    assert code == 0
    with np.load(tmp_path / "o.npz") as f:
        assert f["ntk"].dtype == np.float32


@pytest.mark.parametrize(
    "arrays, match",
    [
        (
            {"x": np.array([[np.nan, 0.0], [1.0, 0.0]])},
            r"non-finite entries; first at index \(0, 0\)",
        ),
        ({"x": np.ones(3)}, "x1 must have rank 2"),
        (
            {"x": _unit_rows(3, 2, 4), "x2": _unit_rows(3, 5, 5)},
            r"same feature shape, got \(2,\) and \(5,\)",
        ),
        ({"x": np.ones((3, 2))}, "row 0 has norm 1.41421"),
        ({"y": np.ones((3, 2))}, "has no array 'x'"),
    ],
)
def test_clear_errors(tmp_path, capsys, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    code, out = _run(
        ["kernel", str(tmp_path / "bad.npz"), "--out", str(tmp_path / "o.npz")], capsys
    )
    assert code == 2
    assert "Traceback" not in out.err
    import re

    assert re.search(match, out.err), out.err


def test_pickled_npz_refused(tmp_path, capsys):
    np.savez(tmp_path / "p.npz", x=np.array([{"a": 1}, None], dtype=object))
    code, out = _run(["kernel", str(tmp_path / "p.npz"), "--out", str(tmp_path / "o.npz")], capsys)
    assert code == 2 and "pickle" in out.err


def test_missing_file_and_bad_arch(tmp_path, capsys):
    code, out = _run(
        ["kernel", str(tmp_path / "none.npz"), "--out", str(tmp_path / "o.npz")], capsys
    )
    assert code == 2 and "not found" in out.err
    np.savez(tmp_path / "in.npz", x=_unit_rows(3, 2, 6))
    code, out = _run(
        ["kernel", str(tmp_path / "in.npz"), "--out", str(tmp_path / "o.npz"), "--arch", "rnn"],
        capsys,
    )
    assert code == 2 and "unknown architecture 'rnn'" in out.err
    # cnn runs natively, and flat rows without shape= are refused naming the option.
    code, out = _run(
        ["kernel", str(tmp_path / "in.npz"), "--out", str(tmp_path / "o.npz"), "--arch", "cnn"],
        capsys,
    )
    assert code == 2 and "shape=" in out.err


def test_console_entry_point(tmp_path):
    """`python -m ntk_air kernel …` (what the ntk-air script runs) works in a fresh process."""
    np.savez(tmp_path / "in.npz", x=_unit_rows(3, 2, 7))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "ntk_air",
            "kernel",
            str(tmp_path / "in.npz"),
            "--out",
            str(tmp_path / "o.npz"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "o.npz").exists()


@pytest.mark.parametrize("opt", [["--depth", "3"], ["--w-std", "2"], ["--activation", "erf"]])
def test_options_that_do_not_apply_to_two_layer_relu_are_refused(tmp_path, capsys, opt):
    """Nothing silently ignored: the theorem's H∞ has one ReLU layer and no scale parameters."""
    np.savez(tmp_path / "in.npz", x=_unit_rows(3, 2, 8))
    code, out = _run(
        ["kernel", str(tmp_path / "in.npz"), "--out", str(tmp_path / "o.npz"), *opt], capsys
    )
    assert code == 2 and "two-layer-relu" in out.err and not (tmp_path / "o.npz").exists()
