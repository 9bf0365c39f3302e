"""Digit data sets: sklearn's 8×8 digits and MNIST-1D, shipped or generated, never downloaded."""

from __future__ import annotations

import math
import random as _py_random

import numpy as np

from .._checks import check_int
from ._dataset import Dataset, _check_seed, _noisy_dataset, unit_normalize

__all__ = ["digits", "mnist1d"]


def _digit_task(
    name, x_all, digit_all, info, binary, pair, n_train, n_test, center, noise, noise_rate, seed
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
    n_test = check_int("n_test", n_test, minimum=0)
    if n_train is None:
        n_train = available - n_test
    n_train = check_int("n_train", n_train, minimum=1)
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

    Pixels / 16, minus the mean training image (`center=True`), rows unit-normalized; a seeded
    split; labels one-hot (10 classes), ±1 by parity (`binary=True`) or digit a → +1, b → −1
    (`pair=(a, b)`); an exact fraction ρ of every digit corrupted.

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
    x_all, digit_all = np.asarray(x_all, np.float64) / 16.0, np.asarray(digit_all, np.int64)
    name = "digits-binary" if binary else "digits"
    info = {"preprocessing": "pixels / 16", "source": "sklearn.datasets.load_digits"}
    return _digit_task(
        name, x_all, digit_all, info, binary, pair, n_train, n_test, center, noise, noise_rate, seed
    )


def _generate_mnist1d(num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Run the MNIST-1D generator (never its downloader); the global RNG states it seeds and
    draws from are restored, so loading is a pure function of `seed`."""
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

    The `mnist1d` generator (default transforms) makes 10·⌈N/10⌉ + 10 examples from `seed`,
    N = n_train + n_test (5N with `pair`: its classes are balanced); then split, center,
    normalize, label and corrupt as `digits` does, with the same arguments.

    Args:
      n_train: training split size.
      seed: non-negative int for the generator, the split and the noise.

    Returns:
      Dataset with x (n_train, 40); info adds digit, digit_test, indices, indices_test,
      train_mean.

    Example:
      >>> ds = mnist1d(n_train=100, n_test=50)
      >>> ds.x.shape, ds.y.shape
      ((100, 40), (100, 10))

    Reference: Greydanus 2020, arXiv 2011.14439.
    """
    seed = _check_seed(seed)
    n_train = check_int("n_train", n_train, minimum=1)
    n_test = check_int("n_test", n_test, minimum=0)
    total = n_train + n_test
    if pair is not None:
        total *= 5  # classes are balanced (num_samples // 10 each): a pair keeps exactly 1/5
    num_samples = 10 * math.ceil(total / 10) + 10
    x_all, digit_all = _generate_mnist1d(num_samples, seed)
    name = "mnist1d-binary" if binary else "mnist1d"
    info = {
        "preprocessing": "mnist1d generator (globally standardized)",
        "source": f"mnist1d.data.make_dataset(num_samples={num_samples}, seed={seed})",
    }
    return _digit_task(
        name, x_all, digit_all, info, binary, pair, n_train, n_test, center, noise, noise_rate, seed
    )
