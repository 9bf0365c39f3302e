"""Empirical (finite-width) neural tangent kernels: Θ(x1, x2) = J(x1) J(x2)ᵀ.

J(x) = ∂f(params, x)/∂params is the Jacobian of the outputs with respect to ALL leaves of the
`params` pytree. Three implementations, all equal to rounding:

* 'jacobian'   — materialize J(x1), J(x2) with reverse mode and contract them (the reference;
                 neural-tangents' implementation 1).
* 'ntvp'       — NTK-vector products: Θ e = J(x1) (J(x2)ᵀ e), a `vjp` then a `jvp`, `vmap`ped
                 over the standard basis e of the x2 outputs; J is never stored
                 (neural-tangents' implementation 2, Novak et al. 2022, arXiv 2206.08720).
* 'structured' — closed-form per-layer Gram products for dense networks: `MLP`
                 (`structured_mlp_ntk_fn`) and the theorem's `TwoLayerReLU` (`two_layer_ntk`).
                 No Jacobian, no autodiff over parameters.

Output reduction for models with k outputs (apply_fn returns (n, k)):
'mean' averages the k diagonal output blocks, Θ_ij = (1/k) Σ_a J_a(x_i)·J_a(x_j) — this is
neural-tangents' default `trace_axes=(-1,)` (its `_trace_and_diagonal` divides the trace by the
contracted size); 'sum' is the trace Σ_a; 'none' keeps all blocks, Θ[i, j, a, b] =
J_a(x_i)·J_b(x_j), shape (n1, n2, k, k). Models with outputs of shape (n,) have nothing to
reduce: every reduction returns (n1, n2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from ._checks import (
    as_float_array,
    as_float_tree,
    check_finite,
    check_rank,
    check_same_features,
    resolve_dtype,
)
from .models import MLP, MLP_ACTIVATIONS, TwoLayerReLU
from .tiling import check_tile_size, tiled_pairwise

__all__ = [
    "IMPLEMENTATIONS",
    "OUTPUT_REDUCTIONS",
    "empirical_ntk_fn",
    "structured_mlp_ntk_fn",
    "two_layer_ntk",
]


def _full_precision():
    """Matmuls at the full precision of the dtype: on GPUs JAX's default float32 matmul may use
    TF32 (about 3 decimal digits), too coarse for kernels compared at float32 rounding."""
    return jax.default_matmul_precision("highest")


IMPLEMENTATIONS = ("jacobian", "ntvp", "structured")
"""Empirical-NTK implementations of `empirical_ntk_fn`."""
OUTPUT_REDUCTIONS = ("mean", "sum", "none")
"""Output reductions of `empirical_ntk_fn`: mean (NT's trace_axes=(-1,)), sum (trace), none."""

Implementation = Literal["jacobian", "ntvp", "structured"]
OutputReduction = Literal["mean", "sum", "none"]


# ---------------------------------------------------------------------------------------------
# Validation (eager, before tracing)
# ---------------------------------------------------------------------------------------------


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")


def _prepare_inputs(x1, x2, dtype, exact_rank: int | None):
    """Cast x1, x2 to `dtype`, check rank (exact, or ≥ 2 for generic models) and finiteness."""
    out = []
    for name, x in (("x1", x1), ("x2", x2)):
        if x is None:
            out.append(None)
            continue
        x = as_float_array(x, name, dtype)
        if exact_rank is not None:
            check_rank(x, name, exact_rank)
        elif x.ndim < 2:
            raise ValueError(
                f"{name} must have rank ≥ 2 (a batch axis, then the feature axes), got shape "
                f"{tuple(x.shape)}; reshape a batch of scalars to (n, 1)"
            )
        check_finite(x, name)
        out.append(x)
    if out[1] is not None:
        check_same_features(out[0], out[1])
    return out[0], out[1]


def _outputs_2d(apply_fn, params, x):
    """apply_fn(params, x) as (n, k): outputs (n,) get a unit output axis."""
    out = apply_fn(params, x)
    if out.ndim == 1:
        out = out[:, None]
    if out.ndim != 2 or out.shape[0] != x.shape[0]:
        raise ValueError(
            f"apply_fn must return (n,) or (n, k) outputs for n = {x.shape[0]} inputs, got shape "
            f"{tuple(out.shape)}"
        )
    return out


# ---------------------------------------------------------------------------------------------
# Generic implementations: Jacobian contraction and NTK-vector products
# ---------------------------------------------------------------------------------------------


def _reduce_blocks(theta_full, reduction, scalar_output):
    """(n1, n2, k, k) → requested reduction; outputs of shape (n,) give (n1, n2) always."""
    if scalar_output:
        return theta_full[:, :, 0, 0]
    if reduction == "none":
        return theta_full
    trace = jnp.trace(theta_full, axis1=2, axis2=3)
    return trace / theta_full.shape[2] if reduction == "mean" else trace


def _jacobian_block(apply_fn, params, a, b, reduction, scalar_output):
    """Θ = J(a) J(b)ᵀ with J materialized (leaves (n, k, *param_shape)), summed over leaves."""

    def jac(x):
        leaves = jax.tree_util.tree_leaves(
            jax.jacrev(lambda p: _outputs_2d(apply_fn, p, x))(params)
        )
        return [leaf.reshape(leaf.shape[0], leaf.shape[1], -1) for leaf in leaves]

    j1 = jac(a)
    j2 = j1 if b is None else jac(b)
    if reduction == "none" or scalar_output:
        full = sum(jnp.einsum("iap,jbp->ijab", u, v) for u, v in zip(j1, j2, strict=True))
        return _reduce_blocks(full, reduction, scalar_output)
    trace = sum(jnp.einsum("iap,jap->ij", u, v) for u, v in zip(j1, j2, strict=True))
    return trace / j1[0].shape[1] if reduction == "mean" else trace


def _ntvp_block(apply_fn, params, a, b, reduction, scalar_output):
    """Θ e_(j,b) = J(a) vjp_b(e_(j,b)): one jvp per basis cotangent, vmapped; no J stored."""
    b = a if b is None else b
    out_b, vjp_b = jax.vjp(lambda p: _outputs_2d(apply_fn, p, b), params)
    n2, k = out_b.shape

    def ntk_vector_product(cotangent):  # (n2, k) → (n1, k)
        (tangent,) = vjp_b(cotangent)
        return jax.jvp(lambda p: _outputs_2d(apply_fn, p, a), (params,), (tangent,))[1]

    basis = jnp.eye(n2 * k, dtype=out_b.dtype).reshape(n2 * k, n2, k)
    cols = jax.vmap(ntk_vector_product)(basis)  # (n2·k, n1, k): cols[(j,b)][i,a] = Θ[i,j,a,b]
    full = cols.reshape(n2, k, a.shape[0], k).transpose(2, 0, 3, 1)  # (n1, n2, k, k)
    return _reduce_blocks(full, reduction, scalar_output)


_GENERIC_BLOCKS = {"jacobian": _jacobian_block, "ntvp": _ntvp_block}


def _pairwise(block_fn, x1, x2, tile_size):
    """Untiled symmetric calls pass b=None so the block can reuse one Jacobian."""
    n1 = x1.shape[0]
    if x2 is None and (tile_size is None or tile_size >= n1):
        return block_fn(x1, None)
    return tiled_pairwise(block_fn, x1, x1 if x2 is None else x2, tile_size)


def empirical_ntk_fn(
    apply_fn: Callable | None,
    *,
    implementation: Implementation = "jacobian",
    output_reduction: OutputReduction = "mean",
    tile_size: int | None = None,
    model: MLP | TwoLayerReLU | None = None,
):
    """Empirical NTK Θ(x1, x2) = J(x1) J(x2)ᵀ of `apply_fn(params, x)` over all params leaves.

    Θ_ij = Σ_{leaves p} ⟨∂f(x_i)/∂p, ∂f(x_j)/∂p⟩; for k outputs (see the module docstring):
      'mean': (1/k) Σ_a J_a(x_i)·J_a(x_j)   (n1, n2)   — neural-tangents' trace_axes=(-1,)
      'sum':        Σ_a J_a(x_i)·J_a(x_j)   (n1, n2)
      'none':  Θ[i, j, a, b] = J_a(x_i)·J_b(x_j)   (n1, n2, k, k)
    Outputs of shape (n,) have nothing to reduce: (n1, n2) for every reduction.
    No 1/n or learning-rate factor: GD on ½‖u − y‖² with step η moves u by −η Θ (u − y).

    Args:
      apply_fn: f(params, x) → (n,) or (n, k); params any pytree of float arrays. May be None
        for implementation='structured' (the model then defines the function).
      implementation: 'jacobian' (reference), 'ntvp' (NTK-vector products), or 'structured'
        (closed-form Gram products; needs `model=` an `MLP` or a `TwoLayerReLU`, see
        `structured_mlp_ntk_fn` and `two_layer_ntk`).
      output_reduction: 'mean', 'sum' or 'none' (see above).
      tile_size: rows per tile for x1 and x2 (any positive int; None = untiled). Bounds the
        memory of the intermediates (Jacobians are tile × k × #params).
      model: required for 'structured', ignored otherwise.

    Returns:
      ntk_fn(params, x1, x2=None, *, dtype=None) → Θ, jit-compiled once per factory (a second
      call with the same shapes does not recompile). x1 (n1, ...), x2 (n2, ...) or None for
      x1; params and inputs are cast to `dtype` (float32 or float64; default follows the x64
      flag). For 'structured' with an MLP, params is `variables['params']`; for TwoLayerReLU
      it is {'w': (m, d)}.

    Example:
      >>> mlp = ntk_air.models.MLP(widths=(256, 256), out_dim=3)
      >>> params = mlp.init(jax.random.key(0), x)["params"]
      >>> ntk_fn = empirical_ntk_fn(lambda p, x: mlp.apply({"params": p}, x), implementation="ntvp")
      >>> theta = ntk_fn(params, x)                       # (n, n), mean over the 3 outputs

    Reference: Jacot et al., arXiv 1806.07572; Novak et al., arXiv 2206.08720 (fast eNTKs).
    """
    _check_choice("implementation", implementation, IMPLEMENTATIONS)
    _check_choice("output_reduction", output_reduction, OUTPUT_REDUCTIONS)
    check_tile_size(tile_size)
    if implementation == "structured":
        if isinstance(model, MLP):
            return structured_mlp_ntk_fn(
                model, output_reduction=output_reduction, tile_size=tile_size
            )
        if isinstance(model, TwoLayerReLU):
            return functools.partial(two_layer_ntk, tile_size=tile_size)
        raise ValueError(
            "implementation='structured' needs model= an ntk_air.models.MLP or TwoLayerReLU, got "
            f"{type(model).__name__}; use 'jacobian' or 'ntvp' for other models"
        )
    if not callable(apply_fn):
        raise ValueError(f"apply_fn must be callable f(params, x), got {apply_fn!r}")
    block = _GENERIC_BLOCKS[implementation]

    @jax.jit
    def compiled(params, x1, x2):
        scalar_output = jax.eval_shape(lambda: apply_fn(params, x1[:1])).ndim == 1
        return _pairwise(
            lambda a, b: block(apply_fn, params, a, b, output_reduction, scalar_output),
            x1,
            x2,
            tile_size,
        )

    def ntk_fn(params, x1, x2=None, *, dtype=None):
        dt = resolve_dtype(dtype)
        x1, x2 = _prepare_inputs(x1, x2, dt, exact_rank=None)
        with _full_precision():
            return compiled(as_float_tree(params, "params", dt), x1, x2)

    return ntk_fn


# ---------------------------------------------------------------------------------------------
# Structured: dense MLPs in NTK parameterization
# ---------------------------------------------------------------------------------------------


def _mlp_layers(mlp: MLP, params) -> list[tuple[jax.Array, jax.Array]]:
    """[(kernel (d_in, d_out), bias (d_out,))] for Dense_0 … Dense_L, checked against `mlp`."""
    if hasattr(params, "keys") and "params" in params:
        params = params["params"]
    sizes = (*tuple(mlp.widths), mlp.out_dim)
    layers = []
    for i, d_out in enumerate(sizes):
        name = f"Dense_{i}"
        if not hasattr(params, "keys") or name not in params:
            raise ValueError(
                f"params must be an MLP 'params' dict with Dense_0 … Dense_{len(sizes) - 1}; "
                f"missing {name!r} (got keys {list(getattr(params, 'keys', list)())})"
            )
        kernel, bias = params[name]["kernel"], params[name]["bias"]
        if kernel.ndim != 2 or kernel.shape[1] != d_out or bias.shape != (d_out,):
            raise ValueError(
                f"params[{name!r}] has kernel {tuple(kernel.shape)}, bias {tuple(bias.shape)}; "
                f"expected (d_in, {d_out}) and ({d_out},) for widths={tuple(mlp.widths)}, "
                f"out_dim={mlp.out_dim}"
            )
        layers.append((kernel, bias))
    return layers


def _activation_derivative(activation: str, z: jax.Array) -> jax.Array:
    if activation == "relu":
        return (z > 0).astype(z.dtype)  # matches jax.nn.relu's derivative (0 at z = 0)
    return (2.0 / float(np.sqrt(np.pi))) * jnp.exp(-(z**2))


def _mlp_features(layers, x, mlp: MLP):
    """Per-layer inputs h_l (n, d_l) and back-propagated signals δ_l = ∂f/∂z_l (n, k, d_{l+1})."""
    phi = MLP_ACTIVATIONS[mlp.activation]
    w_std, b_std = float(mlp.w_std), float(mlp.b_std)  # weak types keep float32 float32
    inputs, pre_activations = [], []
    h = x
    for kernel, bias in layers:
        inputs.append(h)
        z = (w_std / float(np.sqrt(kernel.shape[0]))) * (h @ kernel) + b_std * bias
        pre_activations.append(z)
        h = phi(z)
    k = mlp.out_dim
    delta = jnp.broadcast_to(
        jnp.eye(k, dtype=x.dtype), (x.shape[0], k, k)
    )  # readout: ∂f_a/∂z_L,c = δ_ac
    deltas = [delta]
    for l in range(len(layers) - 2, -1, -1):
        kernel_next = layers[l + 1][0]
        back = (w_std / float(np.sqrt(kernel_next.shape[0]))) * (delta @ kernel_next.T)
        delta = back * _activation_derivative(mlp.activation, pre_activations[l])[:, None, :]
        deltas.append(delta)
    return inputs, deltas[::-1]


def _pack(inputs, deltas):
    """Concatenate [h_0, δ_0, h_1, δ_1, …] per row into (n, F) so rows tile as one array."""
    n = inputs[0].shape[0]
    parts, shapes = [], []
    for h, d in zip(inputs, deltas, strict=True):
        parts += [h, d.reshape(n, -1)]
        shapes.append((h.shape[1], d.shape[1], d.shape[2]))
    return jnp.concatenate(parts, axis=1), tuple(shapes)


def _unpack(packed, shapes):
    n, offset, out = packed.shape[0], 0, []
    for d_in, k, d_out in shapes:
        h = packed[:, offset : offset + d_in]
        offset += d_in
        delta = packed[:, offset : offset + k * d_out].reshape(n, k, d_out)
        offset += k * d_out
        out.append((h, delta))
    return out


def _structured_block(f1, f2, shapes, w_std, b_std, reduction, scalar_output):
    """Θ = Σ_l (δ_l δ_lᵀ) ⊙ (w_std²/d_l · h_l h_lᵀ + b_std²), per output pair or traced."""
    theta = 0.0
    for (h1, d1), (h2, d2) in zip(_unpack(f1, shapes), _unpack(f2, shapes), strict=True):
        input_gram = (w_std**2 / h1.shape[1]) * (h1 @ h2.T) + b_std**2  # (n1, n2)
        if reduction == "none" and not scalar_output:
            theta = theta + jnp.einsum("iac,jbc->ijab", d1, d2) * input_gram[:, :, None, None]
        else:
            n1, n2 = d1.shape[0], d2.shape[0]
            signal_gram = d1.reshape(n1, -1) @ d2.reshape(n2, -1).T  # Σ_a δ_a·δ'_a
            theta = theta + signal_gram * input_gram
    if reduction == "mean" and not scalar_output:
        theta = theta / shapes[-1][1]
    return theta


def structured_mlp_ntk_fn(
    mlp: MLP,
    *,
    output_reduction: OutputReduction = "mean",
    tile_size: int | None = None,
):
    """Empirical NTK of a dense `MLP` by per-layer Gram products (no Jacobian materialized).

    With h_l the input of layer l (h_0 = x, width d_l), z_l = (w_std/√d_l) h_l K_l + b_std b_l,
    and δ_l,a = ∂f_a/∂z_l back-propagated (δ_L,a = e_a at the readout):
      Θ[i, j, a, b] = Σ_{l=0..L} (δ_l,a(x_i)·δ_l,b(x_j)) · (w_std²/d_l h_l(x_i)·h_l(x_j) + b_std²),
    the kernel and bias terms of the Jacobian contraction over every Dense layer. Reductions as
    in `empirical_ntk_fn` ('mean' = (1/k) Σ_a Θ[i, j, a, a], 'sum' = trace, 'none' = all).
    Features (h_l, δ_l) are computed once per row; the tiles only hold Gram products.

    Args:
      mlp: an `ntk_air.models.MLP` (relu or erf).
      output_reduction: 'mean', 'sum' or 'none'.
      tile_size: rows per tile (any positive int) or None.

    Returns:
      ntk_fn(params, x1, x2=None, *, dtype=None) → (n1, n2) or (n1, n2, k, k); params is
      `variables['params']` ({'Dense_0': {'kernel', 'bias'}, …}); x1 (n1, d), x2 (n2, d).

    Example:
      >>> mlp = ntk_air.models.MLP(widths=(512,) * 3, w_std=1.5, b_std=0.1)
      >>> params = mlp.init(jax.random.key(0), x)["params"]
      >>> theta = structured_mlp_ntk_fn(mlp)(params, x)     # equals the Jacobian contraction

    Reference: Novak et al., arXiv 2206.08720 (structured eNTK derivations); Jacot et al.,
    arXiv 1806.07572.
    """
    if not isinstance(mlp, MLP):
        raise TypeError(f"mlp must be an ntk_air.models.MLP, got {type(mlp).__name__}")
    _check_choice("activation", mlp.activation, tuple(MLP_ACTIVATIONS))
    _check_choice("output_reduction", output_reduction, OUTPUT_REDUCTIONS)
    check_tile_size(tile_size)
    w_std, b_std = float(mlp.w_std), float(mlp.b_std)

    @jax.jit
    def compiled(layers, x1, x2):
        f1, shapes = _pack(*_mlp_features(layers, x1, mlp))
        f2 = None if x2 is None else _pack(*_mlp_features(layers, x2, mlp))[0]
        block = functools.partial(
            _structured_block,
            shapes=shapes,
            w_std=w_std,
            b_std=b_std,
            reduction=output_reduction,
            scalar_output=False,
        )
        return _pairwise(lambda a, b: block(a, a if b is None else b), f1, f2, tile_size)

    def ntk_fn(params, x1, x2=None, *, dtype=None):
        dt = resolve_dtype(dtype)
        x1, x2 = _prepare_inputs(x1, x2, dt, exact_rank=2)
        # Cast the dict first, so that errors name the leaf as params['Dense_1']['kernel'].
        layers = _mlp_layers(mlp, as_float_tree(params, "params", dt))
        if layers[0][0].shape[0] != x1.shape[1]:
            raise ValueError(
                f"x1 has {x1.shape[1]} features but params['Dense_0']['kernel'] expects "
                f"{layers[0][0].shape[0]}"
            )
        with _full_precision():
            return compiled(layers, x1, x2)

    return ntk_fn


# ---------------------------------------------------------------------------------------------
# Structured: the theorem's two-layer ReLU network
# ---------------------------------------------------------------------------------------------


def _two_layer_block(w, a, b):
    """(P_a P_bᵀ / m) ⊙ (X_a X_bᵀ), P = 1{X Wᵀ ≥ 0} the activation patterns."""
    b = a if b is None else b
    pa = (a @ w.T >= 0).astype(a.dtype)  # (n1, m)
    pb = pa if b is a else (b @ w.T >= 0).astype(b.dtype)  # (n2, m)
    return (pa @ pb.T) * (a @ b.T) / w.shape[0]


@functools.partial(jax.jit, static_argnames=("tile_size",))
def _two_layer_ntk_jit(w, x1, x2, tile_size):
    return _pairwise(lambda a, b: _two_layer_block(w, a, b), x1, x2, tile_size)


def two_layer_ntk(params_or_w, x1, x2=None, *, tile_size: int | None = None, dtype=None):
    """Finite-width Gram matrix H(W) of the theorem's two-layer ReLU network (W trained only).

    H(W)_ij = (x_i·x_j / m) Σ_{r=1..m} 1{w_r·x_i ≥ 0} 1{w_r·x_j ≥ 0}
            = [(P1 P2ᵀ / m) ⊙ (X1 X2ᵀ)]_ij,   P = 1{X Wᵀ ≥ 0} ∈ {0,1}^{n×m}.
    This is J Jᵀ of f(x) = (1/√m) Σ_r a_r ReLU(w_r·x) with respect to W (a_r² = 1, so the
    readout drops out); E_W H(W) = H∞ (`ntk_air.kernels.two_layer_relu`) for any κ, and
    ‖H(W) − H∞‖ = O(1/√m). Any input norms are accepted (no unit-norm requirement here).

    Args:
      params_or_w: {'w': (m, d)} (a TwoLayerReLU's 'params'; a full variables dict also works)
        or the (m, d) weight array.
      x1: (n1, d) inputs.
      x2: (n2, d) inputs or None for x1.
      tile_size: rows per tile (any positive int) or None.
      dtype: float32 or float64 (default follows the x64 flag); W and x are both cast to it.

    Returns:
      (n1, n2) array H(W)(x1, x2).

    Example:
      >>> model = ntk_air.models.TwoLayerReLU(width=4096)
      >>> params = model.init(jax.random.key(0), x)["params"]
      >>> H = two_layer_ntk(params, x)              # ≈ ntk_air.kernels.two_layer_relu(x)

    Reference: Du, Zhai, Poczos, Singh, arXiv 1810.02054 (H(W), H∞); Arora et al., arXiv
    1901.08584.
    """
    check_tile_size(tile_size)
    w = params_or_w
    if hasattr(w, "keys"):
        if "params" in w:
            w = w["params"]
        if "w" not in w:
            raise ValueError(f"params must be {{'w': (m, d)}}, got keys {list(w.keys())}")
        w = w["w"]
    dt = resolve_dtype(dtype)
    w = as_float_array(w, "w", dt)
    check_rank(w, "w", 2)
    check_finite(w, "w")
    x1, x2 = _prepare_inputs(x1, x2, dt, exact_rank=2)
    if w.shape[1] != x1.shape[1]:
        raise ValueError(f"x1 has {x1.shape[1]} features but w has shape {tuple(w.shape)} (m, d)")
    with _full_precision():
        return _two_layer_ntk_jit(w, x1, x2, tile_size)
