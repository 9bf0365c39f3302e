"""Infinite-width kernels: the theorem's two-layer ReLU Gram matrix H∞ and deep FC NNGP/NTK.

Two conventions live here, and every function says which one it computes:

* `two_layer_relu` — the network of the ℓ2 theorem (SCIENCE.md §1):
  f(x) = (1/√m) Σ_r a_r ReLU(w_r·x), w_r ~ N(0, κ² I), a_r ∈ {±1} frozen, only W trained.
  Its NTK is H∞_ij = x_i·x_j (π − θ_ij)/(2π), θ_ij = arccos(ρ_ij), ρ_ij the cosine; for unit-norm
  inputs H∞_ij = ρ (π − arccos ρ)/(2π) (Du et al. 2019, arXiv 1810.02054). No readout term.
* `fc_kernel_fn` — neural-tangents' `stax` conventions (NTK parameterization): input kernel
  x·x'/d, `Dense(width, W_std, b_std)` layers, ReLU or erf, readout Dense included in the NTK
  (Jacot et al. 2018, arXiv 1806.07572; Lee et al. 2019, arXiv 1902.06720).
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp

from ._checks import (
    as_float_array,
    check_finite,
    check_rank,
    check_same_features,
    check_unit_norm,
)
from .tiling import call_tiled, check_tile_size, tiled_pairwise

__all__ = [
    "Kernel",
    "two_layer_relu",
    "two_layer_relu_nngp",
    "fc_kernel_fn",
    "make_kernel_fn",
    "ACTIVATIONS",
]

ACTIVATIONS = ("relu", "erf")


class Kernel(NamedTuple):
    """Infinite-width kernels between two sets of inputs (a pytree)."""

    nngp: jax.Array | None  # (n1, n2) output covariance of the network at initialization
    ntk: jax.Array  # (n1, n2) neural tangent kernel


def _prepare(x1, x2, dtype):
    """Validate inputs once, eagerly, before any tracing; returns (x1, x2) as float arrays."""
    x1 = as_float_array(x1, "x1", dtype)
    check_rank(x1, "x1", 2)
    check_finite(x1, "x1")
    if x2 is None:
        return x1, None
    x2 = as_float_array(x2, "x2", x1.dtype)
    check_rank(x2, "x2", 2)
    check_finite(x2, "x2")
    check_same_features(x1, x2)
    return x1, x2


# ---------------------------------------------------------------------------------------------
# The theorem's two-layer ReLU network
# ---------------------------------------------------------------------------------------------


def _gram(x1, x2):
    """x1 x2ᵀ at full float32/float64 precision.

    On GPUs JAX's default float32 matmul may use TF32 (about 3 decimal digits); kernel entries
    and the angles derived from them need the full precision of the requested dtype.
    """
    return jnp.matmul(x1, x2.T, precision=jax.lax.Precision.HIGHEST)


def _angle(dot, prod_sq):
    """θ = ∠(x, x') and √(‖x‖²‖x'‖² − (x·x')²) from a Gram entry and the product of squared norms.

    arctan2 is accurate near 0 and π, unlike arccos. Pairs whose gap prod_sq − dot² is within
    rounding of 0 (θ ≲ 2√eps, e.g. every diagonal entry) get θ = 0 exactly: their computed θ
    would be rounding noise of order √eps, different between jit and eager and between tilings.
    """
    gap = prod_sq - dot**2
    eps = jnp.finfo(dot.dtype).eps
    gap = jnp.where(gap <= 8 * eps * prod_sq, 0.0, gap)
    sin_part = jnp.sqrt(gap)
    return jnp.arctan2(sin_part, dot), sin_part


def _two_layer_block(x1, x2, general):
    dot = _gram(x1, x2)
    if general:
        prod_sq = jnp.sum(x1**2, axis=1)[:, None] * jnp.sum(x2**2, axis=1)[None, :]
    else:
        # Unit norm was checked, so ‖x_i‖²‖x_j‖² = 1 up to rounding; this also keeps |ρ| ≤ 1.
        prod_sq = jnp.ones_like(dot)
    theta, _ = _angle(dot, prod_sq)
    return dot * (jnp.pi - theta) / (2 * jnp.pi)


def _two_layer_nngp_block(x1, x2):
    dot = _gram(x1, x2)
    prod_sq = jnp.sum(x1**2, axis=1)[:, None] * jnp.sum(x2**2, axis=1)[None, :]
    theta, sin_part = _angle(dot, prod_sq)
    return (sin_part + (jnp.pi - theta) * dot) / (2 * jnp.pi)


@functools.partial(jax.jit, static_argnames=("general", "tile_size"))
def _two_layer_relu_jit(x1, x2, general, tile_size):
    return tiled_pairwise(lambda a, b: _two_layer_block(a, b, general), x1, x2, tile_size)


@functools.partial(jax.jit, static_argnames=("tile_size",))
def _two_layer_nngp_jit(x1, x2, tile_size):
    return tiled_pairwise(_two_layer_nngp_block, x1, x2, tile_size)


def two_layer_relu(x1, x2=None, *, general: bool = False, tile_size: int | None = None, dtype=None):
    """Gram matrix H∞ of the theorem's two-layer ReLU network (first layer trained).

    H∞_ij = E_{w~N(0,I)}[x_i·x_j 1{w·x_i ≥ 0} 1{w·x_j ≥ 0}] = x_i·x_j (π − θ_ij) / (2π),
    and for unit-norm rows H∞_ij = ρ_ij (π − arccos ρ_ij) / (2π), ρ_ij = x_i·x_j.
    Independent of the init scale κ and of the readout (a_r² = 1); no 1/d input scaling.
    Precision: θ is recovered from a Gram entry, which for nearly parallel pairs determines it only
    to about √eps (arccos is ill-conditioned at 1). Pairs with θ below that resolution (every
    diagonal entry among them) are given θ = 0, exact for identical rows; other pairs are accurate
    to a few eps.

    Args:
      x1: (n1, d) inputs, unit-norm rows unless `general=True`.
      x2: (n2, d) inputs or None for x2 = x1.
      general: use the formula with norms, accepting rows of any (nonzero) norm.
      tile_size: rows per tile (any positive int) or None for untiled.
      dtype: float32 or float64 (float64 needs x64 mode); default follows the x64 flag.

    Returns:
      (n1, n2) array H∞(x1, x2).

    Example:
      >>> x = ntk_air.data.unit_normalize(jax.random.normal(jax.random.key(0), (5, 3)))
      >>> H = ntk_air.kernels.two_layer_relu(x)   # diag = 1/2

    Reference: Du, Zhai, Poczos, Singh, arXiv 1810.02054; Arora et al., arXiv 1901.08584.
    """
    check_tile_size(tile_size)
    x1, x2 = _prepare(x1, x2, dtype)
    if not general:
        check_unit_norm(x1, "x1")
        if x2 is not None:
            check_unit_norm(x2, "x2")

    def grid(a, b, t):
        return _two_layer_relu_jit(a, b, general, t)

    return call_tiled(grid, x1, x1 if x2 is None else x2, tile_size)


def two_layer_relu_nngp(x1, x2=None, *, tile_size: int | None = None, dtype=None):
    """NNGP of the theorem's two-layer network at κ = 1 (output covariance at initialization).

    Σ_ij = E_{w~N(0,I)}[ReLU(w·x_i) ReLU(w·x_j)] = ‖x_i‖‖x_j‖ (sin θ_ij + (π − θ_ij) cos θ_ij)/(2π)
    (Cho & Saul 2009, arc-cosine kernel of order 1). Scales as κ² for w ~ N(0, κ² I).

    Args/Returns: as `two_layer_relu` (any nonzero norms accepted).
    """
    check_tile_size(tile_size)
    x1, x2 = _prepare(x1, x2, dtype)
    return call_tiled(_two_layer_nngp_jit, x1, x1 if x2 is None else x2, tile_size)


# ---------------------------------------------------------------------------------------------
# Deep fully connected networks, neural-tangents conventions
# ---------------------------------------------------------------------------------------------


def _dense(nngp, c1, c2, ntk, w_std, b_std):
    """Dense(width, W_std, b_std) in NTK parameterization: Σ ← W²Σ + b², Θ ← Σ_new + W²Θ."""
    nngp = w_std**2 * nngp + b_std**2
    c1 = w_std**2 * c1 + b_std**2
    c2 = w_std**2 * c2 + b_std**2
    ntk = nngp + w_std**2 * ntk
    return nngp, c1, c2, ntk


def _relu(nngp, c1, c2, ntk):
    """Arc-cosine recursion: Σ ← (√(c1c2 − Σ²) + (π − θ)Σ)/(2π), Θ ← Θ (π − θ)/(2π)."""
    theta, sin_part = _angle(nngp, c1[:, None] * c2[None, :])
    dot_sigma = (jnp.pi - theta) / (2 * jnp.pi)
    nngp = sin_part / (2 * jnp.pi) + dot_sigma * nngp
    return nngp, c1 / 2, c2 / 2, ntk * dot_sigma


def _erf(nngp, c1, c2, ntk):
    """Arcsine recursion for erf: Σ ← (2/π) arcsin(2Σ / √((1+2c1)(1+2c2))), Θ ← Θ Σ̇."""
    prod = (1 + 2 * c1)[:, None] * (1 + 2 * c2)[None, :]
    root = jnp.sqrt(jnp.maximum(prod - 4 * nngp**2, 0.0))
    dot_sigma = (4 / jnp.pi) / root
    nngp_new = (2 / jnp.pi) * jnp.arctan2(2 * nngp, root)

    def diag(c):
        return (2 / jnp.pi) * jnp.arctan2(c, jnp.sqrt(c + 0.25))

    return nngp_new, diag(c1), diag(c2), ntk * dot_sigma


_ACTIVATION_FNS = {"relu": _relu, "erf": _erf}


def _fc_block(x1, x2, depth, activation, w_std, b_std):
    d = x1.shape[1]
    nngp = _gram(x1, x2) / d
    c1 = jnp.sum(x1**2, axis=1) / d
    c2 = jnp.sum(x2**2, axis=1) / d
    ntk = jnp.zeros_like(nngp)
    act = _ACTIVATION_FNS[activation]
    for _ in range(depth):
        nngp, c1, c2, ntk = _dense(nngp, c1, c2, ntk, w_std, b_std)
        nngp, c1, c2, ntk = act(nngp, c1, c2, ntk)
    nngp, c1, c2, ntk = _dense(nngp, c1, c2, ntk, w_std, b_std)
    return Kernel(nngp=nngp, ntk=ntk)


@functools.partial(jax.jit, static_argnames=("depth", "activation", "w_std", "b_std", "tile_size"))
def _fc_jit(x1, x2, depth, activation, w_std, b_std, tile_size):
    return tiled_pairwise(
        lambda a, b: _fc_block(a, b, depth, activation, w_std, b_std), x1, x2, tile_size
    )


def _check_fc_args(depth, activation, w_std, b_std):
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"depth must be a non-negative int (hidden layers), got {depth!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    for name, v in (("w_std", w_std), ("b_std", b_std)):
        if not (isinstance(v, int | float) and jnp.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite non-negative number, got {v!r}")
    if w_std == 0:
        raise ValueError("w_std must be positive, got 0")


def fc_kernel_fn(
    depth: int,
    activation: Literal["relu", "erf"] = "relu",
    w_std: float = 1.0,
    b_std: float = 0.0,
):
    """Infinite-width NNGP and NTK of a deep fully connected network (neural-tangents conventions).

    The architecture is neural-tangents'
    `serial(*[Dense(w, W_std, b_std), act()] * depth, Dense(1, W_std, b_std))`:
    `depth` hidden layers followed by a readout. Recursion, with Σ⁰ = x·x'/d, Θ⁰ = 0:
      Dense:  Σ ← W_std² Σ + b_std²,   Θ ← Σ + W_std² Θ
      ReLU:   Σ ← (√(c c' − Σ²) + (π − θ) Σ)/(2π),  Θ ← Θ (π − θ)/(2π),  θ = ∠(Σ, c, c')
      erf:    Σ ← (2/π) arcsin(2Σ/√((1+2c)(1+2c'))),  Θ ← Θ (4/π)/√((1+2c)(1+2c') − 4Σ²)
    with c, c' the diagonal variances carried along.

    Args:
      depth: number of hidden (Dense + activation) layers, ≥ 0.
      activation: "relu" or "erf" (erf(x), i.e. stax.Erf() with a=b=1, c=0).
      w_std, b_std: weight and bias standard deviations of every Dense layer.

    Returns:
      kernel_fn(x1, x2=None, *, tile_size=None, dtype=None) -> Kernel(nngp, ntk), each (n1, n2).

    Example:
      >>> kernel_fn = ntk_air.kernels.fc_kernel_fn(depth=3, activation="relu", w_std=1.5, b_std=0.1)
      >>> k = kernel_fn(x_train)          # k.ntk, k.nngp: (n, n)

    Reference: Lee et al. arXiv 1711.00165 (NNGP); Jacot et al. arXiv 1806.07572 (NTK);
    Novak et al. arXiv 1912.02803 (neural-tangents).
    """
    _check_fc_args(depth, activation, w_std, b_std)
    w_std, b_std = float(w_std), float(b_std)

    def kernel_fn(x1, x2=None, *, tile_size: int | None = None, dtype=None) -> Kernel:
        check_tile_size(tile_size)
        x1, x2 = _prepare(x1, x2, dtype)

        def grid(a, b, t):
            return _fc_jit(a, b, depth, activation, w_std, b_std, t)

        return call_tiled(grid, x1, x1 if x2 is None else x2, tile_size)

    return kernel_fn


ARCHITECTURES = ("two-layer-relu", "fc")


def make_kernel_fn(
    arch: str = "two-layer-relu",
    *,
    depth: int = 1,
    activation: str = "relu",
    w_std: float = 1.0,
    b_std: float = 0.0,
    general: bool = False,
):
    """One entry point for the CLI and studies: kernel_fn(x1, x2=None, *, tile_size, dtype).

    arch="two-layer-relu" gives Kernel(nngp=two_layer_relu_nngp, ntk=H∞) (theorem convention;
    depth/activation/w_std/b_std do not apply and must be left at their defaults);
    arch="fc" gives `fc_kernel_fn(depth, activation, w_std, b_std)` (neural-tangents convention).
    """
    if arch == "fc":
        return fc_kernel_fn(depth, activation, w_std, b_std)
    if arch == "two-layer-relu":
        if activation != "relu":
            raise ValueError(f"arch 'two-layer-relu' is ReLU only, got activation={activation!r}")

        def kernel_fn(x1, x2=None, *, tile_size=None, dtype=None) -> Kernel:
            ntk = two_layer_relu(x1, x2, general=general, tile_size=tile_size, dtype=dtype)
            nngp = two_layer_relu_nngp(x1, x2, tile_size=tile_size, dtype=dtype)
            return Kernel(nngp=nngp, ntk=ntk)

        return kernel_fn
    raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
