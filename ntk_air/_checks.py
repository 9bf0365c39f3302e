"""Input checks of every public entry point, naming the bad value (traced: `checkify`)."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True when `x` holds values (not an abstract tracer inside jit/vmap/grad)."""
    return not isinstance(x, jax.core.Tracer)


def resolve_dtype(dtype=None, like=None) -> jnp.dtype:
    """An explicit float32/float64 (float64 needs x64 mode), else `like`'s float dtype, else
    JAX's default float."""
    if dtype is None:
        like_dtype = getattr(like, "dtype", None)
        if like_dtype is not None and jnp.issubdtype(like_dtype, jnp.floating):
            dt = jnp.dtype(jax.dtypes.canonicalize_dtype(like_dtype))
            if dt in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
                return dt
        return jnp.dtype(jnp.float64 if jax.config.jax_enable_x64 else jnp.float32)
    dt = jnp.dtype(dtype)
    if dt not in (jnp.dtype(jnp.float32), jnp.dtype(jnp.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    if dt == jnp.float64 and not jax.config.jax_enable_x64:
        raise ValueError(
            "dtype=float64 requested but JAX x64 mode is off; call "
            "jax.config.update('jax_enable_x64', True) first "
            "(the CLI does this for --dtype float64)"
        )
    return dt


def check_int(name: str, value, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """`value` as a Python int (not a bool or float) within bounds; else a ValueError naming it."""
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if ok:
        value = int(value)
        ok = (minimum is None or value >= minimum) and (maximum is None or value <= maximum)
    if not ok:
        bounds = [f"{op} {v}" for op, v in (("≥", minimum), ("≤", maximum)) if v is not None]
        rng = f" {' and '.join(bounds)}" if bounds else ""
        raise ValueError(f"{name} must be an integer{rng}, got {value!r}")
    return value


def check_real(
    name: str,
    value,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_min: bool = False,
    open_max: bool = False,
) -> float:
    """`value` as a finite float (not a bool or string) in [minimum, maximum] (`open_min`,
    `open_max`: open ends); else a ValueError naming it."""
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )
    if ok:
        v = float(value)
        ok = np.isfinite(v)
        if ok and minimum is not None:
            ok = v > minimum if open_min else v >= minimum
        if ok and maximum is not None:
            ok = v < maximum if open_max else v <= maximum
    if not ok:
        lo = "" if minimum is None else f"{'>' if open_min else '≥'} {minimum:g}"
        hi = "" if maximum is None else f"{'<' if open_max else '≤'} {maximum:g}"
        rng = " and ".join(b for b in (lo, hi) if b)
        raise ValueError(f"{name} must be a finite number{' ' + rng if rng else ''}, got {value!r}")
    return v


def check_bool(name: str, value) -> bool:
    """`value` as a bool (True/False or a numpy bool; not 1, 0 or 'yes')."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(name: str, value, choices) -> str:
    """`value` when it is one of `choices` (ValueError naming them otherwise)."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value


def check_sequence(name: str, value, *, allow_empty: bool = False) -> tuple:
    """`value` as a tuple when it is a list, tuple or 1-D array (not a string, a scalar or None)."""
    ok = isinstance(value, list | tuple) or (isinstance(value, np.ndarray) and value.ndim == 1)
    if not ok or (not allow_empty and len(value) == 0):
        raise ValueError(f"{name} must be a non-empty tuple of values, got {value!r}")
    return tuple(value)


def check_optional(check, name: str, value, **bounds):
    """None, or `check(name, value, **bounds)`."""
    return None if value is None else check(name, value, **bounds)


def param(default, help: str, **cli):
    """A config field with its one-line documentation, from which the CLI derives its option.

    Args:
      default: the field's default (the CLI's too).
      help: what the field means, as `--help` prints it ("(default …)" is added).
      **cli: how the option departs from `--field-name` taking one value of the default's type:
        option ("--rule"), metavar, choices, type (a parser, or "ints": 8x8x1 or 256,256), item
        (the type of each value of a comma list), flag (an option without a value that sets the
        field to `not default`), default_help (what the default means, when not a value).
    """
    return dataclasses.field(default=default, metadata={"help": help, **cli})


def check_dataset(dataset, name: str = "dataset"):
    """`dataset` when it is a `ntk_air.data.Dataset` (TypeError in one sentence otherwise)."""
    from .data import Dataset

    if not isinstance(dataset, Dataset):
        raise TypeError(
            f"{name} must be a ntk_air.data.Dataset (e.g. ntk_air.data.load('clusters') or "
            f"ntk_air.data.from_arrays(x, y)), got {type(dataset).__name__}"
        )
    return dataset


def check_real_numeric(arr: np.ndarray, name: str) -> None:
    """TypeError naming `name` unless `arr` is a real numeric (or boolean) numpy array."""
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got complex dtype {arr.dtype}")


def as_real_numpy(a, name: str) -> np.ndarray:
    """A float64 numpy copy of a real numeric (or boolean) array; TypeError naming `name` else."""
    arr = np.asarray(a)
    check_real_numeric(arr, name)
    return arr.astype(np.float64)


def as_float_array(x, name: str, dtype=None) -> jax.Array:
    """x as a JAX float array of `resolve_dtype(dtype, like=x)`; TypeError if not real numeric."""
    if is_concrete(x):
        x = np.asarray(x) if not isinstance(x, jax.Array) else x
        check_real_numeric(np.asarray(x), name)
    return jnp.asarray(x, dtype=resolve_dtype(dtype, like=x))


def as_float_tree(tree, name: str, dtype=None):
    """Every leaf of a pytree as a finite float array of `dtype` (errors name the leaf's path)."""

    def cast(path, leaf):
        leaf_name = name + jax.tree_util.keystr(path)
        arr = as_float_array(leaf, leaf_name, dtype)
        check_finite(arr, leaf_name)
        return arr

    return jax.tree_util.tree_map_with_path(cast, tree)


def check_rank(x, name: str, rank: int) -> None:
    if jnp.ndim(x) != rank:
        raise ValueError(f"{name} must have rank {rank}, got shape {tuple(jnp.shape(x))}")


def _traced_check(pred, message: str, **fmt) -> None:
    """A `checkify.debug_check`: an error only where the caller checkifies (`checked.run`)."""
    from jax.experimental import checkify

    checkify.debug_check(pred, message, **fmt)


def check_finite(x, name: str) -> None:
    """Raise naming the first non-finite entry (NaN or inf)."""
    if not is_concrete(x):
        _traced_check(jnp.all(jnp.isfinite(x)), f"{name} holds a NaN or inf (checked under jit)")
        return
    arr = np.asarray(x)
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite entries; first at index {idx}: {arr[idx]}"
        )


def check_same_features(x1, x2, what: str = "feature") -> None:
    if x1.shape[1:] != x2.shape[1:]:
        raise ValueError(
            f"x1 and x2 must have the same {what} shape, got {tuple(x1.shape[1:])} and "
            f"{tuple(x2.shape[1:])}"
        )


def unit_norm_deviation(x, rtol: float | None = None):
    """(max_i |‖x_i‖ − 1| of traced rows, the tolerance: `rtol`, else 1e-5 or 1e-10 by dtype)."""
    tol = rtol if rtol is not None else (1e-5 if x.dtype == jnp.float32 else 1e-10)
    return jnp.max(jnp.abs(jnp.linalg.norm(x.reshape(x.shape[0], -1), axis=1) - 1.0)), tol


def check_unit_norm(x, name: str) -> None:
    """The theorem's kernel assumes ‖x_i‖ = 1; report the worst row instead of renormalizing."""
    if not is_concrete(x):
        dev, tol = unit_norm_deviation(x)
        _traced_check(
            dev <= tol,
            f"{name} rows must have unit norm: max |‖x‖ − 1| = {{dev}} (checked under jit)",
            dev=dev,
        )
        return
    arr = np.asarray(x, dtype=np.float64)
    # data that hold float32 values (cast up or not) at float32 precision
    single = x.dtype == jnp.float32 or np.array_equal(arr, arr.astype(np.float32))
    rtol = 1e-5 if single else 1e-10
    norms = np.linalg.norm(arr.reshape(arr.shape[0], -1), axis=1)
    dev = np.abs(norms - 1.0)
    if arr.shape[0] and dev.max() > rtol:
        i = int(dev.argmax())
        raise ValueError(
            f"{name} rows must have unit norm (docs/science/kernels.md#unit-norm); "
            f"row {i} has norm {norms[i]:.6g} "
            f"(|norm - 1| = {dev[i]:.3g} > {rtol:g}). Normalize the inputs yourself "
            "(ntk_air.data.unit_normalize; --normalize on the command line) or pass general=True "
            "for the formula with norms."
        )


class NonFiniteError(ValueError):
    """A computed result (kernel, spectrum, trajectory) holds NaN or inf: never written silently."""


def first_nonfinite(arr, axis: int = 0):
    """Index along `axis` of the first slice holding a NaN/inf (None if all finite or traced)."""
    if not is_concrete(arr):
        return None
    a = np.asarray(arr)
    if a.size == 0 or np.isfinite(a).all():
        return None
    bad = ~np.isfinite(a)
    other = tuple(i for i in range(a.ndim) if i != axis % max(a.ndim, 1))
    per = bad.any(axis=other) if other else bad
    return int(np.argmax(per))
