"""Finite-width networks (flax linen) and their infinite-width kernels; one builder, `network`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int

MLP_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,  # derivative 1{z > 0} (0 at z = 0)
    "erf": jax.scipy.special.erf,
}
"""Activations of `MLP` by name (those of `kernels.fc_kernel_fn`)."""


class TwoLayerReLU(nn.Module):
    """The theorem's two-layer ReLU network with a frozen ±1 readout.

    f(x) = (1/√m) Σ_{r=1..m} a_r ReLU(w_r·x),  w_r ~ N(0, κ² I_d),  a_r ~ Uniform{−1, +1}.

    `model.init(key, x)` returns {'params': {'w': (m, d)}, 'frozen': {'a': (m,)}}: only W is
    trained. Its infinite-width NTK is `kernels.two_layer_relu` (H∞).

    Attributes:
      width: m, the number of hidden units.
      kappa: κ, the standard deviation of the first-layer weights.

    Example:
      >>> model = TwoLayerReLU(width=256)
      >>> variables = model.init(jax.random.key(0), x)        # x: (n, d)
      >>> model.apply(variables, x).shape                       # (n,)
      (40,)

    Reference: Du, Zhai, Poczos, Singh, arXiv 1810.02054; Dong et al., arXiv 1910.01255.
    """

    width: int
    kappa: float = 1.0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kappa = self.kappa

        def w_init(key, shape, dtype=jnp.float32):
            return kappa * jax.random.normal(key, shape, dtype)

        w = self.param("w", w_init, (self.width, x.shape[-1]), x.dtype)
        a = self.variable(
            "frozen",
            "a",
            lambda: jax.random.rademacher(self.make_rng("params"), (self.width,)).astype(x.dtype),
        )
        hidden = jax.nn.relu(x @ w.T.astype(x.dtype))  # (n, m)
        return hidden @ a.value.astype(x.dtype) / jnp.sqrt(jnp.asarray(self.width, x.dtype))


PARAMETERIZATIONS = ("ntk", "standard")
"""Parameterizations: NTK (weights scaled by w_std/√fan_in in the forward pass) or standard."""


def _check_parameterization(value) -> None:
    if value not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {value!r}")


def _scaled_layer(module, h, fan_in, kernel_shape, product):
    """ntk: z = (w_std/√fan_in)·product(h, K) + b_std·b, K, b ~ N(0, 1); standard: K, b scaled."""
    _check_parameterization(module.parameterization)
    w_scale, b_std = float(module.w_std) / float(np.sqrt(fan_in)), float(module.b_std)
    if module.parameterization == "ntk":
        stddevs, scales = (1.0, 1.0), (w_scale, b_std)
    else:
        stddevs, scales = (w_scale, b_std), (1.0, 1.0)
    kernel = module.param("kernel", nn.initializers.normal(stddevs[0]), kernel_shape, h.dtype)
    bias = module.param("bias", nn.initializers.normal(stddevs[1]), (module.features,), h.dtype)
    # Python floats are weakly typed: float32 params stay float32 under x64.
    return scales[0] * product(h, kernel) + scales[1] * bias


class _NTKDense(nn.Module):
    """neural-tangents' `stax.Dense`: z = (w_std/√d_in)·h @ kernel + b_std·bias."""

    features: int
    w_std: float = 1.0
    b_std: float = 0.0
    parameterization: str = "ntk"

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        d_in = h.shape[-1]
        return _scaled_layer(self, h, d_in, (d_in, self.features), jnp.matmul)


class MLP(nn.Module):
    """Fully connected network in neural-tangents' NTK parameterization.

    h_0 = x;  z_l = (w_std/√d_l) · h_l @ K_l + b_std · b_l;  h_{l+1} = φ(z_l) (l < L);
    f(x) = z_L, with K_l, b_l ~ N(0, 1) and L = len(widths): neural-tangents'
    `serial(*[Dense(w, W_std, b_std), Relu()/Erf()] for w in widths, Dense(out_dim, ...))`.
    Submodules Dense_0 … Dense_L (Dense_L the readout), each {'kernel', 'bias'}. The infinite-width
    limit (out_dim = 1) is `kernels.fc_kernel_fn(len(widths), activation, w_std, b_std)`.

    Attributes:
      widths: hidden widths (w_1, …, w_L); () gives a linear model.
      out_dim: k, the number of outputs; output (n, k) even for k = 1.
      w_std: weight standard deviation.
      b_std: bias standard deviation.
      activation: 'relu' or 'erf'.
      parameterization: 'ntk' (default) or 'standard'.

    Example:
      >>> mlp = MLP(widths=(128, 128), w_std=1.5, b_std=0.1)
      >>> params = mlp.init(jax.random.key(0), x)["params"]
      >>> mlp.apply({"params": params}, x).shape                     # (n, out_dim)
      (40, 1)

    Reference: Jacot et al. arXiv 1806.07572; Novak et al. arXiv 1912.02803 (neural-tangents).
    """

    widths: Sequence[int]
    out_dim: int = 1
    w_std: float = 1.0
    b_std: float = 0.0
    activation: str = "relu"
    parameterization: str = "ntk"

    def setup(self):
        if self.activation not in MLP_ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {tuple(MLP_ACTIVATIONS)}, got {self.activation!r}"
            )
        sizes = (*tuple(self.widths), self.out_dim)
        self.layers = [
            _NTKDense(s, self.w_std, self.b_std, self.parameterization, name=f"Dense_{i}")
            for i, s in enumerate(sizes)
        ]

    def __call__(self, x: jax.Array) -> jax.Array:
        phi = MLP_ACTIVATIONS[self.activation]
        h = x
        for layer in self.layers[:-1]:
            h = phi(layer(h))
        return self.layers[-1](h)


def _mlp_params_from_stax(stax_params) -> dict:
    """neural-tangents `serial(...)` params [(W, b or None), ()...] as `MLP`'s 'params' dict."""
    out = {}
    for w, b in (p for p in stax_params if len(p)):  # () is an activation layer
        w = jnp.asarray(w)
        b = jnp.zeros((w.shape[1],), w.dtype) if b is None else jnp.asarray(b).reshape(w.shape[1])
        out[f"Dense_{len(out)}"] = {"kernel": w, "bias": b}
    return out


def _conv_same(h, kernel, stride: int = 1):
    """Σ_offsets shift(h) @ kernel[offset]: 'SAME' convolution as matmuls (jax-ml/jax#12868)."""
    window = kernel.shape[:-2]
    spatial = h.shape[1:-1]
    out_len = [-(-s // stride) for s in spatial]
    totals = [
        max((o - 1) * stride + w - s, 0) for o, w, s in zip(out_len, window, spatial, strict=True)
    ]
    hp = jnp.pad(h, ((0, 0), *[(t // 2, t - t // 2) for t in totals], (0, 0)))
    out = 0.0
    for offset in np.ndindex(*window):
        part = hp[
            (
                slice(None),
                *[
                    slice(o, o + (m - 1) * stride + 1, stride)
                    for o, m in zip(offset, out_len, strict=True)
                ],
            )
        ]
        out = out + part @ kernel[offset]
    return out


class _NTKConv(nn.Module):
    """neural-tangents' `stax.Conv(padding='SAME')`, fan_in = (∏ kernel_size)·C_in."""

    features: int
    kernel_size: tuple
    w_std: float = 1.0
    b_std: float = 0.0
    parameterization: str = "ntk"
    stride: int = 1

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        c_in = h.shape[-1]
        fan_in = int(np.prod(self.kernel_size)) * c_in
        shape = (*self.kernel_size, c_in, self.features)
        conv = functools.partial(_conv_same, stride=self.stride)
        return _scaled_layer(self, h, fan_in, shape, conv)


CONV_POOLS = ("flatten", "global")


class ConvNet(nn.Module):
    """Convolutional network, in neural-tangents' NTK parameterization by default (ReLU, 'SAME').

    h_l = ReLU((w_std/√(q·C_{l−1})) · (h_{l−1} ⋆ K_l) + b_std · b_l) (l = 1..L, q = kernel_size^s),
    then flatten or global average pooling and a dense readout, every K, b ~ N(0, 1):
    neural-tangents' `serial(*[Conv(c, (k,)*s, padding='SAME'), Relu()] * L, Flatten() |
    GlobalAvgPool(), Dense(out_dim))`. Parameters Conv_0 … Conv_{L−1} and Readout.

    Attributes:
      input_shape: (*spatial, channels) of one example (1 or 2 spatial axes).
      channels: (C_1, …, C_L).
      out_dim: number of outputs k; output (n, k).
      kernel_size: k per spatial axis.
      w_std: weight standard deviation.
      b_std: bias standard deviation.
      pool: 'flatten' or 'global' (average over positions).
      parameterization: 'ntk' (the above) or 'standard'.

    Example:
      >>> net = ConvNet(input_shape=(8, 8, 1), channels=(8, 8), out_dim=10)
      >>> params = net.init(jax.random.key(0), jnp.zeros((2, 64)))["params"]
      >>> params["Conv_1"]["kernel"].shape, params["Readout"]["kernel"].shape
      ((3, 3, 8, 8), (512, 10))

    Reference: Novak et al. arXiv 1810.05148 (CNN kernels), arXiv 1912.02803 (neural-tangents).
    """

    input_shape: tuple
    channels: Sequence[int] = (16, 16)
    out_dim: int = 1
    kernel_size: int = 3
    w_std: float = 1.0
    b_std: float = 0.0
    pool: str = "flatten"
    parameterization: str = "ntk"
    stride: int = 1

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.pool not in CONV_POOLS:
            raise ValueError(f"pool must be one of {CONV_POOLS}, got {self.pool!r}")
        shape = tuple(self.input_shape)
        h = x.reshape((x.shape[0], *shape))
        window = (self.kernel_size,) * (len(shape) - 1)
        scales = (self.w_std, self.b_std, self.parameterization)
        for i, c in enumerate(self.channels):
            h = jax.nn.relu(_NTKConv(c, window, *scales, self.stride, name=f"Conv_{i}")(h))
        if self.pool == "flatten":
            h = h.reshape((h.shape[0], -1))
        else:
            h = h.mean(axis=tuple(range(1, len(shape))))
        return _NTKDense(self.out_dim, *scales, name="Readout")(h)


ARCHS = ("mlp", "cnn", "two-layer-relu")
"""The architectures of `network`."""


class Network(NamedTuple):
    """A finite network as pure functions, its θ(0) and, where defined, its infinite-width NTK."""

    apply_fn: Callable  # apply_fn(params, x (n, d)) → (n,) (two-layer-relu) or (n, out_dim)
    params: Any  # θ(0), drawn from `seed` (pytree)
    kernel_fn: Any  # the infinite-width KernelFn, x1, x2 → Kernel(nngp, ntk); None: none defined
    kernel_name: str  # the kernel, in words, or why there is none
    init: Callable  # PRNG key → params (vmap over keys for several seeds)
    module: nn.Module  # the flax module (for the eNTK's structured rules)
    description: str  # e.g. "mlp (512,) relu, ntk parameterization"


def network(
    arch: str,
    x,
    *,
    out_dim: int = 1,
    widths=(512,),
    channels=(16, 16),
    kernel_size: int = 3,
    stride: int = 1,
    pool: str = "flatten",
    input_shape=None,
    activation: str = "relu",
    w_std: float = 1.0,
    b_std: float = 0.0,
    parameterization: str = "ntk",
    init: str = "iid",
    seed: int = 0,
    dtype=None,
    kernel: bool = True,
) -> Network:
    """A network by name: apply_fn, θ(0) and, where defined, its infinite-width kernel function.

    * "two-layer-relu": `TwoLayerReLU`, its ±1 readout held in apply_fn (a Partial); Θ_∞ = H∞.
      init="symmetric" pairs opposite readouts, f(θ(0)) = 0 (Chizat et al. arXiv 1812.07956).
    * "mlp": `MLP`; Θ_∞ = `kernels.fc_kernel_fn` (⊗ I_out_dim), NTK parameterization only.
    * "cnn": `ConvNet`; Θ_∞ from neural-tangents' `cnn` spec (NTK parameterization, stride 1).

    Args:
      arch: one of `ARCHS`.
      x: (n, d) inputs (their shape and float dtype) or the input size d.
      out_dim: outputs k (not for "two-layer-relu").
      widths: hidden widths (MLP), (m,) for "two-layer-relu" (output (n,)).
      channels: channels per convolution (CNN).
      kernel_size: window per spatial axis (CNN).
      stride: convolution stride (CNN).
      pool: 'flatten' or 'global' (CNN).
      input_shape: one example's (*spatial, channels) with ∏ = d (CNN; required).
      activation: 'relu' or 'erf' (MLP).
      w_std: weight standard deviation (κ for "two-layer-relu").
      b_std: bias standard deviation.
      parameterization: 'ntk' or 'standard' (MLP, CNN).
      init: 'iid' or 'symmetric' ("two-layer-relu").
      seed: PRNG seed of θ(0).
      dtype: parameter dtype (None: x's float dtype, float32 for an int x).
      kernel: build the kernel function (False: kernel_fn None).

    Returns:
      Network; `apply_fn` is one cached function object per architecture (reused compilations).

    Example:
      >>> net = network("mlp", x, out_dim=3, widths=(64, 64), w_std=1.5)
      >>> net.apply_fn(net.params, x).shape, net.kernel_name
      ((40, 3), 'fc_kernel_fn(depth=2, relu, w_std=1.5, b_std=0)')
      >>> seeds = jax.vmap(net.init)(jax.random.split(jax.random.key(0), 5))   # 5 seeds
      >>> seeds["Dense_0"]["kernel"].shape
      (5, 5, 64)

    Reference: Jacot et al. arXiv 1806.07572; Du et al. arXiv 1810.02054; Novak et al. arXiv
    1810.05148 and 1912.02803 (neural-tangents).
    """
    from ..kernels import _kernel_fn as kernels

    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    _check_parameterization(parameterization)
    if isinstance(x, int | np.integer):
        d, like = check_int("x (the input size)", x, minimum=1), np.float32
    else:
        d, like = int(np.prod(np.shape(x)[1:])), np.asarray(x).dtype
    if dtype is None:
        dtype = jax.dtypes.canonicalize_dtype(like if np.dtype(like).kind == "f" else np.float32)
    dummy = jnp.zeros((1, d), dtype)
    widths = tuple(check_int("width", w, minimum=1) for w in widths)
    out_dim = check_int("out_dim", out_dim, minimum=1)
    w_std, b_std = float(w_std), float(b_std)
    if arch == "two-layer-relu":
        if len(widths) != 1:
            raise ValueError(
                f"arch 'two-layer-relu' has one hidden layer: widths=(m,), got {widths}"
            )
        return _two_layer(widths[0], dummy, w_std, init, seed, kernels.two_layer_relu_kernel_fn)
    if arch == "mlp":
        model = MLP(widths, out_dim, w_std, b_std, activation, parameterization)
        text = f"mlp {widths} {activation}, {parameterization} parameterization"
        name = f"fc_kernel_fn(depth={len(widths)}, {activation}, w_std={w_std:g}, b_std={b_std:g})"
        limit = None
        if parameterization != "ntk":
            name = "none: the standard parameterization has no kernel limit at a fixed step"
        elif kernel:
            limit = kernels.fc_kernel_fn(len(widths), activation, w_std, b_std, dtype=dtype)
    else:
        if input_shape is None:
            raise ValueError("arch 'cnn' needs input_shape (*spatial, channels) of one example")
        shape = tuple(check_int("input_shape entry", s, minimum=1) for s in input_shape)
        if len(shape) not in (2, 3):
            raise ValueError(
                f"input_shape must be (length, channels) or (height, width, channels), got {shape}"
            )
        if int(np.prod(shape)) != d:
            raise ValueError(
                f"input_shape {shape} holds {int(np.prod(shape))} values but the inputs have {d} "
                "features"
            )
        if pool not in CONV_POOLS:
            raise ValueError(f"pool must be one of {CONV_POOLS}, got {pool!r}")
        channels = tuple(check_int("channels", c, minimum=1) for c in channels)
        kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        stride = check_int("stride", stride, minimum=1)
        model = ConvNet(
            shape, channels, out_dim, kernel_size, w_std, b_std, pool, parameterization, stride
        )
        text = (
            f"cnn {channels} kernel {kernel_size} stride {stride} on {shape}, {pool}, "
            f"{parameterization} parameterization"
        )
        limit, name = _conv_limit(model, parameterization, dtype, kernel)

    def init_fn(key):
        return model.init(key, dummy)["params"]

    params = init_fn(jax.random.key(seed))
    return Network(_flax_apply(model), params, limit, name, init_fn, model, text)


def _conv_limit(model, parameterization, dtype, build):
    """neural-tangents' kernel of a `ConvNet` (NTK parameterization, stride 1), or why none."""
    from .. import nt_backend

    if parameterization != "ntk" or model.stride != 1:
        why = "stride > 1" if parameterization == "ntk" else "the standard parameterization"
        return None, f"none: no neural-tangents spec for {why}"
    spec = (
        f"cnn:channels={model.channels[0]},depth={len(model.channels)},"
        f"kernel={model.kernel_size},padding=same,pool={model.pool},act=relu,"
        f"w_std={model.w_std:g},b_std={model.b_std:g},"
        f"shape={'x'.join(map(str, model.input_shape))}"
    )
    if not build:
        return None, f"neural-tangents {spec}"
    if not nt_backend.is_available():
        return None, f"none: neural-tangents is not installed ({nt_backend.INSTALL_COMMAND})"
    return nt_backend.kernel_fn_from_spec(spec, dtype=dtype), f"neural-tangents {spec}"


@functools.lru_cache(maxsize=64)
def _two_layer_apply(width, kappa):
    """(model, apply(frozen, params, x)) of TwoLayerReLU(width, kappa): one function per model.

    apply = model.apply({'params': params, 'frozen': frozen}, x): only W is trained.
    """
    model = TwoLayerReLU(width=width, kappa=kappa)

    def apply(frozen, params, x):
        if hasattr(params, "keys") and "params" in params:
            params = params["params"]
        return model.apply({"params": params, "frozen": frozen}, x)

    return model, apply


def _two_layer(width, dummy, kappa, init, seed, kernel_fn):
    if init not in ("iid", "symmetric"):
        raise ValueError(f"init must be 'iid' or 'symmetric', got {init!r}")
    if init == "symmetric" and width % 2:
        raise ValueError(f"init='symmetric' pairs neurons: width must be even, got {width}")
    model, apply = _two_layer_apply(int(width), float(kappa))
    variables = model.init(jax.random.key(seed), dummy)
    params, frozen = variables["params"], variables["frozen"]
    if init == "symmetric":
        half = width // 2
        w, a = params["w"][:half], frozen["a"][:half]
        params = {"w": jnp.concatenate([w, w])}
        frozen = {"a": jnp.concatenate([a, -a])}

    def init_fn(key):  # a fresh W; the readout a of `seed` stays inside apply_fn
        return model.init(key, dummy)["params"]

    text = f"two-layer ReLU, width {width}, κ = {kappa:g}, {init} init"
    name = "H∞ = two_layer_relu_kernel_fn()"
    limit = kernel_fn(dtype=dummy.dtype)
    return Network(jax.tree_util.Partial(apply, frozen), params, limit, name, init_fn, model, text)


@functools.lru_cache(maxsize=64)
def _flax_apply(model):
    """apply_fn(params, x) of a flax module: one function object per model (reused compilations)."""

    def apply_fn(params, x):
        return model.apply({"params": params}, x)

    return apply_fn


def two_layer_network(width: int, x, *, kappa: float = 1.0, seed: int = 0, init: str = "iid"):
    """(apply_fn, params) of `network("two-layer-relu", x, widths=(width,), w_std=kappa, ...)`."""
    net = network("two-layer-relu", x, widths=(width,), w_std=kappa, init=init, seed=seed)
    return net.apply_fn, net.params


def mlp_network(widths, x, *, out_dim=1, w_std=1.0, b_std=0.0, activation="relu", seed=0):
    """(apply_fn, params) of `network("mlp", x, widths=widths, ...)` (NTK parameterization)."""
    options = dict(out_dim=out_dim, w_std=w_std, b_std=b_std, activation=activation, seed=seed)
    net = network("mlp", x, widths=widths, **options)
    return net.apply_fn, net.params
