"""Input checks that survive `jit` and `vmap`, through `jax.experimental.checkify`.

The toolkit's input checks run on concrete values before any tracing: inside a function you
`jax.jit` or `jax.vmap` yourself, the arrays are tracers and those checks are skipped (a traced
value cannot be inspected without leaving the compiled program). There, NaN or non-unit inputs,
negative or fractional steps, or a diverging step size give NaN/inf or wrong values instead of an
error. The functions here put the same checks into the compiled program as `checkify.check`s:
wrap the function you transform with `checkify.checkify` and call `err.throw()` — `run` does both.

    >>> def h_inf(x):
    ...     return checked.kernel(ntk_air.kernels.two_layer_relu_kernel_fn(), x, unit_norm=True)
    >>> H = checked.run(jax.jit(h_inf), jnp.asarray(x))    # raises on NaN or non-unit rows
    >>> bad = jnp.asarray(x).at[2, 0].set(jnp.nan)
    >>> try:
    ...     checked.run(jax.jit(h_inf), bad)
    ... except Exception as err:
    ...     print(str(err).splitlines()[0])
    x1 holds a NaN or inf (checked under jit) (`check` failed)
"""

from __future__ import annotations

import jax.numpy as jnp
from jax.experimental import checkify

__all__ = ["kernel", "steps", "step_size", "finite", "run"]


def finite(x, name: str):
    """checkify-check that every entry of x is finite."""
    checkify.check(jnp.all(jnp.isfinite(x)), f"{name} holds a NaN or inf (checked under jit)")
    return x


def kernel(kernel_fn, x1, x2=None, *, unit_norm: bool = False, rtol: float | None = None):
    """`kernel_fn(x1, x2)` with checkify checks of its inputs and of the result.

    Checks: finite inputs; with `unit_norm`, rows of norm 1 within rtol (1e-5 in float32, 1e-10 in
    float64, as the eager check); a finite kernel.
    """
    for name, x in (("x1", x1), ("x2", x2)):
        if x is None:
            continue
        finite(x, name)
        if unit_norm:
            tol = rtol if rtol is not None else (1e-5 if x.dtype == jnp.float32 else 1e-10)
            dev = jnp.max(jnp.abs(jnp.linalg.norm(x.reshape(x.shape[0], -1), axis=1) - 1.0))
            checkify.check(
                dev <= tol,
                f"{name} rows must have unit norm (docs/science/kernels.md#unit-norm): "
                "max |‖x‖ − 1| = {dev}",
                dev=dev,
            )
    k = kernel_fn(x1, x2)
    finite(k.ntk, "the kernel")
    return k


def steps(values, *, integer: bool = True):
    """checkify-check non-negative (whole, for GD) step counts; returns them."""
    v = jnp.asarray(values)
    checkify.check(jnp.all(v >= 0), "steps must be non-negative (checked under jit)")
    if integer:
        whole = jnp.all(jnp.where(jnp.isfinite(v), v == jnp.round(v), True))
        checkify.check(whole, "GD steps must be whole numbers (checked under jit)")
    return v


def step_size(eig, eta=None):
    """η (default 1/λ_max) with a checkify check of 0 < η < 2/λ_max."""
    lam_max = eig.eigenvalues[0]
    eta = 1.0 / lam_max if eta is None else jnp.asarray(eta)
    checkify.check(eta > 0, "the step size must be positive (checked under jit)")
    checkify.check(
        eta * lam_max < 2,
        "step size η·λ_max = {r} ≥ 2: gradient descent diverges (checked under jit)",
        r=eta * lam_max,
    )
    return eta


def run(fn, *args, **kwargs):
    """checkify `fn`, call it, raise the first failed check (`err.throw()`), return its output."""
    err, out = checkify.checkify(fn)(*args, **kwargs)
    err.throw()
    return out
