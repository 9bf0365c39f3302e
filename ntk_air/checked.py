"""Input checks that survive `jit` and `vmap`, through `jax.experimental.checkify`.

Inside a function you `jax.jit` or `jax.vmap` yourself, the toolkit's eager input checks cannot
see the values; these put the same checks into the compiled program as `checkify.check`s, which
`run` checkifies and throws.

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

from ._checks import unit_norm_deviation

__all__ = ["kernel", "steps", "step_size", "finite", "run"]


def finite(x, name: str):
    """checkify-check that every entry of x is finite."""
    checkify.check(jnp.all(jnp.isfinite(x)), f"{name} holds a NaN or inf (checked under jit)")
    return x


def kernel(kernel_fn, x1, x2=None, *, unit_norm: bool = False, rtol: float | None = None):
    """`kernel_fn(x1, x2)` with checkify checks: finite inputs, with `unit_norm` rows of norm 1
    within rtol (default 1e-5 in float32, 1e-10 in float64), a finite kernel."""
    for name, x in (("x1", x1), ("x2", x2)):
        if x is None:
            continue
        finite(x, name)
        if unit_norm:
            dev, tol = unit_norm_deviation(x, rtol)
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
