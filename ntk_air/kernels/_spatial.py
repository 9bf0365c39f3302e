"""Infinite-width convolutional, pooling, normalization and residual layers (NT `stax` conventions).

They act on a `KernelState` of inputs (n, *spatial, C) with 1 to 3 spatial axes, which keeps the
covariances of every pair of examples at pairs of positions p, q (Novak et al. 2019; Arora et
al. 2019): at equal positions only (O(n² S) per layer, S positions) unless `avg_pool` or
`global_avg_pool` mixes positions (then every (p, q), O(n² S²)). With |F| = ∏ filter_shape:

  Conv(W_std, b_std):  Σ(p, q) ← W_std² (1/|F|) Σ_δ Σ(p + δ, q + δ) + b_std²,
                       Θ(p, q) ← W_std² (1/|F|) Σ_δ Θ(p + δ, q + δ) + Σ_new(p, q)
  AvgPool(window w):   Σ(p, q) ← (1/|w|²) Σ_{δ, δ'} Σ(p + δ, q + δ'), Θ alike
  GlobalAvgPool:       Σ ← mean over all (p, q) of Σ(p, q), Θ alike
  Flatten:             Σ ← mean over p of Σ(p, p), Θ alike
  LayerNorm (channels): Σ(p, q) ← Σ(p, q)/√((ε + v(p))(ε + v'(q))), Θ alike
  residual(block):     Σ ← Σ + Σ_block, Θ ← Θ + Θ_block    (NT's FanOut, Identity, FanInSum)

with positions outside the input zero (SAME), wrapped around (CIRCULAR) or never used (VALID),
padded as `lax.padtype_to_pads` does; window sums run one spatial axis at a time. Attention stays
on the neural-tangents backend.

    >>> net = kernels.serial(kernels.conv((3, 3), w_std=1.5, b_std=0.1), kernels.relu(),
    ...                     kernels.global_avg_pool(), kernels.dense(1.5, 0.1))
    >>> images = np.random.default_rng(0).normal(size=(4, 5, 5, 1))
    >>> kernels.from_layers(net)(images).ntk.shape
    (4, 4)

Reference: Novak et al. arXiv 1810.05148 (Bayesian deep CNNs); Arora et al. arXiv 1904.11955
(CNTK); Novak et al. arXiv 1912.02803 (neural-tangents `stax`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
from jax import lax

from ._layers import (
    ABRelu,
    Dense,
    Erf,
    Gelu,
    Identity,
    KernelState,
    Repeat,
    Serial,
    _affine,
    _check_std,
    _expand,
    _position_diagonal,
    _position_variances,
    check_layer,
    input_state,
    require_gaussian,
)

PADDINGS = ("SAME", "VALID", "CIRCULAR")
"""Paddings of `conv` and `avg_pool` (neural-tangents' `Padding`)."""


def _pads(size: int, k: int, stride: int, padding: str) -> tuple[int, int]:
    """(low, high) padding of one axis: none for VALID; `lax.padtype_to_pads` SAME otherwise."""
    if padding == "VALID":
        return 0, 0
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def _pad(x, axes, lo, hi, padding):
    if lo == 0 and hi == 0:
        return x
    widths = [(0, 0)] * x.ndim
    for ax in axes:
        widths[ax] = (lo, hi)
    return jnp.pad(x, widths, mode="wrap" if padding == "CIRCULAR" else "constant")


def _window_mean(x, axes, k: int, stride: int, padding: str, *, diagonal: bool):
    """Mean over a length-k window (stride `stride`) of x along `axes` (one axis, or a pair).

    diagonal=True with a pair (p, q) of axes: the window moves along both at once,
    out(i, j) = (1/k) Σ_δ x(i·s + δ, j·s + δ) (a convolution of a covariance). Otherwise
    each axis gets its own window: out = (1/k^len(axes)) Σ_{δ, δ'} x(i·s + δ, j·s + δ').
    """
    size = x.shape[axes[0]]
    lo, hi = _pads(size, k, stride, padding)
    x = _pad(x, axes, lo, hi, padding)
    n_out = (size + lo + hi - k) // stride + 1
    if n_out < 1:
        raise ValueError(
            f"a window of {k} does not fit a spatial axis of size {size} with {padding} padding"
        )
    span = stride * (n_out - 1) + 1

    def mean_of_shifts(y, shift_axes):
        total = None
        for delta in range(k):
            term = y
            for ax in shift_axes:
                term = lax.slice_in_dim(term, delta, delta + span, stride, axis=ax)
            total = term if total is None else total + term
        return total / k

    if diagonal:
        return mean_of_shifts(x, axes)
    for ax in axes:
        x = mean_of_shifts(x, (ax,))
    return x


def _window_means(x, full: bool, window, strides, padding: str, *, diagonal: bool):
    """`_window_mean` along every spatial axis of x (*P, batch…), of the full or diagonal layout."""
    for axis, (k, stride) in enumerate(zip(window, strides, strict=True)):
        axes = (2 * axis, 2 * axis + 1) if full else (axis,)
        x = _window_mean(x, axes, k, stride, padding, diagonal=diagonal)
    return x


def _map_positions(s: KernelState, fn) -> KernelState:
    """fn(array, full) applied to nngp, ntk (layout `s.full`) and c1, c2 (`s.self_full`)."""
    return dataclasses.replace(
        s,
        nngp=fn(s.nngp, s.full),
        ntk=fn(s.ntk, s.full),
        c1=fn(s.c1, s.self_full),
        c2=fn(s.c2, s.self_full),
    )


def _mixed(s: KernelState, pool) -> KernelState:
    """`_map_positions` for a layer that mixes positions: pool(array, full) of nngp and ntk and
    of full self-covariances; diagonal ones (`self_diagonal`) cannot give the pooled c1, c2,
    which become NaN (of the shape the diagonal layout would have) for no later layer reads them.
    """

    def fn(x, full):
        out = pool(x, full)
        return out if (full or not s.self_diagonal) else jnp.full_like(out, jnp.nan)

    return _map_positions(s, fn)


def _check_spatial(s: KernelState, layer: str, dims: int | None = None, mixes=False) -> None:
    if s.spatial_dims == 0:
        raise ValueError(
            f"{layer} needs inputs with spatial axes, (n, *spatial, channels), and no flatten or "
            "global_avg_pool before it"
        )
    if dims is not None and dims != s.spatial_dims:
        raise ValueError(
            f"{layer} has a {dims}-D window but its inputs have {s.spatial_dims} spatial axes"
        )
    if mixes and not s.full:
        raise ValueError(
            f"{layer} mixes positions: it needs the full spatial layout (from_layers chooses it "
            f"when the network contains {layer})"
        )


def _check_window(name: str, shape, dims_hint: str) -> tuple[int, ...]:
    ok = isinstance(shape, tuple | list) and 1 <= len(shape) <= 3
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
    if not ok:
        raise ValueError(f"{name} must be 1 to 3 positive ints ({dims_hint}), got {shape!r}")
    return tuple(int(v) for v in shape)


def _check_window_and_strides(name: str, shape, strides, axis: str):
    window = _check_window(name, shape, "one per spatial axis")
    stride = (1,) * len(window) if strides is None else _check_window("strides", strides, "")
    if len(stride) != len(window):
        raise ValueError(f"strides {strides!r} must have one entry per {axis} axis {window}")
    return window, stride


def _check_padding(padding) -> str:
    p = padding.upper() if isinstance(padding, str) else padding
    if p not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
    return p


@dataclasses.dataclass(frozen=True)
class Conv:
    """Conv(channels → ∞, filter_shape, strides, padding, W_std, b_std), weights shared."""

    filter_shape: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str = "SAME"
    w_std: float = 1.0
    b_std: float = 0.0

    def __call__(self, s: KernelState) -> KernelState:
        _check_spatial(s, "conv", len(self.filter_shape))

        def window_mean(x, full):
            return _window_means(
                x, full, self.filter_shape, self.strides, self.padding, diagonal=True
            )

        return _affine(s, self.w_std, self.b_std, window_mean)


@dataclasses.dataclass(frozen=True)
class AvgPool:
    """AvgPool(window_shape, strides, padding), dividing by the window size (NT's default)."""

    window_shape: tuple[int, ...]
    strides: tuple[int, ...]
    padding: str = "VALID"

    def __call__(self, s: KernelState) -> KernelState:
        _check_spatial(s, "avg_pool", len(self.window_shape), mixes=True)

        def pool(x, full):
            return _window_means(
                x, full, self.window_shape, self.strides, self.padding, diagonal=not full
            )

        return _mixed(s, pool)


def _to_vector(s: KernelState, reduce, mixes: bool) -> KernelState:
    """reduce(array, full) over the positions of every array: a vector state."""
    out = (_mixed if mixes else _map_positions)(s, reduce)
    return dataclasses.replace(out, spatial_dims=0, full=False, self_diagonal=False)


@dataclasses.dataclass(frozen=True)
class GlobalAvgPool:
    """GlobalAvgPool: the mean over all spatial positions (a vector of channels remains)."""

    def __call__(self, s: KernelState) -> KernelState:
        _check_spatial(s, "global_avg_pool", mixes=True)
        d = s.spatial_dims

        def mean(x, full):
            return jnp.mean(x, axis=tuple(range(2 * d if full else d)))

        return _to_vector(s, mean, mixes=True)


@dataclasses.dataclass(frozen=True)
class Flatten:
    """Flatten (stax.Flatten): positions and channels joined; the kernel is the mean over p of
    the covariance at (p, p)."""

    def __call__(self, s: KernelState) -> KernelState:
        _check_spatial(s, "flatten")
        d = s.spatial_dims

        def trace(x, full):
            if full:
                x = _position_diagonal(x, d)
            return jnp.mean(x, axis=tuple(range(d)))

        return _to_vector(s, trace, mixes=False)


@dataclasses.dataclass(frozen=True)
class LayerNorm:
    """LayerNorm over the channel axis (stax.LayerNorm(axis=-1, eps)): x ↦ (x − mean)/√(ε + var)
    per position; Σ(p, q) ← Σ(p, q)/√((ε + v(p))(ε + v'(q))), Θ alike."""

    eps: float = 1e-12

    def __call__(self, s: KernelState) -> KernelState:
        require_gaussian(s, "layer_norm")
        d, full, self_full = s.spatial_dims, s.full, s.self_full
        v1 = self.eps + _position_variances(s.c1, d, self_full)
        v2 = self.eps + _position_variances(s.c2, d, self_full)
        scale = jnp.sqrt(_expand(v1, d, full, 0, 2) * _expand(v2, d, full, 1, 2))

        def self_scale(v):
            if self_full and d:
                return jnp.sqrt(_expand(v, d, True, 0, 1) * _expand(v, d, True, 1, 1))
            return v

        return dataclasses.replace(
            s,
            nngp=s.nngp / scale,
            ntk=s.ntk / scale,
            c1=s.c1 / self_scale(v1),
            c2=s.c2 / self_scale(v2),
        )


@dataclasses.dataclass(frozen=True)
class Residual:
    """block(x) + x: Σ ← Σ + Σ_block, Θ ← Θ + Θ_block (NT: FanOut(2), parallel(block,
    Identity()), FanInSum())."""

    block: Callable

    def __call__(self, s: KernelState) -> KernelState:
        out = self.block(s)
        if not (s.gaussian and out.gaussian):
            raise ValueError(
                "residual sums Gaussian branches only (neural-tangents' FanInSum): the block and "
                "its input must both end with a dense or conv layer (or a sum of them)"
            )
        if (out.spatial_dims, out.full, out.nngp.shape) != (s.spatial_dims, s.full, s.nngp.shape):
            raise ValueError(
                f"residual: the block changes the kernel's shape {s.nngp.shape} to "
                f"{out.nngp.shape}; a residual block must keep the spatial size (SAME or "
                "CIRCULAR padding, stride 1)"
            )
        return dataclasses.replace(
            s, nngp=s.nngp + out.nngp, ntk=s.ntk + out.ntk, c1=s.c1 + out.c1, c2=s.c2 + out.c2
        )


def conv(
    filter_shape,
    strides=None,
    padding: str = "SAME",
    w_std: float = 1.0,
    b_std: float = 0.0,
) -> Conv:
    """A convolution with infinitely many channels (stax.Conv(C, filter_shape, strides, padding,
    W_std, b_std)): Σ(p, q) ← W_std²·mean_δ Σ(p + δ, q + δ) + b_std², Θ ← W_std²·mean_δ Θ + Σ.

    Args:
      filter_shape: 1 to 3 positive ints, one per spatial axis, e.g. (3, 3).
      strides: as many positive ints, or None (all 1).
      padding: "SAME", "VALID" or "CIRCULAR" (periodic).
      w_std: weight standard deviation (> 0).
      b_std: bias standard deviation (≥ 0).

    Returns:
      Conv, a layer KernelState → KernelState.

    Example:
      >>> kernels.conv((3,), strides=(2,), padding="CIRCULAR", w_std=1.5).filter_shape
      (3,)
    """
    filt, stride = _check_window_and_strides("filter_shape", filter_shape, strides, "filter")
    w = _check_std("w_std", w_std, positive=True)
    return Conv(
        filt, stride, _check_padding(padding), w, _check_std("b_std", b_std, positive=False)
    )


def avg_pool(window_shape, strides=None, padding: str = "VALID") -> AvgPool:
    """Average pooling (stax.AvgPool(window_shape, strides, padding), normalize_edges=False):
    Σ(p, q) ← mean over δ, δ' in the window of Σ(p + δ, q + δ').

    Args:
      window_shape: 1 to 3 positive ints, one per spatial axis.
      strides: as many positive ints, or None (all 1, as in neural-tangents).
      padding: "VALID", "SAME" (zeros count in the mean) or "CIRCULAR".

    Returns:
      AvgPool, a layer KernelState → KernelState.
    """
    window, stride = _check_window_and_strides("window_shape", window_shape, strides, "window")
    return AvgPool(window, stride, _check_padding(padding))


def global_avg_pool() -> GlobalAvgPool:
    """Global average pooling (stax.GlobalAvgPool): Σ ← mean over all (p, q) of Σ(p, q)."""
    return GlobalAvgPool()


def flatten() -> Flatten:
    """Flatten (stax.Flatten): Σ ← mean over p of Σ(p, p)."""
    return Flatten()


def layer_norm(eps: float = 1e-12) -> LayerNorm:
    """Layer normalization over channels (stax.LayerNorm(axis=-1, eps=eps))."""
    return LayerNorm(_check_std("eps", eps, positive=True))


def residual(block) -> Residual:
    """block(x) + x (stax.serial(FanOut(2), parallel(block, Identity()), FanInSum()))."""
    return Residual(check_layer("block", block))


class _StateLayout(NamedTuple):
    spatial: bool  # the network has spatial layers
    full: bool  # a layer mixes positions: covariances at every pair of positions
    self_full: bool  # c1, c2 needed at every pair too (read after a mixing layer)


_SPATIAL = (Conv, AvgPool, GlobalAvgPool, Flatten)
_MIXING = (AvgPool, GlobalAvgPool)
# Layers that read c1, c2 only at equal positions or not at all: the rest (nonlinearities,
# layer_norm, a user's own layer) may read them at every pair once positions are mixed.
_SELF_DIAGONAL_SAFE = (Dense, Identity, Conv, Flatten, *_MIXING)
_SELF_READERS = (ABRelu, Erf, Gelu, LayerNorm)


def _in_order(layer, prefix="", *, layout=False):
    """(name, layer) of the elementary layers in the order they run, Repeats unrolled; for the
    layout (layout=True) a Repeat's body at most twice (enough to see which layer follows which)
    and residual blocks opened."""
    if isinstance(layer, Serial):
        for i, sub in enumerate(layer.layers):
            yield from _in_order(sub, f"{prefix}{i}.", layout=layout)
    elif isinstance(layer, Repeat):
        for t in range(min(layer.times, 2) if layout else layer.times):
            yield from _in_order(layer.layer, f"{prefix}repeat[{t}].", layout=layout)
    elif layout and isinstance(layer, Residual):
        yield from _in_order(layer.block, prefix, layout=layout)
    else:
        yield f"{prefix.rstrip('.')} {type(layer).__name__}".strip(), layer


def _state_layout(layer) -> _StateLayout:
    """The state a network needs; self-covariances in full when a layer that may read them runs
    after a mixing layer (or a layer of unknown kind is anywhere)."""
    found = [x for _, x in _in_order(layer, layout=True)]
    spatial = any(isinstance(x, _SPATIAL) for x in found)
    mixing = [i for i, x in enumerate(found) if isinstance(x, _MIXING)]
    full = bool(mixing)
    unknown = any(not isinstance(x, (*_SELF_DIAGONAL_SAFE, *_SELF_READERS)) for x in found)
    readers = [i for i, x in enumerate(found) if not isinstance(x, _SELF_DIAGONAL_SAFE)]
    self_full = full and (unknown or any(i > mixing[0] for i in readers))
    return _StateLayout(spatial, full, self_full)


def _first_nonfinite_layer(layer, a, b, *, max_layers: int = 100_000) -> str | None:
    """Name of the first layer not finite on (a, b), e.g. "1.repeat[37].0 Dense" (eager)."""
    layout = _state_layout(layer)
    dims = a.ndim - 2 if layout.spatial else 0
    s = input_state(a, b, spatial_dims=dims, full=layout.full)  # c1, c2 always full here
    for i, (name, sub) in enumerate(_in_order(layer)):
        if i >= max_layers:
            return None
        s = sub(s)
        if not all(bool(jnp.isfinite(v).all()) for v in s):
            return name
    return None
