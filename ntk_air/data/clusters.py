"""The clusterable data model of the ℓ2 theorem (the toolkit's default data)."""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_int
from ._dataset import Dataset, _check_seed, _noisy_dataset, unit_normalize

__all__ = ["clusters"]


def _min_pairwise_distance(c: np.ndarray) -> float:
    if c.shape[0] < 2:
        return math.inf
    d = np.linalg.norm(c[:, None, :] - c[None, :, :], axis=-1)
    return float(d[np.triu_indices(c.shape[0], 1)].min())


def _points_near(centres, cluster, eps0, rng) -> np.ndarray:
    """Points x = (c + z)/‖c + z‖, z ⊥ c uniform in the tangent (d−1)-ball of radius ε0."""
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
    """The clusterable data model of the ℓ2 theorem (docs/science/theorem.md#data-model).

    K unit-norm centres with ‖c_k − c_l‖ ≥ 2δ; points x = (c + z)/‖c + z‖, z ⊥ c, ‖z‖ ≤ ε0, so
    ‖x − c‖ ≤ ε0; the label of cluster k is ±1 by parity of k (or one-hot class k mod C);
    exactly ⌊ρ·n_per_cluster + ½⌋ flips per cluster; rows ordered cluster by cluster.

    Args:
      n_clusters: K ≥ n_classes.
      n_per_cluster: training points per cluster (≥ 1).
      dim: input dimension d ≥ 2.
      eps0: cluster radius ε0 ≥ 0 (disjoint clusters when ε0 < δ).
      delta: required half minimum distance δ in (0, 1]; None: one draw, δ as achieved.
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
    n_classes = check_int("n_classes", n_classes, minimum=2)
    n_clusters = check_int("n_clusters", n_clusters, minimum=1)
    if n_clusters < n_classes:
        raise ValueError(
            f"n_clusters={n_clusters} must be >= n_classes={n_classes} (labels are constant per "
            "cluster, so every class needs a cluster)"
        )
    n_per_cluster = check_int("n_per_cluster", n_per_cluster, minimum=1)
    n_test_per_cluster = check_int("n_test_per_cluster", n_test_per_cluster, minimum=0)
    dim = check_int("dim", dim, minimum=2)
    max_tries = check_int("max_tries", max_tries, minimum=1)
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
        centres = unit_normalize(rng.standard_normal((n_clusters, dim)))
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
