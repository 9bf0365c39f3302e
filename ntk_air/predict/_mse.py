"""Mean-squared-error gradient flow and Gaussian-process inference with neural-tangents' API.

Flow time τ = η t / N (N = y.size) of du/dt = −(K + δI)(u − y), in the eigenbasis (Λ, V) of
K + δI with φ_τ(λ) = (1 − e^{−λτ})/λ (t = ∞: the pseudo-inverse, the limit of the flow).
Ensemble covariances (Lee et al. 2019, eqs. 14-16), Σ the NNGP, Θ the NTK:
  NNGP, test:  Σ_** − Σ_*X V φ_{2τ}(Λ) Vᵀ Σ_X*,
  NTK,  test:  Σ_** + A φ S φ Aᵀ − (A φ C + (A φ C)ᵀ),  A = Θ_*X V, S = VᵀΣ_XX V, C = VᵀΣ_X*,
  NNGP, train: V Λ e^{−2Λτ} Vᵀ,     NTK, train: V e^{−Λτ} S e^{−Λτ} Vᵀ.
Mathematics: docs/science/predict.md.
"""

from __future__ import annotations

import collections
import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_float_array, check_finite
from ..dynamics._linearized import flow_mode_factors
from ..spectral._eigen import apply_spectral_filter, require_symmetric, to_eigenbasis
from ._spectral import _train_kernel, _TrainKernel, positive_float, solve_dtype

GETS = ("nngp", "ntk")


class Gaussian(NamedTuple):
    """A (mean, covariance) pair, as neural-tangents' `predict.Gaussian` (a pytree)."""

    mean: jax.Array  # (..., m[, k]) leading time axes, then the outputs' shape
    covariance: jax.Array  # (..., m, m) leading time axes, shared by the k output columns


@functools.cache
def _gaussians(fields: tuple[str, ...]):
    return collections.namedtuple("Gaussians", fields)


def canonical_get(get, allowed=GETS) -> tuple[bool, tuple[str, ...]]:
    """(get was one string, the tuple of names) with neural-tangents' rules; None = both."""
    if get is None:
        return False, ("nngp", "ntk")
    single = isinstance(get, str)
    names = (get,) if single else tuple(get)
    if not names:
        raise ValueError("get must name at least one kernel, got an empty tuple")
    names = tuple(str(g).lower() for g in names)
    bad = [g for g in names if g not in allowed]
    if bad:
        raise ValueError(f"get must name kernels among {allowed}, got {bad[0]!r}")
    if len(set(names)) < len(names):
        raise ValueError(f"get must not repeat a name, got {names}")
    return single, names


def _output(out: dict, single: bool, names):
    return out[names[0]] if single else _gaussians(names)(*(out[g] for g in names))


def check_targets(y, n: int, dtype) -> jax.Array:
    """y_train as (n,) or (n, k) float targets of the solve dtype."""
    y = as_float_array(y, "y_train", dtype)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(
            f"y_train must have shape ({n},) or ({n}, k) with n = {n} (the train kernel's size), "
            f"got {tuple(y.shape)}"
        )
    check_finite(y, "y_train")
    return y


def flow_times(t, learning_rate, normalization: int, dtype):
    """neural-tangents' step t (any shape) → flat flow times τ = η t / N, and t's shape."""
    t = np.asarray(t, dtype=np.float64)
    if np.isnan(t).any():
        raise ValueError(f"t contains NaN at flat index {int(np.argmax(np.isnan(t.ravel())))}")
    if (t < 0).any():
        raise ValueError(
            f"t must be ≥ 0 (training time), got {t.ravel()[np.argmax(t.ravel() < 0)]}"
        )
    lr = positive_float(learning_rate, "learning_rate")
    tau = np.where(np.isinf(t), np.inf, t * lr / normalization)
    return jnp.asarray(tau.ravel(), dtype), t.shape


def _leading(a, t_shape):
    """(T, ...) → t_shape + (...)."""
    return a.reshape(t_shape + a.shape[1:])


def _kernel_part(k, g: str, name: str, dtype):
    """The `g` field of a Kernel-like value, or the array itself."""
    if hasattr(k, "ntk") or hasattr(k, "nngp"):
        v = getattr(k, g, None)
        if v is None:
            raise ValueError(f"{name} has no {g!r} kernel (its .{g} is None or missing)")
        k = v
    return as_float_array(k, name, dtype)


def _train_kernels(k, name: str, dtype) -> list:
    """The (n, n) kernels a Kernel-like `k` holds, NNGP first (a plain array: [k])."""
    gets = [g for g in GETS if getattr(k, g, None) is not None] or ["ntk"]
    return [_kernel_part(k, g, name, dtype) for g in gets]


def _check_cross(k_td, n: int, name: str, dtype, get=None):
    """The (m, n) test-train kernel (the `get` field of a Kernel-like value), checked."""
    k_td = (
        as_float_array(k_td, name, dtype) if get is None else _kernel_part(k_td, get, name, dtype)
    )
    if k_td.ndim != 2 or k_td.shape[1] != n:
        raise ValueError(f"{name} must have shape (m, {n}), got {tuple(k_td.shape)}")
    check_finite(k_td, name)
    return k_td


def _solve(tk: _TrainKernel, b):
    """(K + δI)⁺ b for b (n[, c]): 1/λ on λ > tol, 0 on the numerical null space."""
    return apply_spectral_filter(tk.eig, flow_mode_factors(tk.eig, np.inf).test_weight[0], b)


def _with_diagnostics(predict_fn, train_kernel_of):
    """Attach `predict_fn.diagnostics(get="ntk")` → KernelDiagnostics of K_get + δI."""
    predict_fn.diagnostics = lambda get="ntk": train_kernel_of(get).diagnostics
    predict_fn.train_kernel = train_kernel_of
    return predict_fn


def gradient_descent_mse(
    k_train_train,
    y_train,
    learning_rate=1.0,
    diag_reg=0.0,
    diag_reg_absolute_scale: bool = False,
    *,
    dtype=None,
):
    """Gradient flow on neural-tangents' MSE loss, closed form: u(t), f_t(x_test) at any t.

    u(τ) = f₀(X) + V (e^{−Λτ} − 1) Vᵀ(f₀(X) − y),  f_τ(x) = f₀(x) − K(x, X) V φ_τ(Λ) Vᵀ(f₀(X) − y),
    τ = learning_rate · t / y_train.size, (Λ, V) the eigensystem of K + δI,
    φ_τ(λ) = (1 − e^{−λτ})/λ. t = None: u = y and f(x) = f₀(x) + K(x, X)(K + δI)⁺(y − f₀(X)).

    Args:
      k_train_train: (n, n) kernel on the training inputs.
      y_train: (n,) or (n, k) targets.
      learning_rate: η; time runs as η t.
      diag_reg: δ = diag_reg · tr(K)/n added to the diagonal (or δ = diag_reg, next argument).
      diag_reg_absolute_scale: `diag_reg` in absolute units.
      dtype: solve dtype, float64 by default (needs x64 mode) or float32.

    Returns:
      predict_fn(t=None, fx_train_0=0.0, fx_test_0=None, k_test_train=None): `fx_train_t`,
      `fx_test_t`, or `(fx_train_t, fx_test_t)` as neural-tangents (a `None` initial output skips
      that set), with leading axes t.shape; k_test_train (m, n). `predict_fn.diagnostics()` gives
      the `KernelDiagnostics` (condition number) of K + δI.

    Example:
      >>> predict_fn = ntk_air.predict.gradient_descent_mse(H, y)
      >>> fx_train, fx_test = predict_fn(jnp.array([0.0, 1e9]), 0.0, 0.0, K_test_train)
      >>> fx_train.shape, fx_test.shape, bool(jnp.allclose(fx_train[1], y, atol=1e-3))
      ((2, 40), (2, 12), True)

    Reference: Lee et al. arXiv 1902.06720, eqs. 9-11 (neural-tangents `gradient_descent_mse`).
    """
    tk = _train_kernel(k_train_train, diag_reg, diag_reg_absolute_scale, dtype=dtype)
    dtype = tk.kernel.dtype
    n = tk.kernel.shape[0]
    y = check_targets(y_train, n, dtype)

    def initial(f0, name, shape):
        if f0 is None:
            return None
        f0 = as_float_array(f0, name, dtype)
        try:
            return jnp.broadcast_to(f0, shape)
        except ValueError:
            raise ValueError(
                f"{name} must broadcast to shape {shape}, got {tuple(f0.shape)}"
            ) from None

    def predict_fn(t=None, fx_train_0=0.0, fx_test_0=None, k_test_train=None):
        if fx_train_0 is None and fx_test_0 is None:
            raise ValueError("fx_train_0 and fx_test_0 are both None: nothing to predict")
        if fx_test_0 is not None and k_test_train is None:
            raise ValueError("test predictions (fx_test_0 given) need k_test_train")
        f0 = initial(fx_train_0, "fx_train_0", y.shape)
        k_td = None
        if fx_test_0 is not None:
            k_td = _check_cross(k_test_train, n, "k_test_train", dtype)
            g0 = initial(fx_test_0, "fx_test_0", (k_td.shape[0],) + y.shape[1:])
        residual0 = -y if f0 is None else f0 - y
        if t is None:
            train = y
            test = None if k_td is None else g0 - k_td @ _solve(tk, residual0)
        else:
            tau, t_shape = flow_times(t, learning_rate, y.size, dtype)
            factors = flow_mode_factors(tk.eig, tau)
            c = to_eigenbasis(tk.eig, residual0)  # (n[, k])
            train = test = None
            v = tk.eig.eigenvectors
            if f0 is not None:
                train = _leading(f0 - through_modes(v, factors.fitted, c), t_shape)
            if k_td is not None:
                test = _leading(g0 - through_modes(k_td @ v, factors.test_weight, c), t_shape)
        if fx_test_0 is None:
            return train
        if fx_train_0 is None:
            return test
        return train, test

    return _with_diagnostics(predict_fn, lambda get: tk)


def through_modes(a, g, c):
    """a diag(g_t) c for every time: a (m, n), g (T, n), c (n[, k]) → (T, m[, k])."""
    if c.ndim == 1:
        return (g * c) @ a.T
    return jnp.einsum("mi,ti,ik->tmk", a, g, c)


def gp_inference(
    k_train_train,
    y_train,
    diag_reg=0.0,
    diag_reg_absolute_scale: bool = False,
    *,
    dtype=None,
):
    """Posterior of the NNGP / NTK Gaussian process (neural-tangents' `predict.gp_inference`).

    mean = K_*X (K + δI)⁺ y; covariance ("nngp"): Σ_** − Σ_*X (Σ + δI)⁺ Σ_X*; ("ntk", the
    infinite ensemble trained to convergence): Σ_** + T Σ Tᵀ − (T Σ_X* + (T Σ_X*)ᵀ) with
    T = Θ_*X (Θ + δI)⁺; ("ntkgp"): Θ_** − Θ_*X (Θ + δI)⁺ Θ_X* (⁺: the pseudo-inverse).

    Args:
      k_train_train: (n, n) array, or a Kernel-like value with `.nngp` / `.ntk` (n, n).
      y_train: (n,) or (n, k) targets.
      diag_reg: δ = diag_reg · tr(K)/n (or absolute, next argument).
      diag_reg_absolute_scale: `diag_reg` in absolute units.
      dtype: solve dtype, float64 by default (needs x64 mode) or float32.

    Returns:
      predict_fn(get=None, k_test_train=None, k_test_test=None): for each name in get ("nngp",
      "ntk", "ntkgp"; None = ("nngp", "ntk")) the mean (m[, k]), or `Gaussian(mean, covariance
      (m, m))` when k_test_test is given; one value for a string get, else a namedtuple
      `Gaussians`. k_test_train None gives the train set: N(y, 0).

    Example:
      >>> k = kernel_fn(x)
      >>> predict_fn = ntk_air.predict.gp_inference(k, y, diag_reg=1e-2)
      >>> post = predict_fn("nngp", kernel_fn(x_test, x), kernel_fn(x_test))
      >>> post.mean.shape, post.covariance.shape
      ((12,), (12, 12))

    Reference: Rasmussen & Williams (2006) eq. 2.25-2.26; Lee et al. arXiv 1902.06720 eq. 16;
    He et al. arXiv 2007.05864 (NTKGP).
    """
    dtype = solve_dtype(dtype)
    kernels = _train_kernels(k_train_train, "k_train_train", dtype)
    n = kernels[0].shape[0]
    y = check_targets(y_train, n, dtype)
    for k in kernels:  # checked now, decomposed at the first prediction
        if k.ndim == 2 and k.shape[0] == k.shape[1]:
            require_symmetric(k, "k_train_train")

    @functools.cache
    def tk_of(g: str) -> _TrainKernel:
        k = _kernel_part(k_train_train, g, f"k_train_train.{g}", dtype)
        name = f"k_train_train ({g})"
        return _train_kernel(k, diag_reg, diag_reg_absolute_scale, name=name, dtype=dtype)

    def posterior(g: str, k_test_train, k_test_test):
        """The mean, or Gaussian(mean, covariance), of the posterior `g`."""
        k = "ntk" if g == "ntkgp" else g
        tk = tk_of(k)
        if k_test_train is None:  # the train set: N(y, 0)
            return y if k_test_test is None else Gaussian(y, jnp.zeros((n, n), dtype))
        k_td = _check_cross(k_test_train, n, "k_test_train", dtype, get=k)
        mean = k_td @ _solve(tk, y)
        if k_test_test is None:
            return mean
        k_tt = _kernel_part(k_test_test, "ntk" if g == "ntkgp" else "nngp", "k_test_test", dtype)
        if g != "ntk":
            return Gaussian(mean, k_tt - k_td @ _solve(tk, k_td.T))
        if (
            getattr(k_train_train, "nngp", None) is None
            or getattr(k_test_train, "nngp", None) is None
        ):
            raise ValueError(
                "the NTK posterior covariance needs the NNGP too: pass k_train_train and "
                "k_test_train as Kernels with both .nngp and .ntk"
            )
        s_dd = _kernel_part(k_train_train, "nngp", "k_train_train", dtype)
        s_td = _kernel_part(k_test_train, "nngp", "k_test_train", dtype)
        term_1 = _solve(tk, k_td.T)  # (n, m) (Θ + δI)⁺ Θ_X*
        term_2 = k_td @ _solve(tk, s_td.T)  # (m, m) Θ_*X (Θ + δI)⁺ Σ_X*
        return Gaussian(mean, term_1.T @ s_dd @ term_1 - (term_2 + term_2.T) + k_tt)

    def predict_fn(get=None, k_test_train=None, k_test_test=None):
        single, names = canonical_get(get, GETS + ("ntkgp",))
        out = {g: posterior(g, k_test_train, k_test_test) for g in names}
        return _output(out, single, names)

    return _with_diagnostics(predict_fn, tk_of)


@functools.partial(jax.jit, static_argnames=("get", "compute_cov"))
def _ensemble_moments(eig, tau, y2, k_td, s_eig, s_td, s_tt, get: str, compute_cov: bool):
    """Mean (T, m, k) and covariance (T, m, m) (None unless compute_cov) at flow times τ (T,).

    s_eig = VᵀΣ_XX V, the NNGP in the eigenbasis of the train kernel (NTK covariances only).
    """
    lam, v = eig.eigenvalues, eig.eigenvectors
    f = flow_mode_factors(eig, tau)
    c = to_eigenbasis(eig, y2)
    if k_td is None:
        mean = through_modes(v, f.fitted, c)
    else:
        a = k_td @ v  # (m, n) K(x_test, X) V
        mean = through_modes(a, f.test_weight, c)
    if not compute_cov:
        return mean, None
    if k_td is None:
        if get == "nngp":
            return mean, (v[None] * (lam * f.residual**2)[:, None, :]) @ v.T
        w = v[None] * f.residual[:, None, :]  # (T, n, n) V e^{−Λτ}
        return mean, w @ s_eig @ w.swapaxes(1, 2)
    if get == "nngp":
        phi2 = flow_mode_factors(eig, 2.0 * tau).test_weight
        return mean, s_tt[None] - (a[None] * phi2[:, None, :]) @ a.T
    p = a[None] * f.test_weight[:, None, :]  # (T, m, n) A φ_τ(Λ)
    term_2 = p @ (v.T @ s_td.T)  # (T, m, m) A φ VᵀΣ_X*
    cov = p @ s_eig @ p.swapaxes(1, 2) - (term_2 + term_2.swapaxes(1, 2)) + s_tt[None]
    return mean, cov


def gradient_descent_mse_ensemble(
    kernel_fn,
    x_train,
    y_train,
    learning_rate=1.0,
    diag_reg=0.0,
    diag_reg_absolute_scale: bool = False,
    *,
    dtype=None,
):
    """Mean and covariance of the infinite ensemble of wide networks trained on MSE, at any t.

    For get = "ntk" (gradient flow of the linearized networks from random initialization) or
    "nngp" (training only the readout layer), with τ = learning_rate · t / y_train.size and
    (Λ, V) the eigensystem of K + δI (see the module docstring for the covariances):
    mean(x) = K(x, X) V φ_τ(Λ) Vᵀ y on test points, V(1 − e^{−Λτ})Vᵀ y on the train points;
    t = None is the end of training, `gp_inference` on the same kernels.

    Args:
      kernel_fn: an ntk_air `KernelFn`, kernel_fn(x1, x2=None) -> Kernel(nngp, ntk).
      x_train: (n, ...) training inputs.
      y_train: (n,) or (n, k) targets.
      learning_rate: η; time runs as η t.
      diag_reg: δ = diag_reg · tr(K)/n (or absolute, next argument).
      diag_reg_absolute_scale: `diag_reg` in absolute units.
      dtype: solve dtype, float64 by default (needs x64 mode) or float32.

    Returns:
      predict_fn(t=None, x_test=None, get=None, compute_cov=False): per name in get the mean
      (t.shape + (m[, k])) or `Gaussian(mean, covariance t.shape + (m, m))`; one value for a
      string get, else a namedtuple `Gaussians` (get=None: nngp and ntk). x_test=None predicts on
      the training inputs. `predict_fn.diagnostics(get)` gives the train kernel's condition number.

    Example:
      >>> predict_fn = ntk_air.predict.gradient_descent_mse_ensemble(kernel_fn, x, y, diag_reg=1e-4)
      >>> out = predict_fn(jnp.array([1.0, 100.0]), x_test, "ntk", compute_cov=True)
      >>> out.mean.shape, out.covariance.shape
      ((2, 12), (2, 12, 12))

    Reference: Lee et al. arXiv 1902.06720, eqs. 14-16; neural-tangents
    `predict.gradient_descent_mse_ensemble`.
    """
    dtype = solve_dtype(dtype)
    k_dd = kernel_fn(x_train)
    n = _train_kernels(k_dd, "kernel_fn(x_train)", dtype)[0].shape[0]
    y = check_targets(y_train, n, dtype)
    gp = gp_inference(k_dd, y, diag_reg, diag_reg_absolute_scale, dtype=dtype)
    tk_of = gp.train_kernel  # the decompositions are shared with t = None (gp_inference)
    y2 = y if y.ndim == 2 else y[:, None]

    @functools.cache
    def nngp_in_ntk_basis():
        """VᵀΣV, once per predictor."""
        v = tk_of("ntk").eig.eigenvectors
        return v.T @ _kernel_part(k_dd, "nngp", "kernel_fn(x_train)", dtype) @ v

    def predict_fn(t=None, x_test=None, get=None, compute_cov=False):
        single, names = canonical_get(get)
        for g in GETS:  # the NTK covariance needs the NNGP too
            if g in names or (g == "nngp" and compute_cov):
                _kernel_part(k_dd, g, f"kernel_fn(x_train).{g}", dtype)
        k_td = nngp_tt = None
        if x_test is not None:
            k_td = kernel_fn(x_test, x_train)
            if compute_cov:
                nngp_tt = _kernel_part(kernel_fn(x_test), "nngp", "kernel_fn(x_test)", dtype)
        if t is None:
            k_tt = nngp_tt if x_test is not None else (True if compute_cov else None)
            return gp(names[0] if single else names, k_td, k_tt)
        tau, t_shape = flow_times(t, learning_rate, y.size, dtype)
        name = "kernel_fn(x_test, x_train)"

        def cross(g):
            return None if k_td is None else _check_cross(k_td, n, name, dtype, get=g)

        s_td = cross("nngp") if compute_cov and "ntk" in names else None
        out = {}
        for g in names:
            s_eig = nngp_in_ntk_basis() if compute_cov and g == "ntk" else None
            mean, cov = _ensemble_moments(
                tk_of(g).eig, tau, y2, cross(g), s_eig, s_td, nngp_tt, g, bool(compute_cov)
            )
            mean = _leading(mean if y.ndim == 2 else mean[..., 0], t_shape)
            out[g] = Gaussian(mean, _leading(cov, t_shape)) if compute_cov else mean
        return _output(out, single, names)

    return _with_diagnostics(predict_fn, tk_of)
