"""Function-space gradient descent on any loss (an ODE), and the largest stable learning rate."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental.ode import odeint

from .._checks import as_float_array, check_finite
from ._mse import _check_cross, check_targets
from ._spectral import _train_kernel, positive_float, solve_dtype


class ODEState(NamedTuple):
    """State of the function-space ODE (neural-tangents' `predict.ODEState`; a pytree)."""

    fx_train: jax.Array | None = None  # (n[, k]) outputs on the training inputs
    fx_test: jax.Array | None = None  # (m[, k]) outputs on the test inputs
    qx_train: jax.Array | None = None  # (n[, k]) momentum of the train outputs
    qx_test: jax.Array | None = None  # (m[, k]) momentum of the test outputs


def gradient_descent(loss, k_train_train, y_train, learning_rate=1.0, momentum=None, *, dtype=None):
    """Function-space gradient flow (optionally with momentum) on any loss, by an ODE solver.

    df(X)/dt = −K ∇_f loss(f(X), y), df(x)/dt = −K(x, X) ∇_f loss(f(X), y), with t scaled by
    η (absolute time η t). With momentum μ the second-order flow runs in units of √η:
    df/dt = q, dq/dt = −K ∇loss + ((μ − 1)/√η) q (`jax.experimental.ode.odeint`).

    Args:
      loss: loss(fx_train, y_train) -> scalar, differentiable in its first argument.
      k_train_train: (n, n) kernel on the training inputs.
      y_train: (n,) or (n, k) targets.
      learning_rate: η > 0.
      momentum: μ, or None for plain gradient flow.
      dtype: float64 by default (needs x64 mode) or float32.

    Returns:
      predict_fn(t=None, fx_train_or_state_0=0.0, fx_test_0=None, k_test_train=None) as
      neural-tangents': `fx_train_t`, `fx_test_t` or both with leading axes t.shape (t
      increasing; None = ∞, may not converge), or an `ODEState` when given one.

    Example:
      >>> mse = lambda f, y: 0.5 * jnp.mean((f - y) ** 2)
      >>> predict_fn = ntk_air.predict.gradient_descent(mse, H, y)
      >>> fx = predict_fn(jnp.array([0.0, 10.0]), jnp.zeros(40))
      >>> fx.shape, float(fx[0].max())
      ((2, 40), 0.0)

    Reference: Lee et al. arXiv 1902.06720, section 2.2; Goh, "Why Momentum Really Works" (2017).
    """
    dtype = solve_dtype(dtype)
    k = as_float_array(k_train_train, "k_train_train", dtype)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(f"k_train_train must be a square (n, n) matrix, got {tuple(k.shape)}")
    check_finite(k, "k_train_train")
    n = k.shape[0]
    y = check_targets(y_train, n, dtype)
    lr = positive_float(learning_rate, "learning_rate")
    grad_loss = jax.grad(lambda fx: loss(fx, y))
    if momentum is not None:
        lr = lr**0.5
        friction = (float(momentum) - 1.0) / lr

    def dstate_dt(k_test_train):
        def f(state: ODEState, _t) -> ODEState:
            g = grad_loss(state.fx_train)
            d_train = -(k @ g)
            d_test = None if state.fx_test is None else -(k_test_train @ g)
            if momentum is None:
                return ODEState(d_train, d_test)
            d_train = d_train + friction * state.qx_train
            if d_test is not None:
                d_test = d_test + friction * state.qx_test
            return ODEState(state.qx_train, state.qx_test, d_train, d_test)

        return f

    def filled(a, shape):  # zeros for None
        return jnp.zeros(shape, dtype) if a is None else jnp.broadcast_to(a, shape).astype(dtype)

    def predict_fn(t=None, fx_train_or_state_0=0.0, fx_test_0=None, k_test_train=None):
        given_state = isinstance(fx_train_or_state_0, ODEState)
        if given_state:
            if fx_test_0 is not None:
                raise ValueError("fx_test_0 must be None when an ODEState is given (it holds it)")
            f0, fx_test_0, q0, q0_test = fx_train_or_state_0
        else:
            f0, q0, q0_test = fx_train_or_state_0, None, None
        if f0 is None and fx_test_0 is None:
            raise ValueError("fx_train_0 and fx_test_0 are both None: nothing to predict")
        k_td = None
        if fx_test_0 is not None:
            if k_test_train is None:
                raise ValueError("test predictions (fx_test_0 given) need k_test_train")
            k_td = _check_cross(k_test_train, n, "k_test_train", dtype)
        test_shape = None if k_td is None else (k_td.shape[0],) + y.shape[1:]
        if momentum is None and (q0 is not None or q0_test is not None):
            raise ValueError("momentum state (qx_train / qx_test) given, but momentum is None")
        state = ODEState(
            filled(f0, y.shape), None if fx_test_0 is None else filled(fx_test_0, test_shape)
        )
        if momentum is not None:
            state = state._replace(
                qx_train=filled(q0, y.shape),
                qx_test=None if fx_test_0 is None else filled(q0_test, test_shape),
            )
        times = jnp.asarray(np.inf if t is None else t, dtype) * lr
        t_shape = times.shape
        times = times.reshape(-1)
        start = jnp.where(times[0] == 0, jnp.full((1,), -1e-24, dtype), jnp.zeros((1,), dtype))
        out = odeint(dstate_dt(k_td), state, jnp.concatenate([start, times]))
        out = jax.tree_util.tree_map(lambda a: a[1:].reshape(t_shape + a.shape[1:]), out)
        if given_state:
            return out
        if fx_test_0 is None:
            return out.fx_train
        if f0 is None:
            return out.fx_test
        return out.fx_train, out.fx_test

    return predict_fn


def max_learning_rate(ntk_train_train, y_train_size=None, momentum=0.0, eps=1e-12) -> float:
    """The largest stable learning rate of (momentum) gradient descent on neural-tangents' MSE.

    η_max = 2 (1 + μ) N / (λ_max(Θ) + eps), N = y_train_size (default n): GD on the loss
    ‖f − y‖²/(2N) contracts while |1 − ηλ_max/N| < 1, heavy-ball momentum widens that by 1 + μ.

    Args:
      ntk_train_train: (n, n) NTK on the training inputs.
      y_train_size: N = y_train.size (n · outputs); None for n.
      momentum: μ ≥ 0.
      eps: added to λ_max against division by zero.

    Returns:
      η_max as a Python float.

    Example:
      >>> lr = ntk_air.predict.max_learning_rate(H)
      >>> bool(jnp.isclose(lr, 2 * 40 / jnp.linalg.eigvalsh(H)[-1]))
      True

    Reference: Lee et al. arXiv 1902.06720, section 2.4; Goh, "Why Momentum Really Works" (2017).
    """
    tk = _train_kernel(ntk_train_train, name="ntk_train_train")
    factor = tk.kernel.shape[0] if y_train_size is None else int(y_train_size)
    if factor < 1:
        raise ValueError(f"y_train_size must be a positive integer, got {y_train_size!r}")
    lam_max = float(tk.diagnostics.eigenvalue_max)
    return 2.0 * (1.0 + float(momentum)) * factor / (lam_max + float(eps))
