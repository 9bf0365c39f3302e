"""A small architecture spec language for neural-tangents networks (CLI `--arch SPEC`).

Grammar (whitespace around tokens is ignored; keys and words are case-insensitive):

    SPEC   := ARCH [ ":" OPTION { "," OPTION } ]
    ARCH   := "fc" | "cnn" | "attention"
    OPTION := KEY "=" VALUE
    VALUE  := INT | FLOAT | WORD | SHAPE        SHAPE := INT { "x" INT }   (e.g. 8x8x1)

Options (every architecture): depth=INT ≥ 0 (hidden blocks), act=relu|erf|gelu|abs|identity,
w_std=FLOAT > 0 (every weight), b_std=FLOAT ≥ 0 (every Dense/Conv bias).

    fc         width=INT (512)
               serial(*[Dense(width, w_std, b_std), act] * depth, Dense(1, w_std, b_std)) —
               the same network as ntk_air.kernels.fc_kernel_fn(depth, act, w_std, b_std).
    cnn        channels=INT (64), kernel=INT (3), padding=same|valid|circular (same),
               pool=global|flatten|avgK (global), residual=true|false (false),
               norm=none|layer (none), shape=SHAPE (one example, channels last)
               residual=false:
                 serial(*[Conv(channels, (kernel,)*s, padding, w_std, b_std), [LayerNorm()],
                          act] * depth, READOUT)
               residual=true (a pre-activation ResNet; padding same or circular):
                 serial(Conv(...), *[Residual(serial([LayerNorm()], act, Conv(...)))] * depth,
                        READOUT)
               READOUT = GlobalAvgPool() | Flatten() | AvgPool((K,)*s, (K,)*s) + Flatten(),
                         then Dense(1, w_std, b_std);
               [LayerNorm()] only with norm=layer (over channels, eps 1e-12); Residual(block)
               is FanOut(2), parallel(block, Identity()), FanInSum();
               s = number of spatial axes: len(shape) − 1, or 2 (images) without shape.
    attention  channels=INT (64), heads=INT (4), pos_emb=none|sum|concat (none),
               pool=global|flatten (global), shape=SHAPE (tokens × features, L x C)
               serial(Dense(channels, w_std, b_std),
                      *[GlobalSelfAttention(channels, channels, channels, heads, all four
                        weight stds = w_std, pos_emb_type), act] * depth,
                      GlobalAvgPool() | Flatten(), Dense(1, w_std, b_std)).
               neural-tangents backend only (see ntk_air.kernels on attention).

fc and cnn run natively (`native_kernel_fn_from_spec`, ntk_air.kernels, no neural-tangents
needed); every architecture runs on neural-tangents (`kernel_fn_from_spec`) as the reference.

`shape=` reshapes flat (n, d) rows to (n, *shape), d = ∏ shape: the 8×8 digits are
`shape=8x8x1` for a CNN, or `shape=8x8` (8 tokens of 8 pixels) for attention; MNIST-1D's 40
features are `shape=40x1` for a 1-D CNN. Widths (width/channels/heads) do not change the
infinite-width kernels; they size the finite network that `stax_from_spec` also returns.

Precedence: options written in the spec win; the keyword arguments of `kernel_fn_from_spec`
(the CLI's --depth, --activation, --w-std, --b-std) fill the options the spec leaves out; then
the defaults above. Errors are ValueErrors that quote the spec and name the bad token.

Examples:
    fc:depth=2,act=relu,w_std=1.5,b_std=0.1
    cnn:channels=8,kernel=3,depth=2,pool=global,act=relu,shape=8x8x1
    cnn:depth=3,pool=flatten,w_std=1.5,b_std=0.1,shape=8x8x1
    cnn:depth=2,residual=true,norm=layer,pool=avg2,shape=8x8x1
    cnn:depth=2,kernel=5,padding=circular,pool=global,act=erf,shape=40x1
    attention:depth=1,heads=4,pos_emb=sum,act=relu,shape=8x8
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

from . import compat

__all__ = [
    "ARCHS",
    "ArchSpec",
    "StaxNetwork",
    "parse_spec",
    "stax_from_spec",
    "kernel_fn_from_spec",
    "layer_plan",
    "layers_from_spec",
    "native_kernel_fn_from_spec",
]

ARCHS = ("fc", "cnn", "attention")
"""Architectures of an architecture spec (`parse_spec`)."""
ACTIVATIONS = ("relu", "erf", "gelu", "abs", "identity")
NATIVE_ARCHS = ("fc", "cnn")
"""Architectures `native_kernel_fn_from_spec` computes without neural-tangents."""


# ---------------------------------------------------------------------------------------------
# Value parsers: each returns the value or raises ValueError(expected ...)
# ---------------------------------------------------------------------------------------------


def _int(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or v < minimum:
            raise ValueError(f"expected an int ≥ {minimum}")
        return v

    return parse


def _float(positive: bool) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            v = math.nan
        if not math.isfinite(v) or v < 0 or (positive and v == 0):
            raise ValueError(f"expected a finite number {'> 0' if positive else '≥ 0'}")
        return v

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
    parts = text.lower().split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if not dims or any(d < 1 for d in dims):
        raise ValueError("expected positive ints joined by 'x', e.g. 8x8x1")
    return dims


_COMMON = {
    "depth": (_int(0), 1),
    "act": (_choice(*ACTIVATIONS), "relu"),
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
# Keyword arguments of kernel_fn_from_spec → spec keys.
_KEYWORDS = {"depth": "depth", "activation": "act", "w_std": "w_std", "b_std": "b_std"}


class ArchSpec(NamedTuple):
    """A parsed architecture spec (plain Python values; no arrays)."""

    arch: str  # 'fc' | 'cnn' | 'attention'
    options: dict[str, Any]  # every option of `arch`, defaults filled in
    text: str  # the spec as written

    def canonical(self) -> str:
        """The spec with every option spelled out, in a fixed order."""

        def fmt(v):
            return "x".join(map(str, v)) if isinstance(v, tuple) else str(v)

        opts = ",".join(f"{k}={fmt(v)}" for k, v in self.options.items() if v is not None)
        return f"{self.arch}:{opts}"


def _fail(spec: str, message: str) -> ValueError:
    return ValueError(f"arch spec {spec!r}: {message}")


def parse_spec(
    spec: str,
    *,
    depth: int | None = None,
    activation: str | None = None,
    w_std: float | None = None,
    b_std: float | None = None,
) -> ArchSpec:
    """Parse `spec` (grammar in the module docstring); keyword arguments fill unset options.

    Args:
      spec: e.g. "cnn:channels=8,kernel=3,depth=2,shape=8x8x1", or a bare "fc".
      depth: value for the option if the spec does not set it (None: the default).
      activation: value for the option if the spec does not set it (None: the default).
      w_std: value for the option if the spec does not set it (None: the default).
      b_std: value for the option if the spec does not set it (None: the default).

    Returns:
      ArchSpec(arch, options, text).

    Raises:
      ValueError: naming the bad token (unknown architecture or option, bad value, duplicate).
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"arch spec must be a non-empty string, got {spec!r}")
    head, sep, tail = spec.strip().partition(":")
    arch = head.strip().lower()
    if arch == "two-layer-relu":
        raise _fail(
            spec,
            "'two-layer-relu' is the theorem's kernel H∞, computed by the native backend only; "
            f"with neural-tangents give one of {', '.join(ARCHS)} (e.g. 'fc' or "
            "'cnn:depth=2,shape=8x8x1')",
        )
    if arch not in _OPTIONS:
        raise _fail(spec, f"unknown architecture {head.strip()!r}; known: {', '.join(ARCHS)}")
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
    for kw, value in (
        ("depth", depth),
        ("activation", activation),
        ("w_std", w_std),
        ("b_std", b_std),
    ):
        if value is None:
            continue
        key = _KEYWORDS[kw]
        try:
            options[key] = table[key][0](str(value))
        except ValueError as err:
            raise ValueError(f"{kw}={value!r} for arch spec {spec!r}: {err}") from None
    options.update(written)
    _check_consistency(spec, arch, options)
    return ArchSpec(arch=arch, options=options, text=spec)


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
    if arch == "cnn":
        if len(shape) < 2:
            raise _fail(
                spec,
                f"shape={'x'.join(map(str, shape))} needs ≥ 1 spatial axis and a "
                "channel axis (e.g. 8x8x1 or 40x1)",
            )
        if o["padding"] == "valid":
            shrink = (o["depth"] + o["residual"]) * (o["kernel"] - 1)
            if min(shape[:-1]) - shrink < 1:
                raise _fail(
                    spec,
                    f"padding=valid with kernel={o['kernel']} and "
                    f"depth={o['depth']} shrinks the spatial size {shape[:-1]} below 1",
                )
    if arch == "cnn" and o["pool"].startswith("avg"):
        k = int(o["pool"][3:])
        shrink = (o["depth"] + o["residual"]) * (o["kernel"] - 1) if o["padding"] == "valid" else 0
        if min(shape[:-1]) - shrink < k:
            raise _fail(spec, f"pool={o['pool']} is wider than the last layer's spatial size")
    if arch == "attention" and len(shape) != 2:
        raise _fail(spec, f"shape={'x'.join(map(str, shape))} must be LxC (tokens x features)")


class StaxNetwork(NamedTuple):
    """A stax network built from a spec, with the example shape its inputs need."""

    init_fn: Callable  # init_fn(key, input_shape) -> (output_shape, params)
    apply_fn: Callable  # apply_fn(params, x) -> (n, 1)
    kernel_fn: Callable  # NT kernel_fn(x1, x2, get)
    input_shape: tuple[int, ...] | None  # one example's shape, or None (inputs used as given)
    example_rank: int  # rank of one example NT expects (1 for fc)
    spec: ArchSpec


def stax_from_spec(spec: str | ArchSpec, **keywords) -> StaxNetwork:
    """Build the neural-tangents `stax` network a spec describes (imports neural-tangents).

    Args:
      spec: a spec string or an `ArchSpec`; keywords as `parse_spec` (with a string only: an
        `ArchSpec` is already complete).

    Returns:
      StaxNetwork(init_fn, apply_fn, kernel_fn, input_shape, example_rank, spec).
    """
    if isinstance(spec, ArchSpec):
        if keywords:
            raise TypeError(
                f"keywords {sorted(keywords)} apply to a spec string; the ArchSpec "
                f"{spec.canonical()!r} already fixes every option"
            )
        parsed = spec
    else:
        parsed = parse_spec(spec, **keywords)
    nt = compat.import_neural_tangents()
    stax = nt.stax
    o = parsed.options
    w_std, b_std = o["w_std"], o["b_std"]
    if parsed.arch in NATIVE_ARCHS:
        plan = layer_plan(parsed)  # its last entry is the readout Dense: one output unit
        net = stax.serial(*_to_stax(plan[:-1], stax, parsed), stax.Dense(1, w_std, b_std))
        shape = o.get("shape")
        rank = 1 if parsed.arch == "fc" else _spatial_dims(parsed) + 1
        return StaxNetwork(*net, input_shape=shape, example_rank=rank, spec=parsed)
    act = {
        "relu": stax.Relu,
        "erf": stax.Erf,
        "gelu": stax.Gelu,
        "abs": stax.Abs,
        "identity": stax.Identity,
    }[o["act"]]
    readout = stax.Dense(1, W_std=w_std, b_std=b_std)
    shape = o["shape"]
    pool = stax.GlobalAvgPool() if o["pool"] == "global" else stax.Flatten()
    attention = stax.GlobalSelfAttention(
        n_chan_out=o["channels"],
        n_chan_key=o["channels"],
        n_chan_val=o["channels"],
        n_heads=o["heads"],
        W_key_std=w_std,
        W_value_std=w_std,
        W_query_std=w_std,
        W_out_std=w_std,
        pos_emb_type=o["pos_emb"].upper(),
    )
    embed = stax.Dense(o["channels"], W_std=w_std, b_std=b_std)
    net = stax.serial(embed, *[attention, act()] * o["depth"], pool, readout)
    return StaxNetwork(*net, input_shape=shape, example_rank=2, spec=parsed)


def _spatial_dims(parsed: ArchSpec) -> int:
    shape = parsed.options.get("shape")
    return len(shape) - 1 if shape is not None else 2


def layer_plan(parsed: ArchSpec) -> list:
    """The network of an fc or cnn spec as a list of layer entries, shared by the native and the
    neural-tangents builders: ("dense", w, b), ("conv", filter, strides, padding, w, b),
    ("act", name), ("layer_norm",), ("residual", [entries]), ("repeat", [entries], times),
    ("gap",), ("flatten",), ("avg_pool", window, strides, padding)."""
    o = parsed.options
    w, b = o["w_std"], o["b_std"]
    act = ("act", o["act"])
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
    pool = o["pool"]
    if pool == "global":
        readout = [("gap",)]
    elif pool == "flatten":
        readout = [("flatten",)]
    else:
        k = int(pool[3:])
        readout = [("avg_pool", (k,) * d, (k,) * d, "VALID"), ("flatten",)]
    return [*body, *readout, ("dense", w, b)]


def _to_stax(plan, stax, parsed: ArchSpec) -> list:
    width = parsed.options.get("width") or parsed.options.get("channels")
    acts = {
        "relu": stax.Relu,
        "erf": stax.Erf,
        "gelu": stax.Gelu,
        "abs": stax.Abs,
        "identity": stax.Identity,
    }
    out = []
    for kind, *args in plan:
        if kind == "dense":
            out.append(stax.Dense(width, W_std=args[0], b_std=args[1]))
        elif kind == "conv":
            filt, strides, padding, w, b = args
            out.append(stax.Conv(width, filt, strides, padding, W_std=w, b_std=b))
        elif kind == "act":
            out.append(acts[args[0]]())
        elif kind == "layer_norm":
            out.append(stax.LayerNorm())
        elif kind == "residual":
            block = stax.serial(*_to_stax(args[0], stax, parsed))
            out.append(
                stax.serial(stax.FanOut(2), stax.parallel(block, stax.Identity()), stax.FanInSum())
            )
        elif kind == "repeat":
            out += _to_stax(args[0], stax, parsed) * args[1]
        elif kind == "gap":
            out.append(stax.GlobalAvgPool())
        elif kind == "flatten":
            out.append(stax.Flatten())
        elif kind == "avg_pool":
            out.append(stax.AvgPool(*args))
    return out


def _to_native(plan):
    from ..kernels import _layers as L

    acts = {"relu": L.relu, "erf": L.erf, "gelu": L.gelu, "abs": L.abs, "identity": L.identity}
    out = []
    for kind, *args in plan:
        if kind == "dense":
            out.append(L.dense(*args))
        elif kind == "conv":
            out.append(L.conv(*args))
        elif kind == "act":
            out.append(acts[args[0]]())
        elif kind == "layer_norm":
            out.append(L.layer_norm())
        elif kind == "residual":
            out.append(L.residual(_to_native(args[0])))
        elif kind == "repeat":
            out.append(L.repeat(_to_native(args[0]), args[1]))
        elif kind == "gap":
            out.append(L.global_avg_pool())
        elif kind == "flatten":
            out.append(L.flatten())
        elif kind == "avg_pool":
            out.append(L.avg_pool(*args))
    return L.serial(*out)


def layers_from_spec(spec: str | ArchSpec, **keywords):
    """The native `ntk_air.kernels` network of an fc or cnn spec (no neural-tangents needed).

    Args:
      spec: a spec string or an `ArchSpec`; keywords as `parse_spec` (with a string only).

    Returns:
      (layer, input_shape): the layer (KernelState → KernelState) and one example's shape
      (None for fc: rows are used flat).

    Raises:
      ValueError: a bad spec, or an architecture that runs on neural-tangents only.

    Example:
      >>> net, shape = layers_from_spec("cnn:depth=2,pool=flatten,shape=8x8x1")
      >>> shape
      (8, 8, 1)
    """
    parsed = spec if isinstance(spec, ArchSpec) else parse_spec(spec, **keywords)
    shape = parsed.options.get("shape") if parsed.arch == "cnn" else None
    return _to_native(layer_plan(parsed)), shape


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
    neural-tangents): `kernels.from_layers(layers_from_spec(spec), input_shape=shape)`.

    Args: as `kernel_fn_from_spec`.

    Returns:
      kernel_fn(x1, x2=None) -> Kernel(nngp, ntk), (n1, n2) each (a `KernelFn`).

    Example:
      >>> kernel_fn = native_kernel_fn_from_spec("cnn:depth=3,pool=global,shape=8x8x1")
      >>> kernel_fn(np.ones((2, 64))).ntk.shape
      (2, 2)
    """
    from ..kernels._kernel_fn import from_layers

    parsed = parse_spec(spec, depth=depth, activation=activation, w_std=w_std, b_std=b_std)
    net, shape = layers_from_spec(parsed)
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

    K(x1, x2) = Kernel(nngp, ntk) of `stax_from_spec(spec)`, via `kernel_fn_from_stax`. Plain
    "fc" with the keywords is neural-tangents' computation of ntk_air.kernels.fc_kernel_fn.

    Args:
      spec: architecture spec (module docstring), e.g. "cnn:depth=2,shape=8x8x1" or "fc".
      depth: fills the option if the spec leaves it out (from the CLI's flag).
      activation: fills the option if the spec leaves it out (from the CLI's flag).
      w_std: fills the option if the spec leaves it out (from the CLI's flag).
      b_std: fills the option if the spec leaves it out (from the CLI's flag).
      tile_size: as in `kernel_fn_from_stax` (None: automatic tiling, the inputs' dtype).
      dtype: as in `kernel_fn_from_stax` (None: automatic tiling, the inputs' dtype).

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

    parsed = parse_spec(spec, depth=depth, activation=activation, w_std=w_std, b_std=b_std)
    net = stax_from_spec(parsed)
    return kernel_fn_from_stax(
        net.kernel_fn,
        input_shape=net.input_shape,
        example_rank=net.example_rank,
        tile_size=tile_size,
        dtype=dtype,
    )
