"""Infinite-width kernels against what the mathematics guarantees (docs/science/kernels.md,
docs/science/index.md#identities)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import TOLERANCES, linalg_tol, rel_fro
from ntk_air.kernels import _kernel_fn as kernels


def _unit_rows(n, d, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_two_layer_relu_equals_monte_carlo_expectation(x64):
    """H∞_ij = E_w[x_i·x_j 1{w·x_i≥0}1{w·x_j≥0}], w ~ N(0, I): within 5 standard errors."""
    x = _unit_rows(8, 5, seed=1)
    H = np.asarray(kernels.two_layer_relu(x))
    rng = np.random.default_rng(2)
    samples = 200_000
    W = rng.standard_normal((samples, 5))
    P = (x @ W.T >= 0).astype(np.float64)  # (n, samples) activation patterns
    both = P[:, None, :] * P[None, :, :]  # (n, n, samples)
    mean = (x @ x.T) * both.mean(-1)
    stderr = np.abs(x @ x.T) * both.std(-1) / np.sqrt(samples)
    off = ~np.eye(8, dtype=bool)
    z = np.abs(H - mean)[off] / stderr[off]
    assert z.max() < 5.0, f"max z-score {z.max():.2f}"
    np.testing.assert_allclose(np.diag(H), 0.5, atol=1e-15)


def test_two_layer_relu_nngp_equals_monte_carlo(x64):
    """Σ_ij = E_w[ReLU(w·x_i) ReLU(w·x_j)] (arc-cosine kernel of order 1), any norms."""
    x = np.random.default_rng(3).standard_normal((6, 4))
    S = np.asarray(kernels.two_layer_relu_nngp(x))
    W = np.random.default_rng(4).standard_normal((400_000, 4))
    A = np.maximum(x @ W.T, 0.0)
    prod = A[:, None, :] * A[None, :, :]
    mean, stderr = prod.mean(-1), prod.std(-1) / np.sqrt(W.shape[0])
    assert (np.abs(S - mean) / stderr).max() < 5.0


def test_general_formula_is_homogeneous(x64):
    """With norms: H(a x_i, b x_j) = a b H(x_i, x_j) — and equals the unit-norm formula at a=b=1."""
    x = _unit_rows(7, 4, seed=5)
    scales = np.linspace(0.5, 3.0, 7)
    Hg = np.asarray(kernels.two_layer_relu(x * scales[:, None], general=True))
    H = np.asarray(kernels.two_layer_relu(x))
    off = ~np.eye(7, dtype=bool)
    expect = H * np.outer(scales, scales)
    np.testing.assert_allclose(Hg[off], expect[off], rtol=1e-13)
    # Identical rows: θ = 0 exactly (below the √eps resolution of a Gram entry, see _angle).
    np.testing.assert_allclose(np.diag(Hg), np.diag(expect), rtol=1e-14)
    np.testing.assert_allclose(kernels.two_layer_relu(x, general=True)[off], H[off], rtol=1e-13)


@pytest.mark.parametrize("tile_size", [1, 3, 5, 7, 100])
def test_tiled_equals_untiled(x64, tile_size):
    x1, x2 = _unit_rows(11, 6, 6), _unit_rows(9, 6, 7)
    ref = kernels.two_layer_relu(x1, x2)
    np.testing.assert_allclose(kernels.two_layer_relu(x1, x2, tile_size=tile_size), ref, atol=1e-15)
    kfn = kernels.fc_kernel_fn(2, "erf", 1.3, 0.2)
    ref = kfn(x1, x2)
    tiled = kfn.replace(tile_size=tile_size)(x1, x2)
    for a, b in zip(tiled, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("arch", ["two-layer-relu", "fc-relu", "fc-erf"])
def test_float32_matches_float64(arch):
    """float32 agrees with float64 to the table's elementwise tolerance (relative Frobenius)."""
    x = _unit_rows(40, 10, 8)
    fns = {
        "two-layer-relu": lambda x, dt: kernels.two_layer_relu(x, dtype=dt),
        "fc-relu": lambda x, dt: kernels.fc_kernel_fn(3, "relu", 1.5, 0.1, dtype=dt)(x).ntk,
        "fc-erf": lambda x, dt: kernels.fc_kernel_fn(3, "erf", 1.5, 0.1, dtype=dt)(x).ntk,
    }
    prev = jax.config.jax_enable_x64
    try:
        jax.config.update("jax_enable_x64", True)
        k64 = np.asarray(fns[arch](x, "float64"))
        k32 = fns[arch](x, "float32")
        assert k32.dtype == jnp.float32
    finally:
        jax.config.update("jax_enable_x64", prev)
    assert rel_fro(k32, k64) < 10 * TOLERANCES["float32"]["elementwise"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: lambda x: kernels.two_layer_relu(x),
        lambda: lambda x: kernels.fc_kernel_fn(4, "relu", 1.4, 0.3)(x).ntk,
        lambda: lambda x: kernels.fc_kernel_fn(4, "relu", 1.4, 0.3)(x).nngp,
        lambda: lambda x: kernels.fc_kernel_fn(2, "erf", 2.0, 0.5)(x).ntk,
    ],
)
def test_symmetric_and_psd(dtype, make):
    n = 60
    x = _unit_rows(n, 12, 9)
    K = np.asarray(make()(jnp.asarray(x, dtype)), dtype=np.float64)
    np.testing.assert_array_equal(K, K.T)
    lam_min = np.linalg.eigvalsh(K)[0]
    assert lam_min >= -linalg_tol(dtype, n) * np.linalg.norm(K, 2)


def test_fc_depth_zero_is_linear_kernel(x64):
    """Dense(1, W, b) alone: NNGP = W² x·x'/d + b², NTK = NNGP (NTK parameterization)."""
    x1, x2 = (
        np.random.default_rng(10).standard_normal((5, 3)),
        np.random.default_rng(11).standard_normal((4, 3)),
    )
    k = kernels.fc_kernel_fn(0, "relu", 1.7, 0.4)(x1, x2)
    expect = 1.7**2 * x1 @ x2.T / 3 + 0.4**2
    np.testing.assert_allclose(k.nngp, expect, rtol=1e-14)
    np.testing.assert_allclose(k.ntk, expect, rtol=1e-14)


def test_fc_relu_one_hidden_layer_monte_carlo(x64):
    """NNGP of Dense-ReLU-Dense = W²·E[ReLU(z)ReLU(z')] + b², z ~ GP(W² x·x'/d + b²)."""
    w, b, d = 1.5, 0.3, 4
    x = np.random.default_rng(12).standard_normal((5, d))
    k = kernels.fc_kernel_fn(1, "relu", w, b)(x)
    rng = np.random.default_rng(13)
    m = 400_000
    Wm = rng.standard_normal((d, m))
    bm = rng.standard_normal(m)
    z = w * x @ Wm / np.sqrt(d) + b * bm  # (n, m): m independent first-layer units
    h = np.maximum(z, 0.0)
    mc = w**2 * (h @ h.T) / m + b**2
    assert rel_fro(k.nngp, mc) < 0.01


def test_jit_and_eager_agree_and_no_recompile(x64):
    x = _unit_rows(10, 4, 14)
    kfn = kernels.fc_kernel_fn(2, "relu", 1.2, 0.1)
    first = kfn(x)
    compiles = []

    def listener(event, duration, **kwargs):
        if "backend_compile" in event:
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        second = kfn(x + 0.0)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert compiles == []
    with jax.disable_jit():
        eager = kfn(x)
    np.testing.assert_allclose(first.ntk, second.ntk, rtol=0, atol=0)
    np.testing.assert_allclose(eager.ntk, first.ntk, rtol=1e-13)
    np.testing.assert_allclose(eager.nngp, first.nngp, rtol=1e-13)


def test_vmap_over_batches_matches_loop(x64):
    xs = np.stack([_unit_rows(6, 3, s) for s in range(4)])
    batched = jax.vmap(lambda x: kernels.fc_kernel_fn(2, "erf", 1.1, 0.2)(x).ntk)(xs)
    for i in range(4):
        np.testing.assert_allclose(
            batched[i], kernels.fc_kernel_fn(2, "erf", 1.1, 0.2)(xs[i]).ntk, rtol=1e-13
        )


# --------------------------------------------------------------------------- clear errors


def test_non_unit_norm_names_worst_row(x64):
    x = _unit_rows(5, 3, 15)
    x[3] *= 1.5
    with pytest.raises(ValueError, match=r"row 3 has norm 1\.5"):
        kernels.two_layer_relu(x)


def test_float32_unit_rows_computed_in_float64_are_unit_norm(x64):
    """Rows normalized in float32 (|‖x‖ − 1| ~ 1e-8) and cast to float64 are judged at float32
    precision; float64 rows keep the 1e-10 tolerance."""
    x32 = _unit_rows(5, 3, 17).astype(np.float32)
    k = kernels.two_layer_relu(x32.astype(np.float64))
    assert k.dtype == np.float64 and np.allclose(k, kernels.two_layer_relu(x32), atol=1e-6)
    x = _unit_rows(5, 3, 17)
    x[1] *= 1 + 1e-8  # float64 data 1e-8 off the sphere: refused
    with pytest.raises(ValueError, match="row 1 has norm"):
        kernels.two_layer_relu(x)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_inputs_rejected(x64, bad):
    x = _unit_rows(5, 3, 16)
    x[2, 1] = bad
    with pytest.raises(ValueError, match=r"x1 has 1 non-finite entries; first at index \(2, 1\)"):
        kernels.fc_kernel_fn(1)(x)


def test_wrong_rank_and_feature_mismatch(x64):
    with pytest.raises(ValueError, match="x1 must have rank 2"):
        kernels.two_layer_relu(np.ones(3) / np.sqrt(3))
    with pytest.raises(ValueError, match=r"same feature shape, got \(3,\) and \(4,\)"):
        kernels.fc_kernel_fn(1)(np.ones((2, 3)), np.ones((2, 4)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"depth": -1}, "depth must be an integer ≥ 0"),
        ({"depth": 1, "activation": "tanh"}, "activation must be one of"),
        ({"depth": 1, "w_std": 0.0}, "w_std must be a finite positive number"),
        ({"depth": 1, "b_std": float("nan")}, "b_std must be a finite non-negative"),
    ],
)
def test_bad_fc_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kernels.fc_kernel_fn(**kwargs)


def test_bad_tile_size_and_dtype(x64):
    x = _unit_rows(4, 3, 17)
    with pytest.raises(ValueError, match="tile_size must be a positive int"):
        kernels.two_layer_relu(x, tile_size=0)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        kernels.two_layer_relu(x, dtype="int32")


def test_float64_without_x64_is_an_error():
    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(ValueError, match="x64 mode is off"):
            kernels.two_layer_relu(_unit_rows(3, 2, 18), dtype="float64")
    finally:
        jax.config.update("jax_enable_x64", prev)


@pytest.mark.parametrize("depth, w_std, b_std", [(1, 1.0, 0.0), (3, 1.5, 0.1), (4, 2.0, 0.5)])
def test_fc_relu_diagonal_is_exact(x64, depth, w_std, b_std):
    """On the diagonal θ = 0: Σ ← W²Σ + b², then Σ ← Σ/2, Θ ← Θ/2 — exact to rounding.

    (neural-tangents recovers this θ from √(c·c − Σ²) and is off by ~1e-9 here; see
    tests/test_nt_fixtures.py, which compares the diagonal at a √eps tolerance for that reason.)
    """
    x = np.random.default_rng(20).standard_normal((9, 5))
    k = kernels.fc_kernel_fn(depth, "relu", w_std, b_std)(x)
    c = np.sum(x**2, axis=1) / 5
    t = np.zeros_like(c)
    for _ in range(depth):
        c = w_std**2 * c + b_std**2
        t = c + w_std**2 * t
        c, t = c / 2, t / 2
    c = w_std**2 * c + b_std**2
    t = c + w_std**2 * t
    np.testing.assert_allclose(np.diag(k.nngp), c, rtol=1e-14)
    np.testing.assert_allclose(np.diag(k.ntk), t, rtol=1e-14)


# --------------------------------------------------------------------------- the KernelFn protocol


def test_factory_settings_fix_tiling_and_dtype(x64):
    x = _unit_rows(9, 4, 21)
    fn = kernels.fc_kernel_fn(2, "relu", 1.2, 0.1)
    tiled = fn.replace(tile_size=4)
    np.testing.assert_allclose(tiled(x).ntk, fn(x).ntk, rtol=1e-14)
    assert fn.replace(dtype="float32")(x).ntk.dtype == jnp.float32
    with pytest.raises(TypeError):  # the removed per-call form fn(x, tile_size=T)
        fn(x, tile_size=4)
    assert isinstance(fn, kernels.KernelFn)
    with pytest.raises(ValueError, match="tile_size must be a positive int"):
        kernels.fc_kernel_fn(1, tile_size=0)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        kernels.from_pairwise(lambda a, b: a @ b.T, dtype="int8")
    with pytest.raises(TypeError, match="block_fn must be callable"):
        kernels.from_pairwise(3)


def test_dtype_follows_the_inputs(x64):
    x = _unit_rows(5, 3, 22)
    fn = kernels.two_layer_relu_kernel_fn()
    assert fn(x).ntk.dtype == jnp.float64
    assert fn(jnp.asarray(x, jnp.float32)).ntk.dtype == jnp.float32


def test_layers_compose_into_the_fc_kernel_and_depth_is_a_scan(x64, compile_counter):
    from ntk_air import kernels as L

    x = _unit_rows(6, 5, 23)
    net = L.serial(L.repeat(L.serial(L.dense(1.5, 0.1), L.relu()), 3), L.dense(1.5, 0.1))
    unrolled = L.serial(*[L.dense(1.5, 0.1), L.relu()] * 3, L.dense(1.5, 0.1))
    ref = kernels.fc_kernel_fn(3, "relu", 1.5, 0.1)(x)
    for layer in (net, unrolled):
        k = kernels.from_layers(layer)(x)
        np.testing.assert_allclose(k.ntk, ref.ntk, rtol=1e-13)
        np.testing.assert_allclose(k.nngp, ref.nngp, rtol=1e-13)
    # Equal architectures are equal objects: a second factory reuses the compilation.
    kernels.fc_kernel_fn(7, "erf", 1.1, 0.0)(x)
    with compile_counter() as c:
        kernels.fc_kernel_fn(7, "erf", 1.1, 0.0)(x)
    assert c.count == 0
    # A deep network is one scan: depth 2000 runs (the program does not grow with the depth).
    deep = kernels.fc_kernel_fn(2000, "erf", 1.0, 0.1)(x).ntk
    assert np.isfinite(np.asarray(deep)).all()


def test_a_layer_of_your_own_composes(x64):
    from ntk_air import kernels as L

    def scale(c):  # Θ and Σ of c·f(x): both scaled by c²
        return lambda s: s._replace(
            nngp=c**2 * s.nngp, c1=c**2 * s.c1, c2=c**2 * s.c2, ntk=c**2 * s.ntk
        )

    x = _unit_rows(5, 3, 24)
    base = kernels.fc_kernel_fn(1, "relu")(x)
    k = kernels.from_layers(L.serial(L.dense(), L.relu(), L.dense(), scale(3.0)))(x)
    np.testing.assert_allclose(k.ntk, 9 * base.ntk, rtol=1e-13)


def test_from_pairwise_refuses_a_block_function_of_the_wrong_shape():
    """A block_fn returning (t1, d) instead of (t1, t2) is an error, not a (n, d) 'kernel'."""
    x = np.eye(4)[:3]
    with pytest.raises(ValueError, match=r"must return a \(len\(a\), len\(b\)\) array"):
        kernels.from_pairwise(lambda a, b: a)(x)
    k = kernels.from_pairwise(lambda a, b: a @ b.T)(x, x[:2])
    assert k.ntk.shape == (3, 2)
