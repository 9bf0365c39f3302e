"""Top-k eigensolver: equals dense eigh on the top of the spectrum, with honest residuals."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import TOLERANCES
from ntk_air import kernels
from ntk_air import spectral as matfree
from ntk_air import spectral as operators
from ntk_air import spectral as topk


def _clustered(n, d=20, centres=8, eps0=1.0, seed=0):
    """Unit rows near random centres (the theorem's data model): a spectrum with structure."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = c[rng.integers(0, centres, n)] + eps0 * rng.standard_normal((n, d)) / np.sqrt(d)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _dense(x):
    K = np.asarray(kernels.two_layer_relu(x, dtype="float64"))
    lam, vec = np.linalg.eigh(K)
    return K, lam[::-1], vec[:, ::-1]


def _k_at_gap(lam, lo, hi):
    """The k in [lo, hi] with the largest relative gap (λ_k − λ_{k+1})/λ_k."""
    gaps = (lam[lo - 1 : hi] - lam[lo : hi + 1]) / lam[lo - 1 : hi]
    return lo + int(np.argmax(gaps))


def _sin_largest_angle(a, b):
    """sin of the largest principal angle between span(a) and span(b) (orthonormal columns)."""
    s = np.linalg.svd(a.T @ b, compute_uv=False)
    return float(np.sqrt(max(0.0, 1.0 - s.min() ** 2)))


@pytest.fixture(scope="module")
def problem():
    import jax

    prev = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    x = _clustered(700)
    K, lam, vec = _dense(x)
    yield x, K, lam, vec
    jax.config.update("jax_enable_x64", prev)


@pytest.mark.parametrize(
    "method, block_size, max_basis",
    [("block-krylov", None, None), ("block-krylov", 24, 96), ("subspace", 96, None)],
    ids=["block-krylov", "restarted", "subspace"],
)
def test_topk_equals_dense_eigh(x64, problem, method, block_size, max_basis):
    x, K, lam, vec = problem
    k = _k_at_gap(lam, 30, 60)
    op = operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), x, tile_size=97)
    top = topk.topk_eigensystem(
        op,
        k,
        method=method,
        block_size=block_size,
        max_basis=max_basis,
        max_products=200,
    )
    assert bool(top.converged)
    theta = np.asarray(top.eigenvalues)
    v = np.asarray(top.eigenvectors)
    np.testing.assert_array_less(np.abs(theta - lam[:k]) / lam[:k], 1e-8)
    assert np.all(np.diff(theta) <= 0)  # descending
    # Ritz values are lower bounds (Cauchy interlacing), up to rounding.
    assert np.all(theta <= lam[:k] * (1 + 1e-13))
    np.testing.assert_allclose(v.T @ v, np.eye(k), atol=1e-12)
    # k sits at a gap: the spanned subspaces agree (individual vectors may rotate within
    # clusters of eigenvalues, the subspace may not), within the Davis–Kahan sin θ bound
    # ‖KV − VΘ‖_F / (θ_k − λ_{k+1}).
    residual = K @ v - v * theta
    bound = np.linalg.norm(residual) / (theta[-1] - lam[k])
    sin_theta = _sin_largest_angle(v, vec[:, :k])
    assert sin_theta <= bound * (1 + 1e-6) + 1e-12 and sin_theta < 1e-4
    # The reported residuals are the true ones.
    true_res = np.linalg.norm(residual, axis=0)
    np.testing.assert_allclose(np.asarray(top.residual_norms), true_res, rtol=1e-4, atol=1e-12)
    assert np.max(true_res) <= float(top.tol) * theta[0] * (1 + 1e-6)
    assert float(top.next_eigenvalue) <= lam[k] * (1 + 1e-12)
    assert int(top.block_products) >= 1
    if max_basis is not None:  # the restarted run really restarted
        assert int(top.columns_multiplied) > max_basis


def test_float32(dtype):
    if dtype != "float32":
        pytest.skip("float64 is covered above")
    x = _clustered(400, seed=1).astype(np.float32)
    lam = np.linalg.eigvalsh(np.asarray(kernels.two_layer_relu(x, dtype="float32"), np.float64))
    lam = lam[::-1]
    op = operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), x, tile_size=64)
    top = topk.topk_eigensystem(op, 10)
    assert bool(top.converged) and top.eigenvalues.dtype == np.float32
    eps = TOLERANCES["float32"]["eps"]
    np.testing.assert_allclose(np.asarray(top.eigenvalues), lam[:10], rtol=2000 * eps)


def test_float32_operator_under_x64(x64):
    """A float32 kernel keeps float32 everywhere even when x64 is on (no silent promotion)."""
    x = _clustered(300, seed=4).astype(np.float32)
    fn = kernels.two_layer_relu_kernel_fn(dtype="float32")
    op = operators.kernel_operator(fn, x, tile_size=64)
    top = topk.topk_eigensystem(op, 8)
    assert top.eigenvalues.dtype == np.float32 and top.eigenvectors.dtype == np.float32
    assert bool(top.converged) and not bool(top.upcast)


def test_float32_tiles_under_float64_arithmetic(x64):
    """`with_float64_products`: float32 tiles, float64 products and solver; the eigensolver stops
    above the float32 rounding of the products (1e-4) and its eigenvalues meet the float64 ones
    to ‖r‖²/gap, far below that."""
    x = _clustered(600, seed=2)
    lam = np.linalg.eigvalsh(np.asarray(kernels.two_layer_relu(x, x)))[::-1]
    fn = kernels.two_layer_relu_kernel_fn()
    op = operators.with_float64_products(
        operators.kernel_operator(fn.replace(dtype="float32"), x, tile_size=128)
    )
    assert op.dtype == np.float64 and op.tile_dtype == np.float32
    assert op.tile_eps == float(np.finfo(np.float32).eps)
    v = np.random.default_rng(0).standard_normal((600, 3))
    exact = np.asarray(kernels.two_layer_relu(x, x)) @ v
    kv = np.asarray(op(v))
    assert kv.dtype == np.float64
    err = np.abs(kv - exact).max() / np.abs(exact).max()
    assert 1e-10 < err < 1e-5  # float32 rounding, not float64's, not worse
    top = topk.topk_eigensystem(op, 10)
    assert bool(top.converged) and not bool(top.upcast) and float(top.tol) == 1e-4
    assert top.eigenvalues.dtype == np.float64
    np.testing.assert_allclose(np.asarray(top.eigenvalues), lam[:10], rtol=1e-5)
    op64 = operators.kernel_operator(fn, x, tile_size=128)
    assert operators.with_float64_products(op64) is op64


def test_krylov_space_filling_the_whole_space(x64):
    """Blocks that exhaust ℝⁿ (max_basis = n) stay orthonormal: no false convergence."""
    x = _clustered(200, seed=5)
    _, lam, _ = _dense(x)
    op = operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), x, tile_size=64)
    for b in (60, 90):
        top = topk.topk_eigensystem(op, 20, block_size=b, max_basis=200, tol=1e-12)
        v = np.asarray(top.eigenvectors)
        assert bool(top.converged)
        np.testing.assert_allclose(v.T @ v, np.eye(20), atol=1e-12)
        np.testing.assert_allclose(np.asarray(top.eigenvalues), lam[:20], rtol=1e-10)


def test_small_n_is_one_dense_block(x64):
    x = _clustered(40, seed=2)
    K, lam, vec = _dense(x)
    op = operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), x)
    top = topk.topk_eigensystem(op, 10)  # n ≤ k + b: one product K·I
    assert int(top.block_products) == 1 and bool(top.converged)
    np.testing.assert_allclose(np.asarray(top.eigenvalues), lam[:10], rtol=1e-12)


def test_label_krylov_space(x64, problem):
    """The one label-Krylov construction: orthonormal, ⊥ V_k, exact products, and span ∋ P K^j y."""
    x, K, lam, _ = problem
    y = np.sign(x[:, 0] + 0.1)
    op = operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), x, tile_size=128)
    top = topk.topk_eigensystem(op, 20)
    lab = matfree.deflated_krylov(op, top, y, 5)
    basis, v = np.asarray(lab.basis), np.asarray(top.eigenvectors)
    assert int(lab.steps) == 5 and basis.shape == (700, 5)
    np.testing.assert_allclose(basis.T @ basis, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(np.asarray(lab.products), K @ basis, atol=1e-11)
    assert np.max(np.abs(v.T @ basis)) < 1e-12
    p = np.eye(700) - v @ v.T
    for j in range(5):  # span(basis) ∋ (PKP)^j P y
        kj = np.linalg.matrix_power(p @ K @ p, j) @ (p @ y)
        kj /= np.linalg.norm(kj)
        assert np.linalg.norm(kj - basis @ (basis.T @ kj)) < 1e-7


def test_not_converged_is_reported(x64, problem):
    x = problem[0]
    op = operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), x, tile_size=128)
    top = topk.topk_eigensystem(op, 40, block_size=40, max_products=2, tol=1e-14)
    assert not bool(top.converged) and int(top.block_products) == 2


def test_errors(x64):
    x = _clustered(30, seed=3)
    fn = kernels.two_layer_relu_kernel_fn()
    with pytest.raises(ValueError, match="square operator"):
        topk.topk_eigensystem(operators.kernel_operator(fn, x[:10], x), 2)
    op = operators.kernel_operator(fn, x)
    with pytest.raises(ValueError, match="k must be an integer"):
        topk.topk_eigensystem(op, 31)
    with pytest.raises(ValueError, match="block_size ≥ k"):
        topk.topk_eigensystem(op, 10, method="subspace", block_size=5)
    with pytest.raises(ValueError, match="method must be one of"):
        topk.topk_eigensystem(op, 2, method="lanczos")
    with pytest.raises(TypeError, match="KernelOperator"):
        topk.topk_eigensystem(np.eye(3), 1)
    nonsym = operators.matrix_operator(np.triu(np.ones((30, 30))))
    with pytest.raises(ValueError, match="must be a symmetric operator"):
        topk.topk_eigensystem(nonsym, 2)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_every_rank_of_a_tiny_kernel(x64, n):
    """Any 1 ≤ k ≤ n, n ≥ 1: one block K·I and a dense eigendecomposition of it."""
    x = _clustered(n, seed=6)
    K, lam, _ = _dense(x)
    op = operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), x)
    for k in range(1, n + 1):
        top = topk.topk_eigensystem(op, k)
        assert bool(top.converged) and top.eigenvectors.shape == (n, k)
        np.testing.assert_allclose(np.asarray(top.eigenvalues), lam[:k], rtol=1e-12, atol=1e-14)
        assert np.isnan(float(top.next_eigenvalue)) == (k == n)


def test_rank_n_reduction_is_the_dense_eigensystem(x64):
    """k = n: V_k spans ℝⁿ, the labels' Krylov space is empty, the reduction is eigh."""
    x = _clustered(12, seed=7)
    K, lam, _ = _dense(x)
    op = operators.kernel_operator(kernels.two_layer_relu_kernel_fn(), x)
    top = topk.topk_eigensystem(op, 12)
    y = np.sign(x[:, 0]) + (x[:, 0] == 0)
    kr = matfree.deflated_krylov(op, top, np.stack([-y, y], 1), 4)
    assert int(kr.steps) == 0 and kr.basis.shape == (12, 0)
    red = matfree.ritz_reduction(top, kr)
    assert red.top == 12 and red.eigenvalues.shape == (12,)
    np.testing.assert_allclose(np.asarray(red.eigenvalues), lam, rtol=1e-10, atol=1e-13)


@pytest.mark.slow
def test_float32_that_cannot_converge_is_computed_in_float64(x64):
    """tol = 3e-7 is below float32's reach: the solve is redone in float64 arithmetic, says so."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    op = operators.kernel_operator(kernels.two_layer_relu_kernel_fn(dtype="float32"), x)
    assert op.dtype == np.float32
    with pytest.warns(UserWarning, match="computed again with float64"):
        top = topk.topk_eigensystem(op, 10, tol=3e-7)
    assert bool(top.upcast) and top.eigenvalues.dtype == np.float64 and bool(top.converged)
    _, lam, _ = _dense(x)
    np.testing.assert_allclose(np.asarray(top.eigenvalues), lam[:10], rtol=1e-5)
