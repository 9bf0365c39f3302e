"""The Nyström approximation K̂ = C W⁻¹ Cᵀ from m landmark rows (C = K(X, X_S), W = K(X_S, X_S)):
one n × m block; K − K̂ ⪰ 0, a cheap preconditioner for ridge systems (FALKON, arXiv 1705.10958).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int
from .._tiling import matmul_precision
from ._operators import kernel_operator


class NystromEigensystem(NamedTuple):
    """The top eigenpairs of the Nyström approximation K̂ of K (a pytree; no residuals).

    Duck-compatible with `TopKEigensystem` where a preconditioner needs it.
    """

    eigenvalues: jax.Array  # (r,) λ̂_1 ≥ … ≥ λ̂_r of K̂, each ≤ λ_i(K)
    eigenvectors: jax.Array  # (n, r) orthonormal eigenvectors of K̂ (zero for λ̂ = 0)
    next_eigenvalue: jax.Array  # () λ̂_{r+1} (λ̂_r when r = m)
    landmarks: jax.Array  # (m,) int, the landmark rows S


def nystrom_eigensystem(
    kernel_fn,
    x,
    rank: int,
    *,
    landmarks: int | None = None,
    which: str = "ntk",
    seed: int = 0,
    tile_size: int | None = None,
) -> NystromEigensystem:
    """Top-`rank` eigenpairs of K̂ = C W⁻¹ Cᵀ from m landmark rows drawn uniformly at random.

    With W + νI = LLᵀ (ν = eps·tr(W): W may be singular) and B = C L⁻ᵀ, K̂ = BBᵀ: eigenpairs
    from the m × m matrix BᵀB = L⁻¹(CᵀC)L⁻ᵀ, eigenvectors C (L⁻ᵀ v_i/σ_i).

    Args:
      kernel_fn: a `kernels.PairwiseKernelFn`.
      x: (n, ...) inputs.
      rank: eigenpairs kept, 1 ≤ rank ≤ m.
      landmarks: m, the landmark rows (default min(n, 4·rank)), rank ≤ m ≤ n.
      which: "ntk" or "nngp".
      seed: seed of the landmark draw (numpy).
      tile_size: rows per tile of the n × m block.

    Returns:
      NystromEigensystem(eigenvalues (rank,), eigenvectors (n, rank), next_eigenvalue,
      landmarks (m,)).

    Example:
      >>> nys = nystrom_eigensystem(kernels.two_layer_relu_kernel_fn(), x, 5, landmarks=40)
      >>> bool(jnp.allclose(nys.eigenvalues, eig.eigenvalues[:5], rtol=1e-8))  # every row: K̂ = K
      True

    Reference: Williams & Seeger (2000); Frangella, Tropp & Udell, arXiv 2110.02820.
    """
    n = int(np.shape(x)[0])
    rank = check_int("rank", rank, minimum=1, maximum=n)
    m = min(n, 4 * rank) if landmarks is None else landmarks
    m = check_int("landmarks", m, minimum=1, maximum=n)
    check_int("rank", rank, maximum=m)
    rows = np.sort(np.random.default_rng(seed).choice(n, m, replace=False))
    op = kernel_operator(kernel_fn, x, np.asarray(x)[rows], tile_size=tile_size, which=which)
    with matmul_precision("highest"):
        c = op.apply(jnp.eye(m, dtype=op.dtype))  # (n, m) K(X, X_S)
        w = c[rows]
        nu = float(jnp.finfo(op.dtype).eps) * float(jnp.trace(w))
        chol = jnp.linalg.cholesky(0.5 * (w + w.T) + nu * jnp.eye(m, dtype=op.dtype))
        l_inv = jax.scipy.linalg.solve_triangular(chol, jnp.eye(m, dtype=op.dtype), lower=True)
        g = l_inv @ (c.T @ c) @ l_inv.T  # BᵀB for B = C L⁻ᵀ, without the second n × m array
        s2, v = jnp.linalg.eigh(0.5 * (g + g.T))
        s2, v = jnp.maximum(s2[::-1], 0.0), v[:, ::-1]
        top = s2[:rank]
        vectors = c @ ((l_inv.T @ v[:, :rank]) / jnp.sqrt(jnp.where(top > 0, top, 1.0)))
    nxt = s2[rank] if rank < m else s2[rank - 1]
    return NystromEigensystem(s2[:rank], vectors, nxt, jnp.asarray(rows))
