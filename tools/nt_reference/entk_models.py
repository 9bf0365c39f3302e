"""Pure-JAX models shared by ntk_air and neural-tangents (eNTK benchmark and fixtures).

Each model is `apply(params, x)` with `params` laid out exactly as the equivalent flax linen
module's `variables['params']` (tests/test_empirical_models.py checks that the flax modules give
the same outputs), so one parameter set, saved to an .npz by `flatten` and read back by
`unflatten`, feeds both libraries. Only `jax`, `jax.numpy` and `numpy` are used, in the subset
that both the pinned neural-tangents environment (jax 0.4.25) and current JAX provide.

* `mlp_apply`: neural-tangents' `stax` NTK parameterization (= `ntk_air.networks.MLP`):
  z_l = (w_std/√d_l) h_l K_l + b_std b_l, ReLU between layers, linear readout.
* `cnn_apply`: flax `nn.Conv(c, (3, 3), padding='SAME')` + ReLU, twice, then `nn.Dense(1)` on
  the flattened feature map (standard parameterization, NHWC inputs, HWIO kernels).
* `attention_apply`: x + flax `nn.MultiHeadDotProductAttention(num_heads, qkv_features=f)(x)`
  (self-attention), then `nn.Dense(1)` on the flattened tokens.
* `batchnorm_mlp_apply`: Dense, batch normalization with the batch's own statistics (training
  mode: the examples of a batch are coupled), ReLU, Dense(1) — for the whole-batch fallback.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

MLP_W_STD, MLP_B_STD = 1.5, 0.1


def mlp_apply(params, x):
    """(n, d) → (n, 1): Dense_0 … Dense_L in NTK parameterization, ReLU in between."""
    names = sorted(params, key=lambda s: int(s.split("_")[1]))
    h = x
    for i, name in enumerate(names):
        kernel, bias = params[name]["kernel"], params[name]["bias"]
        h = (MLP_W_STD / np.sqrt(kernel.shape[0])) * (h @ kernel) + MLP_B_STD * bias
        if i < len(names) - 1:
            h = jax.nn.relu(h)
    return h


def _conv(x, kernel, bias):
    dn = ("NHWC", "HWIO", "NHWC")
    return lax.conv_general_dilated(x, kernel, (1, 1), "SAME", dimension_numbers=dn) + bias


def cnn_apply(params, x):
    """(n, h, w, 1) → (n, 1): two 3×3 SAME convolutions + ReLU, dense readout."""
    h = jax.nn.relu(_conv(x, params["Conv_0"]["kernel"], params["Conv_0"]["bias"]))
    h = jax.nn.relu(_conv(h, params["Conv_1"]["kernel"], params["Conv_1"]["bias"]))
    h = h.reshape(h.shape[0], -1)
    return h @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"]


def attention_apply(params, x):
    """(n, tokens, features) → (n, 1): residual multi-head self-attention, dense readout."""
    mha = params["MultiHeadDotProductAttention_0"]

    def project(name):  # (n, t, f) @ (f, heads, head_dim) → (n, t, heads, head_dim)
        return jnp.einsum("ntf,fhd->nthd", x, mha[name]["kernel"]) + mha[name]["bias"]

    q, k, v = project("query"), project("key"), project("value")
    q = q / jnp.sqrt(jnp.asarray(q.shape[-1], q.dtype))
    weights = jax.nn.softmax(jnp.einsum("nqhd,nkhd->nhqk", q, k), axis=-1)
    mixed = jnp.einsum("nhqk,nkhd->nqhd", weights, v)
    out = jnp.einsum("nqhd,hdf->nqf", mixed, mha["out"]["kernel"]) + mha["out"]["bias"]
    h = (x + out).reshape(x.shape[0], -1)
    return h @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"]


def batchnorm_mlp_apply(params, x):
    """(n, d) → (n, 1): Dense, batch normalization with the BATCH's statistics (training mode,
    so the examples of a batch are coupled), ReLU, Dense readout."""
    h = x @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"]
    mean = jnp.mean(h, axis=0)
    var = jnp.mean((h - mean) ** 2, axis=0)
    h = (h - mean) / jnp.sqrt(var + 1e-5) * params["BatchNorm_0"]["scale"]
    h = jax.nn.relu(h + params["BatchNorm_0"]["bias"])
    return h @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"]


APPLY = {
    "mlp": mlp_apply,
    "cnn": cnn_apply,
    "attention": attention_apply,
    "batchnorm_mlp": batchnorm_mlp_apply,
}


def init_params(
    model: str,
    example_shape,
    *,
    seed: int = 0,
    width: int = 512,
    depth: int = 3,
    channels: int = 32,
    heads: int = 4,
):
    """Parameters in the flax layout, drawn with numpy (float64; callers cast).

    mlp: N(0, 1) kernels and biases (NTK parameterization). cnn / attention: flax's defaults,
    kernels ~ N(0, 1/fan_in) (lecun normal, untruncated here) and small N(0, 0.01) biases so
    that every parameter has a nonzero gradient.
    """
    rng = np.random.default_rng(seed)

    def dense(fan_in, shape):
        return rng.normal(size=shape) / np.sqrt(fan_in)

    def bias(shape):
        return 0.1 * rng.normal(size=shape)

    if model == "mlp":
        (d,) = example_shape
        sizes = (d, *([width] * depth), 1)
        return {
            f"Dense_{i}": {"kernel": rng.normal(size=(a, b)), "bias": rng.normal(size=(b,))}
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
        }
    if model == "cnn":
        h, w, c_in = example_shape
        return {
            "Conv_0": {"kernel": dense(9 * c_in, (3, 3, c_in, channels)), "bias": bias(channels)},
            "Conv_1": {
                "kernel": dense(9 * channels, (3, 3, channels, channels)),
                "bias": bias(channels),
            },
            "Dense_0": {"kernel": dense(h * w * channels, (h * w * channels, 1)), "bias": bias(1)},
        }
    if model == "attention":
        tokens, f = example_shape
        hd = f // heads
        proj = {
            name: {"kernel": dense(f, (f, heads, hd)), "bias": bias((heads, hd))}
            for name in ("query", "key", "value")
        }
        proj["out"] = {"kernel": dense(f, (heads, hd, f)), "bias": bias(f)}
        return {
            "MultiHeadDotProductAttention_0": proj,
            "Dense_0": {"kernel": dense(tokens * f, (tokens * f, 1)), "bias": bias(1)},
        }
    if model == "batchnorm_mlp":
        (d,) = example_shape
        return {
            "Dense_0": {"kernel": dense(d, (d, width)), "bias": bias(width)},
            "BatchNorm_0": {"scale": 1.0 + bias(width), "bias": bias(width)},
            "Dense_1": {"kernel": dense(width, (width, 1)), "bias": bias(1)},
        }
    raise ValueError(f"model must be one of {tuple(APPLY)}, got {model!r}")


def flatten(params, prefix="p"):
    """Nested dict → {'p/Conv_0/kernel': array, ...} (for np.savez)."""
    out = {}
    for key, value in params.items():
        name = f"{prefix}/{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name))
        else:
            out[name] = np.asarray(value)
    return out


def unflatten(arrays, prefix="p"):
    """Inverse of `flatten` for the keys under `prefix`."""
    params = {}
    for name, value in arrays.items():
        parts = name.split("/")
        if parts[0] != prefix:
            continue
        node = params
        for part in parts[1:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return params


def flax_modules():
    """The flax linen modules equivalent to the pure functions (imports flax: ntk_air side only).

    Returns {'mlp': MLP-maker, 'cnn': CNN-maker, 'attention': Attention-maker}, each a function
    of the same keyword arguments as `init_params` returning a linen module whose
    `apply({'params': init_params(...)}, x)` equals `APPLY[model](params, x)`.
    """
    import flax.linen as nn

    from ntk_air.networks import MLP

    class CNN(nn.Module):
        channels: int = 32

        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(self.channels, (3, 3), padding="SAME")(x))
            x = nn.relu(nn.Conv(self.channels, (3, 3), padding="SAME")(x))
            return nn.Dense(1)(x.reshape(x.shape[0], -1))

    class Attention(nn.Module):
        heads: int = 4

        @nn.compact
        def __call__(self, x):
            mixed = nn.MultiHeadDotProductAttention(num_heads=self.heads, qkv_features=x.shape[-1])
            return nn.Dense(1)((x + mixed(x)).reshape(x.shape[0], -1))

    return {
        "mlp": lambda width=512, depth=3, **_: MLP(
            widths=(width,) * depth, out_dim=1, w_std=MLP_W_STD, b_std=MLP_B_STD
        ),
        "cnn": lambda channels=32, **_: CNN(channels=channels),
        "attention": lambda heads=4, **_: Attention(heads=heads),
    }
