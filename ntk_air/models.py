"""Finite-width networks whose NTKs the toolkit computes (flax linen).

Two parameterizations, matching the two kernel conventions of `ntk_air.kernels`:

* `TwoLayerReLU` — the ℓ2 theorem's network (docs/science/kernels.md#theorem-network):
  f(x) = (1/√m) Σ_r a_r ReLU(w_r·x), w_r ~ N(0, κ² I_d), a_r uniform in {±1} and frozen.
  W lives in the 'params' collection (trained); a lives in the non-trainable 'frozen'
  collection, so differentiating with respect to 'params' differentiates W only. Its
  infinite-width NTK is `ntk_air.kernels.two_layer_relu` (H∞; no 1/d input scaling, no readout
  term).
* `MLP` — neural-tangents' `stax` NTK parameterization: every layer is
  z = (w_std/√d_in) · h @ kernel + b_std · bias with kernel, bias ~ N(0, 1). Its infinite-width
  limit (out_dim=1) is `ntk_air.kernels.fc_kernel_fn(len(widths), activation, w_std, b_std)`.
  `parameterization="standard"` draws kernel ~ N(0, w_std²/d_in), bias ~ N(0, b_std²) and
  applies no scale: the same function at initialization, a different gradient scale per layer.
* `CNN` — a convolutional classifier (1-D or 2-D convolutions with 'SAME' padding, ReLU, then a
  dense readout of the flattened features) in either parameterization; `classifier` builds an
  MLP or a CNN as (apply_fn, init_fn) with init_fn(key) → params, so seeds `vmap`.
* `ConvNet` — a small CNN in the same NTK parameterization (convolutions 'SAME' as matrix
  products, ReLU, flatten or global average pooling, dense readout), neural-tangents'
  `stax.Conv`/`Flatten`/`GlobalAvgPool`/`Dense`; its infinite-width kernel comes from the optional
  neural-tangents backend (`nt_backend.kernel_fn_from_spec("cnn:...")`). Used by `ntk-air entk`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ._checks import check_int

__all__ = [
    "two_layer_network",
    "mlp_network",
    "classifier",
    "Classifier",
    "PARAMETERIZATIONS",
    "ARCHS",
    "NTKConv",
    "CNN",
    "TwoLayerReLU",
    "two_layer_apply_fn",
    "NTKDense",
    "MLP",
    "mlp_params_from_stax",
    "MLP_ACTIVATIONS",
    "ConvNet",
    "cnn_network",
]

MLP_ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "relu": jax.nn.relu,  # derivative 1{z > 0} (0 at z = 0)
    "erf": jax.scipy.special.erf,
}
"""Activations of `MLP` by name (those of `kernels.fc_kernel_fn`)."""


class TwoLayerReLU(nn.Module):
    """The theorem's two-layer ReLU network with a frozen ±1 readout.

    f(x) = (1/√m) Σ_{r=1..m} a_r ReLU(w_r·x),  w_r ~ N(0, κ² I_d),  a_r ~ Uniform{−1, +1}.

    `model.init(key, x)` returns {'params': {'w': (m, d)}, 'frozen': {'a': (m,)}}: W is the
    trained parameter, a is a non-trainable variable (collection 'frozen'). Use
    `two_layer_apply_fn(model, variables['frozen'])` to get `apply_fn(params, x)` that
    differentiates W only.

    Attributes:
      width: m, the number of hidden units.
      kappa: κ, the standard deviation of the first-layer weights.

    Input (n, d) → output (n,).

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
        d = x.shape[-1]
        kappa = self.kappa

        def w_init(key, shape, dtype=jnp.float32):
            return kappa * jax.random.normal(key, shape, dtype)

        w = self.param("w", w_init, (self.width, d), x.dtype)
        a = self.variable(
            "frozen",
            "a",
            lambda: jax.random.rademacher(self.make_rng("params"), (self.width,)).astype(x.dtype),
        )
        hidden = jax.nn.relu(x @ w.T.astype(x.dtype))  # (n, m)
        return hidden @ a.value.astype(x.dtype) / jnp.sqrt(jnp.asarray(self.width, x.dtype))


def two_layer_apply_fn(model: TwoLayerReLU, frozen) -> Callable[[dict, jax.Array], jax.Array]:
    """`apply_fn(params, x) = model.apply({'params': params, 'frozen': frozen}, x)`.

    Closes over the frozen readout, so `jax.grad`/empirical NTKs w.r.t. `params` see W only.

    Args:
      model: a `TwoLayerReLU`.
      frozen: the 'frozen' collection, `variables['frozen']` = {'a': (m,)}; the whole
        `variables` dict is accepted too (its 'frozen' entry is used).

    Returns:
      apply_fn(params, x): params = {'w': (m, d)}, x (n, d) → (n,).
    """
    if hasattr(frozen, "keys") and "frozen" in frozen:
        frozen = frozen["frozen"]
    if not (hasattr(frozen, "keys") and "a" in frozen):
        raise ValueError(
            "frozen must be variables['frozen'] = {'a': (m,)} of a TwoLayerReLU, "
            f"got {type(frozen).__name__} with keys {list(getattr(frozen, 'keys', list)())}"
        )

    def apply_fn(params, x):
        if hasattr(params, "keys") and "params" in params:
            params = params["params"]
        return model.apply({"params": params, "frozen": frozen}, x)

    return apply_fn


PARAMETERIZATIONS = ("ntk", "standard")
"""Parameterizations: NTK (weights scaled by w_std/√fan_in in the forward pass) or standard."""


def _check_parameterization(value) -> None:
    if value not in PARAMETERIZATIONS:
        raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {value!r}")


def _scaled_init(parameterization, fan_in, w_std, b_std):
    """(kernel init, bias init, kernel scale, bias scale) of one layer in either parameterization.

    ntk: kernel, bias ~ N(0, 1), z = (w_std/√fan_in)·(h ⋆ kernel) + b_std·bias;
    standard: kernel ~ N(0, w_std²/fan_in), bias ~ N(0, b_std²), z = h ⋆ kernel + bias.
    """
    _check_parameterization(parameterization)
    w_scale = float(w_std) / float(np.sqrt(fan_in))
    if parameterization == "ntk":
        return nn.initializers.normal(1.0), nn.initializers.normal(1.0), w_scale, float(b_std)
    return nn.initializers.normal(w_scale), nn.initializers.normal(float(b_std)), 1.0, 1.0


class NTKDense(nn.Module):
    """Dense layer in NTK parameterization: z = (w_std/√d_in) · h @ kernel + b_std · bias.

    kernel (d_in, features) and bias (features,) are both initialized N(0, 1), exactly as
    neural-tangents' `stax.Dense(features, W_std=w_std, b_std=b_std)` (parameterization='ntk').
    With parameterization='standard': kernel ~ N(0, w_std²/d_in), bias ~ N(0, b_std²) and
    z = h @ kernel + bias (the same distribution of functions at init; gradients scale
    differently).
    """

    features: int
    w_std: float = 1.0
    b_std: float = 0.0
    parameterization: str = "ntk"

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        d_in = h.shape[-1]
        k_init, b_init, w_scale, b_scale = _scaled_init(
            self.parameterization, d_in, self.w_std, self.b_std
        )
        kernel = self.param("kernel", k_init, (d_in, self.features), h.dtype)
        bias = self.param("bias", b_init, (self.features,), h.dtype)
        # Python floats are weakly typed: float32 params stay float32 under x64.
        if self.parameterization == "standard":
            return h @ kernel + bias
        return w_scale * (h @ kernel) + b_scale * bias


class MLP(nn.Module):
    """Fully connected network in neural-tangents' NTK parameterization.

    h_0 = x;  z_l = (w_std/√d_{l}) · h_l @ K_l + b_std · b_l;  h_{l+1} = φ(z_l)  (l < L);
    f(x) = z_L (the readout, no activation), with K_l, b_l ~ N(0, 1) and L = len(widths).
    Equivalent to neural-tangents'
    `serial(*[Dense(w, W_std=w_std, b_std=b_std), Relu()/Erf()] for w in widths,
            Dense(out_dim, W_std=w_std, b_std=b_std))`.
    Submodules are named Dense_0 … Dense_L (Dense_L is the readout), each with params
    'kernel' (d_in, d_out) and 'bias' (d_out,).

    The bias parameter exists even for b_std = 0 (it then has zero gradient and contributes
    nothing to the NTK).

    Attributes:
      widths: hidden widths (w_1, …, w_L); () gives a linear model.
      out_dim: k, the number of outputs.
      w_std, b_std: weight and bias standard deviations.
      activation: 'relu' or 'erf' (erf(z), neural-tangents' `stax.Erf()` with a=b=1, c=0).
      parameterization: 'ntk' (default, above) or 'standard' (see `NTKDense`).

    Input (n, d) → output (n, out_dim). The trailing axis is kept even for out_dim = 1, so
    outputs are always (n, k).

    Infinite-width limit (out_dim = 1): `ntk_air.kernels.fc_kernel_fn(len(widths), activation,
    w_std, b_std)`; for out_dim = k the NTK is that kernel ⊗ I_k.

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
            NTKDense(s, self.w_std, self.b_std, self.parameterization, name=f"Dense_{i}")
            for i, s in enumerate(sizes)
        ]

    def __call__(self, x: jax.Array) -> jax.Array:
        phi = MLP_ACTIVATIONS[self.activation]
        h = x
        for layer in self.layers[:-1]:
            h = phi(layer(h))
        return self.layers[-1](h)


def mlp_params_from_stax(stax_params) -> dict:
    """Convert neural-tangents `stax` Dense parameters to this module's `MLP` 'params' dict.

    Args:
      stax_params: list of (W, b) tuples from `stax.serial(...)` init: W (d_in, d_out),
        b (d_out,) or (1, d_out) or None (b_std=None in stax, treated as a zero bias).
        Entries of activation layers (empty tuples) are skipped, so the full
        `serial(Dense, Relu, …, Dense)` parameter list can be passed as is.

    Returns:
      {'Dense_0': {'kernel', 'bias'}, …, 'Dense_L': {...}} for `MLP.apply({'params': ...}, x)`.
    """
    out = {}
    for position, p in enumerate(stax_params):
        if isinstance(p, tuple | list) and len(p) == 0:
            continue  # an activation layer
        if not (isinstance(p, tuple | list) and len(p) in (1, 2)):
            raise ValueError(
                f"stax_params[{position}] must be a (W, b) tuple, got {type(p).__name__}"
            )
        i = len(out)  # index of this Dense layer
        w = jnp.asarray(p[0])
        if w.ndim != 2:
            raise ValueError(f"Dense layer {i}: W must be (d_in, d_out), got shape {w.shape}")
        b = p[1] if len(p) == 2 else None
        b = jnp.zeros((w.shape[1],), w.dtype) if b is None else jnp.asarray(b)
        if b.size != w.shape[1]:
            raise ValueError(
                f"Dense layer {i}: bias has {b.size} entries, expected d_out = {w.shape[1]}"
            )
        out[f"Dense_{i}"] = {"kernel": w, "bias": b.reshape(w.shape[1])}
    return out


# ---------------------------------------------------------------------------------------------
# Builders: (apply_fn, params) pairs for training and empirical NTKs
# ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _two_layer_apply(width, kappa):
    """apply(frozen, params, x) of TwoLayerReLU(width, kappa): one function object per model."""
    model = TwoLayerReLU(width=width, kappa=kappa)

    def apply(frozen, params, x):
        # The closure is rebuilt at trace time only: the readout stays an argument (data).
        return two_layer_apply_fn(model, frozen)(params, x)

    return model, apply


def two_layer_network(width: int, x, *, kappa: float = 1.0, seed: int = 0, init: str = "iid"):
    """The theorem's network at width m: (apply_fn, params) with a frozen ±1 readout.

    f(x) = (1/√m) Σ_r a_r ReLU(w_r·x) (`ntk_air.models.TwoLayerReLU`); params = {'w': (m, d)}
    is what `train` trains; a stays fixed inside apply_fn.

    init="iid" (the theorem's): w_r ~ N(0, κ²I), a_r uniform ±1, all independent; f(W0) ≠ 0
    (each output has variance κ²/2 at any width). init="symmetric": the first m/2 neurons drawn
    as above, the second half copies them with opposite readout (w_{r+m/2} = w_r,
    a_{r+m/2} = −a_r), so f(W0) = 0 exactly and the kernel limit from u(0) = 0 is the right
    comparison; H(W0) is then an average over m/2 independent neurons (Chizat et al. 2019).

    Args:
      width: m (even for init="symmetric").
      x: (n, d) inputs (for shapes and dtype).
      kappa: κ.
      seed: PRNG seed of the init.
      init: "iid" or "symmetric".

    Returns:
      (apply_fn, params): apply_fn(params, x) → (n,) is a `jax.tree_util.Partial` holding the
      readout as data, so `training.train` compiles once per (width, κ, shapes), not once per
      network.

    Reference: Du et al. arXiv 1810.02054; Chizat, Oyallon, Bach arXiv 1812.07956 (symmetric init).
    """
    check_int("width", width, minimum=1)
    if init not in ("iid", "symmetric"):
        raise ValueError(f"init must be 'iid' or 'symmetric', got {init!r}")
    if init == "symmetric" and width % 2:
        raise ValueError(f"init='symmetric' pairs neurons: width must be even, got {width}")
    model, apply = _two_layer_apply(int(width), float(kappa))
    variables = model.init(jax.random.key(seed), jnp.asarray(x))
    params, frozen = variables["params"], variables["frozen"]
    if init == "symmetric":
        half = width // 2
        w, a = params["w"][:half], frozen["a"][:half]
        params = {"w": jnp.concatenate([w, w])}
        frozen = {"a": jnp.concatenate([a, -a])}
    return jax.tree_util.Partial(apply, frozen), params


def mlp_network(
    widths,
    x,
    *,
    out_dim: int = 1,
    w_std: float = 1.0,
    b_std: float = 0.0,
    activation: str = "relu",
    seed: int = 0,
):
    """A deep MLP in NTK parameterization (`ntk_air.models.MLP`): (apply_fn, params).

    Its infinite-width NTK is `ntk_air.kernels.fc_kernel_fn(len(widths), activation, w_std, b_std)`.
    apply_fn returns (n, out_dim); `training.train` reads (n, 1) as the output for ±1 labels.
    """
    model = MLP(
        widths=tuple(int(w) for w in widths),
        out_dim=out_dim,
        w_std=w_std,
        b_std=b_std,
        activation=activation,
    )
    params = model.init(jax.random.key(seed), jnp.asarray(x))["params"]
    return _flax_apply(model), params


# ---------------------------------------------------------------------------------------------
# Classifiers for the noisy-label study: an MLP or a CNN, either parameterization
# ---------------------------------------------------------------------------------------------

ARCHS = ("mlp", "cnn")
"""The classifier architectures of `classifier`."""


def _conv_same(h, kernel):
    """Σ_offsets shift(h) @ kernel[offset]: a 'SAME', stride-1 convolution as matrix products.

    The same numbers as `lax.conv_general_dilated(..., "SAME")`, written as one matmul per
    window offset: XLA:CPU runs convolution gradients inside a compiled loop (the training
    scan) up to ~100× slower than at top level (jax-ml/jax#12868), matrix products it does not.
    h (n, *spatial, C_in), kernel (*window, C_in, C_out) → (n, *spatial, C_out).
    """
    window = kernel.shape[:-2]
    spatial = h.shape[1:-1]
    pads = [((w - 1) // 2, w // 2) for w in window]  # 'SAME' (odd windows: centred)
    hp = jnp.pad(h, ((0, 0), *pads, (0, 0)))
    out = 0.0
    for offset in np.ndindex(*window):
        part = hp[(slice(None), *[slice(o, o + s) for o, s in zip(offset, spatial, strict=True)])]
        out = out + part @ kernel[offset]
    return out


class NTKConv(nn.Module):
    """Convolution ('SAME' padding, stride 1) in NTK or standard parameterization.

    ntk: z = (w_std/√fan_in)·(h ⋆ kernel) + b_std·bias with kernel, bias ~ N(0, 1) and
    fan_in = (∏ kernel_size)·C_in, as neural-tangents' `stax.Conv(..., padding='SAME')`;
    standard: kernel ~ N(0, w_std²/fan_in), bias ~ N(0, b_std²), z = h ⋆ kernel + bias.
    Input (n, *spatial, C_in) → (n, *spatial, features). The convolution is computed as one
    matrix product per window offset (`_conv_same`): the numbers of `lax.conv_general_dilated`,
    without XLA:CPU's slow convolution gradients inside compiled training loops.
    """

    features: int
    kernel_size: tuple
    w_std: float = 1.0
    b_std: float = 0.0
    parameterization: str = "ntk"

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        c_in = h.shape[-1]
        fan_in = int(np.prod(self.kernel_size)) * c_in
        k_init, b_init, w_scale, b_scale = _scaled_init(
            self.parameterization, fan_in, self.w_std, self.b_std
        )
        shape = (*self.kernel_size, c_in, self.features)
        kernel = self.param("kernel", k_init, shape, h.dtype)
        bias = self.param("bias", b_init, (self.features,), h.dtype)
        z = _conv_same(h, kernel)
        if self.parameterization == "standard":
            return z + bias
        return w_scale * z + b_scale * bias


class Classifier(NamedTuple):
    """A network as two pure functions: apply(params, x) → (n, C) logits/outputs, init(key)."""

    apply: Callable[[dict, jax.Array], jax.Array]  # (params, (n, d)) → (n, C)
    init: Callable[[jax.Array], dict]  # PRNG key → params (vmap over keys for several seeds)
    description: str  # e.g. "mlp (512,) relu, ntk parameterization"


def classifier(
    arch: str,
    dim: int,
    n_classes: int,
    *,
    widths=(512,),
    channels=(32, 32),
    input_shape=None,
    kernel_size: int = 3,
    w_std: float = 2.0**0.5,
    b_std: float = 0.1,
    parameterization: str = "ntk",
    dtype=jnp.float32,
) -> Classifier:
    """An MLP or CNN classifier with C outputs, as (apply, init) pure functions.

    mlp: `MLP(widths, out_dim=C, w_std, b_std, 'relu', parameterization)` — in NTK
    parameterization its infinite-width NTK is `kernels.fc_kernel_fn(len(widths), 'relu', w_std,
    b_std)` ⊗ I_C. cnn: `ConvNet(input_shape, channels, out_dim=C, ...)`.

    Args:
      arch: 'mlp' or 'cnn'.
      dim: d, the flat input size.
      n_classes: C ≥ 2 outputs.
      widths: MLP hidden widths.
      channels: CNN channels per layer.
      input_shape: CNN example shape (*spatial, C_in) with ∏ = d (required for 'cnn').
      kernel_size: CNN kernel size per spatial axis.
      w_std: weight standard deviation.
      b_std: bias standard deviation.
      parameterization: 'ntk' or 'standard'.
      dtype: parameter dtype (default float32).

    Returns:
      Classifier(apply, init, description); `apply` is one cached function object per model
      (keep it to reuse compilations); `init(key)` draws the parameters.

    Example:
      >>> net = classifier("mlp", 64, 10, widths=(256,))
      >>> params = jax.vmap(net.init)(jax.random.split(jax.random.key(0), 5))   # 5 seeds
      >>> params["Dense_0"]["kernel"].shape
      (5, 64, 256)
    """
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
    _check_parameterization(parameterization)
    check_int("dim", dim, minimum=1)
    check_int("n_classes", n_classes, minimum=2)
    if arch == "mlp":
        widths = tuple(check_int("width", int(w), minimum=1) for w in widths)
        model = MLP(
            widths=widths,
            out_dim=n_classes,
            w_std=float(w_std),
            b_std=float(b_std),
            parameterization=parameterization,
        )
        text = f"mlp {widths} relu, {parameterization} parameterization"
    else:
        if input_shape is None:
            raise ValueError("arch 'cnn' needs input_shape (*spatial, channels) of one example")
        input_shape = tuple(int(s) for s in input_shape)
        if int(np.prod(input_shape)) != dim or len(input_shape) not in (2, 3):
            raise ValueError(
                f"input_shape {input_shape} must be (length, channels) or (height, width, "
                f"channels) with product d = {dim}"
            )
        channels = tuple(check_int("channels", int(c), minimum=1) for c in channels)
        model = ConvNet(
            input_shape=input_shape,
            channels=channels,
            out_dim=n_classes,
            kernel_size=int(kernel_size),
            w_std=float(w_std),
            b_std=float(b_std),
            parameterization=parameterization,
        )
        text = f"cnn {channels} on {input_shape}, {parameterization} parameterization"
    dummy = jnp.zeros((1, dim), dtype)

    def init(key):
        return model.init(key, dummy)["params"]

    return Classifier(apply=_flax_apply(model), init=init, description=text)


@functools.lru_cache(maxsize=64)
def _flax_apply(model):
    """apply_fn(params, x) of a flax module: one function object per model (reused compilations)."""

    def apply_fn(params, x):
        return model.apply({"params": params}, x)

    return apply_fn


# ---------------------------------------------------------------------------------------------
# The convolutional network (eNTK studies and the noisy-label classifier)
# ---------------------------------------------------------------------------------------------

CONV_POOLS = ("flatten", "global")


class ConvNet(nn.Module):
    """Convolutional network, in neural-tangents' NTK parameterization by default (ReLU, 'SAME').

    h_0 = x reshaped to `input_shape` (*spatial, C_0); for l = 1..L:
    h_l = ReLU((w_std/√(q·C_{l−1})) · (h_{l−1} ⋆ K_l) + b_std · b_l), q = kernel_size^s (s spatial
    axes); then flatten (pool='flatten') or average over positions (pool='global') and a dense
    readout f(x) = (w_std/√D) · h @ K + b_std · b. Every K, b ~ N(0, 1). This is neural-tangents'
    `serial(*[Conv(c, (k,)*s, padding='SAME', W_std, b_std), Relu()] * L, Flatten() |
    GlobalAvgPool(), Dense(out_dim, W_std, b_std))`, whose infinite-width kernel is
    `nt_backend.kernel_fn_from_spec("cnn:depth=L,kernel=k,pool=...,shape=...")`.
    Parameters: Conv_l {'kernel': (k, …, k, C_{l−1}, C_l), 'bias': (C_l,)} for l = 0..L−1, and
    Readout {'kernel': (D, out_dim), 'bias': (out_dim,)}.

    Attributes:
      input_shape: (*spatial, channels) of one example (1 or 2 spatial axes); inputs arrive
        flat (n, ∏ input_shape) or already shaped (n, *input_shape).
      channels: (C_1, …, C_L).
      out_dim: number of outputs k; output (n, k).
      kernel_size: k per spatial axis.
      w_std: weight standard deviation.
      b_std: bias standard deviation.
      pool: 'flatten' or 'global' (average over positions).
      parameterization: 'ntk' (the above) or 'standard' (`NTKConv`, `NTKDense`).

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

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.pool not in CONV_POOLS:
            raise ValueError(f"pool must be one of {CONV_POOLS}, got {self.pool!r}")
        shape = tuple(self.input_shape)
        h = x.reshape((x.shape[0], *shape))
        window = (self.kernel_size,) * (len(shape) - 1)
        for i, c in enumerate(self.channels):
            conv = NTKConv(
                c, window, self.w_std, self.b_std, self.parameterization, name=f"Conv_{i}"
            )
            h = jax.nn.relu(conv(h))
        if self.pool == "flatten":
            h = h.reshape((h.shape[0], -1))
        else:
            h = h.mean(axis=tuple(range(1, len(shape))))
        readout = NTKDense(
            self.out_dim, self.w_std, self.b_std, self.parameterization, name="Readout"
        )
        return readout(h)


class CNN(ConvNet):
    """`ConvNet` with the noisy-label classifier's defaults (channels (32, 32), 10 outputs).

    One convolutional network in the package: this name is kept for code written against the
    classifier's CNN; its parameters (Conv_l, Readout) and function are `ConvNet`'s.

    Example:
      >>> cnn = CNN(input_shape=(8, 8, 1), channels=(16, 16), out_dim=10)
      >>> params = cnn.init(jax.random.key(0), jnp.zeros((1, 64)))["params"]
      >>> params["Readout"]["kernel"].shape                 # flattened 8·8·16 features
      (1024, 10)
    """

    channels: Sequence[int] = (32, 32)
    out_dim: int = 10


def cnn_network(
    channels,
    x,
    *,
    input_shape,
    out_dim: int = 1,
    kernel_size: int = 3,
    w_std: float = 1.0,
    b_std: float = 0.0,
    pool: str = "flatten",
    seed: int = 0,
):
    """A small CNN in NTK parameterization (`ntk_air.models.ConvNet`): (apply_fn, params).

    Args:
      channels: channels per convolution (C_1, …, C_L).
      x: (n, d) inputs with d = ∏ input_shape (for shapes and dtype).
      input_shape: (*spatial, channels) of one example, e.g. (8, 8, 1) or (40, 1).
      out_dim: outputs k.
      kernel_size: window per spatial axis.
      w_std: weight standard deviation.
      b_std: bias standard deviation.
      pool: 'flatten' or 'global'.
      seed: PRNG seed of the init.

    Returns:
      (apply_fn, params): apply_fn(params, x) → (n, out_dim), one cached function per model
      (keep it to reuse compilations).

    Example:
      >>> apply_fn, params = cnn_network((4,), np.ones((3, 16)), input_shape=(4, 4, 1))
      >>> apply_fn(params, jnp.ones((3, 16))).shape
      (3, 1)
    """
    input_shape = tuple(check_int("input_shape entry", int(s), minimum=1) for s in input_shape)
    if len(input_shape) not in (2, 3):
        raise ValueError(
            f"input_shape must be (length, channels) or (height, width, channels), got "
            f"{input_shape}"
        )
    d = int(np.prod(np.shape(x)[1:]))
    if d != int(np.prod(input_shape)):
        raise ValueError(
            f"input_shape {input_shape} holds {int(np.prod(input_shape))} values but the inputs "
            f"have {d} features"
        )
    if pool not in CONV_POOLS:
        raise ValueError(f"pool must be one of {CONV_POOLS}, got {pool!r}")
    model = ConvNet(
        input_shape=input_shape,
        channels=tuple(check_int("channels", int(c), minimum=1) for c in channels),
        out_dim=check_int("out_dim", out_dim, minimum=1),
        kernel_size=check_int("kernel_size", kernel_size, minimum=1),
        w_std=float(w_std),
        b_std=float(b_std),
        pool=pool,
    )
    params = model.init(jax.random.key(seed), jnp.asarray(x[:1]))["params"]
    return _flax_apply(model), params
