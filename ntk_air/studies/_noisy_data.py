"""The noisy-label study's data: clean pools, stratified splits and each seed's noisy labels."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..data import Dataset, apply_noise, clusters, digits, from_npz, mnist1d
from ..data._dataset import _stratified
from ..spectral._resources import available_memory
from ._noisy_config import BUILTIN_DATASETS, NoisyLabelsConfig, train_size

_NOISE_CODE = {"none": 0, "flip": 1, "pair": 2}
_FEATURES = {"mnist1d": 40, "clusters": 20}
_GENERATION_COPIES = 4  # x, its noise and templates, the unit-normalized copy, the split


def _check_generation(name: str, config: NoisyLabelsConfig, rows: int) -> None:
    """ValueError naming n_train before generating more rows than the memory available holds."""
    need = _GENERATION_COPIES * 8 * rows * _FEATURES[name]
    free = available_memory()
    if need > free:
        raise ValueError(
            f"n_train {config.n_train}: generating {rows} rows of {name} needs ~{need / 1e9:.3g} "
            f"GB > the {free / 1e9:.3g} GB available; nothing was generated"
        )


def load_clean(name: str, config: NoisyLabelsConfig, path=None) -> Dataset:
    """A clean data set (y = ŷ) large enough for the config's split: a built-in one or a .npz."""
    if path is not None:
        return from_npz(path)
    if name not in BUILTIN_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {BUILTIN_DATASETS} or give a .npz")
    n_pool = train_size(config, name) + config.n_val
    n_test = 450 if config.n_test is None else config.n_test
    if config.n_classes is not None:  # rows are drawn before the class filter: draw enough
        share = (4 if name == "clusters" else 10) / config.n_classes
        n_pool = math.ceil(n_pool * share * 1.1)
        n_test = math.ceil(n_test * share * 1.1)
        if name == "digits":
            n_test = min(n_test, 900)
    if name == "digits":
        return digits(n_train=None, n_test=n_test, noise="none", seed=config.seed)
    _check_generation(name, config, n_pool + n_test)
    if name == "mnist1d":
        return mnist1d(n_train=n_pool, n_test=n_test, noise="none", seed=config.seed)
    return clusters(
        n_clusters=8,
        n_per_cluster=math.ceil(n_pool / 8),
        n_test_per_cluster=math.ceil(n_test / 8),
        n_classes=4,
        noise="none",
        seed=config.seed,
    )


class Split(NamedTuple):
    """A data set's clean train / validation / test split (one-hot labels, float32 inputs)."""

    name: str
    x: np.ndarray  # (n, d) training inputs
    y_clean: np.ndarray  # (n, C) one-hot ground truth
    x_val: np.ndarray  # (n_val, d) validation inputs
    y_val_clean: np.ndarray  # (n_val, C)
    x_test: np.ndarray  # (n_test, d) test inputs
    y_test_clean: np.ndarray  # (n_test, C)
    info: dict  # sizes, classes, the source data set's summary


def _one_hot(labels: np.ndarray, name: str) -> np.ndarray:
    labels = np.asarray(labels, np.float64)
    if labels.ndim == 1:
        if not np.all(np.abs(labels) == 1):
            raise ValueError(f"{name}: ±1 labels expected for a binary data set")
        return np.eye(2)[(labels < 0).astype(int)]  # class 0 ↔ +1, class 1 ↔ −1
    ok = np.all((labels == 0) | (labels == 1), axis=1) & (labels.sum(axis=1) == 1)
    if not ok.all():
        raise ValueError(
            f"{name}: class labels (one-hot rows or ±1) expected; the noisy-label "
            f"study needs classes, row {int(np.argmax(~ok))} is not one-hot"
        )
    return labels


def split_dataset(dataset: Dataset, config: NoisyLabelsConfig) -> Split:
    """Clean one-hot train / validation / test splits, stratified and seeded by `config.seed`:
    validation then training rows from the training pool, test rows from the test set."""
    c = config
    y_pool = _one_hot(dataset.y_clean, f"{dataset.name} y_clean")
    if dataset.x_test.shape[0] == 0:
        raise ValueError(
            f"{dataset.name} has no test set; the study needs clean test labels (x_test, y_test)"
        )
    y_test = _one_hot(dataset.y_test_clean, f"{dataset.name} y_test")
    x_pool, x_test = np.asarray(dataset.x), np.asarray(dataset.x_test)
    n_classes = y_pool.shape[1]
    if c.n_classes is not None:
        if c.n_classes > n_classes:
            raise ValueError(
                f"n_classes {c.n_classes} exceeds the {n_classes} classes of {dataset.name}"
            )
        keep, keep_t = np.argmax(y_pool, 1) < c.n_classes, np.argmax(y_test, 1) < c.n_classes
        x_pool, y_pool = x_pool[keep], y_pool[keep][:, : c.n_classes]
        x_test, y_test = x_test[keep_t], y_test[keep_t][:, : c.n_classes]
        n_classes = c.n_classes
    present = np.unique(np.argmax(y_pool, 1)).size if y_pool.shape[0] else 0
    if present < 2:
        raise ValueError(
            f"{dataset.name} has {present} class(es) in its training rows; the study compares "
            "classifiers and needs at least 2"
        )
    n_train = train_size(c, dataset.name)
    if c.batch_size > n_train:
        raise ValueError(f"batch_size {c.batch_size} exceeds n_train {n_train}")
    need = n_train + c.n_val
    if need > x_pool.shape[0]:
        raise ValueError(
            f"n_train + n_val = {n_train} + {c.n_val} exceeds the {x_pool.shape[0]} training "
            f"rows of {dataset.name}"
        )
    if c.n_test is not None and c.n_test > x_test.shape[0]:
        raise ValueError(
            f"n_test {c.n_test} exceeds the {x_test.shape[0]} test rows of {dataset.name}"
        )
    rng_val, rng_train, rng_test = (
        np.random.default_rng(s) for s in np.random.SeedSequence([c.seed, 7]).spawn(3)
    )
    cls = np.argmax(y_pool, 1)
    val_rows = _stratified(cls, c.n_val, rng_val)
    rest = np.setdiff1d(np.arange(x_pool.shape[0]), val_rows)
    train_rows = rest[_stratified(cls[rest], n_train, rng_train)]
    test_rows = (
        np.arange(x_test.shape[0])
        if c.n_test is None
        else _stratified(np.argmax(y_test, 1), c.n_test, rng_test)
    )
    info = {
        "name": dataset.name,
        "n_train": int(n_train),
        "n_val": int(c.n_val),
        "n_test": int(test_rows.size),
        "d": int(x_pool.shape[1]),
        "n_classes": int(n_classes),
        "split_seed": int(c.seed),
        "labels": "the data set's clean labels y_clean, one-hot; noise applied by this study",
        "preprocessing": dataset.info.get("preprocessing"),
        "input_scale": math.sqrt(x_pool.shape[1]) if c.scale_inputs else 1.0,
    }

    def inputs(x, rows):
        return (x[rows] * info["input_scale"]).astype(np.float32)

    return Split(
        dataset.name,
        inputs(x_pool, train_rows),
        y_pool[train_rows],
        inputs(x_pool, val_rows),
        y_pool[val_rows],
        inputs(x_test, test_rows),
        y_test[test_rows],
        info,
    )


def noisy_split_labels(split: Split, noise: str, rate: float, seed: int, base_seed: int = 0):
    """(y, y_val, corrupted, corrupted_val) of seed s: `data.apply_noise` on each split."""
    ss = np.random.SeedSequence(
        [int(base_seed), int(seed), _NOISE_CODE[noise], round(rate * 10**6)]
    )
    s_train, s_val = ss.spawn(2)
    train = apply_noise(split.y_clean, noise, rate, s_train)
    val = apply_noise(split.y_val_clean, noise, rate, s_val)
    return train.y, val.y, train.corrupted, val.corrupted
