"""Composable infinite-width layers `KernelState -> KernelState` (neural-tangents' NTK
parameterization), with c, c' the diagonal variances the state carries:

  Dense(W_std, b_std):  Σ ← W_std² Σ + b_std²,   Θ ← Σ_new + W_std² Θ
  ReLU:                 Σ ← (√(c c' − Σ²) + (π − θ) Σ)/(2π),   Θ ← Θ (π − θ)/(2π)
  erf:                  Σ ← (2/π) arcsin(2Σ/√((1+2c)(1+2c'))),  Θ ← Θ (4/π)/√((1+2c)(1+2c') − 4Σ²)

with θ = ∠(Σ, c, c'). Layers are frozen dataclasses: equal architectures share one compilation.

    >>> block = kernels.serial(kernels.dense(1.5, 0.1), kernels.relu())
    >>> net = kernels.serial(kernels.repeat(block, 3), kernels.dense(1.5, 0.1))
    >>> kernel_fn = kernels.from_layers(net)     # a KernelFn: kernel_fn(x1, x2=None) -> Kernel
    >>> fc = kernels.fc_kernel_fn(depth=3, activation="relu", w_std=1.5, b_std=0.1)
    >>> bool(jnp.allclose(kernel_fn(x).ntk, fc(x).ntk))      # the same network
    True

Reference: Jacot et al. arXiv 1806.07572; Lee et al. arXiv 1711.00165; Novak et al.
arXiv 1912.02803 (neural-tangents `stax`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax import lax

from .._checks import check_int

Layer = Callable[["KernelState"], "KernelState"]
"""An infinite-width layer: a function `KernelState -> KernelState`."""


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["nngp", "c1", "c2", "ntk"],
    meta_fields=["spatial_dims", "full", "gaussian", "self_diagonal"],
)
@dataclasses.dataclass(frozen=True)
class KernelState:
    """Kernels of one layer's outputs between inputs x1 and x2 (a pytree).

    Positions P come first, examples last: P = () without spatial axes, (H, W, ...) at equal
    positions (`full=False`), (H, H', W, W', ...) at every pair of positions (`full=True`, once
    pooling mixes them, as in neural-tangents). `self_diagonal=True` (with full) keeps c1, c2 at
    equal positions only; a pooling layer then sets them to NaN, so a later reader gives NaN.
    """

    nngp: jax.Array  # (*P, n1, n2) Σ(x1_i, x2_j), the output covariance at initialization
    c1: jax.Array  # (*P, n1) Σ(x1_i, x1_i)
    c2: jax.Array  # (*P, n2) Σ(x2_j, x2_j)
    ntk: jax.Array  # (*P, n1, n2) Θ(x1_i, x2_j)
    spatial_dims: int = 0  # number of spatial axes d (0: a vector of features)
    full: bool = False  # P = (H, H', W, W', ...) (True) or (H, W, ...) (False); () if d = 0
    gaussian: bool = False  # outputs of an affine layer (or sums): a nonlinearity may follow
    self_diagonal: bool = False  # c1, c2 at equal positions only although full (see above)

    @property
    def self_full(self) -> bool:
        """c1, c2 hold every pair of positions, (H, H', W, W', ..., n)."""
        return self.full and not self.self_diagonal

    def _replace(self, **changes) -> KernelState:
        """A copy with some fields changed (the NamedTuple spelling, kept for user layers)."""
        return dataclasses.replace(self, **changes)

    def __iter__(self):
        """The four arrays (nngp, c1, c2, ntk)."""
        return iter((self.nngp, self.c1, self.c2, self.ntk))


# Cephes' atan (Moshier), about 1 ulp in float64: plain arithmetic that XLA vectorizes (XLA:CPU's
# atan2 is a scalar library call, 4-5× slower, and the angle is the kernels' costliest step).
_ATAN_P = (
    -8.750608600031904122785e-1,
    -1.615753718733365076637e1,
    -7.500855792314704667340e1,
    -1.228866684490136173410e2,
    -6.485021904942025371773e1,
)
_ATAN_Q = (
    2.485846490142306297962e1,
    1.650270098316988542046e2,
    4.328810604912902668951e2,
    4.853903996359136964868e2,
    1.945506571482613964425e2,
)
_ATAN_MOREBITS = 6.123233995736765886130e-17  # π/2 − fl(π/2)


def _atan_ratio(ay, ax):
    """atan(ay/ax) for ay, ax ≥ 0 (not both 0); the reduced argument ay/ax, (ay − ax)/(ay + ax)
    or −ax/ay is formed directly, with one division."""
    big = ay > 2.414213562373095 * ax  # ay/ax > tan(3π/8)
    mid = (ay > 0.66 * ax) & ~big
    num = jnp.where(big, -ax, jnp.where(mid, ay - ax, ay))
    den = jnp.where(big, ay, jnp.where(mid, ay + ax, ax))
    x = num / den
    y0 = jnp.where(big, jnp.pi / 2, jnp.where(mid, jnp.pi / 4, 0.0))
    more = jnp.where(big, _ATAN_MOREBITS, jnp.where(mid, 0.5 * _ATAN_MOREBITS, 0.0))
    z = x * x
    p, q = _ATAN_P, _ATAN_Q
    num = (((p[0] * z + p[1]) * z + p[2]) * z + p[3]) * z + p[4]
    den = ((((z + q[0]) * z + q[1]) * z + q[2]) * z + q[3]) * z + q[4]
    return y0 + (x + x * z * num / den + more)


def atan2(y, x):
    """arctan2(y, x) in [−π, π], as `jnp.arctan2` to about 1 ulp but vectorizable on CPU
    (Cephes' rational approximation after range reduction; atan2(0, 0) = 0)."""
    ay, ax = jnp.abs(y), jnp.abs(x)
    zero = (ay == 0) & (ax == 0)
    a = _atan_ratio(ay, jnp.where(zero, 1.0, ax))  # atan(0/1) = 0 for atan2(0, 0)
    a = jnp.where(x < 0, jnp.pi - a, a)
    return jnp.where(y < 0, -a, a)


def angle(dot, prod_sq):
    """θ = ∠(x, x') and √(‖x‖²‖x'‖² − (x·x')²) from x·x' and ‖x‖²‖x'‖² (arctan2: accurate near 0
    and π); a gap within rounding of 0 (θ ≲ 2√eps, e.g. the diagonal) gives θ = 0 exactly."""
    gap = prod_sq - dot**2
    eps = jnp.finfo(dot.dtype).eps
    gap = jnp.where(gap <= 8 * eps * prod_sq, 0.0, gap)
    sin_part = jnp.sqrt(gap)
    return atan2(sin_part, dot), sin_part


def same_rows(a, b):
    """(n1, n2) mask of identical rows a_i = b_j (equal norms and projections on a fixed direction),
    where the kernels use θ = 0 and x·x' = ‖x‖² exactly (a Gram entry is rounded differently)."""
    v = jnp.cos(1.6180339887 * jnp.arange(a.shape[1], dtype=a.dtype) + 0.5)
    pa, pb = jnp.sum(a * v, axis=1), jnp.sum(b * v, axis=1)
    na, nb = jnp.sum(a * a, axis=1), jnp.sum(b * b, axis=1)
    return (pa[:, None] == pb[None, :]) & (na[:, None] == nb[None, :])


def input_state(
    x1, x2, *, spatial_dims: int = 0, full: bool = False, self_diagonal: bool = False
) -> KernelState:
    """The input layer in NT's convention: Σ⁰ = x·x'/C over channels (x·x'/d for flattened rows
    when spatial_dims = 0), Θ⁰ = 0, in the layout of `KernelState`."""
    if spatial_dims == 0:
        a = x1.reshape(x1.shape[0], -1)
        b = x2.reshape(x2.shape[0], -1)
        d = a.shape[1]
        c1, c2 = jnp.sum(a**2, axis=1) / d, jnp.sum(b**2, axis=1) / d
        # identical rows get Σ⁰ = ‖x‖²/d exactly (`same_rows`): θ = 0 on the diagonal later on
        nngp = jnp.where(same_rows(a, b), c1[:, None], (a @ b.T) / d)
        return KernelState(nngp=nngp, c1=c1, c2=c2, ntk=jnp.zeros_like(nngp))
    if x1.ndim != spatial_dims + 2:
        raise ValueError(
            f"inputs of a network with {spatial_dims} spatial axes must be (n, "
            f"{', '.join(['size'] * spatial_dims)}, channels), got shape {tuple(x1.shape)}"
        )
    chans = x1.shape[-1]
    # Letters for the spatial axes: x1's are a, b, ..., x2's A, B, ...; pairs interleaved.
    low = "abcdefgh"[:spatial_dims]
    up = low.upper()
    inter = "".join(u + v for u, v in zip(low, up, strict=True))
    self_diagonal = bool(full and self_diagonal)

    def cov(a, b, batch: str, pairs: bool):
        """Σ_c a_pc b_qc / C at every pair of positions (pairs) or at equal positions."""
        other, out = (up, inter) if pairs else (low, low)
        return jnp.einsum(f"{batch[0]}{low}z,{batch[-1]}{other}z->{out}{batch}", a, b) / chans

    nngp = cov(x1, x2, "ij", full)
    c1 = cov(x1, x1, "i", full and not self_diagonal)
    c2 = cov(x2, x2, "j", full and not self_diagonal)
    ntk = jnp.zeros_like(nngp)
    return KernelState(nngp, c1, c2, ntk, spatial_dims, bool(full), False, self_diagonal)


def _position_diagonal(x, spatial_dims: int):
    """x (H, H', W, W', ..., *batch) at equal positions: (H, W, ..., *batch), x(p, p)."""
    low = "abcdefgh"[:spatial_dims]
    pairs = "".join(v + v for v in low)
    return jnp.einsum(f"{pairs}...->{low}...", x)


def _position_variances(c, spatial_dims: int, full: bool):
    """Σ(x_p, x_p) per position: (*spatial, n) from a state's c1 or c2 ((n,) without space)."""
    return _position_diagonal(c, spatial_dims) if (full and spatial_dims) else c


def _expand(v, spatial_dims: int, full: bool, side: int, batch: int):
    """v (*spatial, n) as a factor of a (*P, n1, n2) (batch=2) or (*P, n) (batch=1) array, on the
    first (side 0) or second (side 1) batch axis and axis of each position pair."""
    n = v.shape[-1]
    trail = (n, 1) if (batch == 2 and side == 0) else (1, n) if batch == 2 else (n,)
    if not full or spatial_dims == 0:
        return v.reshape(v.shape[:-1] + trail)
    shape = ()
    for size in v.shape[:-1]:
        shape += (size, 1) if side == 0 else (1, size)
    return v.reshape(shape + trail)


def _apply_elementwise(s: KernelState, pair_fn) -> KernelState:
    """A nonlinearity's map pair_fn(Σ, v, v') → (Σ_new, Σ̇) on every covariance; Θ ← Θ · Σ̇."""
    require_gaussian(s, "a nonlinearity")
    d, full, self_full = s.spatial_dims, s.full, s.self_full
    v1 = _position_variances(s.c1, d, self_full)
    v2 = _position_variances(s.c2, d, self_full)
    nngp, dot = pair_fn(s.nngp, _expand(v1, d, full, 0, 2), _expand(v2, d, full, 1, 2))

    def self_cov(c, v):
        if self_full and d:
            return pair_fn(c, _expand(v, d, True, 0, 1), _expand(v, d, True, 1, 1))[0]
        return pair_fn(c, c, c)[0]

    return dataclasses.replace(
        s,
        nngp=nngp,
        c1=self_cov(s.c1, v1),
        c2=self_cov(s.c2, v2),
        ntk=s.ntk * dot,
        gaussian=False,
    )


def require_gaussian(s: KernelState, what: str) -> None:
    """Nonlinearities and layer_norm need Gaussian pre-activations (dense/conv outputs)."""
    if not s.gaussian:
        raise ValueError(
            f"{what} needs Gaussian inputs, the outputs of a dense or conv layer: put one before "
            "it (the kernel formula does not hold for the network's inputs or another "
            "nonlinearity's outputs)"
        )


def _check_std(name: str, value, *, positive: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        kind = "positive" if positive else "non-negative"
        raise ValueError(f"{name} must be a finite {kind} number, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Dense:
    """Dense(width → ∞, W_std, b_std) in NTK parameterization (on the channel axis)."""

    w_std: float = 1.0
    b_std: float = 0.0

    def __call__(self, s: KernelState) -> KernelState:
        return _affine(s, self.w_std, self.b_std)


def _affine(s: KernelState, w_std: float, b_std: float, mean=None) -> KernelState:
    """Σ ← W_std² mean(Σ) + b_std², Θ ← W_std² mean(Θ) + Σ_new, c1, c2 as Σ (mean(x, full): a
    conv's window mean; None: the identity)."""
    w2, b2 = w_std**2, b_std**2

    def scaled(x, full):
        return w2 * (x if mean is None else mean(x, full))

    nngp = scaled(s.nngp, s.full) + b2
    return dataclasses.replace(
        s,
        nngp=nngp,
        ntk=scaled(s.ntk, s.full) + nngp,
        c1=scaled(s.c1, s.self_full) + b2,
        c2=scaled(s.c2, s.self_full) + b2,
        gaussian=True,
    )


def _ab_relu_pair(a: float, b: float):
    """Kernel map of x ↦ a·min(x, 0) + b·max(x, 0) (arc-cosine kernel, Cho & Saul 2009)."""

    def pair(sigma, v1, v2):
        theta, sin_part = angle(sigma, v1 * v2)
        # 0/0 (a position of zero variance): the angle is π/2, as in neural-tangents.
        theta = jnp.where((sin_part == 0) & (sigma == 0), jnp.pi / 2, theta)
        f = (a - b) ** 2 / (2 * jnp.pi)
        dot_sigma = (a**2 + b**2) / 2 - f * theta
        return f * sin_part + dot_sigma * sigma, dot_sigma

    return pair


@dataclasses.dataclass(frozen=True)
class ABRelu:
    """x ↦ a·min(x, 0) + b·max(x, 0): Σ ← (a−b)²/(2π)·√(vv' − Σ²) + Σ̇ Σ,
    Σ̇ = (a² + b²)/2 − (a−b)² θ/(2π), Θ ← Θ Σ̇ (ReLU: a=0, b=1; |x|: a=−1, b=1)."""

    a: float = 0.0
    b: float = 1.0

    def __call__(self, s: KernelState) -> KernelState:
        return _apply_elementwise(s, _ab_relu_pair(self.a, self.b))


class Relu(ABRelu):
    """ReLU: the arc-cosine kernel of order 1 (Cho & Saul 2009) and its derivative kernel."""

    def __init__(self):
        super().__init__(0.0, 1.0)


def _erf_pair(sigma, v1, v2):
    prod = (1 + 2 * v1) * (1 + 2 * v2)
    root = jnp.sqrt(jnp.maximum(prod - 4 * sigma**2, 0.0))
    return (2 / jnp.pi) * atan2(2 * sigma, root), (4 / jnp.pi) / root


@dataclasses.dataclass(frozen=True)
class Erf:
    """erf(x) (stax.Erf() with a = b = 1, c = 0): the arcsine kernel (Williams 1997)."""

    def __call__(self, s: KernelState) -> KernelState:
        return _apply_elementwise(s, _erf_pair)


def _gelu_pair(sigma, v1, v2):
    prod = v1 * v2
    prod_1 = (v1 + 1) * (v2 + 1)
    delta_sq = prod_1 - sigma**2
    delta = jnp.sqrt(jnp.maximum(delta_sq, 0.0))
    ang = atan2(sigma, delta)
    new = ((sigma**2 + prod * delta_sq) / (prod_1 * delta) + sigma * ang) / (2 * jnp.pi)
    new = new + sigma / 4
    dot = sigma / delta / (2 * jnp.pi) * (1 / delta_sq + (1 - prod) / prod_1 + 1)
    return new, dot + 0.25 + ang / (2 * jnp.pi)


@dataclasses.dataclass(frozen=True)
class Gelu:
    """GELU x·Φ(x) (Tsuchida et al. 2020, arXiv 2002.08517; neural-tangents' `Gelu`):
    Σ ← Σ/4 + [(Σ² + vv'δ²)/((v+1)(v'+1)δ) + Σ·atan2(Σ, δ)]/(2π), δ² = (v+1)(v'+1) − Σ²."""

    def __call__(self, s: KernelState) -> KernelState:
        return _apply_elementwise(s, _gelu_pair)


@dataclasses.dataclass(frozen=True)
class Identity:
    """The identity map x ↦ x (the kernels pass unchanged)."""

    def __call__(self, s: KernelState) -> KernelState:
        return s


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
        if self.times == 0:
            return s
        out = jax.eval_shape(self.layer, s)
        leaves_in, tree_in = jax.tree_util.tree_flatten(s)
        leaves_out, tree_out = jax.tree_util.tree_flatten(out)
        same = tree_in == tree_out and all(
            (a.shape, a.dtype) == (b.shape, b.dtype)
            for a, b in zip(leaves_in, leaves_out, strict=True)
        )
        if not same:
            # The first pass changes the state's layout (e.g. makes it Gaussian) or its size:
            # peel it off; a layer that keeps changing the size is unrolled.
            s = self.layer(s)
            if self.times == 1:
                return s
            return Repeat(self.layer, self.times - 1)(s)
        return lax.scan(lambda c, _: (self.layer(c), None), s, None, length=self.times)[0]


def dense(w_std: float = 1.0, b_std: float = 0.0) -> Dense:
    """A Dense layer of infinite width: Σ ← W_std² Σ + b_std², Θ ← Σ + W_std² Θ."""
    w = _check_std("w_std", w_std, positive=True)
    return Dense(w, _check_std("b_std", b_std, positive=False))


def relu() -> Relu:
    """The ReLU nonlinearity's kernel map (stax.Relu)."""
    return Relu()


def leaky_relu(alpha: float) -> ABRelu:
    """x ↦ max(x, 0) + alpha·min(x, 0) (stax.LeakyRelu(alpha)); alpha any finite number."""
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha):
        raise ValueError(f"alpha must be a finite number, got {alpha!r}")
    return ABRelu(float(alpha), 1.0)


def abs() -> ABRelu:  # noqa: A001 - the layer's name in neural-tangents (stax.Abs)
    """x ↦ |x| (stax.Abs): the arc-cosine map with slopes −1 and 1."""
    return ABRelu(-1.0, 1.0)


def erf() -> Erf:
    """The erf nonlinearity's kernel map."""
    return Erf()


def gelu() -> Gelu:
    """The GELU nonlinearity's kernel map (stax.Gelu; exact, not the tanh approximation)."""
    return Gelu()


def identity() -> Identity:
    """The identity layer (stax.Identity)."""
    return Identity()


def check_layer(name: str, layer):
    """`layer` if it is callable (a layer KernelState → KernelState), else a TypeError."""
    if not callable(layer):
        raise TypeError(f"{name} must be callable KernelState -> KernelState, got {layer!r}")
    return layer


def serial(*layers) -> Serial:
    """Compose layers (functions KernelState → KernelState) left to right."""
    return Serial(tuple(check_layer(f"layer {i}", layer) for i, layer in enumerate(layers)))


def repeat(layer, times: int) -> Repeat:
    """`layer` applied `times` ≥ 0 times (a `lax.scan`: constant compile time in `times`)."""
    return Repeat(check_layer("layer", layer), check_int("times", times, minimum=0))
