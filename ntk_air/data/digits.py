"""Digit data sets: sklearn's 8×8 digits and MNIST-1D, shipped or generated, never downloaded."""

from __future__ import annotations

import math
import random as _py_random

import numpy as np

from ._dataset import Dataset, _check_count, _check_seed, _noisy_dataset, unit_normalize

__all__ = ["digits", "mnist1d"]


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
    digit (each digit is a "cluster", as in docs/science/theorem.md).

    Args:
      binary: ±1 task (parity, or `pair`) instead of 10 classes.
      pair: (a, b) two digits for a binary task; None: parity.
      n_train: training examples; None: all that remain after the test split.
      n_test: test examples (clean labels).
      noise: noise model.
      noise_rate: ρ (σ for "gaussian").
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
      binary: as in `digits`.
      pair: as in `digits`.
      n_train: training split size.
      n_test: test split size.
      noise: noise model.
      noise_rate: ρ (σ for "gaussian").
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
