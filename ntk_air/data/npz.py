"""A user's own data in an .npz file: read with `allow_pickle=False`, checked key by key."""

from __future__ import annotations

import difflib
import json
import os
import zipfile
import zlib

import numpy as np

from .._checks import as_real_numpy, check_finite
from .._json import to_jsonable
from ._dataset import Dataset, from_arrays

__all__ = ["from_npz", "save_npz", "NPZ_KEYS"]

NPZ_KEYS = ("x", "y", "y_clean", "x_test", "y_test", "name", "info_json")
"""The keys `from_npz` reads (any other key is an error) and `save_npz` writes."""


# What a damaged archive raises while an array is read: zip structure, deflate stream, CRC,
# a truncated member, or an unparsable .npy header.
_CORRUPT = (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, SyntaxError)


def _npz_array(npz, key: str, path) -> np.ndarray:
    try:
        arr = npz[key]
    except _CORRUPT as err:
        raise ValueError(
            f"{path}: array {key!r} cannot be read: the file is damaged ({err})"
        ) from err
    except ValueError as err:  # object arrays refuse to load without pickle
        if "pickle" not in str(err).lower() and "object" not in str(err).lower():
            raise ValueError(f"{path}: array {key!r} cannot be read: {err}") from err
        raise ValueError(
            f"{path}: array {key!r} is a pickled object array, which ntk_air refuses to load "
            "(allow_pickle=False, for safety); save plain numeric arrays instead"
        ) from err
    name = f"{path}: array {key!r}"
    arr = as_real_numpy(arr, name)
    check_finite(arr, name)
    return arr


def from_npz(path, *, normalize: bool = False) -> Dataset:
    """Read a Dataset from a .npz file (`np.load(path, allow_pickle=False)`).

    Keys (`NPZ_KEYS`; any other key is an error that suggests the nearest known one, so a
    misspelled optional key is never silently ignored): `x` (n, d) and `y` (n,) or (n, C) noisy
    labels — required; `y_clean` (same shape as y) — if absent, y_clean = y,
    `info["y_clean_given"] = False` and no row is marked corrupted (the corruption is unknown);
    `x_test` (n_test, d) and `y_test` (clean test labels) — both or neither (absent: empty test
    set); `name`, `info_json` — optional, written by `save_npz`.
    `info["corrupted"]` = the rows where y ≠ y_clean.

    Rows that are not unit-norm are kept as they are unless `normalize=True` (then
    `unit_normalize` is applied to train and test inputs); `info["max_norm_deviation"]` =
    max_i |‖x_i‖ − 1| over train and test rows lets callers warn or refuse.

    Args:
      path: file path.
      normalize: unit-normalize the rows explicitly.

    Returns:
      Dataset; info: dataset "npz", path, y_clean_given, normalized, max_norm_deviation,
      n_classes (C for one-hot, 2 for ±1 labels, None otherwise), corrupted, source_info.

    Raises:
      FileNotFoundError: no file at `path`.
      ValueError: naming the key and the problem (missing or unknown key, rank, length
        mismatch, non-finite entry, pickled object array).
      TypeError: naming the key of an array with a non-numeric dtype.

    Example:
      >>> path = save_npz(ntk_air.data.clusters(), tmp_path / "clusters.npz")
      >>> from_npz(path).info["n_corrupted"]
      40
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path!r}")
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, *_CORRUPT) as err:
        reason = "it is empty" if os.path.getsize(path) == 0 else str(err)
        raise ValueError(f"{path}: not a readable .npz file ({reason})") from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: expected an .npz archive with keys x, y; got a single array")
    with npz:
        keys = set(npz.files)
        unknown = sorted(keys - set(NPZ_KEYS))
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, NPZ_KEYS, n=1, cutoff=0.5)
                hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            raise ValueError(
                f"{path}: unknown array(s) {', '.join(hints)}; the known keys are "
                f"{', '.join(NPZ_KEYS)}"
            )
        for required in ("x", "y"):
            if required not in keys:
                raise ValueError(
                    f"{path}: missing required array {required!r} (found keys {sorted(keys)}; "
                    "need x (n, d) and y (n,) or (n, C), optional y_clean, x_test, y_test)"
                )
        if ("x_test" in keys) != ("y_test" in keys):
            raise ValueError(
                f"{path}: x_test and y_test must be given together (found {sorted(keys)})"
            )
        arrays = {
            k: _npz_array(npz, k, path)
            for k in ("x", "y", "y_clean", "x_test", "y_test")
            if k in keys
        }
        name = str(npz["name"]) if "name" in keys else os.path.splitext(os.path.basename(path))[0]
        source_info = json.loads(str(npz["info_json"])) if "info_json" in keys else None
    try:
        ds = from_arrays(
            arrays["x"],
            arrays["y"],
            arrays.get("y_clean"),
            arrays.get("x_test"),
            arrays.get("y_test"),
            name=name,
            normalize=normalize,
        )
    except (ValueError, TypeError) as err:
        raise type(err)(f"{path}: {err}") from err
    info = dict(ds.info)
    info.update(
        {
            "dataset": "npz",
            "path": path,
            "noise": source_info.get("noise") if source_info else None,
            "noise_rate": source_info.get("noise_rate") if source_info else None,
            "seed": source_info.get("seed") if source_info else None,
            "source_info": source_info,
        }
    )
    return ds._replace(info=info)


def save_npz(dataset: Dataset, path) -> str:
    """Write a Dataset to `path` exactly (no ".npz" appended) with the keys `from_npz` reads.

    Keys: x, y, y_clean, x_test, y_test (= y_test_clean), name, info_json (info as JSON).
    `from_npz(path)` returns the same arrays and name; its info recomputes `corrupted` from
    y ≠ y_clean and keeps the saved info under `info["source_info"]`.

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
