"""The Rayleigh–Ritz reduction of K to S = span(V_k, the labels' deflated Krylov space): a top-k
`Eigensystem`, exact along the top k modes, Galerkin on S for the rest (docs/science/air.md#top-k).

Reference: Saad, "Numerical Methods for Large Eigenvalue Problems" (2011), ch. 4 and 6;
Golub & Meurant, "Matrices, Moments and Quadrature with Applications" (2010).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_float_array, check_finite, check_int
from .._tiling import matmul_precision
from ._eigen import Eigensystem, SpectrumRest
from ._operators import KernelOperator
from ._topk import LabelKrylov, TopKEigensystem, _gram_whitening


def _labels(top: TopKEigensystem, z, name):
    z = as_float_array(z, name, top.eigenvectors.dtype)
    n = top.eigenvectors.shape[0]
    if z.ndim not in (1, 2) or z.shape[0] != n:
        raise ValueError(f"{name} must have shape (n,) or (n, C) with n = {n}, got {z.shape}")
    check_finite(z, name)
    return z


@jax.jit
def _deflated_space(v, lam, basis, products):
    """G: orthonormal basis of (I − VVᵀ)L; M = GᵀKG; N = leakᵀleak, leak = (I − GGᵀ)PKG (from
    the stored products K L, and K V ≈ VΛ)."""
    a = v.T @ basis  # (k, r)
    b = basis - v @ a
    kb = products - v @ (lam[:, None] * a)
    for _ in range(2):  # (B, KB)·UΣ⁻¹ from BᵀB = UΣ²Uᵀ, twice: orthogonal to rounding
        t, _ = _gram_whitening(b)
        b, kb = b @ t, kb @ t
    g, pkg = b, kb - v @ (v.T @ kb)
    m = g.T @ pkg
    m = 0.5 * (m + m.T)
    leak = pkg - g @ m
    return g, m, leak.T @ leak


def deflated_krylov(op: KernelOperator, top: TopKEigensystem, start, steps: int) -> LabelKrylov:
    """Block Krylov space of P·start on the deflated operator PKP (P = I − V_kV_kᵀ), with its
    products K·basis: at most `steps` passes over K of width C (the columns of start).

    Each block is orthogonalized (twice) against V_k and the earlier blocks; the space stops
    early on an invariant subspace and is empty when V_k spans the start.

    Args:
      op: the square kernel operator (n × n). top: its top-k eigensystem.
      start: (n,) or (n, C) start vectors (e.g. the labels y and ŷ). steps: passes s ≥ 1.

    Returns:
      `topk.LabelKrylov` (basis (n, ≤ s·C) orthonormal and ⊥ V_k, products = K·basis exactly);
      pass it to `ritz_reduction(top, krylov)`.

    Reference: Saad (2011), ch. 6 (block Lanczos with full reorthogonalization).
    """
    steps = check_int("steps", steps, minimum=1)
    start = _labels(top, start, "start")
    start = start[:, None] if start.ndim == 1 else start
    v = top.eigenvectors
    basis, products = [], []

    def orthonormal(w):
        """Orthonormal columns spanning w ⊥ (V_k, earlier blocks); None when w lies inside."""
        scale = float(jnp.max(jnp.linalg.norm(w, axis=0)))
        for _ in range(2):
            w = w - v @ (v.T @ w)
            for b in basis:
                w = w - b @ (b.T @ w)
        if float(jnp.max(jnp.linalg.norm(w, axis=0))) <= 1e-12 * max(scale, 1e-300):
            return None
        # Fixed width C: dependent columns stay valid (`ritz_reduction` drops them).
        return jnp.linalg.qr(w)[0]

    with matmul_precision("highest"):
        q = orthonormal(start)
        for _ in range(steps):
            if q is None:  # an invariant subspace: the space is complete
                break
            kq = op.apply(q)
            basis.append(q)
            products.append(kq)
            q = orthonormal(kq)
    empty = jnp.zeros((start.shape[0], 0), start.dtype)
    return LabelKrylov(
        start=start,
        basis=jnp.concatenate(basis, axis=1) if basis else empty,
        products=jnp.concatenate(products, axis=1) if products else empty,
        steps=jnp.asarray(len(basis)),
    )


def ritz_reduction(
    top: TopKEigensystem, krylov: LabelKrylov, steps: int | None = None, *, trace=np.nan
) -> Eigensystem:
    """The Rayleigh–Ritz reduction of K to S = span(V_k, Krylov space of the labels), no pass.

    G an orthonormal basis of (I − V_kV_kᵀ)L, L from `deflated_krylov`; M = GᵀKG = UΘUᵀ from the
    stored products; K_S = V_kΛ_kV_kᵀ + (GU)Θ(GU)ᵀ. The Krylov start (y, ŷ) lies in S exactly.

    Args:
      top: `topk.topk_eigensystem(op, k)`.
      krylov: `deflated_krylov(op, top, Y, s)`.
      steps: use only the first s' ≤ s Krylov blocks (default all; the difference estimates the
        error of the tail).
      trace: tr K, kept in `rest` (NaN when unknown).

    Returns:
      `eigen.Eigensystem` with m = k + r columns (the top k eigenpairs first, then r ≤ s·C Ritz
      pairs, each part descending) and `rest` (`eigen.SpectrumRest`: rank k, residuals, leak).

    Example:
      >>> op = spectral.kernel_operator(kernel_fn, x)
      >>> top = spectral.topk_eigensystem(op, 5)
      >>> red = ritz_reduction(top, deflated_krylov(op, top, np.stack([-y, y_clean], 1), 8))
      >>> bool(jnp.allclose(red.eigenvalues[:5], eig.eigenvalues[:5], rtol=1e-8))
      True
      >>> w = red.eigenvectors     # y and ŷ lie in the reduced space
      >>> float(jnp.linalg.norm(y - w @ (w.T @ y))) < 1e-8
      True

    Reference: Saad, "Numerical Methods for Large Eigenvalue Problems" (2011), ch. 4
    (Rayleigh–Ritz); Golub & Meurant (2010).
    """
    v, lam = top.eigenvectors, top.eigenvalues
    dtype = v.dtype
    used = int(krylov.steps)
    if steps is not None:
        used = min(check_int("steps", steps, minimum=1), used)
    cols = used * krylov.start.shape[1]
    theta, w, leak = np.zeros(0), jnp.zeros((v.shape[0], 0), dtype), 0.0
    if min(cols, krylov.basis.shape[1]) > 0:
        with matmul_precision("highest"):
            g, m, leak_gram = _deflated_space(
                v, lam, krylov.basis[:, :cols], krylov.products[:, :cols]
            )
        keep = np.asarray(jnp.linalg.norm(g, axis=0)) > 0.5  # dropped (dependent) columns are 0
        m_np = np.asarray(m, np.float64)[np.ix_(keep, keep)]
        n_np = np.asarray(leak_gram, np.float64)[np.ix_(keep, keep)]
        theta, u = np.linalg.eigh(0.5 * (m_np + m_np.T))
        theta, u = theta[::-1], u[:, ::-1]
        with matmul_precision("highest"):
            w = g[:, jnp.asarray(np.flatnonzero(keep))] @ jnp.asarray(u.copy(), dtype)
        if n_np.size:
            leak = np.sqrt(max(float(np.linalg.eigvalsh(n_np).max()), 0.0))
    values = np.concatenate([np.asarray(lam, np.float64), theta])
    scale = max(float(np.abs(values).max(initial=0.0)), 1e-300)
    tol = 10.0 * values.shape[0] * float(np.finfo(np.dtype(dtype)).eps) * scale
    most_negative = min(float(values.min(initial=0.0)), 0.0)
    residual = float(jnp.max(top.residual_norms)) if top.residual_norms.size else 0.0
    rest = SpectrumRest(
        rank=jnp.asarray(lam.shape[0]),
        trace=jnp.asarray(trace, dtype),
        residual_norms=top.residual_norms,
        next_eigenvalue=jnp.asarray(top.next_eigenvalue, dtype),
        leak=jnp.asarray(leak + residual, dtype),
        converged=top.converged,
        tol=top.tol,
        block_products=top.block_products,
        upcast=top.upcast,
    )
    return Eigensystem(
        jnp.asarray(np.where((values < 0) & (values > -tol), 0.0, values), dtype),
        jnp.concatenate([v, w], axis=1),
        jnp.asarray(most_negative, dtype),
        jnp.asarray(tol, dtype),
        rest,
    )
