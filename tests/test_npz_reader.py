"""The data-archive reader (`ntk_air.data.npz`): every hostile archive is one `DataFileError`
sentence naming the file (and the member), never another exception, never a hang; fuzzed with
hypothesis (random bytes, truncated and mutated valid archives, random .npy headers)."""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import time
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ntk_air import data
from ntk_air.data import DataFileError, Dataset, from_npz

LIMIT = 10**7  # bytes: the memory limit the fuzzed reads run under


def _valid_bytes(compressed=False, **extra) -> bytes:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    arrays = {
        "x": x,
        "y": np.sin(x[:, 0]) + 0.1,
        "y_clean": np.sin(x[:, 0]),
        "x_test": x[:2],
        "y_test": np.sin(x[:2, 0]),
        "name": np.str_("sinus"),
        "info_json": np.str_(json.dumps({"seed": 3})),
    }
    arrays.update(extra)
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


VALID = _valid_bytes()
VALID_DEFLATED = _valid_bytes(compressed=True)


def _npy(header: str, payload: bytes = b"", version=(1, 0)) -> bytes:
    """An .npy member with the given header text (padded to 64 bytes, as numpy writes it)."""
    text = header.encode("latin1")
    size_fmt = "<H" if version == (1, 0) else "<I"
    pre = 10 if version == (1, 0) else 12
    pad = (-(pre + len(text) + 1)) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack(size_fmt, len(text)) + text + payload


def _zip(members: dict, method=zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def _write(tmp_path, payload: bytes, name="d.npz"):
    path = tmp_path / name
    path.write_bytes(payload)
    return path


def _refused(path, *words, max_bytes=LIMIT):
    with pytest.raises(DataFileError) as info:
        from_npz(path, max_bytes=max_bytes)
    msg = str(info.value)
    assert str(path) in msg and "\n" not in msg and "Traceback" not in msg
    for word in words:
        assert word in msg, msg
    return msg


def _patch_central(payload: bytes, offset: int, fmt: str, value) -> bytes:
    """Every central-directory record's field at `offset` set to `value`."""
    out = bytearray(payload)
    start = 0
    while (i := out.find(b"PK\x01\x02", start)) >= 0:
        struct.pack_into(fmt, out, i + offset, value)
        start = i + 4
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Valid archives
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [VALID, VALID_DEFLATED], ids=["stored", "deflated"])
def test_valid_archive_round_trip(tmp_path, payload):
    ds = from_npz(_write(tmp_path, payload), max_bytes=LIMIT)
    ref = np.load(io.BytesIO(payload))
    np.testing.assert_array_equal(ds.x, ref["x"])
    np.testing.assert_array_equal(ds.y, ref["y"])
    assert ds.name == "sinus" and ds.info["source_info"] == {"seed": 3}
    assert ds.info["task"] == "regression"


def test_fortran_order_and_big_endian_and_ints(tmp_path):
    x = np.asfortranarray(np.arange(12, dtype=">f8").reshape(4, 3))
    payload = _valid_bytes(x=x, y=np.array([1, -1, 1, -1], np.int8), x_test=x[:1])
    payload = _zip(_members(payload, drop=("y_clean", "y_test", "x_test")))
    ds = from_npz(_write(tmp_path, payload), max_bytes=LIMIT)
    np.testing.assert_array_equal(ds.x, np.arange(12.0).reshape(4, 3))
    assert ds.info["task"] == "classification"


def _members(payload: bytes, drop=()) -> dict:
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        return {n: zf.read(n) for n in zf.namelist() if n[:-4] not in drop}


def test_name_entry_is_never_a_path(tmp_path):
    payload = _valid_bytes(name=np.str_("/" + "../" * 3 + "etc/X\x00\n"))
    ds = from_npz(_write(tmp_path, payload), max_bytes=LIMIT)
    assert "/" not in ds.name and ".." not in ds.name and ds.name == "etc_X"
    assert ds.info["name_in_file"] == "/" + "../" * 3 + "etc/X\x00\n"


# ---------------------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------------------


def test_directory_and_fifo_refused_without_blocking(tmp_path):
    _refused(tmp_path, "directory")
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    result = {}

    def read():
        try:
            from_npz(fifo, max_bytes=LIMIT)
        except DataFileError as err:
            result["msg"] = str(err)

    t = threading.Thread(target=read, daemon=True)
    t.start()
    t.join(5.0)
    assert not t.is_alive(), "from_npz blocked on a FIFO"
    assert "FIFO" in result["msg"]


def test_missing_empty_npy_and_text_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        from_npz(tmp_path / "absent.npz")
    _refused(_write(tmp_path, b""), "empty")
    buf = io.BytesIO()
    np.save(buf, np.eye(2))
    _refused(_write(tmp_path, buf.getvalue()), "single array")
    _refused(_write(tmp_path, b"x,y\n1,2\n"), "not an .npz archive")


# ---------------------------------------------------------------------------------------------
# The archive
# ---------------------------------------------------------------------------------------------


def test_encrypted_member(tmp_path):
    payload = _patch_central(VALID, 8, "<H", 0x1)  # general-purpose flag: encrypted
    _refused(_write(tmp_path, payload), "encrypted", "array")


def test_unsupported_compression(tmp_path):
    payload = _patch_central(VALID, 10, "<H", zipfile.ZIP_BZIP2)
    _refused(_write(tmp_path, payload), "compression method 12")


def test_crc_damage(tmp_path):
    payload = _patch_central(VALID, 16, "<I", 0xDEADBEEF)
    _refused(_write(tmp_path, payload), "damaged")


def test_unknown_duplicate_and_not_npy_members(tmp_path):
    _refused(_write(tmp_path, _zip({"x.npy": b"", "y_cleen.npy": b""})), "did you mean 'y_clean'")
    _refused(_write(tmp_path, _zip({"x": b"", "y.npy": b""})), "'.npy'")
    buf = io.BytesIO()
    with pytest.warns(UserWarning), zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("x.npy", b"1")
        zf.writestr("x.npy", b"2")
    _refused(_write(tmp_path, buf.getvalue()), "twice")


def test_zip_bomb_refused_before_inflating(tmp_path):
    """50 MB of zeros deflate to ~50 kB; the declared size is checked against the limit."""
    path = tmp_path / "bomb.npz"
    n = 6_250_000  # float64 entries: 50 MB
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("x.npy", "w", force_zip64=True) as f:
            f.write(_npy(f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({n}, 1), }}"))
            zero = bytes(1 << 22)
            for _ in range(8 * n // len(zero)):
                f.write(zero)
            f.write(bytes(8 * n % len(zero)))
        zf.writestr("y.npy", _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (0,), }"))
    assert path.stat().st_size < 200_000
    t0 = time.perf_counter()
    _refused(path, "memory limit", max_bytes=10_000_000)
    assert time.perf_counter() - t0 < 2.0


# ---------------------------------------------------------------------------------------------
# Headers and dtypes
# ---------------------------------------------------------------------------------------------


def test_header_claiming_1e10_entries_refused_before_allocating(tmp_path):
    member = _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }", b"")
    payload = _zip({"x.npy": member, "y.npy": member})
    msg = _refused(_write(tmp_path, payload), "10,000,000,000 entries", "memory limit")
    assert "'x'" in msg


def test_header_shape_not_matching_member(tmp_path):
    member = _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (4, 3), }", bytes(8))
    _refused(_write(tmp_path, _zip({"x.npy": member, "y.npy": member})), "damaged", "'x'")


def test_object_array_refused_without_unpickling(tmp_path):
    buf = io.BytesIO()
    np.savez(buf, x=np.array([1, "a", None], dtype=object), y=np.ones(3))
    _refused(_write(tmp_path, buf.getvalue()), "pickled object array", "'x'")


@pytest.mark.parametrize(
    ("value", "word"),
    [(np.array([1 + 2j, 3j]), "complex"), (np.array(["a", "b"]), "non-numeric")],
)
def test_non_real_dtypes(tmp_path, value, word):
    buf = io.BytesIO()
    np.savez(buf, x=np.eye(2), y=value)
    _refused(_write(tmp_path, buf.getvalue()), word, "'y'")


@pytest.mark.parametrize(
    ("text", "word"), [("[1, 2]", "JSON object, got a JSON list"), ("{nope", "not valid JSON")]
)
def test_info_json_must_be_a_json_object(tmp_path, text, word):
    _refused(_write(tmp_path, _valid_bytes(info_json=np.str_(text))), word, "info_json")


def test_non_finite_and_shape_errors_name_the_file(tmp_path):
    _refused(_write(tmp_path, _valid_bytes(y=np.full(6, np.nan))), "'y'")
    _refused(_write(tmp_path, _valid_bytes(y=np.ones(5))), "length mismatch")


# ---------------------------------------------------------------------------------------------
# Fuzzing: a valid Dataset or one DataFileError sentence, nothing else, never a hang
# ---------------------------------------------------------------------------------------------

FUZZ = settings(
    max_examples=60,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _read_or_refuse(path):
    try:
        ds = from_npz(path, max_bytes=LIMIT)
    except DataFileError as err:
        msg = str(err)
        assert msg.startswith(str(path)) and "\n" not in msg, msg
        return None
    assert isinstance(ds, Dataset)
    assert np.all(np.isfinite(ds.x)) and ds.x.ndim == 2 and ds.y.shape[0] == ds.x.shape[0]
    return ds


@FUZZ
@given(st.binary(max_size=3000), st.sampled_from([b"", b"PK\x03\x04", b"\x93NUMPY\x01\x00"]))
def test_fuzz_random_bytes(tmp_path, payload, prefix):
    _read_or_refuse(_write(tmp_path, prefix + payload))


@FUZZ
@given(
    st.sampled_from([VALID, VALID_DEFLATED]),
    st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=6),
    st.one_of(st.none(), st.integers(0, 10**6)),
)
def test_fuzz_mutated_and_truncated_archives(tmp_path, base, edits, cut):
    out = bytearray(base)
    for pos, byte in edits:
        out[pos % len(out)] = byte
    if cut is not None:
        out = out[: cut % (len(out) + 1)]
    _read_or_refuse(_write(tmp_path, bytes(out)))


_DESCRS = ["<f8", ">f4", "<i4", "|b1", "|u1", "<f2", "|O", "<c16", "<U4", "|V8", "bogus", "<M8[s]"]


@FUZZ
@given(
    st.one_of(
        st.builds(
            lambda d, f, s: f"{{'descr': {d!r}, 'fortran_order': {f}, 'shape': {s!r}, }}",
            st.sampled_from(_DESCRS),
            st.booleans(),
            st.lists(st.integers(-3, 10**12), max_size=3).map(tuple),
        ),
        st.text(max_size=200).map(lambda t: t.encode("latin1", "replace").decode("latin1")),
    ),
    st.binary(max_size=256),
    st.sampled_from([(1, 0), (2, 0), (3, 0), (9, 9)]),
    st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]),
)
def test_fuzz_random_headers(tmp_path, header, payload, version, method):
    member = _npy(header, payload, version if version in ((1, 0), (2, 0)) else (1, 0))
    if version not in ((1, 0), (2, 0)):
        member = member[:6] + bytes(version) + member[8:]
    ok_y = _npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", bytes(16))
    _read_or_refuse(_write(tmp_path, _zip({"x.npy": member, "y.npy": ok_y}, method)))


def test_deflate_stream_damage_is_one_sentence(tmp_path):
    """A member whose deflate stream is cut short (zlib errors inside zipfile)."""
    member = zlib.compress(b"\x00" * 100)[:5]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.npy", b"\x00" * 100)
    raw = bytearray(buf.getvalue())
    i = raw.find(b"x.npy") + len("x.npy")
    raw[i : i + len(member)] = member
    _read_or_refuse(_write(tmp_path, bytes(raw)))


def test_reader_keys_and_required_members(tmp_path):
    path = _write(tmp_path, _zip(_members(VALID, drop=("y", "y_clean", "y_test", "x_test"))))
    with pytest.raises(DataFileError, match="has no array 'x2'"):
        data.read_npz_arrays(path, keys=("x", "x2", "name", "info_json"), required=("x2",))
    with pytest.raises(DataFileError, match="unknown array.*'name'"):
        data.read_npz_arrays(path, keys=("x", "x2"))


def test_data_module_exports_the_reader():
    assert data.read_npz_arrays is not None and issubclass(DataFileError, ValueError)
