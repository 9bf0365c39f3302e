"""Top-k eigenpairs of a kernel operator from products K·V only (docs/science/air.md#top-k):
block Lanczos with full reorthogonalization, W = KQ kept, Rayleigh–Ritz on T = QᵀW (exact
residuals ‖W s_i − θ_i Q s_i‖), thick restarts at `max_basis` columns (Krylov–Schur).

Reference: Musco & Musco, arXiv 1504.05477 (randomized block Krylov); Stewart, SIAM J. Matrix
Anal. Appl. 23 (2001) (Krylov–Schur restarts); Halko, Martinsson, Tropp, arXiv 0909.4061.
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int
from .._tiling import matmul_precision
from ._operators import KernelOperator, with_float64_products

_METHODS = ("block-krylov", "subspace")


class LabelKrylov(NamedTuple):
    """Block Krylov basis of the label vectors Y (`deflated_krylov`) with K·basis (a pytree)."""

    start: jax.Array  # (n, C) the label vectors Y the sequence started from
    basis: jax.Array  # (n, s·C) orthonormal columns, block j spans K^j Y modulo earlier blocks
    products: jax.Array  # (n, s·C) K · basis
    steps: jax.Array  # () int, s: number of blocks (Krylov degree s − 1)


class TopKEigensystem(NamedTuple):
    """The top k eigenpairs of a symmetric kernel operator, with their quality (a pytree)."""

    eigenvalues: jax.Array  # (k,) Ritz values θ_1 ≥ … ≥ θ_k (lower bounds on λ_1..λ_k)
    eigenvectors: jax.Array  # (n, k) orthonormal Ritz vectors v_i
    residual_norms: jax.Array  # (k,) ‖K v_i − θ_i v_i‖₂ from the stored products
    next_eigenvalue: jax.Array  # () θ_{k+1}, the next Ritz value: estimate of λ_{k+1} (≤ it)
    block_products: jax.Array  # () int, products K·V computed (passes over K)
    columns_multiplied: jax.Array  # () int, Σ of their widths (the matmul work)
    converged: jax.Array  # () bool, every residual_norms[i] ≤ tol · θ_1
    tol: jax.Array  # () the relative residual tolerance used
    upcast: jax.Array = False  # () bool: a float32 operator did not converge in float32, so the
    #   solver's arithmetic ran in float64 (the kernel tiles stay float32); results are float64


def default_block_size(k: int, n: int) -> int:
    """Block width b = max(k, 64) rounded up to a multiple of 64, capped at n (k = 100 → 128).

    Wide, since the kernel tiles dominate a pass whatever its width (benchmarks/scale.py).
    """
    return int(min(n, -(-max(int(k), 64) // 64) * 64))


def _default_max_basis(k: int, b: int, n: int) -> int:
    """Basis columns before a thick restart: min(n, max(k + 3b, 4b))."""
    return min(n, max(k + 3 * b, 4 * b))


# Q and W live in (n, M) buffers whose first m columns are valid (the rest zero), T = QᵀKQ in an
# (M, M) buffer; m is traced, so every iteration reuses the same compiled programs.


def _project_out(q, x):
    """x − Q(Qᵀx), twice (classical Gram–Schmidt with reorthogonalization)."""
    for _ in range(2):
        x = x - q @ (q.T @ x)
    return x


def _gram_whitening(x):
    """(T, keep): T = U Σ⁻¹ from xᵀx = UΣ²Uᵀ, zero on directions with σ² ≤ 100·eps·max σ²."""
    g = x.T @ x
    s2, u = jnp.linalg.eigh(0.5 * (g + g.T))
    keep = s2 > 100 * jnp.finfo(x.dtype).eps * jnp.max(s2)
    return u * jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, s2, 1.0)), 0.0)[None, :], keep


def _gram_orthonormal(x, fill: bool):
    """x U Σ⁻¹ (matrix products only); dropped directions become fixed pseudo-random columns
    (fill=True) or zero columns (fill=False)."""
    t, keep = _gram_whitening(x)
    y = x @ t
    if not fill:
        return y
    noise = jax.random.normal(jax.random.PRNGKey(0), x.shape, x.dtype) * (x.shape[0] ** -0.5)
    return jnp.where(keep[None, :], y, noise)


@jax.jit
def _orthonormal(q, x):
    """An orthonormal basis of (I − QQᵀ)x (zero columns once ℝⁿ is exhausted), in two passes:
    the first fills directions x lacks with random ones, the second restores orthonormality."""
    x = _gram_orthonormal(_project_out(q, x), fill=True)
    return _gram_orthonormal(_project_out(q, x), fill=False)


@functools.partial(jax.jit, donate_argnums=(0, 1, 2))
def _extend(q, w, t, m, z, wz):
    """Columns m..m+b of Q and W become z and K z; T gains the matching rows and columns."""
    cross = q.T @ wz  # (M, b): rows ≥ m are zero (empty columns of Q)
    q = jax.lax.dynamic_update_slice(q, z, (0, m))
    w = jax.lax.dynamic_update_slice(w, wz, (0, m))
    cross = jax.lax.dynamic_update_slice(cross, z.T @ wz, (m, 0))
    t = jax.lax.dynamic_update_slice(t, cross, (0, m))
    t = jax.lax.dynamic_update_slice(t, cross.T, (m, 0))
    return q, w, 0.5 * (t + t.T)


@functools.partial(jax.jit, static_argnames=("k",))
def _ritz(q, w, t, m, k):
    """Rayleigh–Ritz on the first m columns: θ (M,) descending (invalid slots below every Ritz
    value), S (M, M), top-k vectors X = QS_k and residuals."""
    big = 2.0 * (jnp.max(jnp.abs(t)) + 1.0)
    valid = jnp.arange(t.shape[0]) < m
    theta, s = jnp.linalg.eigh(t - jnp.diag(jnp.where(valid, 0.0, big)))
    theta, s = theta[::-1], s[:, ::-1]
    x = q @ s[:, :k]
    residual = jnp.linalg.norm(w @ s[:, :k] - x * theta[None, :k], axis=0)
    return theta, s, x, residual


@functools.partial(jax.jit, static_argnames=("p",), donate_argnums=(0, 1))
def _restart(q, w, s, theta, p):
    """Thick restart: the top p Ritz vectors and their products become the basis, T = diag(θ_p)."""
    keep = jnp.arange(s.shape[1]) < p
    sp = jnp.where(keep[None, :], s, 0.0)
    t = jnp.diag(jnp.where(keep, theta, 0.0))
    return q @ sp, w @ sp, t


def _check_args(op, k, block_size, max_basis, tol, max_products, method):
    if not isinstance(op, KernelOperator):
        raise TypeError(
            f"op must be an operators.KernelOperator (kernel_operator, matrix_operator, "
            f"empirical_kernel_operator), got {type(op).__name__}"
        )
    n1, n2 = op.shape
    if n1 != n2:
        raise ValueError(f"the top-k spectrum needs a square operator, got shape {op.shape}")
    n = n1
    k = check_int("k", k, minimum=1, maximum=n)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    b = default_block_size(k, n) if block_size is None else block_size
    b = check_int("block_size", b, minimum=1, maximum=n)
    if method == "subspace" and b < k:
        raise ValueError(f"method='subspace' needs block_size ≥ k = {k}, got {b}")
    if max_basis is None:
        max_basis = _default_max_basis(k, b, n)
    max_basis = check_int("max_basis", max_basis, minimum=min(n, k + b), maximum=n)
    if method == "block-krylov" and max_basis < k + b and max_basis < n:
        raise ValueError(f"max_basis must be ≥ k + block_size = {k + b}, got {max_basis}")
    max_products = check_int("max_products", max_products, minimum=1)
    if tol is None:  # well above the products' rounding √n·eps·‖K‖; eigenvalue errors ~ ‖r‖²/gap
        tol = 1e-7 if op.tile_eps < 1e-10 else 1e-4
    tol = float(tol)
    if not (tol > 0 and np.isfinite(tol)):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    return n, k, b, max_basis, tol, max_products


def _check_symmetric(z, kz, eps: float) -> None:
    """Refuse a non-symmetric operator: zᵀKz of the first block must be symmetric to rounding."""
    g = np.asarray(z.T @ kz, np.float64)
    asym, scale = float(np.abs(g - g.T).max()), float(np.abs(g).max()) + 1e-300
    if asym > 100 * np.sqrt(z.shape[0]) * eps * scale:
        raise ValueError(
            f"op must be a symmetric operator: its block ZᵀKZ differs from its transpose by "
            f"{asym:.3g} (max entry {scale:.3g}); the top-k solver needs a symmetric kernel"
        )


def topk_eigensystem(
    op: KernelOperator,
    k: int,
    *,
    method: str = "block-krylov",
    block_size: int | None = None,
    max_basis: int | None = None,
    tol: float | None = None,
    max_products: int = 60,
    seed: int = 0,
) -> TopKEigensystem:
    """Top-k eigenpairs of a symmetric PSD kernel operator from block products K·V only.

    K v_i ≈ θ_i v_i, θ_1 ≥ … ≥ θ_k, by Rayleigh–Ritz on span{Ω, KΩ, K²Ω, …} (Ω Gaussian, n × b),
    until ‖K v_i − θ_i v_i‖₂ ≤ tol · θ_1 for all i ≤ k. θ_i ≤ λ_i, within ‖r_i‖²/gap. A float32
    operator that does not converge is solved again in float64 arithmetic (`upcast`).

    Args:
      op: a square symmetric `operators.KernelOperator` (n × n); a non-symmetric one is refused.
      k: number of eigenpairs, 1 ≤ k ≤ n.
      method: "block-krylov" or "subspace" (subspace iteration with Rayleigh–Ritz, block_size ≥ k).
      block_size: columns per block b; default `default_block_size(k, n)`.
      max_basis: basis columns before a thick restart; default min(n, max(k + 3b, 4b)).
      tol: relative residual tolerance; default 1e-7 for float64 tiles, 1e-4 for float32 tiles
        (`operators.with_float64_products` keeps float32 tiles under float64 arithmetic).
      max_products: limit on block products (passes over K).
      seed: seed of the Gaussian start block (numpy; the same on every process).

    Returns:
      TopKEigensystem (eigenvalues (k,), eigenvectors (n, k), residual_norms (k,), …). When
      `converged` is False the pairs are the best found within `max_products`.

    Example:
      >>> op = spectral.kernel_operator(kernels.two_layer_relu_kernel_fn(), x)  # (40, 5)
      >>> top = topk_eigensystem(op, 5)
      >>> bool(jnp.allclose(top.eigenvalues, eig.eigenvalues[:5], rtol=1e-10))
      True
      >>> bool(top.converged), bool(top.residual_norms.max() <= 1e-7 * top.eigenvalues[0])
      (True, True)

    Reference: Musco & Musco, arXiv 1504.05477; Halko, Martinsson, Tropp, arXiv 0909.4061.
    """
    args = _check_args(op, k, block_size, max_basis, tol, max_products, method)
    with matmul_precision("highest"):
        top = _solve(op, *args, method, seed)
        if (
            not bool(top.converged)
            and jnp.dtype(op.dtype) == jnp.float32
            and jax.config.jax_enable_x64
        ):
            top = _solve(with_float64_products(op), *args, method, seed, check=False)
            top = top._replace(upcast=jnp.asarray(True))
            warnings.warn(
                f"the float32 top-{args[1]} eigensolver did not reach tol = {args[4]:.3g}; it was "
                "computed again with float64 arithmetic (the kernel tiles stay float32)",
                stacklevel=2,
            )
    return top


def _solve(op, n, k, b, max_basis, tol, max_products, method, seed, check=True):
    dtype = op.dtype
    products = columns = 0
    if n <= k + b:  # the whole space fits in one block: K = K·I, then a dense eigh
        method, b, max_basis = "block-krylov", n, n
    width = b if method == "subspace" else max_basis
    q = jnp.zeros((n, width), dtype)
    w = jnp.zeros((n, width), dtype)
    t = jnp.zeros((width, width), dtype)
    m = 0
    if b == n:
        z = jnp.eye(n, dtype=dtype)
    else:  # a Gaussian start from numpy: the same on every process for the same seed
        z = _orthonormal(q, jnp.asarray(np.random.default_rng(seed).standard_normal((n, b)), dtype))
    theta = x = residual = None
    converged = False
    while products < max_products:
        wz = op.apply(z)
        products, columns = products + 1, columns + z.shape[1]
        if products == 1 and check:
            _check_symmetric(z, wz, op.tile_eps)
        if method == "subspace":
            q, w, t, m = z, wz, 0.5 * (z.T @ wz + wz.T @ z), b
        else:
            q, w, t = _extend(q, w, t, m, z, wz)
            m += b
        if m < k:  # fewer basis columns than wanted pairs: keep growing
            z = _orthonormal(q, wz)
            continue
        theta, s, x, residual = _ritz(q, w, t, m, k)
        # b = n: the block was the identity, Rayleigh–Ritz a full eigendecomposition.
        converged = b == n or bool(jnp.all(residual <= tol * theta[0]))
        if converged:
            break
        if method == "subspace":  # one power step: the next basis spans K Q
            z = _orthonormal(jnp.zeros_like(q), wz)
            continue
        z = _orthonormal(q, wz)
        if m + b > max_basis:
            keep = min(max(k, max_basis - 2 * b), max_basis - b)
            q, w, t = _restart(q, w, s, theta, keep)
            m = keep
    if theta is None:
        raise ValueError(
            f"max_products = {max_products} passes of block_size = {b} columns cannot hold "
            f"k = {k} Ritz pairs; raise max_products or block_size"
        )
    next_eig = theta[k] if min(m, theta.shape[0]) > k else jnp.asarray(jnp.nan, dtype)
    return TopKEigensystem(
        eigenvalues=theta[:k],
        eigenvectors=x,
        residual_norms=residual,
        next_eigenvalue=next_eig,
        block_products=jnp.asarray(products),
        columns_multiplied=jnp.asarray(columns),
        converged=jnp.asarray(converged),
        tol=jnp.asarray(tol, dtype),
        upcast=jnp.asarray(False),
    )
