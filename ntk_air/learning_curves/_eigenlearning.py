"""Predicted learning curves of kernel ridge regression, mode by mode (eigenlearning), and the
measured ones over seeded draws. Mathematics: docs/science/learning_curves.md.

References: Bordelon, Canatar & Pehlevan, arXiv 2002.02561; Canatar, Bordelon & Pehlevan,
arXiv 2006.13198; Simon, Dickens, Karkada & DeWeese, arXiv 2110.03922.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import is_concrete, resolve_dtype
from .._tiling import matmul_precision, pad_rows
from ..dynamics._linearized import flow_predictor
from ..spectral._eigen import eigensystem

_MAX_ITERATIONS = 200  # safeguarded Newton on log κ; bisection alone would need ≤ 120 here


class PopulationSpectrum(NamedTuple):
    """Eigenvalues and target coefficients of a population's kernel operator (a pytree).

    An entry with multiplicity w stands for w modes of the same eigenvalue sharing the entry's
    target power Σ_c v_ic² (the lumped tail of the top-k path); dense spectra have w = 1.
    """

    eigenvalues: jax.Array  # (m,) λ_i ≥ 0 of T under μ (K/N for N points), descending
    coefficients: jax.Array  # (m,) or (m, C) v_i = ⟨f*, φ_i⟩_μ (the group's root power if w > 1)
    multiplicity: jax.Array  # (m,) modes per entry (1; N − k for the top-k tail)
    mean_square_target: jax.Array  # () E_μ ‖f*‖² = Σ_i ‖v_i‖² (all of it, tail included)
    tail_modes: jax.Array  # () modes lumped into the last entry (0: none, dense)
    tail_eigenvalue_bound: jax.Array  # () largest eigenvalue the tail can hold (θ_k/N; NaN dense)


class LearningCurve(NamedTuple):
    """The predicted learning curve at each (n, δ, σ²) of a broadcast grid S (a pytree)."""

    kappa: jax.Array  # S κ, the effective regularization (NaN where none exists)
    learnability: jax.Array  # S + (m,) L_i = λ_i / (λ_i + κ)
    e0: jax.Array  # S E₀ = n / (n − Σ_i L_i²)
    test_mse: jax.Array  # S E₀ (Σ_i (1 − L_i)² v_i² + σ²)
    train_mse: jax.Array  # S (δ / (nκ))² · test_mse
    clean_part: jax.Array  # S E₀ Σ_i (1 − L_i)² v_i²: the error of the clean labels
    noise_part: jax.Array  # S E₀ σ²: test-label noise σ² plus fitted training noise (E₀ − 1)σ²
    mode_error: jax.Array  # S + (m,) E_D (⟨f̂, φ_i⟩ − v_i)²; Σ_i = test_mse − σ²


def _kappa_one(log_lam, w, n, ridge):
    """log κ for one (n, δ): safeguarded Newton on the decreasing g(s) = Σ w σ(log λ − s) + δe^{−s}
    − n, bracketed by log((Σ wλ + δ)/n) and max(log(δ/n), log(λ_min⁺ (r/n − 1))); NaN if none."""
    dtype = log_lam.dtype
    nz = jnp.isfinite(log_lam) & (w > 0)
    r = jnp.sum(jnp.where(nz, w, 0.0))
    lam_sum = jnp.sum(jnp.where(nz, w * jnp.exp(log_lam), 0.0))
    log_min = jnp.min(jnp.where(nz, log_lam, jnp.inf))
    log_ridge = jnp.where(ridge > 0, jnp.log(jnp.where(ridge > 0, ridge, 1.0)), -jnp.inf)
    ridge_lo = log_ridge - jnp.log(n)
    spec_lo = jnp.where(n < r, log_min + jnp.log(jnp.where(n < r, r / n - 1.0, 1.0)), -jnp.inf)
    lo = jnp.maximum(ridge_lo, spec_lo)
    hi = jnp.log((lam_sum + ridge) / n)
    solvable = jnp.isfinite(lo) & (n > 0)
    lo = jnp.where(solvable, lo, 0.0)
    hi = jnp.where(solvable, jnp.maximum(hi, lo), 0.0)

    def g_and_slope(s):
        sig = jax.nn.sigmoid(log_lam - s)
        extra = jnp.exp(log_ridge - s)
        g = jnp.sum(jnp.where(nz, w * sig, 0.0)) + extra - n
        slope = -jnp.sum(jnp.where(nz, w * sig * (1.0 - sig), 0.0)) - extra
        return g, slope

    eps = jnp.finfo(dtype).eps

    def cond(state):
        i, s, lo, hi, step = state
        return (i < _MAX_ITERATIONS) & (jnp.abs(step) > 4 * eps * jnp.maximum(1.0, jnp.abs(s)))

    def body(state):
        i, s, lo, hi, _ = state
        g, slope = g_and_slope(s)
        lo = jnp.where(g > 0, s, lo)  # root above s
        hi = jnp.where(g < 0, s, hi)
        newton = s - g / jnp.where(slope < 0, slope, -1.0)
        inside = (newton > lo) & (newton < hi) & jnp.isfinite(newton)
        s_new = jnp.where(g == 0, s, jnp.where(inside, newton, 0.5 * (lo + hi)))
        return i + 1, s_new, lo, hi, s_new - s

    s0 = 0.5 * (lo + hi)
    one = jnp.asarray(1.0, dtype)
    _, s, *_ = jax.lax.while_loop(cond, body, (0, s0, lo, hi, one))
    return jnp.where(solvable, s, jnp.nan)


def _curve_one(log_lam, w, power, n, ridge, noise_variance):
    """LearningCurve fields for one (n, δ, σ²); δ = 0 with n ≥ r is the limit δ → 0⁺
    (docs/science/learning_curves.md#beyond-the-rank)."""
    s = _kappa_one(log_lam, w, n, ridge)
    pos = jnp.isfinite(log_lam)  # λ > 0
    rank = jnp.sum(jnp.where(pos & (w > 0), w, 0.0))
    over = (ridge == 0) & (n >= rank) & (n > 0)  # ridgeless at or beyond the rank: κ = 0
    learn = jnp.where(over, 1.0, jax.nn.sigmoid(log_lam - s))  # λ/(λ+κ)
    miss = jnp.where(over, 0.0, jax.nn.sigmoid(s - log_lam))  # κ/(λ+κ), without cancellation
    learn = jnp.where(pos, learn, 0.0)  # λ = 0: L = 0 for every κ ≥ 0
    miss = jnp.where(pos, miss, 1.0)
    kappa = jnp.where(over, 0.0, jnp.exp(s))
    ridge_term = jnp.where(ridge > 0, ridge / kappa, 0.0)
    # n − Σ L² = Σ L(1 − L) + δ/κ at the root: no cancellation near the interpolation threshold.
    e0 = jnp.where(over, n / (n - rank), n / (jnp.sum(w * learn * miss) + ridge_term))

    def times_e0(a):  # E₀·a with E₀ = ∞ at n = r and a = 0 giving 0, the limit n → r
        return jnp.where(a == 0, 0.0, e0 * a)

    bias = jnp.sum(miss**2 * power)
    test = times_e0(bias + noise_variance)
    shrink = jnp.where(ridge > 0, ridge / (n * kappa), 0.0)
    train = jnp.where(over, (1.0 - rank / n) * (bias + noise_variance), shrink**2 * test)
    fitted = w * learn**2 / n  # a mode with L_i = 0 carries none of the E₀ term, even at E₀ = ∞
    mode_error = miss**2 * power + jnp.where(fitted == 0, 0.0, fitted * test)
    return LearningCurve(
        kappa=kappa,
        learnability=learn,
        e0=e0,
        test_mse=test,
        train_mse=train,
        clean_part=times_e0(bias),
        noise_part=times_e0(noise_variance),
        mode_error=mode_error,
    )


@jax.jit
def _curve_grid(lam, w, power, n, ridge, noise_variance):
    shape = jnp.broadcast_shapes(n.shape, ridge.shape, noise_variance.shape)
    flat = [jnp.broadcast_to(a, shape).reshape(-1) for a in (n, ridge, noise_variance)]
    log_lam = jnp.where(lam > 0, jnp.log(jnp.where(lam > 0, lam, 1.0)), -jnp.inf)
    out = jax.vmap(_curve_one, in_axes=(None, None, None, 0, 0, 0))(log_lam, w, power, *flat)
    return jax.tree_util.tree_map(lambda a: a.reshape(shape + a.shape[1:]), out)


def _as_float(a, name, dtype):
    """(array, its numpy values or None for a tracer): checks run on concrete values only."""
    if not is_concrete(a):
        return a.astype(dtype), None
    values = np.asarray(a, dtype)
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{name} must be finite")
    return jnp.asarray(values), values


def _prepare(eigenvalues, coefficients, multiplicity, n, ridge, noise_variance):
    dtype = jnp.result_type(float)
    lam, lam_v = _as_float(eigenvalues, "eigenvalues", dtype)
    if lam.ndim != 1 or lam.shape[0] == 0:
        raise ValueError(f"eigenvalues must be a non-empty vector (m,), got shape {lam.shape}")
    m = lam.shape[0]
    w, w_v = _as_float(np.ones(m) if multiplicity is None else multiplicity, "multiplicity", dtype)
    if w.shape != (m,):
        raise ValueError(f"multiplicity must have shape ({m},), got {w.shape}")
    v, _ = _as_float(np.zeros(m) if coefficients is None else coefficients, "coefficients", dtype)
    if v.shape[:1] != (m,) or v.ndim > 2:
        raise ValueError(
            f"coefficients must have shape ({m},) or ({m}, C) like the eigenvalues, got {v.shape}"
        )
    power = jnp.sum(v.reshape(m, -1) ** 2, axis=1)  # Σ_c v_ic²
    n, n_v = _as_float(n, "n", dtype)
    ridge, ridge_v = _as_float(ridge, "ridge", dtype)
    noise_variance, noise_v = _as_float(noise_variance, "noise_variance", dtype)
    if lam_v is not None and np.any(lam_v < 0):
        raise ValueError(f"eigenvalues must be ≥ 0 (a PSD kernel), got min {lam_v.min():.3g}")
    if w_v is not None and np.any(w_v < 0):
        raise ValueError("multiplicity must be ≥ 0")
    if n_v is not None and np.any(n_v <= 0):
        raise ValueError(f"n must be > 0, got {n_v}")
    for name, a in (("ridge", ridge_v), ("noise_variance", noise_v)):
        if a is not None and np.any(a < 0):
            raise ValueError(f"{name} must be ≥ 0, got {a}")
    return lam, w, power, n, ridge, noise_variance


def learning_curve(
    eigenvalues, coefficients, n, ridge=0.0, noise_variance=0.0, *, multiplicity=None
) -> LearningCurve:
    """Predicted test and train error of kernel ridge regression with n samples (eigenlearning).

    κ solves Σ_i w_i λ_i/(λ_i + κ) + δ/κ = n; L_i = λ_i/(λ_i + κ); E₀ = n/(n − Σ_i w_i L_i²);
    test MSE = E₀ (Σ_i (1 − L_i)² ‖v_i‖² + σ²) (against labels with the same noise);
    train MSE = (δ/(nκ))² · test MSE;
    mode error_i = (1 − L_i)² ‖v_i‖² + w_i (L_i²/n) E₀ (Σ_j (1 − L_j)² ‖v_j‖² + σ²).
    δ = 0 with n ≥ r = Σ_{λ_i > 0} w_i is the limit δ → 0⁺: κ = 0, E₀ = n/(n − r)
    (docs/science/learning_curves.md#beyond-the-rank). n, δ and σ² broadcast; jit- and
    vmap-able (the argument checks run on concrete values only).

    Args:
      eigenvalues: (m,) λ_i ≥ 0 of the kernel operator under the population measure.
      coefficients: (m,) or (m, C) target coefficients v_i (C output columns, powers summed);
        None: no target (the noise alone).
      n: number of training samples, > 0 (any shape; need not be whole).
      ridge: δ ≥ 0, added to K(X, X) as K + δ I (the kernel's own units).
      noise_variance: σ² ≥ 0 of the label noise (summed over the C columns), independent of x.
      multiplicity: (m,) modes each entry stands for (default 1; lumped tails).

    Returns:
      LearningCurve with fields of the broadcast shape S of (n, ridge, noise_variance), and
      S + (m,) for `learnability` and `mode_error`.

    Raises:
      ValueError: negative or non-finite eigenvalues, n ≤ 0, δ < 0, σ² < 0 (eager calls; under
        jit such values give NaN).

    Example:
      >>> lam = 1.0 / jnp.arange(1, 101) ** 2
      >>> c = learning_curve(lam, jnp.sqrt(lam), jnp.array([10.0, 30.0]), 0.0)
      >>> c.test_mse.shape, bool(jnp.allclose(c.learnability.sum(-1), jnp.array([10.0, 30.0])))
      ((2,), True)
      >>> bool(c.test_mse[1] < c.test_mse[0])
      True

    References: Bordelon, Canatar & Pehlevan, arXiv 2002.02561; Canatar, Bordelon & Pehlevan,
    arXiv 2006.13198; Simon, Dickens, Karkada & DeWeese, arXiv 2110.03922.
    """
    args = _prepare(eigenvalues, coefficients, multiplicity, n, ridge, noise_variance)
    return _curve_grid(*args)


def effective_regularization(eigenvalues, n, ridge=0.0, *, multiplicity=None) -> jax.Array:
    """κ > 0 solving Σ_i w_i λ_i / (λ_i + κ) + δ/κ = n (broadcast over n and δ).

    With δ = 0 and n ≥ r = Σ_{λ_i > 0} w_i no κ > 0 exists: an eager call raises (naming n and
    r); under jit or vmap the entry is 0, the limit δ → 0⁺ that `learning_curve` uses there.

    Args:
      eigenvalues: (m,) λ_i ≥ 0. n: samples (> 0). ridge: δ ≥ 0. multiplicity: (m,) or None.

    Returns:
      κ with the broadcast shape of (n, ridge).

    Raises:
      ValueError: bad arguments as in `learning_curve`; δ = 0 with n ≥ r (eager calls).

    Example:
      >>> float(effective_regularization(jnp.full(4, 2.0), 2.0))  # 4·2/(2 + κ) = 2 → κ = 2
      2.0

    Reference: Simon et al., arXiv 2110.03922 (the "eigenlearning" κ); Bordelon et al.,
    arXiv 2002.02561.
    """
    args = _prepare(eigenvalues, None, multiplicity, n, ridge, 0.0)
    lam, w, _, n, ridge, _ = args
    if all(is_concrete(a) for a in (lam, w, n, ridge)):
        rank = float(np.sum(np.where(np.asarray(lam) > 0, np.asarray(w), 0.0)))
        n_b, ridge_b = np.broadcast_arrays(np.asarray(n), np.asarray(ridge))
        beyond = (ridge_b == 0) & (n_b >= rank)
        if np.any(beyond):
            raise ValueError(
                f"no κ > 0 solves Σ λ_i/(λ_i + κ) = n with ridge 0 for n = "
                f"{float(n_b[beyond].flat[0]):g} ≥ {rank:g} nonzero eigenvalues; give a ridge > 0, "
                "or use learning_curve, which takes the limit ridge → 0⁺ there (κ = 0)"
            )
    return _curve_grid(*args).kappa


def learnabilities(eigenvalues, kappa) -> jax.Array:
    """L_i = λ_i / (λ_i + κ): the fraction of mode i's coefficient that the predictor recovers
    (κ = 0, the ridgeless limit beyond the rank: 1 where λ_i > 0, 0 where λ_i = 0).

    Args:
      eigenvalues: (m,). kappa: any shape S.

    Returns:
      S + (m,).

    Example:
      >>> learnabilities(jnp.array([1.0, 0.0]), 1.0).tolist()
      [0.5, 0.0]

    Reference: Simon et al., arXiv 2110.03922.
    """
    lam = jnp.asarray(eigenvalues)
    kappa = jnp.asarray(kappa)[..., None]
    return jnp.where(lam > 0, lam / jnp.where(lam > 0, lam + kappa, 1.0), 0.0)


def population_spectrum(eig, y) -> PopulationSpectrum:
    """Eigenvalues of K/N and target coefficients v_i = u_iᵀ y / √N of N points (uniform μ).

    φ_i = √N u_i is orthonormal in L²(μ), so E_μ ‖f*‖² = ‖y‖²/N = Σ_i ‖v_i‖² exactly.

    Args:
      eig: `eigen.Eigensystem` of the population's kernel matrix K (N × N).
      y: (N,) or (N, C) target values f*(x) on the population.

    Returns:
      PopulationSpectrum with m = N entries, multiplicity 1.

    Example:
      >>> ps = population_spectrum(eig, y_clean)
      >>> bool(jnp.isclose(jnp.sum(ps.coefficients**2), jnp.mean(y_clean**2)))
      True

    Reference: Canatar, Bordelon & Pehlevan, arXiv 2006.13198 (finite data sets as measures).
    """
    N = len(eig.eigenvalues)
    lam, v, y = _top_modes(eig.eigenvalues, eig.eigenvectors, y, N, "eigensystem")
    nan = jnp.asarray(jnp.nan, lam.dtype)
    return PopulationSpectrum(
        lam, v, jnp.ones(N, lam.dtype), jnp.sum(y**2) / N, jnp.asarray(0), nan
    )


def _top_modes(theta, V, y, N: int, what: str):
    """(λ_i = θ_i/N, v_i = u_iᵀ y/√N, y) for N points; y must have N rows like the `what`."""
    theta = jnp.asarray(theta)
    y = jnp.asarray(y, theta.dtype)
    if y.shape[0] != N:
        raise ValueError(f"y must have {N} rows like the {what}, got shape {y.shape}")
    return theta / N, V.T @ y / np.sqrt(N), y


def topk_population_spectrum(top, y, trace) -> PopulationSpectrum:
    """The top-k modes of N points exactly, the other N − k lumped into one flat tail.

    Entries 1..k: λ_i = θ_i/N, v_i = u_iᵀ y/√N. Entry k + 1 (multiplicity N − k): eigenvalue
    (tr K − Σ_i θ_i)/(N(N − k)) (the tail's mean) and the target power ‖y‖²/N − Σ_i ‖v_i‖²
    outside the top k (the other tail shapes: `tail_spread`).

    Args:
      top: `topk.TopKEigensystem` of K (N × N).
      y: (N,) or (N, C) targets.
      trace: tr K = Σ_x K(x, x) (`operators.kernel_diagonal(...).sum()`).

    Returns:
      PopulationSpectrum with m = k + 1 entries (k when k = N).

    Example:
      >>> top = ntk_air.spectral.topk_eigensystem(ntk_air.spectral.matrix_operator(H), 10)
      >>> ps = topk_population_spectrum(top, y_clean, jnp.trace(H))
      >>> ps.eigenvalues.shape, int(ps.tail_modes)
      ((11,), 30)

    Reference: Simon et al., arXiv 2110.03922 (spectra truncated to their top modes).
    """
    N, k = top.eigenvectors.shape
    lam, v, y = _top_modes(top.eigenvalues, top.eigenvectors, y, N, "eigenvectors")
    total = jnp.sum(y**2, axis=0) / N
    if k == N:
        return PopulationSpectrum(
            lam, v, jnp.ones(k, lam.dtype), jnp.sum(total), jnp.asarray(0), jnp.asarray(jnp.nan)
        )
    tail_power = total - jnp.sum(v**2, axis=0)
    tail_trace = jnp.asarray(trace, lam.dtype) / N - jnp.sum(lam)
    eps = jnp.finfo(lam.dtype).eps
    # Both differences are ≥ 0 exactly; rounding of the sums (about k·eps of them) can make them
    # slightly negative, and only that much is set to 0. Anything more negative is an error.
    power_tol = 10 * k * eps * total
    trace_tol = 10 * k * eps * jnp.asarray(trace, lam.dtype) / N
    if is_concrete(tail_power) and bool(jnp.any(tail_power < -power_tol)):
        raise ValueError(
            "the top-k eigenvectors hold more target power than y has: they are not orthonormal"
        )
    if is_concrete(tail_trace) and float(tail_trace) < -float(trace_tol):
        raise ValueError(
            f"trace = {float(trace):.6g} is below the sum of the top-k eigenvalues "
            f"{float(jnp.sum(top.eigenvalues)):.6g}: pass tr K of the same kernel"
        )
    tail_power = jnp.maximum(tail_power, 0.0)
    tail_trace = jnp.maximum(tail_trace, 0.0)
    return PopulationSpectrum(
        eigenvalues=jnp.concatenate([lam, (tail_trace / (N - k))[None]]),
        coefficients=jnp.concatenate([v, jnp.sqrt(tail_power)[None]], axis=0),
        multiplicity=jnp.concatenate([jnp.ones(k, lam.dtype), jnp.full(1, N - k, lam.dtype)]),
        mean_square_target=jnp.sum(total),
        tail_modes=jnp.asarray(N - k),
        tail_eigenvalue_bound=lam[-1],
    )


class TailSpread(NamedTuple):
    """Predicted test MSE under the extreme shapes of a lumped tail (a pytree)."""

    flat: jax.Array  # S the flat tail of `topk_population_spectrum` (the reported estimate)
    concentrated: jax.Array  # S tail trace at θ_k/N (fewest, largest tail modes), power on them
    unlearned: jax.Array  # S that κ, with the tail's target power on never-learned modes
    low: jax.Array  # S min of the three
    high: jax.Array  # S max of the three


def tail_spread(spectrum: PopulationSpectrum, n, ridge=0.0, noise_variance=0.0) -> TailSpread:
    """How much a lumped tail's unknown shape can move the predicted test MSE.

    Three tails with the same trace and target power: flat, concentrated at θ_k/N (fewest,
    largest modes), and concentrated with its power on never-learned modes (equal when dense).

    Args:
      spectrum: a `PopulationSpectrum`. n, ridge, noise_variance: as in `learning_curve`.

    Returns:
      TailSpread with the broadcast shape S.

    Example:
      >>> top = ntk_air.spectral.topk_eigensystem(ntk_air.spectral.matrix_operator(H), 10)
      >>> ps = topk_population_spectrum(top, y_clean, jnp.trace(H))
      >>> spread = tail_spread(ps, 20.0, 1e-3)
      >>> bool(spread.low <= spread.flat <= spread.high)
      True

    Reference: Simon et al., arXiv 2110.03922.
    """

    def test_mse(lam, v, w):
        return learning_curve(lam, v, n, ridge, noise_variance, multiplicity=w).test_mse

    lam, w, v = spectrum.eigenvalues, spectrum.multiplicity, spectrum.coefficients
    flat = test_mse(lam, v, w)
    if int(spectrum.tail_modes) == 0:
        return TailSpread(flat, flat, flat, flat, flat)
    bound = spectrum.tail_eigenvalue_bound
    conc_lam = lam.at[-1].set(bound)
    conc_w = w.at[-1].set(jnp.where(bound > 0, lam[-1] * w[-1] / bound, 0.0))  # same trace
    conc = test_mse(conc_lam, v, conc_w)
    # The same κ as the concentrated tail, the tail's power on an extra mode of eigenvalue 0.
    zero = jnp.zeros_like(lam[:1])
    v_extra = jnp.concatenate([v.at[-1].set(0.0), v[-1:]], axis=0)
    un = test_mse(jnp.concatenate([conc_lam, zero]), v_extra, jnp.concatenate([conc_w, zero]))
    stack = jnp.stack([flat, conc, un])
    return TailSpread(flat, conc, un, jnp.min(stack, axis=0), jnp.max(stack, axis=0))


class PopulationKernel(NamedTuple):
    """Access to a population's kernel without assuming it is stored (not a pytree)."""

    size: int  # N, the population's points X
    gram: Callable  # idx (n,) → K(X_D, X_D) (n, n)
    rows: Callable  # idx (n,), A (n, b) → K(X, X_D) A (N, b)


def dense_population_kernel(K) -> PopulationKernel:
    """A `PopulationKernel` slicing a stored (N, N) kernel matrix (host memory, nothing compiled).

    Example:
      >>> pk = dense_population_kernel(H)
      >>> pk.gram(np.arange(3)).shape, pk.size
      ((3, 3), 40)
    """
    K = np.asarray(K)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"K must be a square (N, N) kernel matrix, got shape {K.shape}")
    return PopulationKernel(
        size=int(K.shape[0]),
        gram=lambda idx: K[np.ix_(idx, idx)],
        rows=lambda idx, A: K[:, idx] @ np.asarray(A, K.dtype),
    )


_ROWS_BLOCK = 2**22  # entries of K(x_tile, X_D) evaluated at once (32 MiB in float64)


def tiled_population_kernel(kernel_fn, x) -> PopulationKernel:
    """A `PopulationKernel` evaluating K(X, X_D) A by row tiles of X from `kernel_fn.block_fn`
    (one program per n), never the (N, N) matrix; `gram` is `kernel_fn(X_D)`.

    Example:
      >>> pk = tiled_population_kernel(kernels.two_layer_relu_kernel_fn(), x)
      >>> bool(jnp.allclose(pk.gram(np.arange(3)), H[:3, :3]))
      True
    """
    if not hasattr(kernel_fn, "block_fn"):
        raise TypeError(
            "tiled_population_kernel needs a tiled kernel function with block_fn "
            f"(kernels.PairwiseKernelFn), got {type(kernel_fn).__name__}"
        )
    dtype = resolve_dtype(kernel_fn.dtype, like=x)
    x, _ = kernel_fn.prepare(x, None, dtype)
    N = int(x.shape[0])

    def tile(a, b):
        out = kernel_fn.block_fn(a, b)
        return (out.ntk if hasattr(out, "ntk") else out).astype(dtype)

    @jax.jit
    def program(x_tiles, x_d, A):  # (T, t, ...), (n, ...), (n, b) → (T, t, b)
        return jax.lax.map(lambda xt: tile(xt, x_d) @ A, x_tiles)

    @functools.lru_cache(maxsize=4)
    def tiles(t):  # X padded to a multiple of t rows, as (T, t, ...)
        return pad_rows(x, t).reshape(-1, t, *x.shape[1:])

    def rows(idx, A):
        t = int(min(N, max(16, _ROWS_BLOCK // max(len(idx), 1))))
        with matmul_precision(kernel_fn.precision):
            out = program(tiles(t), x[np.asarray(idx)], jnp.asarray(A, dtype))
        return np.asarray(out).reshape(-1, out.shape[-1])[:N]

    return PopulationKernel(size=N, gram=lambda idx: kernel_fn(x[np.asarray(idx)]).ntk, rows=rows)


class MeasuredCurve(NamedTuple):
    """Kernel ridge regression on seeded draws of n points from a population (a pytree)."""

    n: np.ndarray  # (P,) training-set sizes
    ridge: np.ndarray  # (R,) ridges δ (K + δI)
    test_mse: np.ndarray  # (P, R, D) E_x ‖f̂(x) − y_test(x)‖² over all N points, + σ²
    train_mse: np.ndarray  # (P, R, D) mean over the draw of ‖f̂(x_j) − y_j‖² (noisy labels)
    heldout_mse: np.ndarray  # (P, R, D) as test_mse over the N − n points outside the draw
    learnability: np.ndarray  # (P, R, D, M) ⟨f̂[φ_i], φ_i⟩_μ for the target φ_i, modes 1..M
    flow_test_mse: np.ndarray | None  # (P, T, D) gradient flow stopped at `times` (or None)
    flow_train_mse: np.ndarray | None  # (P, T, D)
    times: np.ndarray | None  # (T,) gradient-flow times t (loss ½‖u − y‖²)
    null_dimension: np.ndarray  # (P, R, D) eigenvalues of K(X_D, X_D) + δI the pseudo-inverse
    #   treats as 0 (δ = 0: repeated points, or a Gram matrix singular to rounding)
    distinct: np.ndarray  # (P, D) distinct points in each draw (n without replacement)


@jax.jit
def _krr_eigh(kdd, y_d, ridges, u_d, lam_k):
    """α (n, R, C), train MSE, learnability, null dimension per δ by one eigh (pseudo-inverse)."""
    s, Q = jnp.linalg.eigh(kdd)
    tol = 100 * s.shape[-1] * jnp.finfo(s.dtype).eps * jnp.max(jnp.abs(s))
    denom = s[:, None] + ridges[None, :]
    inv = jnp.where(denom > tol, 1.0 / jnp.where(denom > tol, denom, 1.0), 0.0)  # (n, R)
    z = Q.T @ y_d  # (n, C)
    alpha = jnp.einsum("ij,jr,jc->irc", Q, inv, z)
    resid = (1.0 - s[:, None] * inv)[:, :, None] * z[:, None, :]  # Qᵀ(y − f̂(X_D))
    train = jnp.sum(resid**2, axis=(0, 2)) / kdd.shape[0]
    w = Q.T @ u_d  # (n, M)
    learn = lam_k[None, :] * jnp.einsum("jr,jm->rm", inv, w**2)
    null = jnp.sum(denom <= tol, axis=0)  # (R,)
    return alpha, train, learn, null


@functools.partial(jax.jit, static_argnames="ridgeless")
def _krr_cholesky(kdd, y_d, ridges, u_d, lam_k, ridgeless: bool):
    """As `_krr_eigh` by one Cholesky per δ (n³/3 flops, not 9n³), and whether it is trustworthy."""
    n, C = y_d.shape
    rhs = jnp.concatenate([y_d, u_d], axis=1)

    def one(r):
        factor = jnp.linalg.cholesky(kdd + r * jnp.eye(n, dtype=kdd.dtype))
        sol = jax.scipy.linalg.cho_solve((factor, True), rhs)
        alpha = sol[:, :C]
        learn = lam_k * jnp.sum(u_d * sol[:, C:], axis=0)
        return alpha, r**2 * jnp.sum(alpha**2) / n, learn, jnp.min(jnp.diagonal(factor) ** 2)

    alpha, train, learn, pivot = jax.lax.map(one, ridges)
    ok = jnp.all(jnp.isfinite(train)) & jnp.all(jnp.isfinite(pivot))
    if ridgeless:
        ok &= jnp.min(pivot) > 100 * n * jnp.finfo(kdd.dtype).eps * jnp.trace(kdd)
    null = jnp.zeros(ridges.shape, jnp.int32)
    return jnp.moveaxis(alpha, 0, 1), train, learn, null, ok


def _krr_draw(kdd, y_d, ridges, u_d, lam_k, repeats: bool):
    """KRR on one draw: Cholesky, or `_krr_eigh` for δ = 0 on repeated points or a bad factor."""
    zero = bool(np.any(np.asarray(ridges) == 0))
    if not (zero and repeats):
        *out, ok = _krr_cholesky(kdd, y_d, ridges, u_d, lam_k, ridgeless=zero)
        if bool(ok):
            return tuple(out)
    return _krr_eigh(kdd, y_d, ridges, u_d, lam_k)


def _draw_indices(N: int, n: int, draws: int, seed: int, *, replace: bool = False) -> np.ndarray:
    """(draws, n) sorted indices of n of N points, seeded by (seed, n, replace) alone."""
    rng = np.random.default_rng([int(seed), int(n), int(replace)])
    return np.stack([np.sort(rng.choice(N, size=n, replace=replace)) for _ in range(draws)])


def measured_learning_curve(
    kernel: PopulationKernel,
    y_train,
    n,
    ridge,
    *,
    draws: int,
    y_test=None,
    noise_variance: float = 0.0,
    seed: int = 0,
    modes=None,
    times=None,
    replace: bool = False,
) -> MeasuredCurve:
    """Kernel ridge regression on `draws` seeded draws of n of the N points, tested on all N.

    For each draw D: y_D = y_train[D] + ε (Gaussian, variance σ²/C per column, fresh per draw),
    f̂ = K(X, X_D)(K(X_D, X_D) + δI)⁻¹ y_D; test MSE = mean_x ‖f̂(x) − y_test(x)‖² + σ² (test
    labels with the same noise, as eigenlearning's), train MSE = mean_{j∈D} ‖f̂(x_j) − y_j‖²,
    held-out MSE = the test MSE outside D; learnability of mode i (target φ_i = √N u_i):
    Nλ_i · u_i[D]ᵀ(K(X_D, X_D) + δI)⁻¹ u_i[D]. Draws are n distinct points (the default, what
    the theory of a finite population describes) or n i.i.d. points (`replace=True`); δ = 0 on
    a singular K(X_D, X_D) means its pseudo-inverse, the limit δ → 0⁺
    (docs/science/learning_curves.md#finite-population).

    Args:
      kernel: `dense_population_kernel(K)` or `tiled_population_kernel(kernel_fn, x)`.
      y_train: (N,) or (N, C) labels the training points carry (before the added noise).
      n: (P,) training-set sizes (< N when `replace=False`). ridge: (R,) δ ≥ 0.
      draws: D ≥ 2 draws per n. y_test: (N[, C]) labels test points carry (default y_train).
      noise_variance: σ² ≥ 0 (summed over columns). seed: seed of the draws and the noise.
      modes: None, or (eigenvalues (M,) of K/N, eigenvectors (N, M) unit columns of K) of the
        population, for the measured learnabilities.
      times: optional (T,) gradient-flow times: the flow u(t) from u(0) = 0 on the same draws
        (`dynamics.flow_predictor`; dense kernels only).

    Returns:
      MeasuredCurve (`null_dimension`: (P, R, D) pseudo-inverse cutoffs; `distinct`: (P, D)).

    Raises:
      ValueError: n < 1 (or n ≥ N without replacement), draws < 2, negative ridge or σ².

    Example:
      >>> m = measured_learning_curve(dense_population_kernel(H), y_clean, [10, 20], [0.0], draws=3)
      >>> m.test_mse.shape
      (2, 1, 3)

    Reference: Canatar, Bordelon & Pehlevan, arXiv 2006.13198 (experiments on finite data
    sets); Simon et al., arXiv 2110.03922 (learnability of eigenfunctions).
    """
    N = kernel.size
    y_train = np.asarray(y_train, np.float64)
    if y_train.shape[0] != N:
        raise ValueError(f"y_train must have {N} rows (the population), got {y_train.shape}")
    y_test = y_train if y_test is None else np.asarray(y_test, np.float64)
    if y_test.shape != y_train.shape:
        raise ValueError(f"y_test must have shape {y_train.shape} like y_train, got {y_test.shape}")
    cols = y_train.reshape(N, -1)
    test_cols = y_test.reshape(N, -1)
    C = cols.shape[1]
    n_values = np.atleast_1d(np.asarray(n, dtype=np.int64))
    ridges = np.atleast_1d(np.asarray(ridge, dtype=np.float64))
    draws = int(draws)
    if draws < 1:
        raise ValueError(f"draws must be ≥ 1, got {draws}")
    if np.any(n_values < 1) or (not replace and np.any(n_values > N)):
        raise ValueError(
            f"every n must be ≥ 1{'' if replace else f' and ≤ N = {N} (distinct points)'}, "
            f"got {n_values.tolist()}"
        )
    if np.any(ridges < 0) or not np.all(np.isfinite(ridges)):
        raise ValueError(f"ridge values must be finite and ≥ 0, got {ridges.tolist()}")
    if not noise_variance >= 0:
        raise ValueError(f"noise_variance must be ≥ 0, got {noise_variance}")
    if modes is None:
        modes = (np.zeros(0), np.zeros((N, 0)))
    lam_k = np.asarray(modes[0], np.float64) * N
    U = np.asarray(modes[1], np.float64)
    times_arr = None if times is None else np.atleast_1d(np.asarray(times, np.float64))
    T = 0 if times_arr is None else len(times_arr)
    P, R = len(n_values), len(ridges)
    test, train, held = np.zeros((3, P, R, draws))
    learn = np.zeros((P, R, draws, U.shape[1]))
    flow_test, flow_train = np.zeros((2, P, T, draws))
    null = np.zeros((P, R, draws), np.int64)
    distinct = np.zeros((P, draws), np.int64)
    noise_std = np.sqrt(noise_variance / C)
    for p, n_p in enumerate(n_values):
        idx_all = _draw_indices(N, int(n_p), draws, seed, replace=replace)
        rng = np.random.default_rng([int(seed), int(n_p), 1])
        for d, idx in enumerate(idx_all):
            y_d = cols[idx] + noise_std * rng.standard_normal((len(idx), C))
            kdd = kernel.gram(idx)  # numpy or jax: passed to jit as is (no per-shape staging)
            repeats = len(np.unique(idx)) < len(idx)
            alpha, train[p, :, d], learn[p, :, d], null[p, :, d] = _krr_draw(
                kdd, y_d, ridges, U[idx], lam_k, repeats
            )
            alpha = np.asarray(alpha).reshape(len(idx), R * C)
            f = np.asarray(kernel.rows(idx, alpha)).reshape(N, R, C)
            err = np.sum((f - test_cols[:, None, :]) ** 2, axis=2)  # (N, R)
            out = np.ones(N, bool)
            out[idx] = False
            test[p, :, d] = err.mean(axis=0) + noise_variance
            held[p, :, d] = (err[out].mean(axis=0) if out.any() else np.nan) + noise_variance
            distinct[p, d] = N - int(out.sum())
            if T:
                ft, ftr = _flow_draw(kernel, idx, kdd, y_d, times_arr, test_cols)
                flow_test[p, :, d] = ft + noise_variance
                flow_train[p, :, d] = ftr
    return MeasuredCurve(
        n=n_values,
        ridge=ridges,
        test_mse=test,
        train_mse=train,
        heldout_mse=held,
        learnability=learn,
        flow_test_mse=flow_test if T else None,
        flow_train_mse=flow_train if T else None,
        times=times_arr,
        null_dimension=null,
        distinct=distinct,
    )


def _flow_draw(kernel, idx, kdd, y_d, times, test_cols):
    """Test and train MSE of gradient flow from u(0) = 0 on one draw (`dynamics`)."""
    n = len(idx)
    k_pop = jnp.asarray(kernel.rows(idx, np.eye(n)))  # (N, n) K(X, X_D)
    predict = flow_predictor(eigensystem(kdd), jnp.asarray(y_d), k_test_train=k_pop)
    traj = predict(jnp.asarray(times))
    f = np.asarray(traj.test).reshape(len(times), kernel.size, -1)
    u = np.asarray(traj.train).reshape(len(times), n, -1)
    test = np.sum((f - test_cols[None]) ** 2, axis=2).mean(axis=1)
    train = np.sum((u - y_d[None]) ** 2, axis=2).mean(axis=1)
    return test, train
