"""Matrix-free predictions for n beyond memory: kernel operators, never an n × n array.

* End of training / GP posterior mean: K_*X (K + δI)⁻¹ y by conjugate gradients
  (`matfree.ridge_solve`, preconditioned by a top-k spectrum when `rank` > 0), stopped at a
  stated relative residual ‖y − (K + δI)α‖/‖y‖ ≤ tol; the true residual is recomputed with one
  extra pass and reported.
* Any finite time: the top-k eigensystem in closed form plus the Lanczos tail of the label
  Krylov space (`matfree.topk_flow_predictor`), with its Gauss / Gauss–Radau bounds.
* Posterior variances at a chosen set of s test points: s right-hand sides of the same solve.

neural-tangents' conventions as in `gradient_descent_mse_ensemble` (τ = η t / y.size, δ relative
to tr(K)/n unless absolute).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import matfree, operators, topk
from .._checks import as_float_array, check_finite
from ._mse import flow_times

__all__ = [
    "MatfreeMean",
    "MatfreeTrajectory",
    "gp_mean_matfree",
    "ensemble_mean_matfree",
    "posterior_variance_matfree",
]


class MatfreeMean(NamedTuple):
    """K_*X (K + δI)⁻¹ y from a conjugate-gradient solve (a pytree)."""

    test: jax.Array | None  # (m[, k]) mean on the test inputs; None without x_test
    alpha: jax.Array  # (n[, k]) (K + δI)⁻¹ y
    relative_residual: jax.Array  # () ‖y − (K + δI)α‖ / ‖y‖, recomputed with one pass
    tol: float  # the requested relative residual
    iterations: jax.Array  # () CG iterations (passes over K), preconditioner passes excluded
    preconditioner_passes: jax.Array  # () passes spent on the top-k preconditioner (0: none)
    converged: jax.Array  # () bool, relative_residual ≤ tol
    diag_reg_absolute: float  # δ


class MatfreeTrajectory(NamedTuple):
    """The ensemble mean at T finite times from a top-k spectrum plus the Lanczos tail."""

    times: np.ndarray  # (T,) the steps t asked for
    train: jax.Array  # (T, n[, k]) mean on the training inputs
    test: jax.Array | None  # (T, m[, k]) mean on the test inputs
    residual_norm: jax.Array  # (T,) ‖u(t) − y‖ estimate (top k exact, tail by Gauss quadrature)
    tail_lower: jax.Array  # (T,) Gauss lower bound on the tail part of ‖u(t) − y‖
    tail_upper: jax.Array  # (T,) Gauss–Radau upper bound on it
    top: topk.TopKEigensystem  # the top-k spectrum used


def _delta(kernel_fn, x, get, diag_reg, absolute) -> float:
    diag_reg = float(diag_reg)
    if not (np.isfinite(diag_reg) and diag_reg >= 0):
        raise ValueError(f"diag_reg must be a finite number ≥ 0, got {diag_reg!r}")
    if absolute or diag_reg == 0:
        return diag_reg
    return diag_reg * float(jnp.mean(operators.kernel_diagonal(kernel_fn, x, which=get)))


def _targets(y, n, dtype):
    y = as_float_array(y, "y_train", dtype)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"y_train must have shape ({n},) or ({n}, k), got {tuple(y.shape)}")
    check_finite(y, "y_train")
    return y


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
    max_iterations: int = 1000,
    tile_size: int | None = None,
) -> MatfreeMean:
    """GP posterior mean / end-of-training ensemble mean K_*X (K + δI)⁻¹ y, matrix-free.

    Conjugate gradients on (K + δI) α = y through `operators.kernel_operator` (one pass over K
    per iteration), preconditioned by the top `rank` eigenpairs when rank > 0; equals
    `gp_inference(K, y, diag_reg)(get, K_*X)` to the stated residual.

    Args:
      kernel_fn: a `kernels.PairwiseKernelFn` (tiled operators are built from its block_fn).
      x_train: (n, d) training inputs; y_train: (n,) or (n, k) targets.
      x_test: (m, d) test inputs, or None (then only α).
      get: "ntk" or "nngp", the kernel to solve with.
      diag_reg: δ = diag_reg · tr(K)/n (or absolute), > 0: CG needs K + δI positive definite.
      diag_reg_absolute_scale: `diag_reg` in absolute units.
      tol: relative residual ‖y − (K + δI)α‖/‖y‖ to reach.
      rank: top-k preconditioner rank (0: plain CG).
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
    op = operators.kernel_operator(kernel_fn, x_train, tile_size=tile_size, which=get)
    n = op.shape[0]
    y = _targets(y_train, n, op.dtype)
    delta = _delta(kernel_fn, x_train, get, diag_reg, diag_reg_absolute_scale)
    if not delta > 0:
        raise ValueError(
            "the matrix-free solve needs diag_reg > 0 (conjugate gradients need K + δI positive "
            f"definite), got diag_reg = {diag_reg!r}"
        )
    pre, passes = None, 0
    if rank:
        pre = topk.topk_eigensystem(op, int(rank))
        passes = int(pre.block_products)
    sol = matfree.ridge_solve(
        op, y, delta, preconditioner=pre, tol=tol, max_iterations=max_iterations
    )
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


def ensemble_mean_matfree(
    kernel_fn,
    x_train,
    y_train,
    t,
    x_test=None,
    *,
    get: str = "ntk",
    learning_rate: float = 1.0,
    rank: int = 64,
    tail_steps: int = 0,
    tile_size: int | None = None,
    max_products: int = 60,
) -> MatfreeTrajectory:
    """The infinite ensemble's mean at finite times t from the top-`rank` spectrum plus its tail.

    mean(τ) = V(1 − e^{−Λτ})Vᵀ y on the top modes (exact), and on the complement the Lanczos
    approximation from the label Krylov space built in the eigensolver's passes
    (`matfree.topk_flow_predictor`), τ = learning_rate · t / y.size; no diagonal regularizer
    (for t = ∞ / δ > 0 use `gp_mean_matfree`). The tail's Gauss and Gauss–Radau bounds state
    the accuracy of ‖u(t) − y‖.

    Args:
      kernel_fn: a `kernels.PairwiseKernelFn`.
      x_train: (n, d); y_train: (n,) or (n, k); t: (T,) steps ≥ 0, finite.
      x_test: (m, d) or None.
      get: "ntk" or "nngp".
      learning_rate: η.
      rank: number of top eigenpairs.
      tail_steps: extra Lanczos passes on the deflated tail (`matfree.deflated_lanczos`); 0
        uses the label Krylov space of the eigensolver's own passes (free, fewer steps). More
        steps tighten the tail bounds.
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
    op = operators.kernel_operator(kernel_fn, x_train, tile_size=tile_size, which=get)
    n = op.shape[0]
    y = _targets(y_train, n, op.dtype)
    t_arr = np.atleast_1d(np.asarray(t, np.float64))
    if not np.all(np.isfinite(t_arr)):
        raise ValueError("t must be finite here; the end of training is gp_mean_matfree")
    tau, _ = flow_times(t_arr, learning_rate, y.size, op.dtype)
    top = topk.topk_eigensystem(op, int(rank), labels=-y, max_products=max_products)
    test_op = None
    if x_test is not None:
        test_op = operators.kernel_operator(
            kernel_fn, x_test, x_train, tile_size=tile_size, which=get
        )
    tail = None if not tail_steps else matfree.deflated_lanczos(op, top, -y, int(tail_steps))
    predict, _ = matfree.topk_flow_predictor(
        top, y, test_operator=test_op, predictions=True, tail=tail
    )
    traj = predict(np.asarray(tau))
    return MatfreeTrajectory(
        times=t_arr,
        train=traj.train,
        test=traj.test,
        residual_norm=traj.residual_norm,
        tail_lower=traj.tail_lower,
        tail_upper=traj.tail_upper,
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
    max_iterations: int = 1000,
    tile_size: int | None = None,
) -> jax.Array:
    """End-of-training variances at s chosen test points, matrix-free (s right-hand sides).

    "nngp": Σ_ii − Σ_iXᵀ(Σ + δI)⁻¹Σ_Xi; "ntk": Σ_ii + z_iᵀ Σ z_i − 2 z_iᵀ Σ_Xi with
    z_i = (Θ + δI)⁻¹ Θ_Xi (`gp_inference`'s covariances, diagonal only). Costs the CG passes of
    one solve with s columns (plus one Σ pass for "ntk"); K(X, x_points) is an (n, s) array.

    Args:
      kernel_fn: a `kernels.PairwiseKernelFn` with nngp and ntk.
      x_train: (n, d); x_points: (s, d) the points whose variance is wanted.
      get, diag_reg, diag_reg_absolute_scale, tol, rank, max_iterations, tile_size: as in
        `gp_mean_matfree`.

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
        max_iterations=max_iterations,
        tile_size=tile_size,
    )
    z = sol.alpha  # (n, s)
    if get == "nngp":
        return s_diag - jnp.sum(cross * z, axis=0)
    sigma = operators.kernel_operator(kernel_fn, x_train, tile_size=tile_size, which="nngp")
    return s_diag + jnp.sum(z * sigma(z), axis=0) - 2 * jnp.sum(z * k_px.nngp.T, axis=0)
