"""The `Dataset` every loader returns, row normalization, and the shared assembly of noisy data."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_real_numpy, check_finite, check_int
from ..spectral._problem import TASKS, check_class_labels, check_task, infer_task
from .noise import _canonical_noise, apply_noise


class Dataset(NamedTuple):
    """A training set with noisy and clean labels, and a clean test set (numpy float64)."""

    x: np.ndarray  # (n, d) training inputs, unit-norm rows (see info["max_norm_deviation"])
    y: np.ndarray  # (n,) ±1 or (n, C) one-hot (real-valued under Gaussian noise): noisy labels;
    #   or real targets (n,) / (n, k) for regression (info["task"])
    y_clean: np.ndarray  # (n,) or (n, C) ground-truth labels ŷ
    x_test: np.ndarray  # (n_test, d) test inputs (n_test may be 0)
    y_test_clean: np.ndarray  # (n_test,) or (n_test, C) clean test labels
    name: str
    info: dict  # metadata: dataset, task, noise, noise_rate, seed, n_classes, corrupted, ...


def unit_normalize(x) -> np.ndarray:
    """Unit-normalize every row: x_i ↦ x_i / ‖x_i‖₂ (docs/science/kernels.md#unit-norm).

    Args:
      x: (n, d) real array, finite, no zero rows.

    Returns:
      (n, d) float64 array with unit-norm rows.

    Example:
      >>> unit_normalize([[3.0, 4.0]])
      array([[0.6, 0.8]])
    """
    arr = as_real_numpy(x, "x")
    if arr.ndim != 2:
        raise ValueError(f"x must have rank 2 (n, d), got shape {arr.shape}")
    check_finite(arr, "x")
    norms = np.linalg.norm(arr, axis=1)
    zero = np.flatnonzero(norms == 0.0)
    if zero.size:
        raise ValueError(
            f"x has {zero.size} zero-norm rows (cannot be unit-normalized); first is row {zero[0]}"
        )
    return arr / norms[:, None]


def _max_norm_deviation(x: np.ndarray) -> float:
    """max_i |‖x_i‖ − 1| (0.0 for an empty array)."""
    if x.shape[0] == 0:
        return 0.0
    return float(np.max(np.abs(np.linalg.norm(x, axis=1) - 1.0)))


MAX_SEED = 2**32 - 1  # numpy's SeedSequence takes any size; JAX keys take 32-bit seeds


def _check_seed(seed) -> int:
    return check_int("seed", seed, minimum=0, maximum=MAX_SEED)


def _noisy_dataset(
    name, x, y_clean, x_test, y_test_clean, *, noise, noise_rate, seed, noise_seed, groups, info
) -> Dataset:
    """Apply the noise model and assemble the common info keys."""
    noise = _canonical_noise(noise)
    noisy = apply_noise(y_clean, noise, noise_rate, noise_seed, groups=groups)
    n_classes = 2 if y_clean.ndim == 1 else y_clean.shape[1]
    common = {
        "dataset": name,
        "task": "classification",
        "n_classes": n_classes,
        "n_train": x.shape[0],
        "n_test": x_test.shape[0],
        "dim": x.shape[1],
        "noise": noise,
        "noise_rate": float(noise_rate) if noise != "none" else 0.0,
        "noise_exact_per_group": noise in ("flip", "pair"),
        "seed": seed,
        "corrupted": np.flatnonzero(noisy.corrupted),
        "n_corrupted": int(noisy.corrupted.sum()),
        "normalized": True,
        "max_norm_deviation": max(_max_norm_deviation(x), _max_norm_deviation(x_test)),
    }
    common.update(info)
    return Dataset(x, noisy.y, y_clean, x_test, y_test_clean, name, common)


def from_arrays(
    x,
    y,
    y_clean=None,
    x_test=None,
    y_test=None,
    *,
    name: str = "arrays",
    normalize: bool = False,
    info: dict | None = None,
    task: str | None = None,
) -> Dataset:
    """A `Dataset` from arrays you already hold (what `from_npz` builds after reading a file).

    `info["task"]`: "classification" for ±1 or one-hot ground truth, else "regression". Without
    `y_clean`, y_clean = y and no row is marked corrupted; rows are kept as given unless
    `normalize=True` (`info["max_norm_deviation"]` = max_i |‖x_i‖ − 1|).

    Args:
      x: (n, d) inputs. y: (n,) or (n, C) labels. y_clean: same shape, or None.
      x_test: (n_test, d) or None. y_test: (n_test[, C]) or None.
      name: the data set's name in reports. normalize: unit-normalize train and test rows.
      info: extra metadata merged into the Dataset's info.
      task: "classification", "regression" or None (inferred from y_clean, else y).

    Returns:
      Dataset (float64 arrays).

    Raises:
      ValueError: naming the array and the problem (rank, length, non-finite entry, empty x).
      TypeError: naming the array with a non-numeric dtype.

    Example:
      >>> ds = from_arrays(np.eye(3), np.array([1.0, -1.0, 1.0]))
      >>> ds.info["y_clean_given"], ds.x_test.shape
      (False, (0, 3))
    """

    def arr(a, key):
        out = as_real_numpy(a, key)
        check_finite(out, key)
        if key in ("x", "x_test") and out.ndim == 2 and out.size:
            with np.errstate(over="ignore"):  # ‖x_i‖² must exist for every kernel
                sq = np.einsum("ij,ij->i", out.astype(np.float64), out.astype(np.float64))
            if not np.isfinite(sq).all():
                i = int(np.argmin(np.isfinite(sq)))
                raise ValueError(
                    f"'{key}' row {i} is too large: its squared norm overflows float64 (largest "
                    f"|entry| {np.abs(out).max():.3g}); divide the inputs by a common scale"
                )
        return out

    x = arr(x, "x")
    if x.ndim != 2:
        raise ValueError(f"'x' must have rank 2 (n, d), got shape {x.shape}")
    n, dim = x.shape
    if n == 0:
        raise ValueError("'x' has no rows")
    y = arr(y, "y")
    _check_label_shape(y, "y", n)
    y_clean_given = y_clean is not None
    if y_clean_given:
        y_clean = arr(y_clean, "y_clean")
        if y_clean.shape != y.shape:
            raise ValueError(f"'y_clean' has shape {y_clean.shape} but 'y' has {y.shape}")
    else:
        y_clean = y.copy()
    if (x_test is None) != (y_test is None):
        raise ValueError("x_test and y_test must be given together")
    if x_test is not None:
        x_test = arr(x_test, "x_test")
        if x_test.ndim != 2 or x_test.shape[1] != dim:
            raise ValueError(f"'x_test' must have shape (n_test, {dim}), got {x_test.shape}")
        y_test = arr(y_test, "y_test")
        _check_label_shape(y_test, "y_test", x_test.shape[0])
        if y_test.shape[1:] != y.shape[1:]:
            raise ValueError(f"'y_test' has shape {y_test.shape}, incompatible with 'y' {y.shape}")
    else:
        x_test, y_test = np.zeros((0, dim)), np.zeros((0,) + y.shape[1:])
    if normalize:
        x = unit_normalize(x)
        x_test = unit_normalize(x_test) if len(x_test) else x_test
    differs = y != y_clean if y.ndim == 1 else np.any(y != y_clean, axis=1)
    task = _task_of_labels(task, y_clean, y_test)
    if task == "regression":
        n_classes = None
    else:
        n_classes = 2 if y_clean.ndim == 1 else y_clean.shape[1]
    meta = {
        "dataset": name,
        "task": task,
        "n_classes": n_classes,
        "n_train": n,
        "n_test": x_test.shape[0],
        "dim": dim,
        "noise": None,
        "noise_rate": None,
        "seed": None,
        "y_clean_given": y_clean_given,
        "corrupted": np.flatnonzero(differs),
        "n_corrupted": int(differs.sum()),
        "normalized": bool(normalize),
        "max_norm_deviation": max(_max_norm_deviation(x), _max_norm_deviation(x_test)),
        "max_norm_deviation_train": _max_norm_deviation(x),
        "max_norm_deviation_test": _max_norm_deviation(x_test),
    }
    meta.update(info or {})
    return Dataset(x, y, y_clean, x_test, y_test, name, meta)


def _task_of_labels(task, y_clean: np.ndarray, y_test: np.ndarray) -> str:
    """The task of ground-truth labels (forced by `task`), the test labels checked with them."""
    task = check_task(task, y_clean, "'y_clean'")
    if task == "classification" and y_test.shape[0]:
        check_class_labels(y_test, "'y_test'")
    return task


def dataset_task(dataset: Dataset) -> str:
    """The data set's task: `info["task"]` if one of `TASKS`, else inferred from the ground truth.

    Example:
      >>> dataset_task(from_arrays(np.eye(2), np.array([0.3, 1.7])))
      'regression'
    """
    task = dataset.info.get("task") if isinstance(dataset.info, dict) else None
    return task if task in TASKS else infer_task(np.asarray(dataset.y_clean))


def with_task(dataset: Dataset, task: str) -> Dataset:
    """The data set with its task forced ("classification" needs ±1 or one-hot ground truth).

    Example:
      >>> with_task(ntk_air.data.clusters(), "regression").info["task"]
      'regression'
    """
    task = _task_of_labels(task, np.asarray(dataset.y_clean), np.asarray(dataset.y_test_clean))
    info = dict(dataset.info)
    info["task"] = task
    if task == "regression":
        info["n_classes"] = None
    return dataset._replace(info=info)


def _check_label_shape(y: np.ndarray, key: str, n: int) -> None:
    if y.ndim not in (1, 2):
        raise ValueError(f"{key!r} must have shape (n,) or (n, C), got {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"{key!r} has {y.shape[0]} rows but the inputs have {n} (length mismatch)")


def _class_of(labels: np.ndarray, task: str) -> np.ndarray:
    """An integer stratum per row: the ±1 sign, the one-hot argmax, or 0 for real targets."""
    if task == "regression" or labels.shape[0] == 0:
        return np.zeros(labels.shape[0], np.int64)
    if labels.ndim == 2:
        return np.argmax(labels, axis=1)
    if np.all(np.abs(labels) == 1.0):
        return (labels > 0).astype(np.int64)
    return np.zeros(labels.shape[0], np.int64)


def _stratified(classes: np.ndarray, size: int, rng) -> np.ndarray:
    """`size` row indices, each class represented in proportion (largest remainders), sorted."""
    values, counts = np.unique(classes, return_counts=True)
    quota = counts * size / classes.shape[0]
    take = np.floor(quota).astype(int)
    short = size - take.sum()
    take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
    picked = [
        rng.choice(np.flatnonzero(classes == v), k, replace=False)
        for v, k in zip(values, take, strict=True)
    ]
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)


def subsample(
    dataset: Dataset, n_train: int | None = None, n_test: int | None = None, *, seed: int = 0
) -> Dataset:
    """A stratified, seeded subset: `n_train` training and `n_test` test rows.

    Every clean class keeps its share (largest remainders); rows keep their order and their
    corruption; None keeps a whole split; more rows than there are is an error.

    Args:
      dataset: a Dataset. n_train, n_test: sizes (≥ 1 and ≥ 0), or None.
      seed: non-negative int for the draw.

    Returns:
      Dataset; info adds `subsample` (sizes, seed, original sizes), `subsample_rows` and
      `subsample_rows_test`.

    Example:
      >>> small = subsample(ntk_air.data.digits(), n_train=100, n_test=50, seed=0)
      >>> small.x.shape
      (100, 64)
    """
    seed = _check_seed(seed)
    n, nt = dataset.x.shape[0], dataset.x_test.shape[0]
    if n_train is not None:
        check_int("n_train", n_train, minimum=1, maximum=n)
    if n_test is not None:
        check_int("n_test", n_test, minimum=0, maximum=nt)
    rng_train, rng_test = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    task = dataset_task(dataset)

    def pick(size, labels, rng):
        if size is None:
            return np.arange(len(labels))
        return _stratified(_class_of(labels, task), size, rng)

    rows = pick(n_train, dataset.y_clean, rng_train)
    rows_test = pick(n_test, dataset.y_test_clean, rng_test)
    corrupted = np.zeros(n, bool)
    corrupted[np.asarray(dataset.info.get("corrupted", []), dtype=np.int64)] = True
    info = dict(dataset.info)
    kept = corrupted[rows]
    sizes = {"n_train": len(rows), "n_test": len(rows_test)}
    info.update(
        sizes,
        corrupted=np.flatnonzero(kept),
        n_corrupted=int(kept.sum()),
        subsample={**sizes, "seed": seed, "of_n_train": n, "of_n_test": nt},
        subsample_rows=rows,
        subsample_rows_test=rows_test,
    )
    for key in ("cluster", "digit", "cluster_test", "digit_test"):
        if key in info and np.ndim(info[key]) == 1 and len(info[key]) in (n, nt):
            info[key] = np.asarray(info[key])[rows_test if key.endswith("_test") else rows]
    return Dataset(
        dataset.x[rows],
        dataset.y[rows],
        dataset.y_clean[rows],
        dataset.x_test[rows_test],
        dataset.y_test_clean[rows_test],
        dataset.name,
        info,
    )
