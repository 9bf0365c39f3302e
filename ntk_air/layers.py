"""Composable infinite-width layers: each maps a `KernelState` to the next layer's, NT-style.

A layer is any pure function `KernelState -> KernelState`. The state carries, for two sets of
inputs, the NNGP covariance Σ (n1, n2), the diagonal variances c1 = Σ(x1_i, x1_i) (n1,) and
c2 (n2,), and the NTK Θ (n1, n2). The recursions are the standard ones in neural-tangents'
NTK parameterization (Jacot et al. 2018; Lee et al. 2019; Novak et al. 2019):

  Dense(W_std, b_std):  Σ ← W_std² Σ + b_std²,   Θ ← Σ_new + W_std² Θ
  ReLU:                 Σ ← (√(c c' − Σ²) + (π − θ) Σ)/(2π),   Θ ← Θ (π − θ)/(2π)
  erf:                  Σ ← (2/π) arcsin(2Σ/√((1+2c)(1+2c'))),  Θ ← Θ (4/π)/√((1+2c)(1+2c') − 4Σ²)

with θ = ∠(Σ, c, c'). The layers here are frozen dataclasses, so two equal architectures are
equal (and hashable) objects and share one compilation. `repeat(layer, depth)` runs a layer
`depth` times with `lax.scan`: the compiled program does not grow with the depth.

    >>> from ntk_air import kernels, layers
    >>> net = layers.serial(layers.repeat(layers.serial(layers.dense(1.5, 0.1), layers.relu()), 3),
    ...                     layers.dense(1.5, 0.1))
    >>> kernel_fn = kernels.from_layers(net)     # a KernelFn: kernel_fn(x1, x2=None) -> Kernel
    >>> fc = kernels.fc_kernel_fn(depth=3, activation="relu", w_std=1.5, b_std=0.1)
    >>> bool(jnp.allclose(kernel_fn(x).ntk, fc(x).ntk))      # the same network
    True

A user's own layer is a function of the state, e.g. a leaky-free "identity" layer
`lambda s: s`, and composes with `serial` like the built-in ones.

Reference: Jacot et al. arXiv 1806.07572; Lee et al. arXiv 1711.00165; Novak et al.
arXiv 1912.02803 (neural-tangents `stax`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from ._checks import check_int

__all__ = [
    "KernelState",
    "Layer",
    "Dense",
    "Relu",
    "Erf",
    "Serial",
    "Repeat",
    "dense",
    "relu",
    "erf",
    "serial",
    "repeat",
    "input_state",
    "angle",
    "first_nonfinite_layer",
]

Layer = Callable[["KernelState"], "KernelState"]
"""An infinite-width layer: a function `KernelState -> KernelState`."""


class KernelState(NamedTuple):
    """Kernels of one layer's outputs between inputs x1 and x2 (a pytree)."""

    nngp: jax.Array  # (n1, n2) Σ(x1_i, x2_j), the output covariance at initialization
    c1: jax.Array  # (n1,) Σ(x1_i, x1_i)
    c2: jax.Array  # (n2,) Σ(x2_j, x2_j)
    ntk: jax.Array  # (n1, n2) Θ(x1_i, x2_j)


def angle(dot, prod_sq):
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


def same_rows(a, b):
    """(n1, n2) mask of identical rows a_i = b_j (equal squared norms and equal projections on a
    fixed direction, both reduced row by row the same way in every tile).

    The Gram entry a_i·a_i of a matrix product and the squared norm Σ a_ik² are rounded
    differently (at d = 784 they differ by ~√d·eps), so θ recovered from them is ~√(√d·eps), not
    0; on these pairs the kernels use θ = 0 and x·x' = ‖x‖² exactly.
    """
    v = jnp.cos(1.6180339887 * jnp.arange(a.shape[1], dtype=a.dtype) + 0.5)
    pa, pb = jnp.sum(a * v, axis=1), jnp.sum(b * v, axis=1)
    na, nb = jnp.sum(a * a, axis=1), jnp.sum(b * b, axis=1)
    return (pa[:, None] == pb[None, :]) & (na[:, None] == nb[None, :])


def input_state(x1, x2) -> KernelState:
    """The input layer in NT's convention: Σ⁰ = x·x'/d (rows flattened), Θ⁰ = 0; identical rows
    get Σ⁰ = ‖x‖²/d exactly (`same_rows`), so θ = 0 on the diagonal in every later layer."""
    a = x1.reshape(x1.shape[0], -1)
    b = x2.reshape(x2.shape[0], -1)
    d = a.shape[1]
    c1, c2 = jnp.sum(a**2, axis=1) / d, jnp.sum(b**2, axis=1) / d
    nngp = jnp.where(same_rows(a, b), c1[:, None], (a @ b.T) / d)
    return KernelState(nngp=nngp, c1=c1, c2=c2, ntk=jnp.zeros_like(nngp))


def _check_std(name: str, value, *, positive: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be a finite {kind} number, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Dense:
    """Dense(width → ∞, W_std, b_std) in NTK parameterization."""

    w_std: float = 1.0
    b_std: float = 0.0

    def __call__(self, s: KernelState) -> KernelState:
        w2, b2 = self.w_std**2, self.b_std**2
        nngp = w2 * s.nngp + b2
        return KernelState(nngp=nngp, c1=w2 * s.c1 + b2, c2=w2 * s.c2 + b2, ntk=nngp + w2 * s.ntk)


@dataclasses.dataclass(frozen=True)
class Relu:
    """ReLU: the arc-cosine kernel of order 1 (Cho & Saul 2009) and its derivative kernel."""

    def __call__(self, s: KernelState) -> KernelState:
        theta, sin_part = angle(s.nngp, s.c1[:, None] * s.c2[None, :])
        dot_sigma = 0.5 - theta / (2 * jnp.pi)  # (π − θ)/(2π), exactly ½ at θ = 0
        nngp = sin_part / (2 * jnp.pi) + dot_sigma * s.nngp
        return KernelState(nngp=nngp, c1=s.c1 / 2, c2=s.c2 / 2, ntk=s.ntk * dot_sigma)


@dataclasses.dataclass(frozen=True)
class Erf:
    """erf(x) (stax.Erf() with a = b = 1, c = 0): the arcsine kernel (Williams 1997)."""

    def __call__(self, s: KernelState) -> KernelState:
        prod = (1 + 2 * s.c1)[:, None] * (1 + 2 * s.c2)[None, :]
        root = jnp.sqrt(jnp.maximum(prod - 4 * s.nngp**2, 0.0))
        dot_sigma = (4 / jnp.pi) / root
        nngp = (2 / jnp.pi) * jnp.arctan2(2 * s.nngp, root)

        def diag(c):
            return (2 / jnp.pi) * jnp.arctan2(c, jnp.sqrt(c + 0.25))

        return KernelState(nngp=nngp, c1=diag(s.c1), c2=diag(s.c2), ntk=s.ntk * dot_sigma)


@dataclasses.dataclass(frozen=True)
class Serial:
    """Layers applied in order."""

    layers: tuple

    def __call__(self, s: KernelState) -> KernelState:
        for layer in self.layers:
            s = layer(s)
        return s


@dataclasses.dataclass(frozen=True)
class Repeat:
    """One layer applied `times` times, with `lax.scan` (the program does not grow with it)."""

    layer: Callable
    times: int

    def __call__(self, s: KernelState) -> KernelState:
        return lax.scan(lambda c, _: (self.layer(c), None), s, None, length=self.times)[0]


def dense(w_std: float = 1.0, b_std: float = 0.0) -> Dense:
    """A Dense layer of infinite width: Σ ← W_std² Σ + b_std², Θ ← Σ + W_std² Θ."""
    w = _check_std("w_std", w_std, positive=True)
    return Dense(w, _check_std("b_std", b_std, positive=False))


def relu() -> Relu:
    """The ReLU nonlinearity's kernel map."""
    return Relu()


def erf() -> Erf:
    """The erf nonlinearity's kernel map."""
    return Erf()


def serial(*layers) -> Serial:
    """Compose layers (functions KernelState → KernelState) left to right."""
    for i, layer in enumerate(layers):
        if not callable(layer):
            raise TypeError(f"layer {i} must be callable KernelState -> KernelState, got {layer!r}")
    return Serial(tuple(layers))


def repeat(layer, times: int) -> Repeat:
    """`layer` applied `times` ≥ 0 times (a `lax.scan`: constant compile time in `times`)."""
    if not callable(layer):
        raise TypeError(f"layer must be callable KernelState -> KernelState, got {layer!r}")
    return Repeat(layer, check_int("times", times, minimum=0))


def _flatten(layer, prefix=""):
    """(name, layer) of every elementary layer in order, Repeats unrolled (diagnostics only)."""
    if isinstance(layer, Serial):
        out = []
        for i, sub in enumerate(layer.layers):
            out += _flatten(sub, f"{prefix}{i}.")
        return out
    if isinstance(layer, Repeat):
        out = []
        for t in range(layer.times):
            out += _flatten(layer.layer, f"{prefix}repeat[{t}].")
        return out
    return [(f"{prefix.rstrip('.')} {type(layer).__name__}".strip(), layer)]


def first_nonfinite_layer(layer, a, b, *, max_layers: int = 100_000) -> str | None:
    """Name of the first layer whose output on the pair (a, b) is not finite, e.g.
    "1.repeat[37].0 Dense" (None when every layer stays finite). For diagnosing a kernel that
    overflowed; runs eagerly, one layer at a time."""
    s = input_state(a, b)
    for i, (name, sub) in enumerate(_flatten(layer)):
        if i >= max_layers:
            return None
        s = sub(s)
        if not all(bool(jnp.isfinite(v).all()) for v in s):
            return name
    return None
