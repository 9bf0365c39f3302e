"""Label-noise models: y = ŷ + e with a controlled corruption e.

Pure functions of (labels, rate, seed) returning `NoisyLabels(y, corrupted)`, on ±1 (n,) or
one-hot (n, C) labels: "flip" (`symmetric_flip`, to a uniformly random other class), "pair"
(c → c + 1 mod C; Han et al. arXiv 1804.06872), "gaussian" (y = ŷ + σ·N(0, 1)) and "none".
Flips are exact by default (docs/science/theorem.md#data-model): k_g = ⌊ρ·n_g + ½⌋ of the n_g
rows of each group g, uniformly without replacement; `exact=False` flips each row with
probability ρ.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._checks import as_real_numpy, check_finite

__all__ = ["NOISE_MODELS", "NoisyLabels", "apply_noise", "symmetric_flip"]

NOISE_MODELS = ("none", "flip", "pair", "gaussian")
"""Label-noise models of `apply_noise`: none, flip, pair, gaussian."""
_NOISE_ALIASES = {"symmetric": "flip", "clean": "none"}


class NoisyLabels(NamedTuple):
    """Corrupted labels and where they were corrupted."""

    y: np.ndarray  # (n,) or (n, C) noisy labels, float64
    corrupted: np.ndarray  # (n,) bool, True where the label was corrupted


def _class_labels(labels, name: str = "labels") -> tuple[np.ndarray, np.ndarray, int]:
    """Validate ±1 (n,) or one-hot (n, C) labels; return (labels float64, class index (n,), C)."""
    y = as_real_numpy(labels, name)
    check_finite(y, name)
    if y.ndim == 1:
        bad = np.flatnonzero((y != 1.0) & (y != -1.0))
        if bad.size:
            raise ValueError(
                f"binary {name} must be ±1, got {float(y[bad[0]])!r} at index {bad[0]} "
                "(flip noise needs class labels; use gaussian_noise for real-valued targets)"
            )
        return y, (y < 0).astype(np.int64), 2
    if y.ndim == 2:
        n_classes = y.shape[1]
        if n_classes < 2:
            raise ValueError(f"one-hot {name} need at least 2 columns, got shape {y.shape}")
        ok = np.all((y == 0.0) | (y == 1.0), axis=1) & (y.sum(axis=1) == 1.0)
        bad = np.flatnonzero(~ok)
        if bad.size:
            raise ValueError(
                f"{name} of shape {y.shape} must be one-hot rows; row {bad[0]} is {y[bad[0]]}"
            )
        return y, np.argmax(y, axis=1), n_classes
    raise ValueError(f"{name} must have shape (n,) or (n, C), got {y.shape}")


def _real(value, name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def _check_rate(rate, name: str = "noise rate") -> float:
    r = _real(rate, name)
    if not (0.0 <= r < 1.0):
        raise ValueError(f"{name} must be in [0, 1), got {r!r}")
    return r


def _check_sigma(sigma) -> float:
    s = _real(sigma, "noise sigma")
    if not (math.isfinite(s) and s >= 0.0):
        raise ValueError(f"noise sigma must be finite and >= 0, got {s!r}")
    return s


def _flip_mask(n: int, rate: float, groups, exact: bool, rng: np.random.Generator) -> np.ndarray:
    """Which rows to corrupt: exactly ⌊ρ·n_g + ½⌋ per group, or Bernoulli(ρ) per row."""
    if not exact:
        return rng.random(n) < rate
    groups = np.asarray(groups)
    if groups.shape != (n,):
        raise ValueError(f"groups must have shape ({n},), got {groups.shape}")
    mask = np.zeros(n, dtype=bool)
    for g in np.unique(groups):
        members = np.flatnonzero(groups == g)
        k = int(math.floor(rate * members.size + 0.5))
        mask[rng.choice(members, size=k, replace=False)] = True
    return mask


def _flip(labels, rate, seed, *, groups=None, exact: bool = True, pair: bool = False):
    """Flip noise; pair=True: a corrupted class c becomes (c + 1) mod C (±1: the sign flip)."""
    y, cls, n_classes = _class_labels(labels)
    rate = _check_rate(rate)
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    mask = _flip_mask(n, rate, cls if groups is None else groups, exact, rng)
    out = y.copy()
    if y.ndim == 1:
        out[mask] = -out[mask]
        return NoisyLabels(out, mask)
    shift = np.ones(n, np.int64) if pair else rng.integers(1, n_classes, size=n)
    new_cls = np.where(mask, (cls + shift) % n_classes, cls)
    return NoisyLabels(np.eye(n_classes)[new_cls], mask)


def symmetric_flip(labels, rate, seed, *, groups=None, exact: bool = True) -> NoisyLabels:
    """Symmetric label noise: a corrupted label moves to a uniformly random other class.

    y_i = −ŷ_i (±1 labels) or a class drawn uniformly from the C − 1 others, on exactly
    ⌊ρ·n_g + ½⌋ rows of each group g (`exact=True`) or on Bernoulli(ρ) rows.

    Args:
      labels: (n,) ±1 or (n, C) one-hot ground-truth labels.
      rate: ρ in [0, 1).
      seed: anything `np.random.default_rng` accepts.
      groups: (n,) integer group ids of the exact fractions (default: the class).
      exact: exact per-group fractions (default) or independent Bernoulli(ρ) flips.

    Returns:
      NoisyLabels(y (n,) or (n, C) float64, corrupted (n,) bool).

    Example:
      >>> y, corrupted = symmetric_flip(np.array([1., 1., -1., -1.]), 0.5, seed=0)
      >>> int(corrupted.sum())
      2

    Reference: Li, Soltanolkotabi, Oymak 2019, arXiv 1903.11680 (data model).
    """
    return _flip(labels, rate, seed, groups=groups, exact=exact)


def _gaussian_noise(labels, sigma, seed) -> NoisyLabels:
    """y = ŷ + σ·ξ, ξ ~ N(0, I) entrywise, on any finite (n,) or (n, C) labels."""
    y = as_real_numpy(labels, "labels")
    if y.ndim not in (1, 2):
        raise ValueError(f"labels must have shape (n,) or (n, C), got {y.shape}")
    check_finite(y, "labels")
    sigma = _check_sigma(sigma)
    rng = np.random.default_rng(seed)
    noisy = y + sigma * rng.standard_normal(y.shape)
    return NoisyLabels(noisy, np.full(y.shape[0], sigma > 0.0))


def _canonical_noise(noise: str) -> str:
    if not isinstance(noise, str):
        raise TypeError(f"noise must be a string, one of {NOISE_MODELS}, got {noise!r}")
    key = _NOISE_ALIASES.get(noise.lower(), noise.lower())
    if key not in NOISE_MODELS:
        raise ValueError(f"unknown noise model {noise!r}; choose one of {NOISE_MODELS}")
    return key


def apply_noise(labels, noise: str, rate, seed, *, groups=None, exact: bool = True) -> NoisyLabels:
    """Apply a noise model by name (`NOISE_MODELS`, "symmetric" = "flip", "clean" = "none").

    `rate`: ρ for "flip" and "pair", σ for "gaussian"; `groups`, `exact` as in `symmetric_flip`.

    Example:
      >>> apply_noise(np.array([1., -1.]), "none", 0.0, seed=0).corrupted
      array([False, False])
    """
    noise = _canonical_noise(noise)
    if noise == "none":
        y = as_real_numpy(labels, "labels")
        check_finite(y, "labels")
        return NoisyLabels(y, np.zeros(y.shape[0], dtype=bool))  # y is already a copy
    if noise == "gaussian":
        return _gaussian_noise(labels, rate, seed)
    return _flip(labels, rate, seed, groups=groups, exact=exact, pair=noise == "pair")
