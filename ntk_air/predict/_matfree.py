"""Matrix-free predictions for n beyond memory: kernel operators, never an n × n array.

t = ∞ by preconditioned conjugate gradients (`ridge_solve`); finite t by the closed-form flow on
the Rayleigh–Ritz reduction to the top-k eigenvectors plus the labels' Krylov space.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_float_array, check_finite, check_int
from .._tiling import matmul_precision
from ..dynamics._linearized import flow_mode_factors
from ..spectral import _matfree as matfree
from ..spectral import _nystrom as nystrom
from ..spectral import _operators as operators
from ..spectral import _topk as topk
from ._mse import check_targets, flow_times, through_modes
from ._spectral import positive_float, regularizer


class MatfreeMean(NamedTuple):
    """K_*X (K + δI)⁻¹ y from a conjugate-gradient solve (a pytree)."""

    test: jax.Array | None  # (m[, k]) mean on the test inputs; None without x_test
    alpha: jax.Array  # (n[, k]) (K + δI)⁻¹ y
    relative_residual: jax.Array  # () ‖y − (K + δI)α‖ / ‖y‖, recomputed with one pass
    tol: float  # the requested relative residual
    iterations: jax.Array  # () CG iterations (passes over K), preconditioner passes excluded
    preconditioner_passes: jax.Array  # () passes over K for the preconditioner (Nyström: 0)
    converged: jax.Array  # () bool, relative_residual ≤ tol
    diag_reg_absolute: float  # δ


class MatfreeTrajectory(NamedTuple):
    """The ensemble mean at T finite times on the Rayleigh–Ritz reduction (top k + Krylov)."""

    times: np.ndarray  # (T,) the steps t asked for
    train: jax.Array  # (T, n[, k]) mean on the training inputs
    test: jax.Array | None  # (T, m[, k]) mean on the test inputs
    residual_norm: jax.Array  # (T,) ‖u(t) − y‖ on the reduction (top k exact, tail Galerkin)
    tail_lower: jax.Array  # (T,) e^{−θ_kτ}‖Py‖ ≤ the tail part of ‖u(t) − y‖ (P: off the top k)
    tail_upper: jax.Array  # (T,) ‖Py‖ ≥ it
    top: topk.TopKEigensystem  # the top-k spectrum used


def _operator_and_delta(kernel_fn, x, y, get, diag_reg, absolute, tile_size):
    """The train kernel operator, the checked targets and δ (relative: to the mean diagonal)."""
    op = operators.kernel_operator(kernel_fn, x, tile_size=tile_size, which=get)
    y = check_targets(y, op.shape[0], op.dtype)

    def mean_diagonal():
        return float(jnp.mean(operators.kernel_diagonal(kernel_fn, x, which=get)))

    return op, y, regularizer(diag_reg, absolute, mean_diagonal)


def gp_mean_matfree(
    kernel_fn,
    x_train,
    y_train,
    x_test=None,
    *,
    get: str = "ntk",
    diag_reg: float = 1e-6,
    diag_reg_absolute_scale: bool = False,
    tol: float = 1e-6,
    rank: int = 0,
    preconditioner: str = "topk",
    landmarks: int | None = None,
    max_iterations: int = 1000,
    tile_size: int | None = None,
) -> MatfreeMean:
    """GP posterior mean / end-of-training ensemble mean K_*X (K + δI)⁻¹ y, matrix-free.

    Conjugate gradients on (K + δI) α = y, one pass of `operators.kernel_operator` per iteration:
    `gp_inference(K, y, diag_reg)(get, K_*X)` to the stated residual.

    Args:
      kernel_fn: a `kernels.PairwiseKernelFn` (tiled operators are built from its block_fn).
      x_train: (n, d) training inputs; y_train: (n,) or (n, k) targets.
      x_test: (m, d) test inputs, or None (then only α).
      get: "ntk" or "nngp", the kernel to solve with.
      diag_reg: δ = diag_reg · tr(K)/n (or absolute), > 0: CG needs K + δI positive definite.
      diag_reg_absolute_scale: `diag_reg` in absolute units.
      tol: relative residual ‖y − (K + δI)α‖/‖y‖ to reach.
      rank: preconditioner rank (0: plain CG).
      preconditioner: "topk" (`spectral.topk_eigensystem`) or "nystrom"
        (`spectral.nystrom_eigensystem`), the source of the `rank` eigenpairs.
      landmarks: Nyström landmark rows m (default min(n, 4·rank)); memory 2·n·m floats.
      max_iterations: limit on CG iterations.
      tile_size: rows per kernel tile (None: the kernel function's default).

    Returns:
      MatfreeMean(test, alpha, relative_residual, tol, iterations, preconditioner_passes,
      converged, diag_reg_absolute).

    Example:
      >>> out = ntk_air.predict.gp_mean_matfree(kernel_fn, x, y, x_test, diag_reg=1e-2)
      >>> exact = ntk_air.predict.gp_inference(H, y, 1e-2)("ntk", K_test_train)
      >>> bool(out.converged), bool(jnp.allclose(out.test, exact, rtol=1e-5, atol=1e-6))
      (True, True)

    Reference: Hestenes & Stiefel (1952); Ma & Belkin arXiv 1703.10622 (EigenPro preconditioner).
    """
    op, y, delta = _operator_and_delta(
        kernel_fn, x_train, y_train, get, diag_reg, diag_reg_absolute_scale, tile_size
    )
    n = op.shape[0]
    if not delta > 0:
        raise ValueError(
            "the matrix-free solve needs diag_reg > 0 (conjugate gradients need K + δI positive "
            f"definite), got diag_reg = {diag_reg!r}"
        )
    pre, passes = _preconditioner(kernel_fn, x_train, op, rank, preconditioner, landmarks, get)
    sol = ridge_solve(op, y, delta, preconditioner=pre, tol=tol, max_iterations=max_iterations)
    alpha = sol.solution
    resid = y - op(alpha) - delta * alpha
    rel = jnp.max(
        jnp.linalg.norm(resid.reshape(n, -1), axis=0) / jnp.linalg.norm(y.reshape(n, -1), axis=0)
    )
    test = None
    if x_test is not None:
        test = operators.kernel_operator(
            kernel_fn, x_test, x_train, tile_size=tile_size, which=get
        )(alpha)
    return MatfreeMean(
        test=test,
        alpha=alpha,
        relative_residual=rel,
        tol=float(tol),
        iterations=sol.iterations,
        preconditioner_passes=jnp.asarray(passes),
        converged=rel <= tol,
        diag_reg_absolute=delta,
    )


def _preconditioner(kernel_fn, x, op, rank, kind, landmarks, get):
    """(eigenpairs or None, passes over K they cost) for the CG preconditioner."""
    if kind not in ("topk", "nystrom"):
        raise ValueError(f"preconditioner must be one of ('topk', 'nystrom'), got {kind!r}")
    rank = check_int("rank", rank, minimum=0, maximum=op.shape[0])
    if landmarks is not None and kind != "nystrom":
        raise ValueError("landmarks applies to preconditioner='nystrom'")
    if not rank:
        return None, 0
    if kind == "nystrom":
        return nystrom.nystrom_eigensystem(kernel_fn, x, rank, landmarks=landmarks, which=get), 0
    pre = topk.topk_eigensystem(op, rank)
    return pre, int(pre.block_products)


def ensemble_mean_matfree(
    kernel_fn,
    x_train,
    y_train,
    t,
    x_test=None,
    *,
    get: str = "ntk",
    learning_rate: float = 1.0,
    diag_reg: float = 0.0,
    diag_reg_absolute_scale: bool = False,
    rank: int = 64,
    tail_steps: int = 16,
    tile_size: int | None = None,
    max_products: int = 60,
) -> MatfreeTrajectory:
    """The infinite ensemble's mean at finite times t from the top-`rank` spectrum plus its tail.

    mean(τ) = V(1 − e^{−Λτ})Vᵀ y, τ = learning_rate · t / y.size, (Λ, V) the Rayleigh–Ritz
    reduction of K + δI to its top-k eigenvectors plus the Krylov space of y
    (`matfree.ritz_reduction`): exact on the top modes, Galerkin on the rest. t = ∞:
    `gp_mean_matfree`.

    Args:
      kernel_fn: a `kernels.PairwiseKernelFn`.
      x_train: (n, d); y_train: (n,) or (n, k); t: (T,) steps ≥ 0, finite.
      x_test: (m, d) or None.
      get: "ntk" or "nngp".
      learning_rate: η.
      diag_reg: δ = diag_reg · tr(K)/n (or absolute, next argument), ≥ 0.
      diag_reg_absolute_scale: `diag_reg` in absolute units.
      rank: number of top eigenpairs.
      tail_steps: Krylov passes on the deflated operator (`matfree.deflated_krylov`, ≥ 1); more
        passes resolve the tail further (exact once the space is invariant).
      tile_size: rows per kernel tile.
      max_products: limit on the eigensolver's passes over K.

    Returns:
      MatfreeTrajectory(times, train, test, residual_norm, tail_lower, tail_upper, top).

    Example:
      >>> traj = ntk_air.predict.ensemble_mean_matfree(kernel_fn, x, y, [1.0, 100.0], x_test,
      ...                                              rank=39)
      >>> exact = ntk_air.predict.gradient_descent_mse_ensemble(kernel_fn, x, y)(
      ...     jnp.array([1.0, 100.0]), x_test, "ntk")
      >>> bool(jnp.allclose(traj.test, exact, atol=1e-6))
      True
    """
    op, y, delta = _operator_and_delta(
        kernel_fn, x_train, y_train, get, diag_reg, diag_reg_absolute_scale, tile_size
    )
    n = op.shape[0]
    t_arr = np.atleast_1d(np.asarray(t, np.float64))
    if not np.all(np.isfinite(t_arr)):
        raise ValueError("t must be finite here; the end of training is gp_mean_matfree")
    tau, _ = flow_times(t_arr, learning_rate, y.size, op.dtype)
    top = topk.topk_eigensystem(op, int(rank), max_products=max_products)
    y2 = y.reshape(n, -1)
    krylov = matfree.deflated_krylov(op, top, -y2, max(1, int(tail_steps)))
    eig = matfree.ritz_reduction(top, krylov)  # the one spectral path: top k + Galerkin tail
    eig = eig._replace(eigenvalues=eig.eigenvalues + delta)  # V^T(K + δI)V = V^T K V + δI
    v = eig.eigenvectors
    c = v.T @ y2  # (m, C): y lies in the reduction's space exactly
    fac = flow_mode_factors(eig, jnp.asarray(tau))  # (T, m): e^{−λτ}, 1 − e^{−λτ}, that /λ
    train = through_modes(v, fac.fitted, c).reshape((len(t_arr),) + y.shape)
    test = None
    if x_test is not None:
        test_op = operators.kernel_operator(
            kernel_fn, x_test, x_train, tile_size=tile_size, which=get
        )
        kv = test_op.apply(v)  # (n_test, m) K(X_test, X)·V, one pass
        test = through_modes(kv, fac.test_weight, c).reshape((len(t_arr), len(kv)) + y.shape[1:])
    k = int(top.eigenvalues.shape[0])
    resid = fac.residual[:, :, None] * c[None]  # (T, m, C)
    tail0 = jnp.sqrt(jnp.sum(c[k:] ** 2))
    theta_k = top.eigenvalues[-1] + delta
    return MatfreeTrajectory(
        times=t_arr,
        train=train,
        test=test,
        residual_norm=jnp.sqrt(jnp.sum(resid**2, axis=(1, 2))),
        tail_lower=tail0 * jnp.exp(-theta_k * jnp.asarray(tau)),
        tail_upper=jnp.full(len(t_arr), tail0),
        top=top,
    )


def posterior_variance_matfree(
    kernel_fn,
    x_train,
    x_points,
    *,
    get: str = "nngp",
    diag_reg: float = 1e-6,
    diag_reg_absolute_scale: bool = False,
    tol: float = 1e-6,
    rank: int = 0,
    preconditioner: str = "topk",
    landmarks: int | None = None,
    max_iterations: int = 1000,
    tile_size: int | None = None,
) -> jax.Array:
    """End-of-training variances at s chosen test points, matrix-free (s right-hand sides).

    "nngp": Σ_ii − Σ_iXᵀ(Σ + δI)⁻¹Σ_Xi; "ntk": Σ_ii + z_iᵀ Σ z_i − 2 z_iᵀ Σ_Xi with
    z_i = (Θ + δI)⁻¹ Θ_Xi (`gp_inference`'s covariances, diagonal only).

    Args:
      kernel_fn: a `kernels.PairwiseKernelFn` with nngp and ntk.
      x_train: (n, d); x_points: (s, d) the points whose variance is wanted.
      get: "ntk" or "nngp".
      diag_reg: δ, relative to tr(K)/n unless `diag_reg_absolute_scale` (> 0).
      diag_reg_absolute_scale: δ in absolute units.
      tol: relative residual target of the conjugate gradients.
      rank: preconditioner rank (0: plain CG).
      preconditioner: "topk" or "nystrom", as in `gp_mean_matfree`.
      landmarks: Nyström landmark rows, as in `gp_mean_matfree`.
      max_iterations: limit on passes over K.
      tile_size: rows per kernel tile.

    Returns:
      (s,) variances.

    Example:
      >>> kf = ntk_air.kernels.fc_kernel_fn(1, "relu")
      >>> var = ntk_air.predict.posterior_variance_matfree(kf, x, x_test[:3], diag_reg=1e-2)
      >>> exact = ntk_air.predict.gp_inference(kf(x), y, 1e-2)("nngp", kf(x_test[:3], x),
      ...                                                       kf(x_test[:3]))
      >>> bool(jnp.allclose(var, jnp.diag(exact.covariance), atol=1e-6))
      True
    """
    if get not in ("nngp", "ntk"):
        raise ValueError(f"get must be 'nngp' or 'ntk', got {get!r}")
    k_px = kernel_fn(x_points, x_train)  # (s, n) cross kernels
    k_pp = kernel_fn(x_points)
    s_diag = jnp.diagonal(k_pp.nngp)
    cross = getattr(k_px, get).T  # (n, s)
    sol = gp_mean_matfree(
        kernel_fn,
        x_train,
        cross,
        get=get,
        diag_reg=diag_reg,
        diag_reg_absolute_scale=diag_reg_absolute_scale,
        tol=tol,
        rank=rank,
        preconditioner=preconditioner,
        landmarks=landmarks,
        max_iterations=max_iterations,
        tile_size=tile_size,
    )
    z = sol.alpha  # (n, s)
    if get == "nngp":
        return s_diag - jnp.sum(cross * z, axis=0)
    sigma = operators.kernel_operator(kernel_fn, x_train, tile_size=tile_size, which="nngp")
    return s_diag + jnp.sum(z * sigma(z), axis=0) - 2 * jnp.sum(z * k_px.nngp.T, axis=0)


class CGSolution(NamedTuple):
    """Solution of (K + μI) X = B by preconditioned conjugate gradients (a pytree)."""

    solution: jax.Array  # (n[, C]) X
    residual_norms: jax.Array  # (iterations + 1,) max_c ‖B_c − (K + μI)X_c‖ / ‖B_c‖ per iteration
    iterations: jax.Array  # () int, CG iterations (= block products K·P)
    converged: jax.Array  # () bool, final relative residual ≤ tol
    mu: jax.Array  # () the shift μ


def _topk_preconditioner(top, mu: float):
    """M⁻¹R, M⁻¹ = V(Λ + μ)⁻¹Vᵀ + (I − VVᵀ)/(λ_{k+1} + μ) (λ_{k+1}: θ_k if unknown; EigenPro)."""
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
    op,
    b,
    mu: float,
    *,
    preconditioner=None,
    tol: float | None = None,
    max_iterations: int = 200,
) -> CGSolution:
    """X = (K + μI)⁻¹ B by conjugate gradients, one block product K·P per iteration.

    Args:
      op: square symmetric PSD `KernelOperator` (n × n).
      b: (n,) or (n, C) right-hand sides.
      mu: shift μ > 0.
      preconditioner: eigenpairs of K (a `TopKEigensystem` or `NystromEigensystem`: its
        eigenvalues, eigenvectors and next_eigenvalue), or None for plain CG.
      tol: relative residual target (default 1e-10 float64, 1e-5 float32).
      max_iterations: limit on iterations (passes over K).

    Returns:
      CGSolution (solution, residual_norms, iterations, converged, mu).

    Example:
      >>> op = spectral.kernel_operator(kernel_fn, x)
      >>> top = spectral.topk_eigensystem(op, 5)
      >>> sol = ntk_air.predict.ridge_solve(op, y, 1e-2, preconditioner=top)
      >>> bool(sol.converged), bool(jnp.allclose(sol.solution, jnp.linalg.solve(
      ...     H + 1e-2 * jnp.eye(40), y), rtol=1e-6))
      (True, True)

    Reference: Hestenes & Stiefel (1952); Ma & Belkin, arXiv 1703.10622.
    """
    if not isinstance(op, operators.KernelOperator) or op.shape[0] != op.shape[1]:
        raise TypeError("op must be a square operators.KernelOperator")
    mu = positive_float(mu, "the ridge shift mu")
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
    precond = (lambda r: r) if preconditioner is None else _topk_preconditioner(preconditioner, mu)
    bnorm = jnp.linalg.norm(b2, axis=0)
    bnorm = jnp.where(bnorm == 0, 1.0, bnorm)
    mu_arr = jnp.asarray(mu, dtype)
    with matmul_precision("highest"):
        x, r = jnp.zeros_like(b2), b2
        p = z = precond(r)
        rz = jnp.sum(r * z, axis=0)
        history = [float(jnp.max(jnp.linalg.norm(r, axis=0) / bnorm))]
        it = 0
        while it < max_iterations and history[-1] > tol:
            x, r = _cg_update(x, r, p, op.apply(p), rz, mu_arr)
            it += 1
            history.append(float(jnp.max(jnp.linalg.norm(r, axis=0) / bnorm)))
            if history[-1] > tol:
                p, rz = _cg_direction(precond(r), r, p, rz)
    return CGSolution(
        solution=x[:, 0] if vector else x,
        residual_norms=jnp.asarray(history, dtype),
        iterations=jnp.asarray(it),
        converged=jnp.asarray(history[-1] <= tol),
        mu=mu_arr,
    )
