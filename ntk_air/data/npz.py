"""A user's own data in an .npz file, read without `np.load`: every problem is one `DataFileError`
sentence naming the file and the member. Checked before reading: a regular file (a FIFO never
blocks), the archive (damage, encryption, compression, duplicate or unknown members), the declared
sizes against `max_bytes` (a zip bomb is refused, not inflated), each .npy header and dtype
(pickles refused unread; real numbers only; `name` and `info_json` text).
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import stat
import zipfile

import numpy as np

from .._checks import check_finite
from .._json import to_jsonable
from ._dataset import Dataset, from_arrays

__all__ = ["from_npz", "save_npz", "DataFileError", "read_npz_arrays"]

_NPZ_KEYS = ("x", "y", "y_clean", "x_test", "y_test", "name", "info_json")

_TEXT_KEYS = ("name", "info_json")
_MAX_TEXT_CHARS = 1_000_000  # name / info_json: text, not data
_MAX_NAME_CHARS = 64
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
_CHUNK = 1 << 24


class DataFileError(ValueError):
    """A data file that cannot be read: one sentence naming the file and the member at fault."""


def _fail(path, member, what) -> DataFileError:
    return DataFileError(f"{path}: array {member!r}: {what}")


def _default_max_bytes() -> int:
    from ..spectral._resources import available_memory

    return max(1 << 20, available_memory() // 2)


def _open_regular(path: str):
    """The file opened for reading after checking (without blocking) that it is a regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"data file not found: {path!r}") from None
    except OSError as err:
        raise DataFileError(f"{path}: cannot be read ({err.strerror or err})") from err
    _check_regular(path, st.st_mode)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise DataFileError(f"{path}: cannot be opened ({err.strerror or err})") from err
    try:
        _check_regular(path, os.fstat(fd).st_mode)  # the file may have changed since os.stat
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _check_regular(path, mode) -> None:
    if stat.S_ISREG(mode):
        return
    kinds = {
        "a directory": stat.S_ISDIR,
        "a FIFO (named pipe)": stat.S_ISFIFO,
        "a socket": stat.S_ISSOCK,
        "a device": lambda m: stat.S_ISCHR(m) or stat.S_ISBLK(m),
    }
    kind = next((kind for kind, test in kinds.items() if test(mode)), "not a regular file")
    raise DataFileError(f"{path}: is {kind}, not an .npz data file")


def _member_infos(path, zf: zipfile.ZipFile, known, required) -> dict:
    """{key: ZipInfo} of the archive's .npy members, every archive-level check done."""
    infos = {}
    for info in zf.infolist():
        name = info.filename
        key = name[:-4] if name.endswith(".npy") else name
        if key in infos:
            raise _fail(path, key, "appears twice in the archive")
        infos[key] = info
    for key in required:
        if key not in infos:
            found = ", ".join(sorted(infos)[:10]) or "none"
            raise DataFileError(f"{path}: has no array {key!r} (found: {found})")
    unknown = sorted(k for k in infos if k not in known)
    if unknown:
        hints = []
        for key in unknown[:5]:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise DataFileError(
            f"{path}: unknown array(s) {', '.join(hints)}{more}; the known keys are "
            f"{', '.join(known)}"
        )
    for key, info in infos.items():
        if not info.filename.endswith(".npy"):
            raise _fail(path, key, "is not an .npy member (its name lacks '.npy')")
        if info.flag_bits & 0x1:
            raise _fail(path, key, "is encrypted; ntk_air reads unencrypted archives only")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _fail(
                path,
                key,
                f"uses compression method {info.compress_type}, which ntk_air does not read "
                "(only stored and deflate, as np.savez and np.savez_compressed write)",
            )
    return infos


def _read_exact(f, count: int, path, key) -> bytes:
    """`count` bytes of a member (in chunks; a short member is damaged)."""
    parts, left = [], count
    while left > 0:
        chunk = f.read(min(left, _CHUNK))
        if not chunk:
            raise _fail(path, key, f"is truncated: {count - left} of {count} bytes")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _npy_header(f, path, key):
    """(shape, fortran_order, dtype, header bytes) of an .npy member, every header check done."""
    from numpy.lib import format as npy_format

    magic = f.read(len(_NPY_MAGIC) + 2)
    if len(magic) < len(_NPY_MAGIC) + 2 or not magic.startswith(_NPY_MAGIC):
        raise _fail(path, key, "is not an .npy array (bad magic string)")
    version = (magic[-2], magic[-1])
    if version not in ((1, 0), (2, 0)):
        raise _fail(path, key, f"has .npy format version {version}, ntk_air reads 1.0 and 2.0")
    read = (
        npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
    )
    counting = _Counting(f)
    try:
        shape, fortran, dtype = read(counting, max_header_size=10_000)
    except Exception as err:  # numpy raises ValueError, SyntaxError, … on a bad header
        raise _fail(path, key, f"has an unreadable .npy header ({_short(err)})") from None
    if not isinstance(shape, tuple) or any(
        not isinstance(s, int) or isinstance(s, bool) or s < 0 for s in shape
    ):
        raise _fail(path, key, f"has an invalid shape {shape!r} in its .npy header")
    return shape, bool(fortran), dtype, len(magic) + counting.count


class _Counting:
    """A read-only wrapper counting the bytes read (the header's length)."""

    def __init__(self, f):
        self.f, self.count = f, 0

    def read(self, n=-1):
        out = self.f.read(n)
        self.count += len(out)
        return out


def _short(err) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "…"


def _check_dtype(path, key, dtype: np.dtype) -> None:
    if dtype.hasobject:
        raise _fail(
            path,
            key,
            "is a pickled object array, which ntk_air refuses to load (allow_pickle=False, "
            "for safety); save plain numeric arrays instead",
        )
    if key in _TEXT_KEYS:
        if dtype.kind not in "US":
            raise _fail(path, key, f"must be text, got dtype {dtype}")
        return
    if dtype.fields is not None or dtype.subdtype is not None:
        raise _fail(path, key, f"has a structured dtype {dtype}; save a plain numeric array")
    if dtype.kind == "c":
        raise _fail(path, key, f"is complex ({dtype}); ntk_air needs real numbers")
    if dtype.kind not in "biuf":
        raise _fail(path, key, f"has the non-numeric dtype {dtype}; ntk_air needs real numbers")


def _read_member(zf, info, path, key, max_bytes: int) -> np.ndarray:
    """One member as an array, its declared size checked before anything is allocated."""
    declared = info.file_size  # the uncompressed size the archive declares
    if declared > max_bytes:
        raise _fail(
            path,
            key,
            f"declares {declared:,} bytes uncompressed, above the memory limit of "
            f"{max_bytes:,} bytes",
        )
    with zf.open(info) as f:
        shape, fortran, dtype, header = _npy_header(f, path, key)
        _check_dtype(path, key, dtype)
        count = math.prod(shape)
        nbytes = count * dtype.itemsize
        if key in _TEXT_KEYS and (shape != () or nbytes > 4 * _MAX_TEXT_CHARS):
            raise _fail(path, key, f"must be one text value, got shape {shape} of {dtype}")
        # the entries as float64, the form ntk_air keeps them in
        if max(nbytes, 8 * count) > max_bytes:
            raise _fail(
                path,
                key,
                f"declares shape {shape} ({count:,} entries), above the memory limit of "
                f"{max_bytes:,} bytes",
            )
        if header + nbytes != declared:
            raise _fail(
                path,
                key,
                f"is damaged: its .npy header declares {nbytes:,} bytes of data but the member "
                f"holds {declared - header:,}",
            )
        data = _read_exact(f, nbytes, path, key)
        if f.read(1):  # past the declared size: zipfile stops there; a CRC mismatch raised
            raise _fail(path, key, "holds more bytes than declared")
    arr = np.frombuffer(data, dtype=dtype, count=count) if count else np.empty(0, dtype)
    arr = arr.reshape(shape, order="F" if fortran else "C")
    return arr


def read_npz_arrays(path, *, keys=_NPZ_KEYS, required=(), max_bytes: int | None = None) -> dict:
    """The members of an .npz archive as {key: array}, every check of the module docstring done.

    Args:
      path: file path. keys: the member names allowed (any other is an error naming the nearest
        allowed one); "name" and "info_json" are text, the others real numeric arrays.
      required: keys that must be present (checked first).
      max_bytes: memory limit for the declared sizes (default: half the memory available now).

    Returns:
      {key: np.ndarray} for the keys present (text members as 0-d str arrays).

    Raises:
      FileNotFoundError: no file at `path`.
      DataFileError: (a ValueError) one sentence naming the file and the member.

    Example:
      >>> path = save_npz(ntk_air.data.clusters(), tmp_path / "c.npz")
      >>> sorted(read_npz_arrays(path))[:3]
      ['info_json', 'name', 'x']
    """
    path = os.fspath(path)
    limit = _default_max_bytes() if max_bytes is None else int(max_bytes)
    with _open_regular(path) as fh:
        head = fh.read(8)
        if not head:
            raise DataFileError(f"{path}: is empty, not an .npz archive")
        if head.startswith(_NPY_MAGIC):
            raise DataFileError(
                f"{path}: holds a single array (.npy), not an .npz archive with keys x, y (save "
                "with np.savez)"
            )
        if not head.startswith(_ZIP_MAGIC):
            raise DataFileError(f"{path}: is not an .npz archive (no zip signature)")
        fh.seek(0)
        try:
            zf = zipfile.ZipFile(fh)
        except Exception as err:  # BadZipFile, and whatever a damaged directory raises
            raise DataFileError(f"{path}: is a damaged .npz archive ({_short(err)})") from None
        with zf:
            infos = _member_infos(path, zf, tuple(keys), tuple(required))
            total = sum(info.file_size for info in infos.values())
            if total > limit:
                raise DataFileError(
                    f"{path}: its arrays declare {total:,} bytes uncompressed, above the memory "
                    f"limit of {limit:,} bytes (a zip bomb, or data too large for this machine)"
                )
            arrays = {}
            for key, info in infos.items():
                try:
                    arrays[key] = _read_member(zf, info, path, key, limit)
                except DataFileError:
                    raise
                except MemoryError:
                    raise _fail(path, key, "does not fit in memory") from None
                except Exception as err:  # BadZipFile (CRC), zlib.error, EOFError, OSError, …
                    raise _fail(path, key, f"cannot be read: damaged ({_short(err)})") from None
    return arrays


def _text(arr: np.ndarray, path, key) -> str:
    try:
        text = str(arr[()])
    except Exception as err:
        raise _fail(path, key, f"is not readable text ({_short(err)})") from None
    if len(text) > _MAX_TEXT_CHARS:
        raise _fail(path, key, f"is {len(text):,} characters long, at most {_MAX_TEXT_CHARS:,}")
    return text


def _safe_name(text: str) -> str:
    """Display text for a data set's name: letters, digits and ._+- only, no leading dot."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._")[:_MAX_NAME_CHARS]
    return name or "data"


def _source_info(arrays, path):
    if "info_json" not in arrays:
        return None
    text = _text(arrays["info_json"], path, "info_json")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise _fail(path, "info_json", f"is not valid JSON ({_short(err)})") from None
    if not isinstance(value, dict):
        raise _fail(path, "info_json", f"must be a JSON object, got a JSON {type(value).__name__}")
    return value


def from_npz(
    path, *, normalize: bool = False, task: str | None = None, max_bytes: int | None = None
) -> Dataset:
    """Read a Dataset from a .npz file through the checked reader (`read_npz_arrays`).

    Keys (any other is an error naming the nearest known one): `x` (n, d) and `y` (n,) or (n, C)
    required; `y_clean`; `x_test` and `y_test` together; `name` and `info_json` as `save_npz`
    writes them. The arrays then go through `from_arrays`.

    Args:
      path: file path.
      normalize: unit-normalize the rows explicitly.
      task: "classification", "regression" or None (inferred from the labels).
      max_bytes: memory limit for the declared sizes (default: half the available memory).

    Returns:
      Dataset; info: dataset "npz", path, task, y_clean_given, normalized, max_norm_deviation,
      n_classes (C for one-hot, 2 for ±1 labels, None for regression), corrupted, source_info,
      name_in_file.

    Raises:
      FileNotFoundError: no file at `path`.
      DataFileError: (a ValueError) one sentence naming the file, the key and the problem.

    Example:
      >>> path = save_npz(ntk_air.data.clusters(), tmp_path / "clusters.npz")
      >>> from_npz(path).info["n_corrupted"]
      40
    """
    path = os.fspath(path)
    arrays = read_npz_arrays(path, max_bytes=max_bytes)
    keys = set(arrays)
    for required in ("x", "y"):
        if required not in keys:
            raise DataFileError(
                f"{path}: missing required array {required!r} (found keys {sorted(keys)}; "
                "need x (n, d) and y (n,) or (n, C), optional y_clean, x_test, y_test)"
            )
    if ("x_test" in keys) != ("y_test" in keys):
        raise DataFileError(
            f"{path}: x_test and y_test must be given together (found {sorted(keys)})"
        )
    for key, arr in arrays.items():
        if key not in _TEXT_KEYS:
            try:
                check_finite(arr, f"array {key!r}")
            except ValueError as err:
                raise DataFileError(f"{path}: {err}") from None
    raw_name = _text(arrays["name"], path, "name") if "name" in keys else None
    stem = os.path.splitext(os.path.basename(path))[0]
    name = _safe_name(stem if raw_name is None else raw_name)
    source_info = _source_info(arrays, path)
    try:
        ds = from_arrays(
            arrays["x"],
            arrays["y"],
            arrays.get("y_clean"),
            arrays.get("x_test"),
            arrays.get("y_test"),
            name=name,
            normalize=normalize,
            task=task,
        )
    except (ValueError, TypeError) as err:
        raise DataFileError(f"{path}: {err}") from None
    source = source_info or {}
    info = dict(ds.info, dataset="npz", path=path, name_in_file=raw_name)
    info.update({key: source.get(key) for key in ("noise", "noise_rate", "seed")})
    return ds._replace(info={**info, "source_info": source_info})


def save_npz(dataset: Dataset, path) -> str:
    """Write a Dataset to `path` exactly (no ".npz" appended) with the keys `from_npz` reads.

    `from_npz(path)` returns the same arrays and name, the saved info as `info["source_info"]`.

    Returns:
      the path written.

    Example:
      >>> str(save_npz(ntk_air.data.clusters(), tmp_path / "c.npz")).endswith("c.npz")
      True
    """
    path = os.fspath(path)
    with open(path, "wb") as f:
        np.savez(
            f,
            x=np.asarray(dataset.x, np.float64),
            y=np.asarray(dataset.y, np.float64),
            y_clean=np.asarray(dataset.y_clean, np.float64),
            x_test=np.asarray(dataset.x_test, np.float64),
            y_test=np.asarray(dataset.y_test_clean, np.float64),
            name=np.str_(dataset.name),
            info_json=np.str_(json.dumps(to_jsonable(dataset.info))),
        )
    return path
