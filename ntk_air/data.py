"""Data sets with known ground truth and controlled label noise: y = ŷ + e.

Every loader returns a `Dataset` whose training labels `y` are the clean labels `y_clean` (ŷ)
corrupted by one of the noise models of `ntk_air.noise`, and whose `info["corrupted"]` lists
exactly the training rows where `y` differs from `y_clean`. Inputs are unit-norm rows
(SCIENCE.md §1): the loaders call `unit_normalize` explicitly and say so in
`info["normalized"]`; `from_npz` never renormalizes unless asked and reports the worst row norm
instead.

Label formats (numpy float64; callers convert to JAX with the dtype they want):

* binary tasks: ±1.0, shape (n,);
* C-class tasks: one-hot rows, shape (n, C);
* Gaussian noise makes `y` real-valued (`y_clean` keeps its format).

The noise models ("flip", "pair", "gaussian", "none"; exact per-group flip fractions by default)
live in `ntk_air.noise` and are re-exported here (`ntk_air.data.symmetric_flip` etc.). The
loaders corrupt an exact fraction of every cluster or digit (SCIENCE.md §5).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import random as _py_random
import zipfile
from typing import NamedTuple

import numpy as np

from ._checks import as_real_numpy, check_finite
from .noise import (
    NOISE_MODELS,
    NoisyLabels,
    _canonical_noise,
    apply_noise,
    gaussian_noise,
    pair_flip,
    symmetric_flip,
)

__all__ = [
    "DATASETS",
    "NOISE_MODELS",
    "Dataset",
    "NoisyLabels",
    "apply_noise",
    "clusters",
    "digits",
    "from_npz",
    "gaussian_noise",
    "load",
    "mnist1d",
    "pair_flip",
    "save_npz",
    "symmetric_flip",
    "unit_normalize",
]


class Dataset(NamedTuple):
    """A training set with noisy and clean labels, and a clean test set (numpy float64)."""

    x: np.ndarray  # (n, d) training inputs, unit-norm rows (see info["max_norm_deviation"])
    y: np.ndarray  # (n,) ±1 or (n, C) one-hot (real-valued under Gaussian noise): noisy labels
    y_clean: np.ndarray  # (n,) or (n, C) ground-truth labels ŷ
    x_test: np.ndarray  # (n_test, d) test inputs (n_test may be 0)
    y_test_clean: np.ndarray  # (n_test,) or (n_test, C) clean test labels
    name: str
    info: dict  # metadata: dataset, noise, noise_rate, seed, n_classes, corrupted (indices), ...


# ---------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------


def unit_normalize(x) -> np.ndarray:
    """Divide every row by its Euclidean norm: x_i ↦ x_i / ‖x_i‖₂.

    This is the explicit normalization the theorem's kernel needs (SCIENCE.md §1); nothing in
    ntk_air renormalizes silently.

    Args:
      x: (n, d) real array, finite, no zero rows.

    Returns:
      (n, d) float64 array with unit-norm rows.

    Raises:
      ValueError naming the first zero-norm or non-finite row.

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


# ---------------------------------------------------------------------------------------------
# Building a Dataset
# ---------------------------------------------------------------------------------------------


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_count(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _noisy_dataset(
    name, x, y_clean, x_test, y_test_clean, *, noise, noise_rate, seed, noise_seed, groups, info
) -> Dataset:
    """Apply the noise model and assemble the common info keys."""
    noise = _canonical_noise(noise)
    noisy = apply_noise(y_clean, noise, noise_rate, noise_seed, groups=groups)
    n_classes = 2 if y_clean.ndim == 1 else y_clean.shape[1]
    common = {
        "dataset": name,
        "task": "binary" if y_clean.ndim == 1 else "multiclass",
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


# ---------------------------------------------------------------------------------------------
# The clusterable data model (the toolkit's default data)
# ---------------------------------------------------------------------------------------------


def _random_unit_vectors(rng, k, dim) -> np.ndarray:
    return unit_normalize(rng.standard_normal((k, dim)))


def _min_pairwise_distance(c: np.ndarray) -> float:
    if c.shape[0] < 2:
        return math.inf
    d = np.linalg.norm(c[:, None, :] - c[None, :, :], axis=-1)
    return float(d[np.triu_indices(c.shape[0], 1)].min())


def _points_near(centres, cluster, eps0, rng) -> np.ndarray:
    """Points x = (c + z)/‖c + z‖, z ⊥ c uniform in the tangent (d−1)-ball of radius ε0.

    Tangent offsets make both ‖z‖ ≤ ε0 (before projection) and ‖x − c‖ = 2 sin(arctan‖z‖ / 2)
    ≤ ‖z‖ ≤ ε0 (after projection) hold, so the projected inputs obey the model exactly.
    """
    n, dim = cluster.shape[0], centres.shape[1]
    c = centres[cluster]
    g = rng.standard_normal((n, dim))
    g -= np.sum(g * c, axis=1, keepdims=True) * c  # tangent at c
    direction = g / np.linalg.norm(g, axis=1, keepdims=True)
    radius = eps0 * rng.random(n) ** (1.0 / (dim - 1))  # uniform in the (d−1)-ball
    return unit_normalize(c + radius[:, None] * direction)


def clusters(
    n_clusters: int = 4,
    n_per_cluster: int = 40,
    dim: int = 20,
    eps0: float = 0.25,
    delta: float | None = None,
    n_test_per_cluster: int = 40,
    n_classes: int = 2,
    noise: str = "flip",
    noise_rate: float = 0.25,
    seed: int = 0,
    *,
    max_tries: int = 1000,
) -> Dataset:
    """The clusterable data model of the ℓ2 theorem (SCIENCE.md §5), with exact label flips.

    K unit-norm centres c_1..c_K, Gaussian directions, with ‖c_k − c_l‖ ≥ 2δ for k ≠ l
    (redrawn until they are, at most `max_tries` draws). Each point is x = (c + z)/‖c + z‖
    with z ⊥ c uniform in the tangent ball ‖z‖ ≤ ε0, so ‖x‖ = 1 and
    ‖x − c‖ = 2 sin(arctan‖z‖ / 2) ≤ ε0 both before and after the projection. The clean label is
    constant per cluster: binary (n_classes=2): +1 for even k, −1 for odd k; C classes: class
    k mod C, one-hot. A fraction ρ of each cluster is corrupted: exactly ⌊ρ·n_per_cluster + ½⌋
    points per cluster (see the module docstring). Test points: `n_test_per_cluster` fresh
    points per cluster, clean labels. Rows are ordered cluster by cluster.

    Args:
      n_clusters: K ≥ n_classes.
      n_per_cluster: training points per cluster (≥ 1).
      dim: input dimension d ≥ 2.
      eps0: cluster radius ε0 ≥ 0. The ε0-balls are disjoint when ε0 < δ
        (`info["clusters_disjoint"]`); larger ε0 gives overlapping clusters, a harder case.
      delta: required half minimum distance δ in (0, 1]; None: one draw, and δ is what it
        achieves (min distance / 2, in `info["delta"]`).
      n_test_per_cluster: test points per cluster (≥ 0).
      n_classes: 2 (±1 labels) or C > 2 (one-hot).
      noise: "flip", "pair", "gaussian" or "none".
      noise_rate: ρ in [0, 1) for flips, σ ≥ 0 for "gaussian".
      seed: non-negative int; centres, points, test points and noise use independent streams.
      max_tries: bound on centre redraws when `delta` is given.

    Returns:
      Dataset with x (K·n_per_cluster, d). info adds: centres (K, d), cluster (n,),
      cluster_test (n_test,), labels_of_cluster, delta, min_centre_distance, eps0,
      clusters_disjoint.

    Example:
      >>> ds = clusters()        # 4 × 40 points, d = 20, ε0 = 0.25, 25 % flips
      >>> ds.x.shape, len(ds.info["corrupted"])
      ((160, 20), 40)

    Reference: Li, Soltanolkotabi, Oymak 2019, arXiv 1903.11680 (Definition of the model);
    Dong et al. 2019, arXiv 1910.01255 (the ℓ2 theorem checked on it).
    """
    seed = _check_seed(seed)
    n_classes = _check_count(n_classes, "n_classes", 2)
    n_clusters = _check_count(n_clusters, "n_clusters", 1)
    if n_clusters < n_classes:
        raise ValueError(
            f"n_clusters={n_clusters} must be >= n_classes={n_classes} (labels are constant per "
            "cluster, so every class needs a cluster)"
        )
    n_per_cluster = _check_count(n_per_cluster, "n_per_cluster", 1)
    n_test_per_cluster = _check_count(n_test_per_cluster, "n_test_per_cluster", 0)
    dim = _check_count(dim, "dim", 2)
    max_tries = _check_count(max_tries, "max_tries", 1)
    eps0 = float(eps0)
    if not (math.isfinite(eps0) and eps0 >= 0.0):
        raise ValueError(f"eps0 must be finite and >= 0, got {eps0!r}")
    if delta is not None:
        delta = float(delta)
        if not (math.isfinite(delta) and 0.0 < delta <= 1.0):
            raise ValueError(
                f"delta must be in (0, 1] (unit-norm centres are at most 2 apart), got {delta!r}"
            )

    ss_centres, ss_train, ss_test, ss_noise = np.random.SeedSequence(seed).spawn(4)
    rng = np.random.default_rng(ss_centres)
    best = -1.0
    for _ in range(max_tries if delta is not None else 1):
        centres = _random_unit_vectors(rng, n_clusters, dim)
        min_dist = _min_pairwise_distance(centres)
        best = max(best, min_dist)
        if delta is None or min_dist >= 2.0 * delta:
            break
    else:
        raise ValueError(
            f"could not draw {n_clusters} unit centres in dimension {dim} with pairwise distance "
            f">= 2*delta = {2 * delta:g} in {max_tries} random draws (best minimum distance "
            f"{best:.4g}); lower delta, raise dim or reduce n_clusters"
        )
    achieved_delta = min_dist / 2.0 if delta is None else delta

    if n_classes == 2:
        labels_of_cluster = np.where(np.arange(n_clusters) % 2 == 0, 1.0, -1.0)
    else:
        labels_of_cluster = np.eye(n_classes)[np.arange(n_clusters) % n_classes]

    cluster = np.repeat(np.arange(n_clusters), n_per_cluster)
    cluster_test = np.repeat(np.arange(n_clusters), n_test_per_cluster)
    x = _points_near(centres, cluster, eps0, np.random.default_rng(ss_train))
    x_test = _points_near(centres, cluster_test, eps0, np.random.default_rng(ss_test))

    info = {
        "centres": centres,
        "cluster": cluster,
        "cluster_test": cluster_test,
        "labels_of_cluster": labels_of_cluster,
        "eps0": eps0,
        "delta": achieved_delta,
        "delta_requested": delta,
        "min_centre_distance": min_dist,
        "clusters_disjoint": bool(eps0 < achieved_delta),
        "preprocessing": "points generated on the unit sphere (x = (c + z)/||c + z||)",
    }
    return _noisy_dataset(
        "clusters",
        x,
        labels_of_cluster[cluster],
        x_test,
        labels_of_cluster[cluster_test],
        noise=noise,
        noise_rate=noise_rate,
        seed=seed,
        noise_seed=ss_noise,
        groups=cluster,
        info=info,
    )


# ---------------------------------------------------------------------------------------------
# Digit data sets: sklearn's 8×8 digits and MNIST-1D
# ---------------------------------------------------------------------------------------------


def _digit_task(
    name,
    x_all,
    digit_all,
    *,
    binary,
    pair,
    n_train,
    n_test,
    center,
    noise,
    noise_rate,
    seed,
    info,
) -> Dataset:
    """Shared by `digits` and `mnist1d`: select, split, center, normalize, label, corrupt."""
    seed = _check_seed(seed)
    ss_split, ss_noise = np.random.SeedSequence(seed).spawn(2)
    if pair is not None:
        if not binary:
            raise ValueError("pair selects a binary task; pass binary=True with pair=(a, b)")
        pair = tuple(int(p) for p in pair)
        if len(pair) != 2 or pair[0] == pair[1] or not all(0 <= p <= 9 for p in pair):
            raise ValueError(f"pair must be two different digits in 0..9, got {pair!r}")
        keep = np.isin(digit_all, pair)
        x_all, digit_all, source = x_all[keep], digit_all[keep], np.flatnonzero(keep)
    else:
        source = np.arange(x_all.shape[0])

    available = x_all.shape[0]
    n_test = _check_count(n_test, "n_test", 0)
    if n_train is None:
        n_train = available - n_test
    n_train = _check_count(n_train, "n_train", 1)
    if n_train + n_test > available:
        raise ValueError(
            f"n_train + n_test = {n_train} + {n_test} exceeds the {available} available examples "
            f"of {name}" + (f" with digits {pair}" if pair is not None else "")
        )
    perm = np.random.default_rng(ss_split).permutation(available)
    tr, te = perm[:n_train], perm[n_train : n_train + n_test]
    x, x_test = x_all[tr], x_all[te]
    digit, digit_test = digit_all[tr], digit_all[te]

    mean = x.mean(axis=0) if center else np.zeros(x.shape[1])
    x = unit_normalize(x - mean)
    x_test = unit_normalize(x_test - mean)

    if binary and pair is not None:
        to_label = lambda d: np.where(d == pair[0], 1.0, -1.0)  # noqa: E731
        labelling = f"digit {pair[0]} -> +1, digit {pair[1]} -> -1"
    elif binary:
        to_label = lambda d: np.where(d % 2 == 0, 1.0, -1.0)  # noqa: E731
        labelling = "even digit -> +1, odd digit -> -1"
    else:
        to_label = lambda d: np.eye(10)[d]  # noqa: E731
        labelling = "digit d -> one-hot class d (10 classes)"
    info = {
        **info,
        "digit": digit,
        "digit_test": digit_test,
        "indices": source[tr],  # rows of the source data set (before any pair selection)
        "indices_test": source[te],
        "labelling": labelling,
        "pair": pair,
        "centered": bool(center),
        "train_mean": mean,
        "preprocessing": info["preprocessing"]
        + (", minus the training-set mean input" if center else "")
        + ", then rows unit-normalized (unit_normalize)",
        "noise_groups": "original digit (exact fraction of every digit)",
    }
    return _noisy_dataset(
        name,
        x,
        to_label(digit),
        x_test,
        to_label(digit_test),
        noise=noise,
        noise_rate=noise_rate,
        seed=seed,
        noise_seed=ss_noise,
        groups=digit,  # like clusters: every digit is a cluster with its own exact flip fraction
        info=info,
    )


def digits(
    binary: bool = False,
    pair: tuple[int, int] | None = None,
    n_train: int | None = 500,
    n_test: int = 500,
    noise: str = "flip",
    noise_rate: float = 0.2,
    seed: int = 0,
    *,
    center: bool = True,
) -> Dataset:
    """scikit-learn's 8×8 handwritten digits (1797 images, shipped, no download), noisy labels.

    Preprocessing: pixels / 16 (to [0, 1]); minus the mean training image (`center=True`);
    then every row (train and test, same mean) divided by its norm. Split: a seeded random
    permutation; the first `n_train` examples train, the next `n_test` test.
    Labels: `binary=False`: 10 one-hot classes. `binary=True`: even digits +1, odd −1, or with
    `pair=(a, b)` only digits a (+1) and b (−1). The noise corrupts an exact fraction ρ of every
    digit (each digit is a "cluster", as in SCIENCE.md §5).

    Args:
      binary: ±1 task (parity, or `pair`) instead of 10 classes.
      pair: (a, b) two digits for a binary task; None: parity.
      n_train: training examples; None: all that remain after the test split.
      n_test: test examples (clean labels).
      noise, noise_rate: noise model and ρ (σ for "gaussian").
      seed: non-negative int for the split and the noise.
      center: subtract the training mean image before normalizing.

    Returns:
      Dataset with x (n_train, 64); info adds digit, digit_test (original digits), indices,
      indices_test (rows of `load_digits`), train_mean.

    Example:
      >>> ds = digits(binary=True, pair=(3, 8), n_train=200, n_test=100)
      >>> ds.y.shape, ds.info["n_corrupted"]
      ((200,), 40)

    Reference: UCI optical recognition of handwritten digits (sklearn.datasets.load_digits).
    """
    from sklearn.datasets import load_digits

    x_all, digit_all = load_digits(return_X_y=True)
    return _digit_task(
        "digits-binary" if binary else "digits",
        np.asarray(x_all, np.float64) / 16.0,
        np.asarray(digit_all, np.int64),
        binary=binary,
        pair=pair,
        n_train=n_train,
        n_test=n_test,
        center=center,
        noise=noise,
        noise_rate=noise_rate,
        seed=seed,
        info={"preprocessing": "pixels / 16", "source": "sklearn.datasets.load_digits"},
    )


def _generate_mnist1d(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Run the MNIST-1D generator (never its downloader), leaving global RNG state untouched.

    `mnist1d.data.make_dataset` seeds and draws from the global `random` and `np.random`
    states; they are saved and restored so that loading stays a pure function of `seed`.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples = num_samples
    args.seed = seed
    np_state, py_state = np.random.get_state(), _py_random.getstate()
    try:
        data = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        _py_random.setstate(py_state)
    x = np.concatenate([data["x"], data["x_test"]]).astype(np.float64)
    y = np.concatenate([data["y"], data["y_test"]]).astype(np.int64)
    return x, y


def mnist1d(
    binary: bool = False,
    pair: tuple[int, int] | None = None,
    n_train: int = 500,
    n_test: int = 500,
    noise: str = "flip",
    noise_rate: float = 0.2,
    seed: int = 0,
    *,
    center: bool = True,
) -> Dataset:
    """MNIST-1D (Greydanus 2020): 40-sample 1-D digit signals, generated locally, noisy labels.

    The `mnist1d` package's generator (`make_dataset`, default transforms: padding, scaling,
    translation, correlated and iid noise, shear, 40 samples; standardized globally) is run
    with `seed` for 10·⌈N/10⌉ + 10 examples, N = n_train + n_test (N = 5·(n_train + n_test)
    with `pair`: the generator makes balanced classes, so a pair holds a fifth of them) —
    nothing is downloaded. Then, as for `digits`: a seeded split, minus the training mean
    (`center=True`), rows unit-normalized.
    Labels: 10 one-hot classes, or binary parity / `pair=(a, b)` as in `digits`; an exact
    fraction ρ of every digit is corrupted. Generation takes ~0.15 s per 1000 examples.

    Args:
      binary, pair: as in `digits`.
      n_train, n_test: split sizes.
      noise, noise_rate: noise model and ρ (σ for "gaussian").
      seed: non-negative int for the generator, the split and the noise.
      center: subtract the training mean signal before normalizing.

    Returns:
      Dataset with x (n_train, 40); info adds digit, digit_test, indices, indices_test (rows of
      the generated set, train then test parts concatenated), train_mean.

    Example:
      >>> ds = mnist1d(n_train=100, n_test=50)
      >>> ds.x.shape, ds.y.shape
      ((100, 40), (100, 10))

    Reference: Greydanus 2020, arXiv 2011.14439.
    """
    seed = _check_seed(seed)
    n_train = _check_count(n_train, "n_train", 1)
    n_test = _check_count(n_test, "n_test", 0)
    total = n_train + n_test
    if pair is not None:
        total *= 5  # classes are balanced (num_samples // 10 each): a pair keeps exactly 1/5
    num_samples = 10 * math.ceil(total / 10) + 10
    x_all, digit_all = _generate_mnist1d(num_samples, seed)
    return _digit_task(
        "mnist1d-binary" if binary else "mnist1d",
        x_all,
        digit_all,
        binary=binary,
        pair=pair,
        n_train=n_train,
        n_test=n_test,
        center=center,
        noise=noise,
        noise_rate=noise_rate,
        seed=seed,
        info={
            "preprocessing": "mnist1d generator (globally standardized)",
            "source": f"mnist1d.data.make_dataset(num_samples={num_samples}, seed={seed})",
        },
    )


# ---------------------------------------------------------------------------------------------
# .npz files
# ---------------------------------------------------------------------------------------------


def _npz_array(npz, key: str, path) -> np.ndarray:
    try:
        arr = npz[key]
    except ValueError as err:  # object arrays refuse to load without pickle
        raise ValueError(
            f"{path}: array {key!r} is a pickled object array, which ntk_air refuses to load "
            "(allow_pickle=False, for safety); save plain numeric arrays instead"
        ) from err
    name = f"{path}: array {key!r}"
    arr = as_real_numpy(arr, name)
    check_finite(arr, name)
    return arr


def _check_label_shape(y: np.ndarray, key: str, n: int, path) -> None:
    if y.ndim not in (1, 2):
        raise ValueError(f"{path}: {key!r} must have shape (n,) or (n, C), got {y.shape}")
    if y.shape[0] != n:
        raise ValueError(
            f"{path}: {key!r} has {y.shape[0]} rows but the inputs have {n} (length mismatch)"
        )


def from_npz(path, *, normalize: bool = False) -> Dataset:
    """Read a Dataset from a .npz file (`np.load(path, allow_pickle=False)`).

    Keys: `x` (n, d) and `y` (n,) or (n, C) noisy labels — required; `y_clean` (same shape as
    y) — if absent, y_clean = y, `info["y_clean_given"] = False` and no row is marked corrupted
    (the corruption is unknown); `x_test` (n_test, d) and `y_test` (clean test labels) — both or
    neither (absent: empty test set); `name`, `info_json` — optional, written by `save_npz`.
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
      FileNotFoundError, or ValueError/TypeError naming the key and the problem (missing key,
      rank, length mismatch, non-finite entry, pickled object array, non-numeric dtype).

    Example:
      >>> path = save_npz(clusters(), "/tmp/clusters.npz")
      >>> from_npz(path).info["n_corrupted"]
      40
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"data file not found: {path!r}")
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not a readable .npz file ({err})") from err
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: expected an .npz archive with keys x, y; got a single array")
    with npz:
        keys = set(npz.files)
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
        x = _npz_array(npz, "x", path)
        if x.ndim != 2:
            raise ValueError(f"{path}: 'x' must have rank 2 (n, d), got shape {x.shape}")
        n, dim = x.shape
        if n == 0:
            raise ValueError(f"{path}: 'x' has no rows")
        y = _npz_array(npz, "y", path)
        _check_label_shape(y, "y", n, path)
        y_clean_given = "y_clean" in keys
        if y_clean_given:
            y_clean = _npz_array(npz, "y_clean", path)
            if y_clean.shape != y.shape:
                raise ValueError(
                    f"{path}: 'y_clean' has shape {y_clean.shape} but 'y' has {y.shape}"
                )
        else:
            y_clean = y.copy()
        if "x_test" in keys:
            x_test = _npz_array(npz, "x_test", path)
            if x_test.ndim != 2 or x_test.shape[1] != dim:
                raise ValueError(
                    f"{path}: 'x_test' must have shape (n_test, {dim}), got {x_test.shape}"
                )
            y_test = _npz_array(npz, "y_test", path)
            _check_label_shape(y_test, "y_test", x_test.shape[0], path)
            if y_test.shape[1:] != y.shape[1:]:
                raise ValueError(
                    f"{path}: 'y_test' has shape {y_test.shape}, incompatible with 'y' {y.shape}"
                )
        else:
            x_test, y_test = np.zeros((0, dim)), np.zeros((0,) + y.shape[1:])
        name = str(npz["name"]) if "name" in keys else os.path.splitext(os.path.basename(path))[0]
        source_info = json.loads(str(npz["info_json"])) if "info_json" in keys else None
        extra = sorted(keys - {"x", "y", "y_clean", "x_test", "y_test", "name", "info_json"})

    if normalize:
        x = unit_normalize(x)
        x_test = unit_normalize(x_test)
    differs = y != y_clean if y.ndim == 1 else np.any(y != y_clean, axis=1)
    if y_clean.ndim == 2:
        n_classes = y_clean.shape[1]
    elif np.all(np.abs(y_clean) == 1.0):
        n_classes = 2
    else:
        n_classes = None
    info = {
        "dataset": "npz",
        "path": path,
        "task": {2: "multiclass", 1: "binary" if n_classes == 2 else "regression"}[y.ndim],
        "n_classes": n_classes,
        "n_train": n,
        "n_test": x_test.shape[0],
        "dim": dim,
        "noise": source_info.get("noise") if source_info else None,
        "noise_rate": source_info.get("noise_rate") if source_info else None,
        "seed": source_info.get("seed") if source_info else None,
        "y_clean_given": y_clean_given,
        "corrupted": np.flatnonzero(differs),
        "n_corrupted": int(differs.sum()),
        "normalized": bool(normalize),
        "max_norm_deviation": max(_max_norm_deviation(x), _max_norm_deviation(x_test)),
        "max_norm_deviation_train": _max_norm_deviation(x),
        "max_norm_deviation_test": _max_norm_deviation(x_test),
        "source_info": source_info,
        "extra_keys": extra,
    }
    return Dataset(x, y, y_clean, x_test, y_test, name, info)


def _jsonable(obj):
    """info → JSON: arrays to lists, numpy scalars to Python, anything else to its repr."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return repr(obj)


def save_npz(dataset: Dataset, path) -> str:
    """Write a Dataset to `path` exactly (no ".npz" appended) with the keys `from_npz` reads.

    Keys: x, y, y_clean, x_test, y_test (= y_test_clean), name, info_json (info as JSON).
    `from_npz(path)` returns the same arrays and name; its info recomputes `corrupted` from
    y ≠ y_clean and keeps the saved info under `info["source_info"]`.

    Returns:
      the path written.

    Example:
      >>> save_npz(clusters(), "/tmp/clusters.npz")
      '/tmp/clusters.npz'
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
            info_json=np.str_(json.dumps(_jsonable(dataset.info))),
        )
    return path


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------

_REGISTRY = {
    "clusters": (clusters, {}),
    "digits": (digits, {"binary": False}),
    "digits-binary": (digits, {"binary": True}),
    "mnist1d": (mnist1d, {"binary": False}),
    "mnist1d-binary": (mnist1d, {"binary": True}),
}
DATASETS = tuple(_REGISTRY)


def load(name: str = "clusters", **kwargs) -> Dataset:
    """Load a named data set; keyword arguments go to its loader (each has its own defaults).

    Names: "clusters" (the default: the theorem's clusterable model, `clusters`), "digits",
    "digits-binary" (`digits`), "mnist1d", "mnist1d-binary" (`mnist1d`).

    Example:
      >>> load("clusters", noise_rate=0.1, seed=1).info["noise_rate"]
      0.1
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    fn, fixed = _REGISTRY[name]
    params = inspect.signature(fn).parameters
    for key in kwargs:
        if key in fixed:
            raise ValueError(
                f"dataset {name!r} fixes {key}={fixed[key]!r}; pick the other name instead of "
                f"passing {key}={kwargs[key]!r}"
            )
        if key not in params:
            allowed = sorted(k for k in params if k not in fixed)
            raise TypeError(f"dataset {name!r} has no option {key!r}; options: {allowed}")
    return fn(**fixed, **kwargs)
