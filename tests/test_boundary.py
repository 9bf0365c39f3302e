"""Property-based tests of the input boundary (issue 13): generated arrays, shapes, dtypes, files
and option values either pass or give the documented error — never a traceback from inside JAX."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ntk_air import cli, data, kernels
from ntk_air.spectral import eigensystem, linear_problem

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DOCUMENTED = (ValueError, TypeError)  # NonFiniteError is a ValueError

dtypes = st.sampled_from(["float32", "float64", "int32", "int64", "bool", "complex64", "uint8"])
floats = st.floats(allow_nan=True, allow_infinity=True, width=32)


def arrays(max_rank=3):
    return dtypes.flatmap(
        lambda dt: hnp.arrays(
            dt,
            hnp.array_shapes(min_dims=0, max_dims=max_rank, min_side=0, max_side=4),
            elements=floats if dt.startswith("float") else None,
        )
    )


@SETTINGS
@given(x1=arrays(), x2=st.one_of(st.none(), arrays()))
def test_kernel_functions_pass_or_refuse(x64, x1, x2):
    for fn in (kernels.two_layer_relu_kernel_fn(general=True), kernels.fc_kernel_fn(2, "erf")):
        try:
            k = fn(x1, x2)
        except DOCUMENTED:
            continue
        n2 = x1.shape[0] if x2 is None else x2.shape[0]
        assert k.ntk.shape == (x1.shape[0], n2)
        assert np.isfinite(np.asarray(k.ntk)).all()


@SETTINGS
@given(
    y=arrays(max_rank=2),
    y_clean=st.one_of(st.none(), arrays(max_rank=2)),
    u0=st.one_of(st.none(), arrays(max_rank=2)),
)
def test_linear_problem_passes_or_refuses(x64, y, y_clean, u0):
    eig = eigensystem(np.eye(3) * [3.0, 2.0, 1.0])
    try:
        lp = linear_problem(eig, y, y_clean, u0=u0)
    except DOCUMENTED:
        return
    assert lp.y.shape[0] == 3 and np.isfinite(np.asarray(lp.y)).all()


@SETTINGS
@given(x=arrays(max_rank=3), y=arrays(max_rank=3))
def test_from_arrays_passes_or_refuses(x, y):
    try:
        ds = data.from_arrays(x, y)
    except DOCUMENTED:
        return
    assert ds.x.ndim == 2 and ds.y.shape[0] == ds.x.shape[0]


def _npz_bytes(arrays_by_key):
    buf = io.BytesIO()
    np.savez(buf, **arrays_by_key)
    return buf.getvalue()


keys = st.sampled_from(["x", "y", "y_clean", "x_test", "y_test", "name", "yclean", "X", "extra"])


@SETTINGS
@given(
    content=st.one_of(
        st.binary(max_size=200),
        st.dictionaries(keys, arrays(max_rank=2), max_size=5).map(_npz_bytes),
        st.tuples(
            st.dictionaries(keys, arrays(max_rank=2), min_size=1, max_size=4).map(_npz_bytes),
            st.integers(min_value=0, max_value=400),
        ).map(lambda t: t[0][: t[1]]),  # truncated archives
    )
)
def test_npz_files_pass_or_refuse(tmp_path, content):
    path = tmp_path / "d.npz"
    path.write_bytes(content)
    try:
        ds = data.from_npz(path)
    except DOCUMENTED:
        return
    assert ds.x.ndim == 2


def test_pickled_npy_directory_and_corrupt_files_are_refused(tmp_path):
    np.save(tmp_path / "a.npy", np.ones((3, 2)))
    np.savez(tmp_path / "p.npz", x=np.array([{"a": 1}], dtype=object), y=np.ones(1))
    good = tmp_path / "g.npz"
    np.savez(good, x=np.eye(3), y=np.ones(3))
    flipped = bytearray(good.read_bytes())
    flipped[flipped.index(b"\xf0\x3f")] ^= 0xFF  # a bit of the first 1.0 of x: a CRC mismatch
    (tmp_path / "flip.npz").write_bytes(bytes(flipped))
    with zipfile.ZipFile(tmp_path / "empty.npz", "w"):
        pass
    for name, match in (
        ("a.npy", "single array"),
        ("p.npz", "pickled object array"),
        ("flip.npz", "npz"),
        ("empty.npz", "missing required array 'x'"),
    ):
        with pytest.raises(DOCUMENTED, match=match):
            data.from_npz(tmp_path / name)
    with pytest.raises(data.DataFileError, match="is a directory"):
        data.from_npz(tmp_path)


option_values = st.one_of(
    st.integers(min_value=-3, max_value=10**12).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "nan", "-0", "1e400", "abc", "0", "1", "2", "0.5", "float16"]),
)

COMMAND_OPTIONS = {
    "air": [
        "--steps",
        "--num-steps",
        "--eta",
        "--noise-rate",
        "--seed",
        "--n-train",
        "--n-test",
        "--depth",
        "--w-std",
        "--tile-size",
        "--dtype",
    ],
    "distill": [
        "--steps",
        "--alpha",
        "--beta",
        "--xi",
        "--ridge",
        "--rounds",
        "--ramp",
        "--record-every",
        "--eta",
        "--n-train",
        "--noise-rate",
    ],
    "theorem": [
        "--steps",
        "--seed",
        "--init-seed",
        "--alpha",
        "--kappa",
        "--record-every",
        "--widths",
    ],
}


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    command=st.sampled_from(sorted(COMMAND_OPTIONS)),
    picks=st.lists(st.tuples(st.integers(0, 20), option_values), min_size=1, max_size=3),
)
def test_cli_options_give_a_result_or_one_line(tmp_path, capsys, x64, command, picks):
    argv = [command, "--out", str(tmp_path / "out"), "--no-progress"]
    if command != "theorem":
        argv += ["--n-train", "24", "--n-test", "8"]
    if command == "theorem":
        argv += ["--widths", "8", "--no-harder", "--steps", "5"]
    if command == "distill":
        argv += ["--steps", "5", "--rounds", "1", "--rule", "r1", "r3"]
    if command == "air":
        argv += ["--steps", "50"]
    options = COMMAND_OPTIONS[command]
    for i, value in picks:
        argv += [options[i % len(options)], value]
    try:
        code = cli.main(argv)
    except SystemExit as exit_:  # argparse's own refusal: usage line + one error line
        code = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert code in (0, 2), (argv, code, err)
    if code == 2:
        assert err.strip(), argv
