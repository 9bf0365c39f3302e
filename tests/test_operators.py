"""Kernel operators: K·V tile by tile equals the dense product, for every kernel kind."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import TOLERANCES, rel_fro
from ntk_air import kernels
from ntk_air import spectral as operators
from ntk_air.spectral._operators import _tile_geometry


def _unit_rows(n, d=6, seed=0):
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _tol(dtype, n):
    # A block product sums n terms: relative error ~ n·eps at worst, far less in practice.
    return 20 * TOLERANCES[dtype]["eps"] * n


@pytest.mark.parametrize("tile", [7, 64, 97, 1000])
@pytest.mark.parametrize("symmetric", [True, False])
def test_square_product_equals_dense(dtype, tile, symmetric):
    n = 203  # = 7 · 29: tile 7 divides it, tiles 64, 97 and 1000 do not
    x = _unit_rows(n)
    kernel_fn = kernels.two_layer_relu_kernel_fn(dtype=dtype)
    K = np.asarray(kernel_fn(x).ntk, np.float64)
    v = np.random.default_rng(1).standard_normal((n, 5))
    op = operators.kernel_operator(kernel_fn, x, tile_size=tile, symmetric=symmetric)
    out = op(v)
    assert out.shape == (n, 5) and out.dtype == jnp.dtype(dtype)
    assert op.shape == (n, n) and op.symmetric == symmetric
    assert rel_fro(out, K @ v) < _tol(dtype, n)
    # a vector in, a vector out
    assert rel_fro(op(v[:, 0]), K @ v[:, 0]) < _tol(dtype, n)


def test_rectangular_and_nngp(x64):
    x, xt = _unit_rows(150, seed=0), _unit_rows(41, seed=2)
    kernel_fn = kernels.two_layer_relu_kernel_fn()
    v = np.random.default_rng(3).standard_normal((150, 3))
    for which in ("ntk", "nngp"):
        op = operators.kernel_operator(kernel_fn, xt, x, tile_size=16, which=which)
        ref = np.asarray(getattr(kernel_fn(xt, x), which))
        assert op.shape == (41, 150) and not op.symmetric
        assert rel_fro(op(v), ref @ v) < 1e-13


def test_fc_kernel_and_diagonal(x64):
    x = np.random.default_rng(0).standard_normal((90, 4))  # any norm for the FC kernel
    kernel_fn = kernels.fc_kernel_fn(3, "erf", 1.3, 0.2)
    K = np.asarray(kernel_fn(x).ntk)
    op = operators.kernel_operator(kernel_fn, x, tile_size=25)
    v = np.random.default_rng(1).standard_normal((90, 2))
    assert rel_fro(op(v), K @ v) < 1e-13
    np.testing.assert_allclose(op.diagonal(), np.diag(K), rtol=1e-13)


def test_pairwise_kernel_from_user_block(x64):
    def rbf(a, b):
        return jnp.exp(-jnp.sum((a[:, None] - b[None]) ** 2, -1))

    kernel_fn = kernels.from_pairwise(rbf)
    x = np.random.default_rng(0).standard_normal((77, 3))
    op = operators.kernel_operator(kernel_fn, x, tile_size=10)
    v = np.random.default_rng(1).standard_normal((77, 4))
    assert rel_fro(op(v), np.asarray(kernel_fn(x).ntk) @ v) < 1e-13


def test_operator_traces_inside_jit(x64):
    x = _unit_rows(64)
    op = operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), x, tile_size=20)
    v = jnp.asarray(np.random.default_rng(1).standard_normal((64, 3)))
    mesh1 = operators.device_mesh(jax.devices()[:1])
    op1 = operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), x, tile_size=20, mesh=mesh1)
    np.testing.assert_allclose(jax.jit(op1.apply)(v), op(v), rtol=1e-14, atol=1e-14)


def test_matrix_operator(x64):
    K = np.asarray(kernels.two_layer_relu(_unit_rows(50)))
    op = operators.matrix_operator(K)
    v = np.random.default_rng(0).standard_normal((50, 3))
    assert op.symmetric
    np.testing.assert_allclose(op(v), K @ v, rtol=1e-13, atol=1e-13)
    assert not operators.matrix_operator(K[:, :30]).symmetric


def _mlp(params, x):
    h = jnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"]


def _explicit_ntk(params, x1, x2, reduction):
    """Θ = J₁J₂ᵀ from materialized Jacobians (the plain reference)."""

    def jac(x):
        j = jax.jacrev(lambda p: _mlp(p, x).reshape(x.shape[0], -1))(params)
        leaves = jax.tree_util.tree_leaves(j)
        return jnp.concatenate([a.reshape(a.shape[0], a.shape[1], -1) for a in leaves], -1)

    j1, j2 = jac(x1), jac(x2)
    theta = jnp.einsum("iap,jap->ij", j1, j2)
    return theta / j1.shape[1] if reduction == "mean" else theta


@pytest.mark.parametrize("outputs", [None, 3])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_empirical_operator_equals_jacobian_contraction(x64, outputs, reduction):
    rng = np.random.default_rng(0)
    params = {
        "w1": rng.standard_normal((5, 12)),
        "b1": rng.standard_normal(12),
        "w2": rng.standard_normal((12,) if outputs is None else (12, outputs)),
    }
    x1, x2 = rng.standard_normal((37, 5)), rng.standard_normal((23, 5))
    v = rng.standard_normal((23, 4))
    op = operators.empirical_kernel_operator(
        _mlp, params, x1, x2, tile_size=6, output_reduction=reduction
    )
    ref = np.asarray(_explicit_ntk(params, x1, x2, reduction))
    assert rel_fro(op(v), ref @ v) < 1e-13
    sq = operators.empirical_kernel_operator(
        _mlp, params, x1, tile_size=8, output_reduction=reduction
    )
    w = rng.standard_normal((37, 2))
    assert rel_fro(sq(w), np.asarray(_explicit_ntk(params, x1, x1, reduction)) @ w) < 1e-13


@pytest.mark.nt
def test_neural_tangents_stax_operator(x64):
    from ntk_air import nt_backend

    try:
        nt = nt_backend.import_neural_tangents()
    except nt_backend.NeuralTangentsUnavailable as err:  # pragma: no cover - optional backend
        pytest.skip(str(err))
    stax = nt.stax
    net = stax.serial(stax.Dense(16), stax.Relu(), stax.Dense(1))
    kernel_fn = nt_backend.kernel_fn_from_stax(net)
    x = np.random.default_rng(0).standard_normal((45, 3))
    op = operators.kernel_operator(kernel_fn, x, tile_size=11)
    v = np.random.default_rng(1).standard_normal((45, 2))
    assert rel_fro(op(v), np.asarray(kernel_fn(x).ntk) @ v) < 1e-12


def test_tile_geometry_pads_little():
    for n in (1, 7, 203, 1000, 12345):
        for tile in (1, 5, 64, 2048):
            for parts in (1, 3, 8):
                tiles, rows = _tile_geometry(n, tile, parts)
                assert rows <= tile and parts * tiles * rows >= n
                assert parts * tiles * rows - n < parts * tiles + parts


def test_errors_name_the_problem(x64):
    x = _unit_rows(20)
    with pytest.raises(TypeError, match="PairwiseKernelFn"):
        operators.kernel_operator(lambda a, b=None: None, x)
    op = operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), x)
    with pytest.raises(ValueError, match=r"V must have shape \(20,\)"):
        op(np.ones((19, 2)))
    with pytest.raises(ValueError, match="symmetric=True needs x2=None"):
        operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), x, x, symmetric=True)
    with pytest.raises(ValueError, match="unit norm"):
        operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), 2 * x)
    with pytest.raises(ValueError, match="output_reduction"):
        operators.empirical_kernel_operator(_mlp, {}, x, output_reduction="none")
