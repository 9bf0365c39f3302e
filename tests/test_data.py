"""Data module: geometry of the clusterable model, exact noise fractions, loaders, .npz I/O."""

from __future__ import annotations

import functools
import math
import random

import numpy as np
import pytest

from ntk_air import data as D
from ntk_air.data import noise as N

# ---------------------------------------------------------------------------------------------
# unit_normalize
# ---------------------------------------------------------------------------------------------


def test_unit_normalize_gives_unit_rows_along_the_same_directions():
    x = np.random.default_rng(0).standard_normal((7, 5)) * np.arange(1, 8)[:, None]
    u = D.unit_normalize(x)
    np.testing.assert_allclose(np.linalg.norm(u, axis=1), 1.0, atol=1e-15)
    # same direction: x_i = ‖x_i‖ u_i with a positive scale
    scale = np.sum(x * u, axis=1)
    assert np.all(scale > 0)
    np.testing.assert_allclose(scale[:, None] * u, x, rtol=1e-14)


def test_unit_normalize_errors_name_the_row():
    x = np.ones((4, 3))
    x[2] = 0.0
    with pytest.raises(ValueError, match="row 2"):
        D.unit_normalize(x)
    x[2] = np.nan
    with pytest.raises(ValueError, match=r"\(2, 0\)"):
        D.unit_normalize(x)
    with pytest.raises(ValueError, match="rank 2"):
        D.unit_normalize(np.ones(3))


# ---------------------------------------------------------------------------------------------
# The clusterable model
# ---------------------------------------------------------------------------------------------


def test_default_clusters_is_the_science_sanity_case():
    ds = D.clusters()
    assert ds.x.shape == (160, 20) and ds.y.shape == (160,) and ds.x_test.shape == (160, 20)
    assert ds.info["n_corrupted"] == 40 and ds.info["noise_rate"] == 0.25
    assert ds.x.dtype == np.float64 and ds.name == "clusters"
    assert ds.info["clusters_disjoint"]


@pytest.mark.parametrize("eps0", [0.0, 0.25, 0.6])
def test_cluster_geometry(eps0):
    """Unit-norm centres ≥ 2δ apart; every point (train and test) unit-norm and within ε0 of
    its centre *after* the projection onto the sphere (the inputs themselves obey the model)."""
    delta = 0.6
    ds = D.clusters(n_clusters=5, n_per_cluster=30, dim=12, eps0=eps0, delta=delta, seed=3)
    c = ds.info["centres"]
    np.testing.assert_allclose(np.linalg.norm(c, axis=1), 1.0, atol=1e-14)
    dists = np.linalg.norm(c[:, None] - c[None], axis=-1)[np.triu_indices(5, 1)]
    assert dists.min() >= 2 * delta
    for x, k in ((ds.x, ds.info["cluster"]), (ds.x_test, ds.info["cluster_test"])):
        np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-14)
        r = np.linalg.norm(x - c[k], axis=1)
        assert r.max() <= eps0 + 1e-14
        # the radius is really used: the largest offset comes close to the bound
        # 2 sin(arctan(ε0)/2) reached by a tangent offset of length ε0
        assert r.max() >= 0.9 * 2 * math.sin(math.atan(eps0) / 2)


def test_tangent_offsets_are_uniform_in_the_ball():
    """Recover the tangent offset ‖z‖ = tan θ (cos θ = x·c) from the projected points; uniform in
    the (d−1)-ball means (‖z‖/ε0)^(d−1) ~ U(0, 1): Kolmogorov–Smirnov at the 1 % level."""
    dim, eps0, n = 5, 0.4, 2000
    ds = D.clusters(n_clusters=2, n_per_cluster=n // 2, dim=dim, eps0=eps0, n_test_per_cluster=0)
    cos = np.sum(ds.x * ds.info["centres"][ds.info["cluster"]], axis=1)
    z = np.tan(np.arccos(np.clip(cos, -1, 1)))
    assert z.max() <= eps0 * (1 + 1e-9)
    u = np.sort((z / eps0) ** (dim - 1))
    ks = np.max(np.maximum(np.arange(1, n + 1) / n - u, u - np.arange(n) / n))
    assert ks < 1.63 / math.sqrt(n)


def test_disjoint_clusters_are_recovered_by_nearest_centre():
    """If ε0 < δ then ‖x − c_l‖ ≥ 2δ − ε0 > ε0 ≥ ‖x − c_k‖: the nearest centre is the own one."""
    ds = D.clusters(n_clusters=6, n_per_cluster=25, dim=8, eps0=0.3, delta=0.45, seed=1)
    assert ds.info["clusters_disjoint"]
    nearest = np.argmin(np.linalg.norm(ds.x[:, None] - ds.info["centres"][None], axis=-1), 1)
    np.testing.assert_array_equal(nearest, ds.info["cluster"])


def test_delta_default_is_the_achieved_separation():
    ds = D.clusters(seed=5)
    c = ds.info["centres"]
    dists = np.linalg.norm(c[:, None] - c[None], axis=-1)[np.triu_indices(4, 1)]
    assert ds.info["delta"] == pytest.approx(dists.min() / 2, rel=1e-14)
    assert ds.info["delta_requested"] is None


def test_unachievable_delta_raises():
    with pytest.raises(ValueError, match="could not draw 10 unit centres"):
        D.clusters(n_clusters=10, dim=2, delta=0.9, max_tries=50)
    with pytest.raises(ValueError, match="delta must be in"):
        D.clusters(delta=1.5)
    with pytest.raises(ValueError, match="n_clusters=2 must be >= n_classes=3"):
        D.clusters(n_clusters=2, n_classes=3)


def test_cluster_labels_constant_per_cluster():
    ds = D.clusters(n_clusters=4, noise="none")
    k = ds.info["cluster"]
    np.testing.assert_array_equal(ds.y_clean, np.where(k % 2 == 0, 1.0, -1.0))
    np.testing.assert_array_equal(ds.y, ds.y_clean)
    np.testing.assert_array_equal(ds.y_test_clean, np.where(ds.info["cluster_test"] % 2, -1.0, 1.0))
    mc = D.clusters(n_clusters=7, n_classes=3, n_per_cluster=9)
    assert mc.y.shape == (63, 3) and mc.y_test_clean.shape == (7 * 40, 3)
    np.testing.assert_array_equal(np.argmax(mc.y_clean, 1), mc.info["cluster"] % 3)


@pytest.mark.parametrize(
    "n_per_cluster, rate, expected",
    [(40, 0.25, 10), (10, 0.25, 3), (15, 0.1, 2), (9, 0.3, 3), (8, 0.0, 0), (20, 0.49, 10)],
)
@pytest.mark.parametrize("noise", ["flip", "pair"])
def test_exact_corruption_fraction_per_cluster(n_per_cluster, rate, expected, noise):
    """Exactly ⌊ρ·n + ½⌋ flips in every cluster, and y ≠ ŷ exactly on info['corrupted']."""
    ds = D.clusters(n_per_cluster=n_per_cluster, noise=noise, noise_rate=rate, seed=2)
    mask = np.zeros(ds.y.shape[0], bool)
    mask[ds.info["corrupted"]] = True
    np.testing.assert_array_equal(ds.y != ds.y_clean, mask)
    np.testing.assert_array_equal(ds.y[mask], -ds.y_clean[mask])
    counts = np.bincount(ds.info["cluster"][mask], minlength=4)
    np.testing.assert_array_equal(counts, expected)


def test_multiclass_corruption_rows_match_info():
    ds = D.clusters(n_clusters=6, n_classes=3, n_per_cluster=20, noise="flip", noise_rate=0.3)
    differs = np.any(ds.y != ds.y_clean, axis=1)
    np.testing.assert_array_equal(np.flatnonzero(differs), ds.info["corrupted"])
    np.testing.assert_array_equal(np.bincount(ds.info["cluster"][differs]), 6)
    assert np.all(ds.y.sum(1) == 1) and set(np.unique(ds.y)) == {0.0, 1.0}


def test_cluster_seeds_reproducible_and_distinct():
    a, b, c = D.clusters(seed=4), D.clusters(seed=4), D.clusters(seed=5)
    for field in ("x", "y", "x_test"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    np.testing.assert_array_equal(a.info["corrupted"], b.info["corrupted"])
    assert not np.allclose(a.x, c.x)
    assert not np.array_equal(a.info["corrupted"], c.info["corrupted"])


# ---------------------------------------------------------------------------------------------
# Noise models
# ---------------------------------------------------------------------------------------------


def test_pair_flip_maps_c_to_c_plus_one():
    cls = np.repeat(np.arange(5), 30)
    y = np.eye(5)[cls]
    noisy, mask = N._flip(y, 0.4, 0, pair=True)
    new = np.argmax(noisy, 1)
    np.testing.assert_array_equal(new[mask], (cls[mask] + 1) % 5)
    np.testing.assert_array_equal(new[~mask], cls[~mask])
    np.testing.assert_array_equal(np.bincount(cls[mask]), 12)  # exact 40 % of each class


def test_binary_pair_flip_equals_symmetric_flip():
    y = np.where(np.arange(50) % 3 == 0, 1.0, -1.0)
    p, s = N._flip(y, 0.3, 7, pair=True), D.symmetric_flip(y, 0.3, seed=7)
    np.testing.assert_array_equal(p.y, s.y)
    np.testing.assert_array_equal(p.corrupted, s.corrupted)
    np.testing.assert_array_equal(p.y[p.corrupted], -y[p.corrupted])


def test_symmetric_flip_goes_uniformly_to_other_classes():
    """Flipped labels never keep their class, and land on the C − 1 others uniformly (χ² test)."""
    n_classes, n = 5, 40000
    y = np.eye(n_classes)[np.zeros(n, int)]
    noisy, mask = D.symmetric_flip(y, 0.5, seed=1)
    assert mask.sum() == n // 2
    counts = np.bincount(np.argmax(noisy[mask], 1), minlength=n_classes)
    assert counts[0] == 0
    expected = mask.sum() / (n_classes - 1)
    chi2 = np.sum((counts[1:] - expected) ** 2 / expected)
    assert chi2 < 20.0  # χ²(3): P(> 20) ≈ 2e-4


def test_bernoulli_flips_have_rate_rho_on_average():
    y = np.ones(20000)
    _, mask = D.symmetric_flip(y, 0.3, seed=2, exact=False)
    sd = math.sqrt(0.3 * 0.7 / y.size)
    assert abs(mask.mean() - 0.3) < 5 * sd
    _, exact_mask = D.symmetric_flip(y, 0.3, seed=2)
    assert exact_mask.sum() == 6000


def test_groups_set_the_strata():
    y = np.ones(30)
    groups = np.repeat([0, 1, 2], [5, 10, 15])
    _, mask = D.symmetric_flip(y, 0.2, seed=0, groups=groups)
    np.testing.assert_array_equal(np.bincount(groups[mask], minlength=3), [1, 2, 3])


def test_gaussian_noise_statistics():
    n, sigma = 40000, 0.3
    y = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    noisy, mask = N._gaussian_noise(y, sigma, seed=0)
    e = noisy - y
    assert mask.all()
    assert abs(e.mean()) < 5 * sigma / math.sqrt(n)
    assert abs(e.std() / sigma - 1.0) < 5 / math.sqrt(2 * n)
    assert abs(np.corrcoef(e, y)[0, 1]) < 5 / math.sqrt(n)  # independent of the labels
    same, none = N._gaussian_noise(y, 0.0, seed=0)
    np.testing.assert_array_equal(same, y)
    assert not none.any()
    oh = N._gaussian_noise(np.eye(3)[[0, 1, 2, 0]], 0.1, seed=0).y
    assert oh.shape == (4, 3)


def test_noise_functions_are_pure_functions_of_the_seed():
    y = np.where(np.arange(100) % 2 == 0, 1.0, -1.0)
    for fn in (D.symmetric_flip, functools.partial(N._flip, pair=True), N._gaussian_noise):
        a, b, c = fn(y, 0.3, 11), fn(y, 0.3, 11), fn(y, 0.3, 12)
        np.testing.assert_array_equal(a.y, b.y)
        assert not np.array_equal(a.y, c.y)
    y_copy = y.copy()
    D.symmetric_flip(y, 0.3, 0)
    np.testing.assert_array_equal(y, y_copy)  # input untouched


@pytest.mark.parametrize("rate", [1.0, 1.5, -0.1, float("nan")])
def test_invalid_flip_rates_raise_naming_the_value(rate):
    y = np.ones(10)
    for fn in (D.symmetric_flip, functools.partial(N._flip, pair=True)):
        with pytest.raises(ValueError, match=rf"\[0, 1\), got {rate!r}"):
            fn(y, rate, 0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        D.clusters(noise_rate=rate)


def test_noise_models_live_in_noise_and_are_reexported_by_data():
    """`ntk_air.data.X` keeps working for every noise name (the same objects, not copies)."""
    assert set(N.__all__) <= set(D.__all__)
    for name in N.__all__:
        assert getattr(D, name) is getattr(N, name), name


def test_no_noise_returns_a_copy():
    y = np.array([1.0, -1.0, 1.0])
    out = D.apply_noise(y, "none", 0.0, 0)
    out.y[0] = -1.0
    np.testing.assert_array_equal(y, [1.0, -1.0, 1.0])  # the caller's labels are untouched


def test_invalid_sigma_noise_name_and_labels():
    with pytest.raises(ValueError, match="sigma must be finite and >= 0, got -0.1"):
        N._gaussian_noise(np.ones(3), -0.1, 0)
    with pytest.raises(ValueError, match="unknown noise model 'salt'"):
        D.clusters(noise="salt")
    with pytest.raises(ValueError, match="must be ±1, got 0.5 at index 1"):
        D.symmetric_flip(np.array([1.0, 0.5]), 0.1, 0)
    with pytest.raises(ValueError, match="one-hot rows; row 1"):
        N._flip(np.array([[1.0, 0.0], [1.0, 1.0]]), 0.1, 0, pair=True)
    assert D.apply_noise(np.ones(4), "symmetric", 0.5, 0).corrupted.sum() == 2
    assert not D.apply_noise(np.ones(4), "none", 0.5, 0).corrupted.any()


def test_gaussian_clusters():
    ds = D.clusters(noise="gaussian", noise_rate=0.5)
    assert ds.info["noise"] == "gaussian" and ds.info["n_corrupted"] == 160
    assert 0.4 < np.std(ds.y - ds.y_clean) < 0.6


# ---------------------------------------------------------------------------------------------
# Digits and MNIST-1D
# ---------------------------------------------------------------------------------------------


def _assert_one_hot(y, n_classes):
    assert y.shape[1] == n_classes
    assert set(np.unique(y)) <= {0.0, 1.0} and np.all(y.sum(1) == 1.0)


def test_digits_multiclass():
    ds = D.digits(n_train=300, n_test=100, noise_rate=0.2, seed=1)
    assert ds.x.shape == (300, 64) and ds.x_test.shape == (100, 64)
    _assert_one_hot(ds.y, 10)
    _assert_one_hot(ds.y_clean, 10)
    _assert_one_hot(ds.y_test_clean, 10)
    np.testing.assert_array_equal(np.argmax(ds.y_clean, 1), ds.info["digit"])
    np.testing.assert_allclose(np.linalg.norm(ds.x, axis=1), 1.0, atol=1e-14)
    assert not set(ds.info["indices"]) & set(ds.info["indices_test"])
    # exact fraction of every digit
    mask = np.any(ds.y != ds.y_clean, 1)
    np.testing.assert_array_equal(np.flatnonzero(mask), ds.info["corrupted"])
    per_digit = np.bincount(ds.info["digit"], minlength=10)
    np.testing.assert_array_equal(
        np.bincount(ds.info["digit"][mask], minlength=10), np.floor(0.2 * per_digit + 0.5)
    )


def test_digits_preprocessing_matches_the_documented_recipe():
    from sklearn.datasets import load_digits

    raw, _ = load_digits(return_X_y=True)
    ds = D.digits(n_train=200, n_test=50, seed=2)
    train = raw[ds.info["indices"]] / 16.0
    mean = train.mean(0)
    ref = (train - mean) / np.linalg.norm(train - mean, axis=1, keepdims=True)
    np.testing.assert_allclose(ds.x, ref, atol=1e-14)
    test = raw[ds.info["indices_test"]] / 16.0 - mean
    np.testing.assert_allclose(ds.x_test, test / np.linalg.norm(test, axis=1)[:, None], atol=1e-14)


def test_digits_binary_parity_and_pair():
    par = D.load("digits-binary", n_train=200, n_test=100)
    assert par.y.shape == (200,) and par.y_test_clean.shape == (100,)
    np.testing.assert_array_equal(par.y_clean, np.where(par.info["digit"] % 2 == 0, 1.0, -1.0))
    pr = D.digits(binary=True, pair=(3, 8), n_train=150, n_test=50, noise="none")
    assert set(pr.info["digit"]) == {3, 8} and set(pr.info["digit_test"]) <= {3, 8}
    np.testing.assert_array_equal(pr.y, np.where(pr.info["digit"] == 3, 1.0, -1.0))
    with pytest.raises(ValueError, match="exceeds the 3.. available"):
        D.digits(binary=True, pair=(3, 8), n_train=400, n_test=100)
    with pytest.raises(ValueError, match="binary=True"):
        D.digits(pair=(3, 8))


def test_digits_seeds():
    a, b, c = (D.digits(n_train=100, n_test=20, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.info["indices"], c.info["indices"])


def test_mnist1d_small_generation_is_pure():
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
    ds = D.mnist1d(n_train=60, n_test=30, seed=3)
    np.testing.assert_array_equal(np.random.get_state()[1], np_state)  # global RNG untouched
    assert random.getstate() == py_state
    assert ds.x.shape == (60, 40) and ds.x_test.shape == (30, 40)
    _assert_one_hot(ds.y, 10)
    np.testing.assert_allclose(np.linalg.norm(ds.x, axis=1), 1.0, atol=1e-14)
    np.testing.assert_allclose(np.linalg.norm(ds.x_test, axis=1), 1.0, atol=1e-14)
    again = D.mnist1d(n_train=60, n_test=30, seed=3)
    np.testing.assert_array_equal(ds.x, again.x)
    other = D.mnist1d(n_train=60, n_test=30, seed=4)
    assert not np.allclose(ds.x, other.x)
    binary = D.load("mnist1d-binary", n_train=40, n_test=10)
    np.testing.assert_array_equal(binary.y_clean, np.where(binary.info["digit"] % 2, -1.0, 1.0))


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


def test_load_registry():
    assert D.DATASETS[0] == "clusters"
    assert {"clusters", "digits", "digits-binary", "mnist1d"} <= set(D.DATASETS)
    assert D.load().x.shape == D.clusters().x.shape
    np.testing.assert_array_equal(D.load("clusters", seed=2).x, D.clusters(seed=2).x)
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*clusters.*digits"):
        D.load("cifar")
    with pytest.raises(TypeError, match="no option 'n_clusters'.*n_train"):
        D.load("digits", n_clusters=3)
    with pytest.raises(ValueError, match="fixes binary=False"):
        D.load("digits", binary=True)


# ---------------------------------------------------------------------------------------------
# .npz files
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3])
def test_npz_round_trip(tmp_path, n_classes):
    ds = D.clusters(n_clusters=6, n_classes=n_classes, n_per_cluster=10, seed=1)
    path = D.save_npz(ds, tmp_path / "c.data")  # written exactly there, no suffix added
    assert path == str(tmp_path / "c.data")
    back = D.from_npz(path)
    for field in ("x", "y", "y_clean", "x_test", "y_test_clean"):
        np.testing.assert_array_equal(getattr(back, field), getattr(ds, field))
    assert back.name == "clusters" and back.info["y_clean_given"]
    np.testing.assert_array_equal(back.info["corrupted"], ds.info["corrupted"])
    assert back.info["n_classes"] == n_classes and back.info["noise"] == "flip"
    assert back.info["source_info"]["noise_rate"] == 0.25
    assert back.info["max_norm_deviation"] < 1e-14


def test_npz_minimal_file_and_norms(tmp_path):
    x = np.random.default_rng(0).standard_normal((6, 3))
    x[2] *= 10.0
    path = tmp_path / "m.npz"
    np.savez(path, x=x, y=np.array([1.0, -1, 1, 1, -1, 1]))
    ds = D.from_npz(path)
    norms = np.linalg.norm(x, axis=1)
    np.testing.assert_array_equal(ds.x, x)  # not renormalized
    assert ds.info["max_norm_deviation"] == pytest.approx(np.max(np.abs(norms - 1)))
    assert not ds.info["normalized"] and not ds.info["y_clean_given"]
    np.testing.assert_array_equal(ds.y_clean, ds.y)
    assert ds.info["corrupted"].size == 0
    assert ds.x_test.shape == (0, 3) and ds.y_test_clean.shape == (0,)
    assert ds.name == "m"
    normed = D.from_npz(path, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(normed.x, axis=1), 1.0, atol=1e-15)
    assert normed.info["normalized"] and normed.info["max_norm_deviation"] < 1e-15


def _write(tmp_path, **arrays):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


X = np.eye(4)
Y = np.array([1.0, -1.0, 1.0, -1.0])


@pytest.mark.parametrize(
    "arrays, error, message",
    [
        (dict(y=Y), ValueError, "missing required array 'x'"),
        (dict(x=X), ValueError, "missing required array 'y'"),
        (dict(x=np.ones(4), y=Y), ValueError, "'x' must have rank 2"),
        (dict(x=X, y=np.ones((4, 2, 1))), ValueError, r"'y' must have shape \(n,\) or \(n, C\)"),
        (dict(x=X, y=Y[:3]), ValueError, "'y' has 3 rows but the inputs have 4"),
        (dict(x=X, y=Y, y_clean=Y[:2]), ValueError, "'y_clean' has shape"),
        (dict(x=X, y=Y, x_test=X), ValueError, "x_test and y_test must be given together"),
        (dict(x=X, y=Y, x_test=np.ones((2, 3)), y_test=Y[:2]), ValueError, "'x_test' must have"),
        (dict(x=X, y=Y, x_test=X, y_test=Y[:3]), ValueError, "'y_test' has 3 rows"),
        (dict(x=X, y=Y, x_test=X, y_test=np.eye(4)), ValueError, "incompatible with 'y'"),
        (dict(x=np.where(X == 1, np.nan, X), y=Y), ValueError, r"'x' has 4 non-finite.*\(0, 0\)"),
        (dict(x=X, y=np.array([1, np.inf, 1, 1])), ValueError, r"'y' has 1 non-finite.*\(1,\)"),
        (dict(x=X, y=np.array(["a", "b", "c", "d"])), D.DataFileError, "'y'.* non-numeric"),
        (dict(x=X * 1j, y=Y), D.DataFileError, "'x'.* complex"),
        (dict(x=np.array([X[0], "s"], dtype=object), y=Y), ValueError, "pickled object array"),
    ],
)
def test_npz_errors(tmp_path, arrays, error, message):
    path = _write(tmp_path, **arrays)
    with pytest.raises(error, match=message):
        D.from_npz(path)


def test_npz_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        D.from_npz(tmp_path / "nowhere.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive")
    with pytest.raises(D.DataFileError, match="not an .npz archive"):
        D.from_npz(garbage)
    single = tmp_path / "single.npy"
    np.save(single, X)
    with pytest.raises(ValueError, match="single array"):
        D.from_npz(single)


def test_rows_whose_squared_norm_overflows_are_refused():
    """x of order 1e300: ‖x_i‖² is inf in float64; refused in one sentence before any kernel."""
    x = np.full((4, 5), 1e300)
    with pytest.raises(ValueError, match="'x' row 0 is too large: its squared norm overflows"):
        D.from_arrays(x, np.array([1.0, -1.0, 1.0, -1.0]))
    ok = D.from_arrays(np.full((4, 5), 1e150), np.array([1.0, -1.0, 1.0, -1.0]))
    assert ok.x.shape == (4, 5)
