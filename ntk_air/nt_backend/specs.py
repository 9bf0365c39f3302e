"""A small architecture spec language for neural-tangents networks (CLI `--arch SPEC`).

    SPEC := ARCH [":" KEY=VALUE {"," KEY=VALUE}]    e.g. cnn:depth=2,shape=8x8x1 (any case)

Options [defaults]: every ARCH: depth=INT ≥ 0 [1] (hidden blocks), act=relu|erf|gelu|abs|identity
[relu], w_std > 0 [1.0] (every weight), b_std ≥ 0 [0.0] (every Dense/Conv bias). fc: width [512].
cnn: channels [64], kernel [3], padding=same|valid|circular [same], pool=global|flatten|avgK
[global], residual=true|false [false], norm=none|layer [none], shape. attention: channels [64],
heads [4], pos_emb=none|sum|concat [none], pool=global|flatten [global], shape. shape=INTxINT...
is one example, channels last: flat (n, d) rows are reshaped to (n, *shape); s = len(shape) − 1
spatial axes (2 without shape).

    fc         serial(*[Dense(width, w_std, b_std), act] * depth, Dense(1, w_std, b_std)),
               the network of ntk_air.kernels.fc_kernel_fn(depth, act, w_std, b_std).
    cnn        serial(*[Conv(channels, (kernel,)*s, padding, w_std, b_std), [LayerNorm()], act]
                      * depth, READOUT); with residual=true (padding same or circular)
               serial(Conv(...), *[Residual(serial([LayerNorm()], act, Conv(...)))] * depth,
                      READOUT). READOUT = GlobalAvgPool() (pool=global) | Flatten() (flatten) |
               AvgPool((K,)*s, (K,)*s), Flatten() (avgK), then Dense(1, w_std, b_std);
               [LayerNorm()] only with norm=layer; Residual = FanOut, parallel(block, Identity),
               FanInSum.
    attention  serial(Dense(channels, w_std, b_std), *[GlobalSelfAttention(channels, channels,
               channels, heads, every weight std w_std, pos_emb), act] * depth,
               GlobalAvgPool() | Flatten(), Dense(1, w_std, b_std)); shape=LxC.

fc and cnn also run natively (`native_kernel_fn_from_spec`); attention on neural-tangents only.
Widths (width, channels, heads) size the finite network only, not the infinite-width kernels.
Options written in the spec win over the keywords (the CLI's --depth, --activation, --w-std,
--b-std), which win over the defaults.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from . import compat

_ARCHS = ("fc", "cnn", "attention")


# Value parsers: each returns the value or raises ValueError("expected ...").


def _int(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        with contextlib.suppress(ValueError):
            if int(text) >= minimum:
                return int(text)
        raise ValueError(f"expected an int ≥ {minimum}")

    return parse


def _float(positive: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        with contextlib.suppress(ValueError):
            v = float(text)
            if math.isfinite(v) and (v > 0 if positive else v >= 0):
                return v
        raise ValueError(f"expected a finite number {'> 0' if positive else '≥ 0'}")

    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        v = text.lower()
        if v not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}")
        return v

    return parse


def _pool(text: str) -> str:
    v = text.lower()
    if v in ("global", "flatten"):
        return v
    if v.startswith("avg") and v[3:].isdigit() and int(v[3:]) >= 1:
        return f"avg{int(v[3:])}"
    raise ValueError("expected global, flatten or avgK (K a positive int, e.g. avg2)")


def _bool(text: str) -> bool:
    v = text.lower()
    if v not in ("true", "false"):
        raise ValueError("expected true or false")
    return v == "true"


def _shape(text: str) -> tuple[int, ...]:
    with contextlib.suppress(ValueError):
        dims = tuple(int(p) for p in text.lower().split("x"))
        if all(d >= 1 for d in dims):
            return dims
    raise ValueError("expected positive ints joined by 'x', e.g. 8x8x1")


_COMMON = {
    "depth": (_int(0), 1),
    "act": (_choice("relu", "erf", "gelu", "abs", "identity"), "relu"),
    "w_std": (_float(positive=True), 1.0),
    "b_std": (_float(positive=False), 0.0),
}
_OPTIONS: dict[str, dict[str, tuple[Callable[[str], Any], Any]]] = {
    "fc": {**_COMMON, "width": (_int(1), 512)},
    "cnn": {
        **_COMMON,
        "channels": (_int(1), 64),
        "kernel": (_int(1), 3),
        "padding": (_choice("same", "valid", "circular"), "same"),
        "pool": (_pool, "global"),
        "residual": (_bool, False),
        "norm": (_choice("none", "layer"), "none"),
        "shape": (_shape, None),
    },
    "attention": {
        **_COMMON,
        "channels": (_int(1), 64),
        "heads": (_int(1), 4),
        "pos_emb": (_choice("none", "sum", "concat"), "none"),
        "pool": (_choice("global", "flatten"), "global"),
        "shape": (_shape, None),
    },
}
# Keyword arguments of _parse_spec → spec keys.
_KEYWORDS = {"depth": "depth", "activation": "act", "w_std": "w_std", "b_std": "b_std"}


class _ArchSpec(NamedTuple):
    """A parsed architecture spec (plain Python values; no arrays)."""

    arch: str  # 'fc' | 'cnn' | 'attention'
    options: dict[str, Any]  # every option of `arch`, defaults filled in

    def canonical(self) -> str:
        """The spec with every option spelled out, in a fixed order."""

        def fmt(v):
            return "x".join(map(str, v)) if isinstance(v, tuple) else str(v)

        opts = ",".join(f"{k}={fmt(v)}" for k, v in self.options.items() if v is not None)
        return f"{self.arch}:{opts}"


def _fail(spec: str, message: str) -> ValueError:
    return ValueError(f"arch spec {spec!r}: {message}")


def _parse_spec(
    spec: str,
    *,
    depth: int | None = None,
    activation: str | None = None,
    w_std: float | None = None,
    b_std: float | None = None,
) -> _ArchSpec:
    """Parse `spec` (module docstring); the keywords fill the options the spec leaves out."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"arch spec must be a non-empty string, got {spec!r}")
    head, sep, tail = spec.strip().partition(":")
    arch = head.strip().lower()
    if arch == "two-layer-relu":
        raise _fail(
            spec,
            "'two-layer-relu' is the theorem's kernel H∞, computed by the native backend only; "
            f"with neural-tangents give one of {', '.join(_ARCHS)} (e.g. 'fc' or "
            "'cnn:depth=2,shape=8x8x1')",
        )
    if arch not in _OPTIONS:
        raise _fail(spec, f"unknown architecture {head.strip()!r}; known: {', '.join(_ARCHS)}")
    table = _OPTIONS[arch]
    written: dict[str, Any] = {}
    if sep:
        for token in tail.split(","):
            key, eq, text = (s.strip() for s in token.partition("="))
            if not token.strip():
                raise _fail(spec, "empty option (a stray ',' or nothing after ':')")
            if not eq or not text or not key:
                raise _fail(spec, f"option {token.strip()!r} must be written KEY=VALUE")
            key = key.lower()
            if key not in table:
                raise _fail(spec, f"unknown option {key!r} for {arch}; known: {', '.join(table)}")
            if key in written:
                raise _fail(spec, f"option {key!r} given twice")
            try:
                written[key] = table[key][0](text)
            except ValueError as err:
                raise _fail(spec, f"bad value {text!r} for {key}: {err}") from None
    options = {k: default for k, (_, default) in table.items()}
    for kw, value in zip(_KEYWORDS, (depth, activation, w_std, b_std), strict=True):
        if value is None:
            continue
        key = _KEYWORDS[kw]
        try:
            options[key] = table[key][0](str(value))
        except ValueError as err:
            raise ValueError(f"{kw}={value!r} for arch spec {spec!r}: {err}") from None
    options.update(written)
    _check_consistency(spec, arch, options)
    return _ArchSpec(arch=arch, options=options)


def _check_consistency(spec: str, arch: str, o: dict[str, Any]) -> None:
    if arch == "cnn" and o["residual"] and o["padding"] == "valid":
        raise _fail(
            spec,
            "residual=true needs padding=same or circular (a residual block keeps "
            "the spatial size)",
        )
    shape = o.get("shape")
    if shape is None:
        return
    if arch == "attention" and len(shape) != 2:
        raise _fail(spec, f"shape={'x'.join(map(str, shape))} must be LxC (tokens x features)")
    if arch != "cnn":
        return
    if len(shape) < 2:
        raise _fail(
            spec,
            f"shape={'x'.join(map(str, shape))} needs ≥ 1 spatial axis and a "
            "channel axis (e.g. 8x8x1 or 40x1)",
        )
    shrink = (o["depth"] + o["residual"]) * (o["kernel"] - 1) if o["padding"] == "valid" else 0
    last = min(shape[:-1]) - shrink  # the last layer's smallest spatial size
    if last < 1:
        raise _fail(
            spec,
            f"padding=valid with kernel={o['kernel']} and "
            f"depth={o['depth']} shrinks the spatial size {shape[:-1]} below 1",
        )
    if o["pool"].startswith("avg") and last < int(o["pool"][3:]):
        raise _fail(spec, f"pool={o['pool']} is wider than the last layer's spatial size")


def _stax_name(name: str) -> str:
    """The stax class of a `kernels` layer name: "global_avg_pool" → "GlobalAvgPool"."""
    return "".join(part.capitalize() for part in name.split("_"))


def _stax_from_spec(parsed: _ArchSpec) -> tuple[tuple, tuple[int, ...] | None, int]:
    """((init_fn, apply_fn, kernel_fn), one example's shape or None, its rank) of the stax network
    of a parsed spec (imports neural-tangents)."""
    stax = compat.import_neural_tangents().stax
    o = parsed.options
    if parsed.arch != "attention":
        rank = 1 if parsed.arch == "fc" else _spatial_dims(parsed) + 1
        return _stax_network(parsed, stax), o.get("shape"), rank
    w_std, b_std = o["w_std"], o["b_std"]
    weight_stds = dict.fromkeys(("W_key_std", "W_value_std", "W_query_std", "W_out_std"), w_std)
    attention = stax.GlobalSelfAttention(
        n_chan_out=o["channels"],
        n_chan_key=o["channels"],
        n_chan_val=o["channels"],
        n_heads=o["heads"],
        pos_emb_type=o["pos_emb"].upper(),
        **weight_stds,
    )
    act = getattr(stax, _stax_name(o["act"]))
    embed = stax.Dense(o["channels"], W_std=w_std, b_std=b_std)
    pool = stax.GlobalAvgPool() if o["pool"] == "global" else stax.Flatten()
    readout = stax.Dense(1, W_std=w_std, b_std=b_std)
    return stax.serial(embed, *[attention, act()] * o["depth"], pool, readout), o["shape"], 2


def _spatial_dims(parsed: _ArchSpec) -> int:
    shape = parsed.options.get("shape")
    return len(shape) - 1 if shape is not None else 2


def layer_plan(parsed: _ArchSpec) -> list:
    """The network of an fc or cnn spec as entries (name, *args), `name` a layer factory of
    `ntk_air.kernels` ("dense", "conv", "relu", "layer_norm", "avg_pool", ...): the one
    description both the native and the neural-tangents builders read. "residual" and "repeat"
    hold a list of entries as their first argument."""
    o = parsed.options
    w, b = o["w_std"], o["b_std"]
    act = (o["act"],)
    if parsed.arch == "fc":
        return [("repeat", [("dense", w, b), act], o["depth"]), ("dense", w, b)]
    if parsed.arch != "cnn":
        raise ValueError(
            f"arch {parsed.arch!r} runs on the neural-tangents backend only (its attention "
            "kernel is not reproduced natively; see ntk_air.kernels)"
        )
    d = _spatial_dims(parsed)
    conv = ("conv", (o["kernel"],) * d, None, o["padding"].upper(), w, b)
    norm = [("layer_norm",)] if o["norm"] == "layer" else []
    if o["residual"]:
        body = [conv, ("repeat", [("residual", [*norm, act, conv])], o["depth"])]
    else:
        body = [("repeat", [conv, *norm, act], o["depth"])]
    readout = {"global": [("global_avg_pool",)], "flatten": [("flatten",)]}.get(o["pool"])
    if readout is None:  # avgK
        window = (int(o["pool"][3:]),) * d
        readout = [("avg_pool", window, window, "VALID"), ("flatten",)]
    return [*body, *readout, ("dense", w, b)]


def _to_stax(plan, stax, width: int) -> list:
    """The stax layers of `plan` (a repeat unrolled); Dense and Conv get `width` channels."""
    out = []
    for name, *args in plan:
        if name == "dense":
            out.append(stax.Dense(width, W_std=args[0], b_std=args[1]))
        elif name == "conv":
            filt, strides, padding, w, b = args
            out.append(stax.Conv(width, filt, strides, padding, W_std=w, b_std=b))
        elif name == "residual":
            block = stax.serial(*_to_stax(args[0], stax, width))
            out.append(
                stax.serial(stax.FanOut(2), stax.parallel(block, stax.Identity()), stax.FanInSum())
            )
        elif name == "repeat":
            out += _to_stax(args[0], stax, width) * args[1]
        else:
            out.append(getattr(stax, _stax_name(name))(*args))
    return out


def _stax_network(parsed: _ArchSpec, stax):
    """The stax triple of an fc or cnn spec: the plan's layers, then a one-unit readout."""
    width = parsed.options.get("width") or parsed.options.get("channels")
    *body, (_, w, b) = layer_plan(parsed)
    return stax.serial(*_to_stax(body, stax, width), stax.Dense(1, W_std=w, b_std=b))


def _to_native(plan):
    """`kernels.serial` of the plan's layers, each entry `kernels.<name>(*args)`."""
    from .. import kernels

    layers = []
    for name, *args in plan:
        if name in ("residual", "repeat"):
            args[0] = _to_native(args[0])
        layers.append(getattr(kernels, name)(*args))
    return kernels.serial(*layers)


def native_kernel_fn_from_spec(
    spec: str,
    *,
    depth: int | None = None,
    activation: str | None = None,
    w_std: float | None = None,
    b_std: float | None = None,
    tile_size: int | None = None,
    dtype=None,
):
    """ntk_air's own kernel function of the fc or cnn network a spec describes (no
    neural-tangents): `kernels.from_layers` of the spec's layers, flat rows reshaped to `shape`.

    Args: as `kernel_fn_from_spec`.

    Returns:
      kernel_fn(x1, x2=None) -> Kernel(nngp, ntk), (n1, n2) each (a `KernelFn`).

    Example:
      >>> kernel_fn = native_kernel_fn_from_spec("cnn:depth=3,pool=global,shape=8x8x1")
      >>> kernel_fn(np.ones((2, 64))).ntk.shape
      (2, 2)
    """
    from ..kernels._kernel_fn import from_layers

    parsed = _parse_spec(spec, depth=depth, activation=activation, w_std=w_std, b_std=b_std)
    shape = parsed.options.get("shape") if parsed.arch == "cnn" else None
    net = _to_native(layer_plan(parsed))
    fn = from_layers(net, tile_size=tile_size, dtype=dtype, input_shape=shape)
    return fn.replace(name=parsed.canonical())


def kernel_fn_from_spec(
    spec: str,
    *,
    depth: int | None = None,
    activation: str | None = None,
    w_std: float | None = None,
    b_std: float | None = None,
    tile_size: int | None = None,
    dtype=None,
):
    """ntk_air kernel function of the neural-tangents network a spec describes.

    K(x1, x2) = Kernel(nngp, ntk) of the spec's stax network, via `kernel_fn_from_stax`.

    Args:
      spec: architecture spec (module docstring), e.g. "cnn:depth=2,shape=8x8x1" or "fc".
      depth: fills the option if the spec leaves it out (the CLI's flag).
      activation: fills the option if the spec leaves it out (the CLI's flag).
      w_std: fills the option if the spec leaves it out (the CLI's flag).
      b_std: fills the option if the spec leaves it out (the CLI's flag).
      tile_size: as in `kernel_fn_from_stax`.
      dtype: as in `kernel_fn_from_stax`.

    Returns:
      kernel_fn(x1, x2=None) -> Kernel(nngp, ntk), (n1, n2) each (a `KernelFn`).

    Raises:
      ValueError: a bad spec (the message names the token).
      NeuralTangentsUnavailable: neural-tangents is not installed or not usable on this JAX.

    Example:
      >>> kernel_fn = kernel_fn_from_spec("cnn:channels=8,depth=2,pool=global,shape=8x8x1")
      >>> k = kernel_fn(digits.x)                     # digits.x (n, 64) → k.ntk (n, n)
    """
    from .backend import kernel_fn_from_stax

    parsed = _parse_spec(spec, depth=depth, activation=activation, w_std=w_std, b_std=b_std)
    (_, _, nt_kernel_fn), input_shape, example_rank = _stax_from_spec(parsed)
    return kernel_fn_from_stax(
        nt_kernel_fn,
        input_shape=input_shape,
        example_rank=example_rank,
        tile_size=tile_size,
        dtype=dtype,
    )
