"""The one JSON encoder of ntk_air: results (pytrees of arrays) to plain JSON values."""

from __future__ import annotations

import math

import numpy as np


def to_jsonable(obj):
    """numpy/JAX arrays and scalars → lists and numbers; NamedTuples and dataclasses → dicts;
    non-finite floats → the strings "inf", "-inf", "nan" (JSON has no such numbers); paths and
    any other object → their string.

    Example:
      >>> to_jsonable({"a": np.array([1.0, np.inf]), "b": (1, None)})
      {'a': [1.0, 'inf'], 'b': [1, None]}
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if hasattr(obj, "_asdict"):
        return to_jsonable(obj._asdict())
    if hasattr(obj, "__dataclass_fields__"):
        return {k: to_jsonable(getattr(obj, k)) for k in obj.__dataclass_fields__}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if obj is None or isinstance(obj, bool | str | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else ("inf" if obj > 0 else "-inf" if obj < 0 else "nan")
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if hasattr(obj, "__array__"):
        arr = np.asarray(obj)
        return to_jsonable(arr.item()) if arr.ndim == 0 else [to_jsonable(v) for v in arr.tolist()]
    return str(obj)  # a path, or any other object
