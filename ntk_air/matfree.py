"""AIR, dynamics and self-distillation when K does not fit in memory (docs/science/air.md#top-k).

Everything here starts from a `topk.TopKEigensystem` (K ≈ V_k Λ_k V_kᵀ) and kernel operators
(`operators.KernelOperator`); no n × n array is ever formed.

* AIR: the energy of labels z splits exactly into the top k modes, p_i(z) = (v_iᵀz)²/‖z‖², and
  one tail bucket ‖(I − V_kV_kᵀ)z‖²/‖z‖² = (‖z‖² − Σ_{i≤k}(v_iᵀz)²)/‖z‖².
* Dynamics: u(t) − y = g_t(K)(u(0) − y), g_t(λ) = (1 − ηλ)^t (GD) or e^{−λt} (flow). Along the
  top k modes it is the closed form; on the complement it is the Lanczos approximation of
  g_t(PKP) P r₀ (P = I − V_kV_kᵀ, r₀ = u(0) − y) from the label Krylov space the eigensolver
  built in its own passes. Its squared norm is the s-node Gauss quadrature of the spectral
  measure of P r₀, a lower bound on ‖g_t(K) P r₀‖² for these completely monotone g_t²; the
  (s+1)-node Gauss–Radau rule with a node at the bottom of the spectrum (0 for a PSD kernel)
  is an upper bound (Golub & Meurant). The trajectory reports the estimate and both bounds.
* Any rule at once (self-distillation, rounds): the Rayleigh–Ritz reduction of K to
  span(V_k, label Krylov space) (`ritz_reduction`), an `eigen.Eigensystem` with m = k + r
  columns on which every engine of `distill` and `rounds` runs unchanged: the top k modes as
  they are, the tail by the Galerkin approximation of the same dynamics on the Krylov space.
* Kernel ridge (K + μI)⁻¹y and the R3 soft limit ηK((1 − α)I + αηK)⁻¹y by conjugate
  gradients preconditioned with the top-k spectrum (EigenPro-style: the top k eigenvalues are
  flattened to λ_{k+1}); test predictions through the K(x_test, X) operator.

Science layer: imports `operators`, `topk`, `eigen` and `_checks` (core).

Reference: Golub & Meurant, "Matrices, Moments and Quadrature with Applications" (2010);
Ma & Belkin, arXiv 1703.10622 (EigenPro); Dong et al., arXiv 1910.01255 (AIR).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import as_float_array, check_finite, check_int
from .eigen import Eigensystem
from .operators import KernelOperator
from .tiling import matmul_precision
from .topk import LabelKrylov, TopKEigensystem

__all__ = [
    "TopKLabelSpectrum",
    "TopKAIRSpectra",
    "TailQuadrature",
    "TopKTrajectory",
    "CGSolution",
    "SoftLimit",
    "topk_label_spectrum",
    "topk_air_spectra",
    "tail_quadrature",
    "deflated_lanczos",
    "topk_gd_predictor",
    "topk_flow_predictor",
    "ridge_solve",
    "kernel_ridge",
    "r3_soft_limit",
    "topk_preconditioner",
    "RitzReduction",
    "ritz_reduction",
    "deflated_krylov",
]


# ---------------------------------------------------------------------------------------------
# AIR: top-k energies and one tail bucket
# ---------------------------------------------------------------------------------------------


class TopKLabelSpectrum(NamedTuple):
    """Energy of labels z in the top k eigenmodes plus the tail (a pytree)."""

    energy: jax.Array  # (k,) p_i(z) = ‖v_iᵀz‖² / ‖z‖², eigenvalue order
    cumulative: jax.Array  # (k,) C_z(i) = Σ_{j≤i} p_j(z)
    tail: jax.Array  # () ‖(I − V_kV_kᵀ)z‖² / ‖z‖² = 1 − C_z(k): energy outside the top k modes
    norm: jax.Array  # () ‖z‖ (Frobenius for one-hot matrices)


class TopKAIRSpectra(NamedTuple):
    """Top-k label spectra of clean labels, noise and noisy labels (a pytree)."""

    clean: TopKLabelSpectrum  # of ŷ
    noise: TopKLabelSpectrum  # of e = y − ŷ (NaN energies when e = 0)
    noisy: TopKLabelSpectrum  # of y


def _labels(top: TopKEigensystem, z, name):
    z = as_float_array(z, name, top.eigenvectors.dtype)
    n = top.eigenvectors.shape[0]
    if z.ndim not in (1, 2) or z.shape[0] != n:
        raise ValueError(f"{name} must have shape (n,) or (n, C) with n = {n}, got {z.shape}")
    check_finite(z, name)
    return z


@jax.jit
def _label_spectrum(v, z):
    coeffs = v.T @ z  # (k[, C])
    c2 = coeffs**2 if coeffs.ndim == 1 else jnp.sum(coeffs**2, axis=1)
    norm2 = jnp.sum(z**2)
    # The tail from the projection itself: accurate (and ≥ 0) even when it is tiny, unlike
    # ‖z‖² − Σ c_i², which cancels.
    outside = z - v @ coeffs
    energy = c2 / norm2
    return TopKLabelSpectrum(
        energy=energy,
        cumulative=jnp.cumsum(energy),
        tail=jnp.sum(outside**2) / norm2,
        norm=jnp.sqrt(norm2),
    )


def topk_label_spectrum(top: TopKEigensystem, z) -> TopKLabelSpectrum:
    """Energy of labels z per top eigenmode, and the tail bucket outside the top k.

    p_i(z) = ‖v_iᵀz‖² / ‖z‖² for i ≤ k (exact per mode, as `spectrum.energy_per_mode` restricted
    to the top k), tail = ‖(I − V_kV_kᵀ)z‖² / ‖z‖² = 1 − Σ_{i≤k} p_i(z). One-hot Z (n, C): columns
    summed, ‖Z‖ Frobenius. The split is exact for any orthonormal V_k; the per-mode energies are
    as accurate as the eigenvectors (see top.residual_norms).

    Args:
      top: top-k eigensystem of K (n × n).
      z: (n,) or (n, C) labels, nonzero.

    Returns:
      TopKLabelSpectrum (energy (k,), cumulative (k,), tail (), norm ()).

    Example:
      >>> top = topk.topk_eigensystem(operators.kernel_operator(kernel_fn, x), 5)
      >>> s = topk_label_spectrum(top, y_clean); round(float(s.cumulative[-1] + s.tail), 12)
      1.0

    Reference: Dong et al., arXiv 1910.01255 (AIR).
    """
    z = _labels(top, z, "z")
    return _label_spectrum(top.eigenvectors, z)


def topk_air_spectra(top: TopKEigensystem, y_clean, y_noisy) -> TopKAIRSpectra:
    """Top-k spectra of clean labels ŷ, noise e = y − ŷ and noisy labels y, tails included.

    Same conventions as `spectrum.air_spectra` (±1 vectors or one-hot matrices, energies
    normalized by ‖z‖²); see `topk_label_spectrum`.

    Example:
      >>> top = topk.topk_eigensystem(operators.kernel_operator(kernel_fn, x), 5)
      >>> s = topk_air_spectra(top, y_clean, y)      # 4 clusters: ŷ in the top modes, e not
      >>> bool(s.clean.tail < 0.05), bool(s.noise.tail > 0.5)
      (True, True)

    Reference: Dong et al., arXiv 1910.01255.
    """
    y_clean = _labels(top, y_clean, "y_clean")
    y_noisy = _labels(top, y_noisy, "y_noisy")
    if y_clean.shape != y_noisy.shape:
        raise ValueError(
            f"y_clean and y_noisy must have the same shape, got {y_clean.shape} and {y_noisy.shape}"
        )
    v = top.eigenvectors
    return TopKAIRSpectra(
        clean=_label_spectrum(v, y_clean),
        noise=_label_spectrum(v, y_noisy - y_clean),
        noisy=_label_spectrum(v, y_noisy),
    )


# ---------------------------------------------------------------------------------------------
# Closed-form per-mode factors (the stable forms of `dynamics`, for any list of eigenvalues)
# ---------------------------------------------------------------------------------------------


def _gd_factors(lam, eta, steps):
    """r = (1 − ηλ)^k and φ = (1 − r)/λ (ηk at λ = 0): (T, m) each; steps finite whole numbers.

    As `dynamics.gd_mode_factors`: ±exp(k log|1 − ηλ|) with log1p, 1 − r by expm1.
    """
    x = eta * lam[None, :]
    k = steps[:, None]
    negative_base = x > 1
    log_abs_base = jnp.log1p(jnp.where(negative_base, x - 2.0, -x))
    k_log = jnp.where(k == 0, 0.0, k * log_abs_base)
    flip = negative_base & (jnp.mod(k, 2.0) == 1.0)
    residual = jnp.where(flip, -jnp.exp(k_log), jnp.exp(k_log))
    fitted = jnp.where(flip, 1.0 + jnp.exp(k_log), -jnp.expm1(k_log))
    null = lam[None, :] == 0
    weight = jnp.where(null, eta * k, fitted / jnp.where(null, 1.0, lam[None, :]))
    return residual, weight


def _flow_factors(lam, times):
    """r = e^{−λt}, φ = (1 − r)/λ (t at λ = 0): (T, m) each."""
    exponent = -lam[None, :] * times[:, None]
    null = lam[None, :] == 0
    fitted = -jnp.expm1(exponent)
    weight = jnp.where(null, times[:, None], fitted / jnp.where(null, 1.0, lam[None, :]))
    return jnp.exp(exponent), weight


# ---------------------------------------------------------------------------------------------
# The tail: Lanczos on the deflated operator, from the label Krylov space
# ---------------------------------------------------------------------------------------------


class TailQuadrature(NamedTuple):
    """Lanczos data of P r₀ on the deflated operator PKP, P = I − V_kV_kᵀ (a pytree).

    For each label column c, with s = steps[c] Lanczos steps:
      ‖g(K) P r₀_c‖² ≈ norm2[c] Σ_i gauss_weights[c, i] g(gauss_nodes[c, i])²  (Gauss: the
      squared norm of the Lanczos approximation; a lower bound when g² is completely monotone on
      the tail spectrum) ≤ norm2[c] Σ_i radau_weights[c, i] g(radau_nodes[c, i])² (Gauss–Radau
      with a node at radau_node ≤ λ_min(PKP): an upper bound). The Lanczos approximation itself
      is g(K) P r₀_c ≈ basis @ ritz_vectors[c] @ (g(gauss_nodes[c]) ⊙ amplitudes[c]).
    Unused slots (beyond steps[c]) have zero weight.
    """

    norm2: jax.Array  # (C,) ‖P r₀_c‖², the tail energy of the start vector
    gauss_nodes: jax.Array  # (C, s) eigenvalues of the s × s Lanczos tridiagonal T_c
    gauss_weights: jax.Array  # (C, s) squared first components of T_c's eigenvectors (sum 1)
    radau_nodes: jax.Array  # (C, s + 1) nodes of the Gauss–Radau rule (one equals radau_node)
    radau_weights: jax.Array  # (C, s + 1)
    basis: jax.Array  # (n, r) orthonormal basis ⊥ V_k holding every column's Lanczos vectors
    ritz_vectors: jax.Array  # (C, r, s) coordinates in `basis` of T_c's Ritz vectors
    amplitudes: jax.Array  # (C, s) coefficients of P r₀_c on those Ritz vectors
    steps: jax.Array  # (C,) int, Lanczos steps s_c actually taken
    leak: jax.Array  # () largest relative leak ‖(I − GGᵀ)PKq_j‖/‖M‖ of an accepted step (≈ 0)
    passes: jax.Array  # () int, extra passes over K it cost (0: from the label Krylov space)
    radau_node: jax.Array  # () the prescribed node (a lower bound of the tail spectrum)


def _lanczos(m, start, steps, leak_gram, leak_tol):
    """Lanczos with full reorthogonalization on a small symmetric matrix (numpy float64).

    A step j whose vector leaks out of the space (‖leak‖ = √(q_jᵀNq_j) > leak_tol·‖M‖, N the
    leak Gram) is the last one: its leak joins β_s, which the Radau rule uses. Returns
    (alpha (s,), beta (s,), Q (r, s), largest accepted relative leak).
    """
    r = m.shape[0]
    q = np.zeros((r, steps))
    alpha = np.zeros(steps)
    beta = np.zeros(steps)
    v = start / np.linalg.norm(start)
    scale = max(np.abs(m).max(), 1e-300)
    taken, worst = steps, 0.0
    for j in range(steps):
        q[:, j] = v
        w = m @ v
        alpha[j] = v @ w
        for _ in range(2):
            w = w - q[:, : j + 1] @ (q[:, : j + 1].T @ w)
        inside = np.linalg.norm(w)
        leak = np.sqrt(max(float(v @ leak_gram @ v), 0.0))
        beta[j] = np.hypot(inside, leak)
        if j + 1 == steps:
            break
        worst = max(worst, leak / scale)
        # Stop on a leak (the next vector would not be exact) or on an invariant subspace
        # (the rule is then exact).
        if leak > leak_tol * scale or inside <= 1e-13 * scale * r:
            taken = j + 1
            break
        v = w / inside
    return alpha[:taken], beta[:taken], q[:, :taken], worst


def _gauss_radau(alpha, beta, a):
    """Gauss (s nodes) and Gauss–Radau (s + 1 nodes, one at a) rules of the Jacobi matrix."""
    s = alpha.shape[0]
    t = np.diag(alpha) + np.diag(beta[:-1], 1) + np.diag(beta[:-1], -1)
    nodes, vecs = np.linalg.eigh(t)
    weights = vecs[0] ** 2
    # Radau: extend T by a row with α̃ = a + δ_s, (T − aI)δ = β_s² e_s (Golub 1973).
    rhs = np.zeros(s)
    rhs[-1] = beta[-1] ** 2
    delta = np.linalg.solve(t - a * np.eye(s), rhs)
    ext = np.zeros((s + 1, s + 1))
    ext[:s, :s] = t
    ext[s - 1, s] = ext[s, s - 1] = beta[-1]
    ext[s, s] = a + delta[-1]
    r_nodes, r_vecs = np.linalg.eigh(ext)
    return nodes, weights, vecs, r_nodes, r_vecs[0] ** 2


def _quadrature(norm2, basis, runs, radau_node, passes, leak, dtype):
    """TailQuadrature from per-column Lanczos runs (alpha, beta, Q-coords) padded to one s."""
    s = max(a.shape[0] for a, _, _ in runs)
    out = {k: [] for k in ("gn", "gw", "rn", "rw", "q", "amp", "steps")}
    for (alpha, beta, q), nrm2 in zip(runs, np.asarray(norm2), strict=True):
        taken = alpha.shape[0]
        nodes, weights, vecs, r_nodes, r_weights = _gauss_radau(alpha, beta, float(radau_node))
        pad = s - taken
        out["gn"].append(np.pad(nodes, (0, pad)))
        out["gw"].append(np.pad(weights, (0, pad)))
        out["rn"].append(np.pad(r_nodes, (0, pad)))
        out["rw"].append(np.pad(r_weights, (0, pad)))
        out["q"].append(np.pad(q @ vecs, ((0, 0), (0, pad))))
        # P r₀ = ‖P r₀‖ q₀, so its coefficients on the Ritz vectors Q U are ‖P r₀‖ U[0, :].
        out["amp"].append(np.pad(np.sqrt(nrm2) * vecs[0], (0, pad)))
        out["steps"].append(taken)
    return TailQuadrature(
        norm2=jnp.asarray(norm2, dtype),
        gauss_nodes=jnp.asarray(np.stack(out["gn"]), dtype),
        gauss_weights=jnp.asarray(np.stack(out["gw"]), dtype),
        radau_nodes=jnp.asarray(np.stack(out["rn"]), dtype),
        radau_weights=jnp.asarray(np.stack(out["rw"]), dtype),
        basis=basis,
        ritz_vectors=jnp.asarray(np.stack(out["q"]), dtype),
        amplitudes=jnp.asarray(np.stack(out["amp"]), dtype),
        steps=jnp.asarray(out["steps"]),
        leak=jnp.asarray(leak, dtype),
        passes=jnp.asarray(passes),
        radau_node=jnp.asarray(radau_node, dtype),
    )


def _orthonormalize_with_products(b, kb):
    """(B U Σ⁻¹, KB U Σ⁻¹) from the eigendecomposition of BᵀB, dropping rank-deficient
    directions (their columns become 0)."""
    gram = b.T @ b
    s2, u = jnp.linalg.eigh(0.5 * (gram + gram.T))
    keep = s2 > 100 * jnp.finfo(b.dtype).eps * jnp.max(s2)
    inv = jnp.where(keep, 1.0 / jnp.sqrt(jnp.where(keep, s2, 1.0)), 0.0)
    t = u * inv[None, :]
    return b @ t, kb @ t


@jax.jit
def _deflated_space(v, lam, basis, products):
    """G: orthonormal basis of (I − VVᵀ)L; M = GᵀKG; N = leakᵀleak, leak = (I − GGᵀ)PKG.

    All from the stored products K L (and K V ≈ VΛ, exact up to the eigen residuals).
    """
    a = v.T @ basis  # (k, r)
    b = basis - v @ a
    kb = products - v @ (lam[:, None] * a)
    g, kg = _orthonormalize_with_products(b, kb)
    g, kg = _orthonormalize_with_products(g, kg)  # second pass: orthogonal to rounding
    pkg = kg - v @ (v.T @ kg)
    m = g.T @ pkg
    m = 0.5 * (m + m.T)
    leak = pkg - g @ m
    return g, m, leak.T @ leak


def _start_vectors(top, r0):
    if top.eigenvectors.shape[0] != jnp.shape(r0)[0]:
        raise ValueError(f"r0 must have n = {top.eigenvectors.shape[0]} rows, got {r0.shape}")
    r0 = _labels(top, r0, "r0")
    r0 = r0[:, None] if r0.ndim == 1 else r0
    v = top.eigenvectors
    p = r0 - v @ (v.T @ r0)
    return r0, p, jnp.sum(p**2, axis=0)


def tail_quadrature(
    top: TopKEigensystem, r0, *, radau_node: float = 0.0, leak_tol: float = 1e-8
) -> TailQuadrature:
    """Gauss and Gauss–Radau data of the tail P r₀ on PKP, from the label Krylov space (no pass).

    The eigensolver built L = K_s(K, Y) with K·L stored (`topk_eigensystem(labels=Y)`). For r₀ in
    span(Y) and exact V_k, K_j(PKP, P r₀) = P K_j(K, r₀) ⊂ span(PL), so Lanczos on PKP runs on
    the stored products without another pass over K. In floating point P K^j r₀ is resolved only
    to eps·‖K^j r₀‖ ≈ eps·(λ_1/λ_{k+1})^j relative, so the Lanczos stops at the first step whose
    vector leaks out of the space by more than leak_tol·‖PKP‖ (that step is the last; its leak
    enters β_s): typically a few steps. `deflated_lanczos` buys more steps with extra passes.

    Args:
      top: from `topk.topk_eigensystem(op, k, labels=Y)`.
      r0: (n,) or (n, C) start vectors in span(Y) (e.g. u(0) − y with Y = that same vector).
      radau_node: a lower bound of the spectrum of PKP for the upper bound (0: PSD kernel).
      leak_tol: accepted leak of a Lanczos vector, relative to ‖PKP‖ on the space.

    Returns:
      TailQuadrature (passes = 0).

    Reference: Golub & Meurant (2010), ch. 6–7; Golub, SIAM Review 15 (1973) (Gauss–Radau).
    """
    if top.labels is None:
        raise ValueError(
            "this TopKEigensystem has no label Krylov data: call topk_eigensystem(op, k, "
            "labels=u0 - y) (the initial training residual) to build it in the same passes, "
            "or use deflated_lanczos(op, top, r0, steps)"
        )
    r0, p, norm2 = _start_vectors(top, r0)
    v, lam = top.eigenvectors, top.eigenvalues
    with matmul_precision("highest"):
        g, m, leak_gram = _deflated_space(v, lam, top.labels.basis, top.labels.products)
        coords = g.T @ r0  # = Gᵀ P r₀ (G ⊥ V)
        outside = jnp.linalg.norm(p - g @ coords, axis=0) / jnp.sqrt(norm2)
    if float(jnp.max(outside)) > 1e-6:
        raise ValueError(
            "r0 is not in the label Krylov space the eigensolver built (relative distance "
            f"{float(jnp.max(outside)):.3g}); pass labels=r0 to topk_eigensystem"
        )
    m_np, n_np, c_np = (np.asarray(a, np.float64) for a in (m, leak_gram, coords))
    runs, worst = [], 0.0
    for c in range(r0.shape[1]):
        alpha, beta, q, leak = _lanczos(m_np, c_np[:, c], int(top.labels.steps), n_np, leak_tol)
        runs.append((alpha, beta, q))
        worst = max(worst, leak)
    return _quadrature(norm2, g, runs, radau_node, 0, worst, top.eigenvectors.dtype)


def deflated_lanczos(
    op: KernelOperator, top: TopKEigensystem, r0, steps: int, *, radau_node: float = 0.0
) -> TailQuadrature:
    """Lanczos on the deflated operator PKP from P r₀, P = I − V_kV_kᵀ: `steps` passes over K.

    q₀ = P r₀/‖P r₀‖, β_{j+1}q_{j+1} = PKq_j − α_j q_j − β_j q_{j−1} with full
    reorthogonalization (against V_k and earlier q), one block product (width C) per step. The
    Gauss rule of T_s is the squared norm of the Lanczos approximation of g(PKP)P r₀; with a
    Radau node below the tail spectrum the pair brackets ‖g(K)P r₀‖² for completely monotone g².

    Args:
      op: the square kernel operator (n × n). top: its top-k eigensystem.
      r0: (n,) or (n, C) start vectors (u(0) − y). steps: Lanczos steps s ≥ 1 (= passes).
      radau_node: lower bound of the tail spectrum (0 for PSD kernels).

    Returns:
      TailQuadrature (passes = steps).

    Example:
      >>> op = operators.kernel_operator(kernel_fn, x)
      >>> top = topk.topk_eigensystem(op, 5, labels=-y)
      >>> quad = deflated_lanczos(op, top, -y, 8)
      >>> predict, _ = topk_gd_predictor(top, y, tail=quad)
      >>> traj = predict(np.array([0, 10, 100]))
      >>> bool(jnp.all(traj.tail_lower <= traj.tail_upper * (1 + 1e-9)))
      True

    Reference: Golub & Meurant (2010); Saad, "Numerical Methods for Large Eigenvalue Problems".
    """
    steps = check_int("steps", steps, minimum=1)
    r0, p, norm2 = _start_vectors(top, r0)
    v = top.eigenvectors
    cols = r0.shape[1]
    q = p / jnp.sqrt(jnp.where(norm2 > 0, norm2, 1.0))
    basis, alphas, betas = [], [], []
    with matmul_precision("highest"):
        for _ in range(steps):
            basis.append(q)
            w = op.apply(q)
            w = w - v @ (v.T @ w)
            alphas.append(jnp.sum(q * w, axis=0))
            stacked = jnp.stack(basis)  # (j, n, C): reorthogonalize column by column
            for _ in range(2):
                w = w - v @ (v.T @ w)
                w = w - jnp.einsum("jnc,jc->nc", stacked, jnp.einsum("jnc,nc->jc", stacked, w))
            beta = jnp.linalg.norm(w, axis=0)
            betas.append(beta)
            q = w / jnp.where(beta > 0, beta, 1.0)
    alpha_np = np.asarray(jnp.stack(alphas), np.float64)  # (s, C)
    beta_np = np.asarray(jnp.stack(betas), np.float64)
    basis_all = jnp.concatenate(basis, axis=1)  # (n, s·C): column j·C + c is q_j of column c
    runs = []
    for c in range(cols):
        coords = np.zeros((steps * cols, steps))
        coords[np.arange(steps) * cols + c, np.arange(steps)] = 1.0
        runs.append((alpha_np[:, c], beta_np[:, c], coords))
    return _quadrature(norm2, basis_all, runs, radau_node, steps, 0.0, v.dtype)


# ---------------------------------------------------------------------------------------------
# The Rayleigh–Ritz reduction: every engine on span(V_k, label Krylov space)
# ---------------------------------------------------------------------------------------------


class RitzReduction(NamedTuple):
    """K reduced to S = span(V_k, G) by Rayleigh–Ritz: K_S = P K P = W diag(θ) Wᵀ (a pytree).

    `eig` is an `eigen.Eigensystem` with m ≤ n columns (not n): every eigenbasis engine
    (`distill.ClosedForm`, `EigenScan`, `rounds`, `early_stopping.u_curve`) runs on it
    unchanged, and a `LinearProblem` built on it applies K_S = V diag(λ) Vᵀ (the dense-scan
    engines: hard and adaptive rules). Exact for labels, predictions and targets that stay in S
    when K S ⊂ S; otherwise the Galerkin approximation, whose defect per step is measured by
    `leak` (inside S) and `next_eigenvalue` (a bound on K outside V_k's span).
    """

    eig: Eigensystem  # (m,) Ritz values, descending; (n, m) orthonormal Ritz vectors W
    rank: int  # k: the eigensolver's top-k pairs are among them (exact up to residual_norms)
    leak: jax.Array  # () ‖(I − P)K P‖₂ (P = WWᵀ): 0 iff S is invariant (the reduction exact)
    next_eigenvalue: jax.Array  # () θ_{k+1}: ‖K(I − V_kV_kᵀ)‖₂ ≈ λ_{k+1}
    residual_norm: jax.Array  # () max ‖K v_i − θ_i v_i‖₂ over the top k


def deflated_krylov(op: KernelOperator, top: TopKEigensystem, start, steps: int) -> LabelKrylov:
    """Block Krylov space of P·start on the deflated operator PKP (P = I − V_kV_kᵀ), with its
    products K·basis: `steps` passes over K of width C (the columns of start).

    Unlike the label Krylov space the eigensolver builds in its own passes (whose block j is
    resolved only to eps·(λ_1/λ_{k+1})^j), every block here is orthogonalized against V_k and all
    earlier blocks (twice) before the next product, so the space keeps growing at full rank: the
    tail of a matrix function is resolved as far as the passes go.

    Args:
      op: the square kernel operator (n × n). top: its top-k eigensystem.
      start: (n,) or (n, C) start vectors (e.g. the labels y and ŷ). steps: passes s ≥ 1.

    Returns:
      `topk.LabelKrylov` (basis (n, ≤ s·C) orthonormal and ⊥ V_k, products = K·basis exactly);
      pass it to `ritz_reduction(top, krylov=...)`.

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
        # Fixed width C (rank-deficient columns become arbitrary orthonormal directions, still a
        # valid Rayleigh–Ritz space; `ritz_reduction` drops what is dependent).
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
    return LabelKrylov(
        start=start,
        basis=jnp.concatenate(basis, axis=1),
        products=jnp.concatenate(products, axis=1),
        steps=jnp.asarray(len(basis)),
    )


def ritz_reduction(
    top: TopKEigensystem, label_steps: int | None = None, *, krylov: LabelKrylov | None = None
) -> RitzReduction:
    """The Rayleigh–Ritz reduction of K to span(V_k, label Krylov space), with no pass over K.

    S = span(V_k) ⊕ span(G), G an orthonormal basis of (I − V_kV_kᵀ)L, L = K_s(K, Y) the label
    Krylov space the eigensolver built with its products K·L (`topk_eigensystem(labels=Y)`).
    The compression M = GᵀKG (from the stored products) is diagonalized, M = UΘUᵀ; the
    reduction is K_S = V_kΛ_kV_kᵀ + (GU)Θ(GU)ᵀ. Everything in span(Y) — the given labels and,
    when passed in Y, the ground truth — lies in S exactly, so distances and projections are
    exact; the dynamics are the Galerkin approximation on S, exact on the top k modes.

    Args:
      top: from `topk.topk_eigensystem(op, k, labels=Y)` (label Krylov data required; put in Y
        every vector the dynamics start from: u(0) − y, and ŷ for distances to it).
      label_steps: use only the first s' ≤ s Krylov blocks (default all): the difference
        between the results on s' < s and s blocks estimates the error of the tail.
      krylov: a Krylov space with its products to use instead of top.labels, e.g.
        `deflated_krylov(op, top, Y, s)` (s more passes, every block resolved).

    Returns:
      RitzReduction (eig with m = k + r columns, r ≤ s·C the Krylov directions kept).

    Example:
      >>> op = operators.kernel_operator(kernel_fn, x)
      >>> red = ritz_reduction(topk.topk_eigensystem(op, 5, labels=np.stack([-y, y_clean], 1)))
      >>> bool(jnp.allclose(red.eig.eigenvalues[:5], eig.eigenvalues[:5], rtol=1e-8))
      True
      >>> w = red.eig.eigenvectors     # y and ŷ lie in the reduced space
      >>> float(jnp.linalg.norm(y - w @ (w.T @ y))) < 1e-8
      True

    Reference: Saad, "Numerical Methods for Large Eigenvalue Problems" (2011), ch. 4
    (Rayleigh–Ritz); Golub & Meurant (2010).
    """
    space = top.labels if krylov is None else krylov
    if space is None:
        raise ValueError(
            "this TopKEigensystem has no label Krylov data: call topk_eigensystem(op, k, "
            "labels=Y) with the labels the dynamics start from, or pass krylov="
            "deflated_krylov(op, top, Y, steps)"
        )
    v, lam = top.eigenvectors, top.eigenvalues
    dtype = v.dtype
    steps = int(space.steps)
    if label_steps is not None:
        steps = min(check_int("label_steps", label_steps, minimum=1), steps)
    cols = steps * space.start.shape[1]
    with matmul_precision("highest"):
        g, m, leak_gram = _deflated_space(v, lam, space.basis[:, :cols], space.products[:, :cols])
    keep = np.asarray(jnp.linalg.norm(g, axis=0)) > 0.5  # dropped (rank-deficient) columns are 0
    idx = jnp.asarray(np.flatnonzero(keep))
    m_np = np.asarray(m, np.float64)[np.ix_(keep, keep)]
    n_np = np.asarray(leak_gram, np.float64)[np.ix_(keep, keep)]
    theta, u = np.linalg.eigh(0.5 * (m_np + m_np.T))
    with matmul_precision("highest"):
        w = g[:, idx] @ jnp.asarray(u, dtype)
    values = np.concatenate([np.asarray(lam, np.float64), theta])
    order = np.argsort(-values, kind="stable")
    vectors = jnp.concatenate([v, w], axis=1)[:, jnp.asarray(order)]
    values = values[order]
    scale = max(float(np.abs(values).max(initial=0.0)), 1e-300)
    tol = 10.0 * values.shape[0] * float(np.finfo(np.dtype(dtype)).eps) * scale
    most_negative = min(float(values.min(initial=0.0)), 0.0)
    clamped = np.where((values < 0) & (values > -tol), 0.0, values)
    leak = np.sqrt(max(float(np.linalg.eigvalsh(n_np).max(initial=0.0)), 0.0)) if n_np.size else 0.0
    residual = float(jnp.max(top.residual_norms)) if top.residual_norms.size else 0.0
    eig = Eigensystem(
        jnp.asarray(clamped, dtype),
        vectors,
        jnp.asarray(most_negative, dtype),
        jnp.asarray(tol, dtype),
    )
    return RitzReduction(
        eig=eig,
        rank=int(lam.shape[0]),
        leak=jnp.asarray(leak + residual, dtype),
        next_eigenvalue=jnp.asarray(top.next_eigenvalue, dtype),
        residual_norm=jnp.asarray(residual, dtype),
    )


# ---------------------------------------------------------------------------------------------
# Trajectories: top k in closed form plus the tail
# ---------------------------------------------------------------------------------------------


class TopKTrajectory(NamedTuple):
    """Linearized training at T times from a top-k spectrum plus the Lanczos tail (a pytree).

    `[, C]` marks label columns of one-hot targets (squeezed for vector labels).
    """

    times: jax.Array  # (T,) GD steps k or flow times t
    residual_top: jax.Array  # (T, k[, C]) V_kᵀ(u(t) − y) = g_t(Λ) V_kᵀ r₀, exact along the top k
    residual_norm: jax.Array  # (T,) ‖u(t) − y‖ estimate: top k exact, tail by Lanczos (Gauss)
    tail_norm: jax.Array  # (T,) ‖g_t(K) P r₀‖ estimate (Gauss = norm of the Lanczos vector)
    tail_lower: jax.Array  # (T,) Gauss lower bound on the tail norm (= tail_norm)
    tail_upper: jax.Array  # (T,) Gauss–Radau upper bound on the tail norm
    tail_steps: jax.Array  # (C,) int, Lanczos steps behind the tail (its quadrature nodes)
    tail_passes: jax.Array  # () int, extra passes over K for the tail: 0 = from the eigensolver's
    #   label Krylov space (`tail_quadrature`), > 0 = `deflated_lanczos`
    clean_dist: jax.Array | None  # (T,) ‖u(t) − ŷ‖ estimate; None without y_clean
    train: jax.Array | None  # (T, n[, C]) u(t); None unless predictions=True
    test: jax.Array | None  # (T, n_test[, C]) f_t(x_test); None without a test operator


def _check_times(times, integer, dtype):
    arr = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(f"times must be finite and ≥ 0 (a (T,) array), got {times!r}")
    if integer and np.any(arr != np.round(arr)):
        i = int(np.argmax(arr != np.round(arr)))
        raise ValueError(
            f"GD steps must be whole numbers (the sign of (1 − ηλ)^k needs an integer k), got "
            f"{arr[i]} at index {i}; use topk_flow_predictor for continuous time"
        )
    return jnp.asarray(arr, dtype)


def _predictor(
    top, y, factors, factors_valid, *, u0, y_clean, test_operator, f0_test, predictions, radau, tail
):
    """Shared body of the GD and flow predictors: factors(lam (m,), times (T,)) -> (r, φ);
    factors_valid(top eigenvalues) says whether g_t² is completely monotone on the tail."""
    y = _labels(top, y, "y")
    vector = y.ndim == 1
    y2 = y[:, None] if vector else y
    dtype = y.dtype
    u0 = jnp.zeros_like(y2) if u0 is None else _labels(top, u0, "u0").reshape(y2.shape)
    r0 = u0 - y2
    quad = tail_quadrature(top, r0, radau_node=radau) if tail is None else tail
    if quad.norm2.shape[0] != r0.shape[1]:
        raise ValueError(f"tail has {quad.norm2.shape[0]} columns, the labels {r0.shape[1]}")
    v, lam = top.eigenvectors, top.eigenvalues
    c0 = v.T @ r0  # (k, C)
    e_top = e_tail = None
    if y_clean is not None:
        yc = _labels(top, y_clean, "y_clean").reshape(y2.shape)
        e = y2 - yc
        e_norm2 = jnp.sum(e**2)
        e_top = v.T @ e  # (k, C)
        e_tail = quad.basis.T @ e  # (r, C)
    kv_test = f0 = None
    if test_operator is not None:
        if not isinstance(test_operator, KernelOperator):
            raise TypeError("test_operator must be an operators.KernelOperator K(x_test, X)")
        if test_operator.shape[1] != v.shape[0]:
            raise ValueError(
                f"test_operator must have shape (n_test, {v.shape[0]}), got {test_operator.shape}"
            )
        # One rectangular pass: K(x_test, X) [V_k, G].
        kv_test = test_operator.apply(jnp.concatenate([v, quad.basis], axis=1))
        n_test = test_operator.shape[0]
        if f0_test is None:
            f0 = jnp.zeros((n_test, y2.shape[1]), dtype)
        else:
            f0 = as_float_array(f0_test, "f0_test", dtype).reshape(n_test, y2.shape[1])
    amps = quad.amplitudes
    # The Gauss/Radau bracket needs g_t² completely monotone on the tail: ηλ ≤ 1 there.
    bounds_valid = bool(factors_valid(lam))

    def predict(times) -> TopKTrajectory:
        t = times
        r_top, w_top = factors(lam, t)  # (T, k)
        residual_top = r_top[:, :, None] * c0[None]  # (T, k, C)
        top2 = jnp.sum(residual_top**2, axis=(1, 2))
        # Tail per column: Gauss and Radau rules, and the Lanczos vector coefficients.
        tail2 = jnp.zeros_like(top2)
        upper2 = jnp.zeros_like(top2)
        tail_coef = []  # (T, r) per column: g_t(T_c) applied, in basis G
        test_coef = []
        for c in range(quad.norm2.shape[0]):
            rg, wg = factors(quad.gauss_nodes[c], t)  # (T, s)
            rr, _ = factors(quad.radau_nodes[c], t)
            tail2 = tail2 + quad.norm2[c] * jnp.sum(quad.gauss_weights[c] * rg**2, axis=1)
            upper2 = upper2 + quad.norm2[c] * jnp.sum(quad.radau_weights[c] * rr**2, axis=1)
            # Lanczos vector ‖P r₀‖ G Q g(T) e₁ = G (Q U) (g(θ) ⊙ amp), amp = (QU)ᵀ Gᵀ r₀.
            tail_coef.append((rg * amps[c][None]) @ quad.ritz_vectors[c].T)
            test_coef.append((wg * amps[c][None]) @ quad.ritz_vectors[c].T)
        tail_coef = jnp.stack(tail_coef, axis=-1)  # (T, r, C)
        test_coef = jnp.stack(test_coef, axis=-1)
        residual_norm = jnp.sqrt(top2 + tail2)
        clean = None
        if e_top is not None:
            cross = jnp.einsum("tkc,kc->t", residual_top, e_top) + jnp.einsum(
                "trc,rc->t", tail_coef, e_tail
            )
            clean = jnp.sqrt(jnp.maximum(e_norm2 + 2 * cross + top2 + tail2, 0.0))
        train = None
        if predictions:
            train = (
                y2[None]
                + jnp.einsum("nk,tkc->tnc", v, residual_top)
                + jnp.einsum("nr,trc->tnc", quad.basis, tail_coef)
            )
        test = None
        if kv_test is not None:
            # f_t(x) = f_0(x) + K(x, X) φ_t(K)(y − u0) = f0 − K(x, X)[V φ(Λ)Vᵀr₀ + tail].
            coef = jnp.concatenate([w_top[:, :, None] * c0[None], test_coef], axis=1)
            test = f0[None] - jnp.einsum("xm,tmc->txc", kv_test, coef)
        if vector:
            residual_top = residual_top[..., 0]
            train = None if train is None else train[..., 0]
            test = None if test is None else test[..., 0]
        return TopKTrajectory(
            times=t,
            residual_top=residual_top,
            residual_norm=residual_norm,
            tail_norm=jnp.sqrt(tail2),
            tail_lower=jnp.sqrt(tail2) if bounds_valid else jnp.full_like(tail2, jnp.nan),
            tail_upper=jnp.sqrt(upper2) if bounds_valid else jnp.full_like(upper2, jnp.nan),
            tail_steps=quad.steps,
            tail_passes=quad.passes,
            clean_dist=clean,
            train=train,
            test=test,
        )

    return predict, quad


def _check_eta(top: TopKEigensystem, eta) -> float:
    lam_max = float(top.eigenvalues[0])
    if not lam_max > 0:
        raise ValueError(f"the kernel has no positive eigenvalue (λ_max = {lam_max:.3g})")
    if eta is None:
        return 1.0 / lam_max
    eta = float(eta)
    if not (np.isfinite(eta) and 0 < eta < 2.0 / lam_max):
        raise ValueError(
            f"step size eta must lie in (0, 2/λ_max) = (0, {2.0 / lam_max:.6g}) for gradient "
            f"descent to converge, got {eta!r}"
        )
    return eta


def topk_gd_predictor(
    top: TopKEigensystem,
    y,
    *,
    eta=None,
    u0=None,
    y_clean=None,
    test_operator: KernelOperator | None = None,
    f0_test=None,
    predictions: bool = False,
    radau_node: float = 0.0,
    tail: TailQuadrature | None = None,
):
    """Linearized GD from a top-k spectrum: top k modes in closed form, the tail by Lanczos.

    u(k) − y = (I − ηK)^k r₀, r₀ = u(0) − y: V_kᵀ(u(k) − y) = (1 − ηΛ_k)^k V_kᵀr₀ exactly, and
    (I − ηK)^k P r₀ ≈ its Lanczos approximation on PKP (P = I − V_kV_kᵀ), with squared norm
    bracketed by the Gauss (lower) and Gauss–Radau (upper) rules — valid for ηλ ≤ 1 on the
    tail, i.e. η ≤ 1/λ_{k+1}. Test points: f_k(x) = f_0(x) + K(x, X) φ_k(K)(y − u(0)),
    φ_k(λ) = (1 − (1 − ηλ)^k)/λ, through one rectangular pass K(x_test, X)[V_k, G].

    Args:
      top: `topk_eigensystem(op, k, labels=u0 - y)` (the label Krylov data is required).
      y: (n,) or (n, C) targets. eta: step size (default 1/θ_1).
      u0: (n[, C]) initial outputs (default 0). y_clean: ground truth for ‖u − ŷ‖.
      test_operator: K(x_test, X) as a `KernelOperator`. f0_test: initial test outputs.
      predictions: also return u(k) (T × n × C floats).
      radau_node: lower bound of the tail spectrum (0 for PSD kernels).
      tail: the tail's Lanczos data; default `tail_quadrature(top, u0 − y)` (no extra pass),
        or `deflated_lanczos(op, top, u0 − y, steps)` for more nodes (tighter bounds).

    Returns:
      (predict, quadrature): predict(steps (T,)) -> TopKTrajectory; quadrature the TailQuadrature.

    Example:
      >>> top = topk.topk_eigensystem(operators.kernel_operator(kernel_fn, x), 5, labels=-y)
      >>> predict, _ = topk_gd_predictor(top, y)
      >>> traj = predict(dynamics.log_spaced_steps(10**6))   # tail_lower ≤ tail_upper
      >>> round(float(traj.residual_norm[0]), 6) == round(float(np.linalg.norm(y)), 6)
      True

    Reference: Arora et al., arXiv 1901.08584 (GD along eigenmodes); Golub & Meurant (2010).
    """
    eta = _check_eta(top, eta)
    dtype = top.eigenvectors.dtype
    eta_arr = jnp.asarray(eta, dtype)
    factors = jax.jit(lambda lam, t: _gd_factors(lam, eta_arr, t))
    predict, quad = _predictor(
        top,
        y,
        factors,
        lambda lam: eta * lam[-1] <= 1.0,  # λ_{k+1} ≤ θ_k up to the residuals
        u0=u0,
        y_clean=y_clean,
        test_operator=test_operator,
        f0_test=f0_test,
        predictions=predictions,
        radau=radau_node,
        tail=tail,
    )

    def predict_steps(steps) -> TopKTrajectory:
        return predict(_check_times(steps, True, dtype))

    return predict_steps, quad


def topk_flow_predictor(
    top: TopKEigensystem,
    y,
    *,
    u0=None,
    y_clean=None,
    test_operator: KernelOperator | None = None,
    f0_test=None,
    predictions: bool = False,
    radau_node: float = 0.0,
    tail: TailQuadrature | None = None,
):
    """Linearized gradient flow from a top-k spectrum: as `topk_gd_predictor` with e^{−λt}.

    Returns:
      (predict, quadrature): predict(times (T,)) -> TopKTrajectory.

    Reference: Jacot et al., arXiv 1806.07572; Golub & Meurant (2010).
    """
    dtype = top.eigenvectors.dtype
    predict, quad = _predictor(
        top,
        y,
        jax.jit(_flow_factors),
        lambda lam: True,  # e^{−2λt} is completely monotone on [0, ∞)
        u0=u0,
        y_clean=y_clean,
        test_operator=test_operator,
        f0_test=f0_test,
        predictions=predictions,
        radau=radau_node,
        tail=tail,
    )

    def predict_times(times) -> TopKTrajectory:
        return predict(_check_times(times, False, dtype))

    return predict_times, quad


# ---------------------------------------------------------------------------------------------
# Kernel ridge and the R3 soft limit by preconditioned conjugate gradients
# ---------------------------------------------------------------------------------------------


class CGSolution(NamedTuple):
    """Solution of (K + μI) X = B by preconditioned conjugate gradients (a pytree)."""

    solution: jax.Array  # (n[, C]) X
    residual_norms: jax.Array  # (iterations + 1,) max_c ‖B_c − (K + μI)X_c‖ / ‖B_c‖ per iteration
    iterations: jax.Array  # () int, CG iterations (= block products K·P)
    converged: jax.Array  # () bool, final relative residual ≤ tol
    mu: jax.Array  # () the shift μ


def topk_preconditioner(top: TopKEigensystem, mu: float):
    """M⁻¹ for K + μI from the top k pairs: V(Λ + μ)⁻¹Vᵀ + (I − VVᵀ)/(λ_{k+1} + μ).

    On exact eigenvectors M⁻¹(K + μI) has eigenvalue 1 on the top k modes and
    (λ_j + μ)/(λ_{k+1} + μ) ≤ 1 on the rest: the condition number drops from
    (λ_1 + μ)/(λ_n + μ) to (λ_{k+1} + μ)/(λ_n + μ). λ_{k+1} is the solver's next Ritz value
    (θ_k when it was not computed).

    Returns:
      apply(R) -> M⁻¹R for R (n, C).

    Reference: Ma & Belkin, arXiv 1703.10622 (EigenPro); Frangella et al., arXiv 2110.02820.
    """
    v, lam = top.eigenvectors, top.eigenvalues
    nxt = top.next_eigenvalue
    floor = jnp.where(jnp.isnan(nxt), lam[-1], nxt) + mu
    scale = 1.0 / (lam + mu) - 1.0 / floor

    @jax.jit
    def apply(r):
        return r / floor + v @ (scale[:, None] * (v.T @ r))

    return apply


@jax.jit
def _cg_update(x, r, p, kp, rz, mu):
    ap = kp + mu * p
    pap = jnp.sum(p * ap, axis=0)
    alpha = jnp.where(pap > 0, rz / jnp.where(pap > 0, pap, 1.0), 0.0)  # converged column: 0
    x = x + alpha * p
    r = r - alpha * ap
    return x, r


@jax.jit
def _cg_direction(z, r, p, rz):
    rz_new = jnp.sum(r * z, axis=0)
    beta = jnp.where(rz > 0, rz_new / jnp.where(rz > 0, rz, 1.0), 0.0)
    return z + beta * p, rz_new


def ridge_solve(
    op: KernelOperator,
    b,
    mu: float,
    *,
    preconditioner: TopKEigensystem | None = None,
    tol: float | None = None,
    max_iterations: int = 200,
) -> CGSolution:
    """X = (K + μI)⁻¹ B by conjugate gradients, one block product K·P per iteration.

    Preconditioned by `topk_preconditioner(preconditioner, μ)` when a top-k spectrum is given
    (EigenPro-style). Columns of B are independent systems sharing each pass over K.

    Args:
      op: square symmetric PSD `KernelOperator` (n × n).
      b: (n,) or (n, C) right-hand sides.
      mu: shift μ > 0.
      preconditioner: a TopKEigensystem of K, or None for plain CG.
      tol: relative residual target (default 1e-10 float64, 1e-5 float32).
      max_iterations: limit on iterations (passes over K).

    Returns:
      CGSolution (solution, residual_norms, iterations, converged, mu).

    Example:
      >>> op = operators.kernel_operator(kernel_fn, x)
      >>> top = topk.topk_eigensystem(op, 5)
      >>> sol = ridge_solve(op, y, 1e-2, preconditioner=top)
      >>> bool(sol.converged), bool(jnp.allclose(sol.solution, jnp.linalg.solve(
      ...     H + 1e-2 * jnp.eye(40), y), rtol=1e-6))
      (True, True)

    Reference: Hestenes & Stiefel (1952); Ma & Belkin, arXiv 1703.10622.
    """
    if not isinstance(op, KernelOperator) or op.shape[0] != op.shape[1]:
        raise TypeError("op must be a square operators.KernelOperator")
    mu = float(mu)
    if not (np.isfinite(mu) and mu > 0):
        raise ValueError(f"the ridge shift mu must be a positive finite number, got {mu!r}")
    max_iterations = check_int("max_iterations", max_iterations, minimum=1)
    dtype = op.dtype
    if tol is None:
        tol = 1e-10 if jnp.dtype(dtype) == jnp.float64 else 1e-5
    b = as_float_array(b, "b", dtype)
    vector = b.ndim == 1
    b2 = b[:, None] if vector else b
    if b2.ndim != 2 or b2.shape[0] != op.shape[0]:
        raise ValueError(f"b must have shape (n,) or (n, C) with n = {op.shape[0]}, got {b.shape}")
    check_finite(b2, "b")
    precond = (lambda r: r) if preconditioner is None else topk_preconditioner(preconditioner, mu)
    bnorm = jnp.linalg.norm(b2, axis=0)
    bnorm = jnp.where(bnorm == 0, 1.0, bnorm)
    mu_arr = jnp.asarray(mu, dtype)
    with matmul_precision("highest"):
        x = jnp.zeros_like(b2)
        r = b2
        z = precond(r)
        p = z
        rz = jnp.sum(r * z, axis=0)
        history = [float(jnp.max(jnp.linalg.norm(r, axis=0) / bnorm))]
        it = 0
        while it < max_iterations and history[-1] > tol:
            kp = op.apply(p)
            x, r = _cg_update(x, r, p, kp, rz, mu_arr)
            it += 1
            history.append(float(jnp.max(jnp.linalg.norm(r, axis=0) / bnorm)))
            if history[-1] <= tol:
                break
            z = precond(r)
            p, rz = _cg_direction(z, r, p, rz)
    return CGSolution(
        solution=x[:, 0] if vector else x,
        residual_norms=jnp.asarray(history, dtype),
        iterations=jnp.asarray(it),
        converged=jnp.asarray(history[-1] <= tol),
        mu=mu_arr,
    )


class SoftLimit(NamedTuple):
    """Converged predictions of a spectral filter g(K)y computed through one ridge solve."""

    train: jax.Array  # (n[, C]) g(K) y on the training points
    test: jax.Array | None  # (n_test[, C]) on test points; None without a test operator
    solve: CGSolution  # the (K + μI)⁻¹y solve it used


def kernel_ridge(
    op: KernelOperator,
    y,
    gamma: float,
    *,
    test_operator: KernelOperator | None = None,
    preconditioner: TopKEigensystem | None = None,
    tol: float | None = None,
    max_iterations: int = 200,
) -> SoftLimit:
    """Kernel ridge regression K(K + γI)⁻¹y = y − γ(K + γI)⁻¹y, and K(x_test, X)(K + γI)⁻¹y.

    Args:
      op: K (n × n). y: (n[, C]) targets. gamma: ridge γ > 0.
      test_operator: K(x_test, X) (n_test × n) or None.
      preconditioner: see `ridge_solve`.
      tol: see `ridge_solve`.
      max_iterations: see `ridge_solve`.

    Returns:
      SoftLimit(train, test, solve).

    Example:
      >>> op = operators.kernel_operator(kernel_fn, x)
      >>> op_test = operators.kernel_operator(kernel_fn, x_test, x)
      >>> kr = kernel_ridge(op, y, 1e-3, test_operator=op_test)
      >>> kr.test.shape
      (12,)
    """
    sol = ridge_solve(
        op, y, gamma, preconditioner=preconditioner, tol=tol, max_iterations=max_iterations
    )
    y = as_float_array(y, "y", op.dtype)
    train = y - gamma * sol.solution
    test = None if test_operator is None else test_operator(sol.solution)
    return SoftLimit(train=train, test=test, solve=sol)


def r3_soft_limit(
    op: KernelOperator,
    y,
    alpha: float,
    eta: float,
    *,
    test_operator: KernelOperator | None = None,
    preconditioner: TopKEigensystem | None = None,
    tol: float | None = None,
    max_iterations: int = 200,
) -> SoftLimit:
    """Where soft R3 self-distillation from u(0) = 0 converges: u(∞) = g(K)y, no early stopping.

    g(λ) = ηλ / (1 − α + αηλ) (`distill.r3_soft_limit_filter`), i.e.
    u(∞) = ηK((1 − α)I + αηK)⁻¹y = (1/α) K(K + μI)⁻¹y = (y − μ(K + μI)⁻¹y)/α with
    μ = (1 − α)/(αη); test points f(∞) = (1/α) K(x_test, X)(K + μI)⁻¹y. α = 0 gives ηKy (one
    product). As α → 1 with (1 − α)/η = γ fixed it is kernel ridge with γ
    (docs/science/distillation.md#r3).

    Args:
      op: K (n × n). y: (n[, C]) labels. alpha: α ∈ [0, 1). eta: step size η > 0.
      test_operator: see `kernel_ridge`.
      preconditioner: see `kernel_ridge`.
      tol: see `kernel_ridge`.
      max_iterations: see `kernel_ridge`.

    Returns:
      SoftLimit(train, test, solve) (solve has zero iterations for α = 0).

    Example:
      >>> op = operators.kernel_operator(kernel_fn, x)
      >>> lim = r3_soft_limit(op, y, 0.9, 1 / float(eig.eigenvalues[0]))
      >>> lim.train.shape
      (40,)

    Reference: Dong et al., arXiv 1910.01255; Ma & Belkin, arXiv 1703.10622.
    """
    alpha = float(alpha)
    eta = float(eta)
    if not (0.0 <= alpha < 1.0):
        raise ValueError(f"alpha must lie in [0, 1), got {alpha!r}")
    if not (np.isfinite(eta) and eta > 0):
        raise ValueError(f"eta must be a positive finite number, got {eta!r}")
    y = as_float_array(y, "y", op.dtype)
    if alpha == 0.0:  # g(λ) = ηλ: one product, no solve
        x = eta * y
        empty = CGSolution(
            solution=x,
            residual_norms=jnp.zeros((1,), op.dtype),
            iterations=jnp.asarray(0),
            converged=jnp.asarray(True),
            mu=jnp.asarray(jnp.inf, op.dtype),
        )
        test = None if test_operator is None else test_operator(x)
        return SoftLimit(train=op(x), test=test, solve=empty)
    mu = (1.0 - alpha) / (alpha * eta)
    sol = ridge_solve(
        op, y, mu, preconditioner=preconditioner, tol=tol, max_iterations=max_iterations
    )
    train = (y - mu * sol.solution) / alpha
    test = None if test_operator is None else test_operator(sol.solution) / alpha
    return SoftLimit(train=train, test=test, solve=sol)
