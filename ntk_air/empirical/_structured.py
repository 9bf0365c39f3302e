"""Structured eNTK engines: closed-form Gram products for `MLP` and `TwoLayerReLU` (no Jacobian).

Convolutions get none: per pair the closed form costs O(S² (9 C_in + C_out)) on an S-pixel
map against O(9 C_in C_out) for the Jacobian contraction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_rank
from ..networks._models import MLP, MLP_ACTIVATIONS
from ._plan import Costs, structured_costs


def mlp_layers(spec: MLPEngine, params) -> list[tuple[jax.Array, jax.Array]]:
    """[(kernel (d_in, d_out), bias (d_out,))] for Dense_0 … Dense_L, checked against `spec`."""
    if isinstance(params, Mapping) and "params" in params:
        params = params["params"]
    sizes = (*spec.widths, spec.out_dim)
    layers = []
    for i, d_out in enumerate(sizes):
        name = f"Dense_{i}"
        if not isinstance(params, Mapping) or name not in params:
            keys = list(params.keys()) if isinstance(params, Mapping) else type(params).__name__
            raise ValueError(
                f"params must be an MLP 'params' dict with Dense_0 … Dense_{len(sizes) - 1}; "
                f"missing {name!r} (got keys {keys})"
            )
        kernel, bias = params[name]["kernel"], params[name]["bias"]
        if kernel.ndim != 2 or kernel.shape[1] != d_out or bias.shape != (d_out,):
            raise ValueError(
                f"params[{name!r}] has kernel {tuple(kernel.shape)}, bias {tuple(bias.shape)}; "
                f"expected (d_in, {d_out}) and ({d_out},) for widths={spec.widths}, "
                f"out_dim={spec.out_dim}"
            )
        layers.append((kernel, bias))
    return layers


def _activation_derivative(activation: str, z: jax.Array) -> jax.Array:
    if activation == "relu":
        return (z > 0).astype(z.dtype)  # matches jax.nn.relu's derivative (0 at z = 0)
    return (2.0 / float(np.sqrt(np.pi))) * jnp.exp(-(z**2))


@dataclasses.dataclass(frozen=True)
class MLPEngine:
    """Per-layer Gram products of an `ntk_air.networks.MLP` (hashable spec of the module)."""

    widths: tuple
    out_dim: int
    w_std: float
    b_std: float
    activation: str
    reduction: str

    shared = True
    scalar = False
    block_runs_model = False

    @classmethod
    def from_module(cls, mlp: MLP, reduction: str) -> MLPEngine:
        if mlp.activation not in MLP_ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {tuple(MLP_ACTIVATIONS)}, got {mlp.activation!r}"
            )
        return cls(
            widths=tuple(int(w) for w in mlp.widths),
            out_dim=int(mlp.out_dim),
            w_std=float(mlp.w_std),
            b_std=float(mlp.b_std),
            activation=str(mlp.activation),
            reduction=reduction,
        )

    def check(self, params, x1) -> None:
        """Eager: params are this MLP's and the (n, d) rows x1 have d_in features."""
        layers = mlp_layers(self, params)
        if layers[0][0].shape[0] != x1.shape[1]:
            raise ValueError(
                f"x1 has {x1.shape[1]} features but params['Dense_0']['kernel'] expects "
                f"{layers[0][0].shape[0]}"
            )

    def sizes(self, d: int) -> tuple:
        return (d, *self.widths, self.out_dim)

    def features(self, params, state, x):
        """x (t, d) → packed [h_0, δ_0, h_1, δ_1, …] (t, Σ_l d_l + k·d_{l+1}).

        h_l (t, d_l) is the input of layer l; δ_l (t, k, d_{l+1}) = ∂f/∂z_l with δ_L = I_k.
        """
        del state
        layers = mlp_layers(self, params)
        phi = MLP_ACTIVATIONS[self.activation]
        inputs, pre_activations = [], []
        h = x
        for kernel, bias in layers:
            inputs.append(h)
            z = (self.w_std / float(np.sqrt(kernel.shape[0]))) * (h @ kernel) + self.b_std * bias
            pre_activations.append(z)
            h = phi(z)
        k, t = self.out_dim, x.shape[0]
        delta = jnp.broadcast_to(jnp.eye(k, dtype=x.dtype), (t, k, k))
        deltas = [delta]
        for l in range(len(layers) - 2, -1, -1):
            kernel_next = layers[l + 1][0]
            back = (self.w_std / float(np.sqrt(kernel_next.shape[0]))) * (delta @ kernel_next.T)
            delta = back * _activation_derivative(self.activation, pre_activations[l])[:, None]
            deltas.append(delta)
        parts = []
        for h_l, d_l in zip(inputs, deltas[::-1], strict=True):
            parts += [h_l, d_l.reshape(t, -1)]
        return jnp.concatenate(parts, axis=1)

    row_features = features
    col_features = features

    def _unpack(self, packed):
        t, offset, out = packed.shape[0], 0, []
        sizes = self.sizes(self._d_in(packed.shape[1]))
        k = self.out_dim
        for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
            h = packed[:, offset : offset + d_in]
            offset += d_in
            delta = packed[:, offset : offset + k * d_out].reshape(t, k, d_out)
            offset += k * d_out
            out.append((h, delta))
        return out

    def _d_in(self, width: int) -> int:
        """Input dimension d from the packed width d + Σ_{l≥1} d_l + k Σ_l d_{l+1}."""
        hidden = sum(self.widths)
        return width - hidden - self.out_dim * (hidden + self.out_dim)

    def block(self, params, state, f1, f2):
        """Θ = Σ_l (δ_l δ_lᵀ) ⊙ (w_std²/d_l · h_l h_lᵀ + b_std²), per output pair or traced."""
        del params, state
        theta = 0.0
        w2, b2 = self.w_std**2, self.b_std**2
        for (h1, d1), (h2, d2) in zip(self._unpack(f1), self._unpack(f2), strict=True):
            input_gram = (w2 / h1.shape[1]) * (h1 @ h2.T) + b2  # (t1, t2)
            if self.reduction == "none":
                theta = theta + jnp.einsum("iac,jbc->ijab", d1, d2) * input_gram[:, :, None, None]
            else:
                signal_gram = d1.reshape(d1.shape[0], -1) @ d2.reshape(d2.shape[0], -1).T
                theta = theta + signal_gram * input_gram
        if self.reduction == "mean":
            theta = theta / self.out_dim
        return theta

    def costs(self, probe, params, x1) -> Costs:
        """Features [h_l, δ_l] per row; per pair Σ_l 2 (d_l + k·d_{l+1}) FLOPs (k² for 'none')."""
        sizes, k = self.sizes(x1.shape[1]), self.out_dim
        layers = list(zip(sizes[:-1], sizes[1:], strict=True))
        kk = k * k if self.reduction == "none" else k
        return structured_costs(
            sum(sizes[:-1]) + k * sum(sizes[1:]),
            float((1 + k) * sum(2 * a * b for a, b in layers)),
            float(sum(2 * a + 2 * kk * b + 3 * kk for a, b in layers)),
            k * k if self.reduction == "none" and k > 1 else 1,
            probe,
        )


def two_layer_weight(params_or_w):
    """The (m, d) first-layer weight from {'w': W}, variables {'params': {'w': W}} or W."""
    w = params_or_w
    if isinstance(w, Mapping):
        if "params" in w:
            w = w["params"]
        if "w" not in w:
            raise ValueError(f"params must be {{'w': (m, d)}}, got keys {list(w.keys())}")
        w = w["w"]
    return w


@dataclasses.dataclass(frozen=True)
class TwoLayerEngine:
    """H(W) = (P_a P_bᵀ / m) ⊙ (X_a X_bᵀ), P = 1{X Wᵀ ≥ 0}: features [x, P] per row."""

    reduction: str = "mean"  # the model has one output: every reduction is the same

    shared = True
    scalar = True
    block_runs_model = False

    def check(self, params, x1) -> None:
        w = two_layer_weight(params)
        check_rank(w, "w", 2)  # x1 is (n, d): checked by the caller
        if w.shape[1] != x1.shape[1]:
            raise ValueError(
                f"x1 has {x1.shape[1]} features but w has shape {tuple(w.shape)} (m, d)"
            )

    def features(self, params, state, x):
        del state
        w = two_layer_weight(params)
        return jnp.concatenate([x, (x @ w.T >= 0).astype(x.dtype)], axis=1)  # (t, d + m)

    row_features = features
    col_features = features

    def costs(self, probe, params, x1) -> Costs:
        m, d = jnp.shape(two_layer_weight(params))
        return structured_costs(d + m, 2.0 * m * d, 2.0 * (d + m) + 3.0, 1, probe)

    def block(self, params, state, f1, f2):
        del state
        m = two_layer_weight(params).shape[0]
        d = f1.shape[1] - m
        x1, p1 = f1[:, :d], f1[:, d:]
        x2, p2 = f2[:, :d], f2[:, d:]
        return (p1 @ p2.T) * (x1 @ x2.T) / m
