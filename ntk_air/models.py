"""Finite-width networks whose NTKs the toolkit computes (flax linen).

Two parameterizations, matching the two kernel conventions of `ntk_air.kernels`:

* `TwoLayerReLU` — the ℓ2 theorem's network (SCIENCE.md §1):
  f(x) = (1/√m) Σ_r a_r ReLU(w_r·x), w_r ~ N(0, κ² I_d), a_r uniform in {±1} and frozen.
  W lives in the 'params' collection (trained); a lives in the non-trainable 'frozen'
  collection, so differentiating with respect to 'params' differentiates W only. Its
  infinite-width NTK is `ntk_air.kernels.two_layer_relu` (H∞; no 1/d input scaling, no readout
  term).
* `MLP` — neural-tangents' `stax` NTK parameterization: every layer is
  z = (w_std/√d_in) · h @ kernel + b_std · bias with kernel, bias ~ N(0, 1). Its infinite-width
  limit (out_dim=1) is `ntk_air.kernels.fc_kernel_fn(len(widths), activation, w_std, b_std)`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ._checks import check_int

__all__ = [
    "two_layer_network",
    "mlp_network",
    "TwoLayerReLU",
    "two_layer_apply_fn",
    "NTKDense",
    "MLP",
    "mlp_params_from_stax",
    "MLP_ACTIVATIONS",
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


class NTKDense(nn.Module):
    """Dense layer in NTK parameterization: z = (w_std/√d_in) · h @ kernel + b_std · bias.

    kernel (d_in, features) and bias (features,) are both initialized N(0, 1), exactly as
    neural-tangents' `stax.Dense(features, W_std=w_std, b_std=b_std)` (parameterization='ntk').
    """

    features: int
    w_std: float = 1.0
    b_std: float = 0.0

    @nn.compact
    def __call__(self, h: jax.Array) -> jax.Array:
        d_in = h.shape[-1]
        kernel = self.param("kernel", nn.initializers.normal(1.0), (d_in, self.features), h.dtype)
        bias = self.param("bias", nn.initializers.normal(1.0), (self.features,), h.dtype)
        # Python floats are weakly typed: float32 params stay float32 under x64.
        scale = float(self.w_std) / float(np.sqrt(d_in))
        return scale * (h @ kernel) + float(self.b_std) * bias


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

    def setup(self):
        if self.activation not in MLP_ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {tuple(MLP_ACTIVATIONS)}, got {self.activation!r}"
            )
        sizes = (*tuple(self.widths), self.out_dim)
        self.layers = [
            NTKDense(s, self.w_std, self.b_std, name=f"Dense_{i}") for i, s in enumerate(sizes)
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
    return _mlp_apply(model), params


@functools.lru_cache(maxsize=64)
def _mlp_apply(model):
    def apply_fn(params, x):
        return model.apply({"params": params}, x)

    return apply_fn
