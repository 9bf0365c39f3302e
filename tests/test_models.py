"""Models: forward passes against explicit formulas, initialization statistics, stax conversion.

The forward pass against neural-tangents' own outputs is in test_nt_fixtures.py."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

from ntk_air.networks import MLP, TwoLayerReLU
from ntk_air.networks._models import _mlp_params_from_stax, _two_layer_apply


def _x(n=6, d=4, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


# ---------------------------------------------------------------------------------------------
# TwoLayerReLU
# ---------------------------------------------------------------------------------------------


def test_two_layer_variables_and_forward_formula(x64):
    x = _x()
    model = TwoLayerReLU(width=32, kappa=0.7)
    variables = model.init(jax.random.key(0), jnp.asarray(x))
    assert set(variables) == {"params", "frozen"}
    assert set(variables["params"]) == {"w"} and set(variables["frozen"]) == {"a"}
    w = np.asarray(variables["params"]["w"])
    a = np.asarray(variables["frozen"]["a"])
    assert w.shape == (32, 4) and a.shape == (32,)
    assert set(np.unique(a)) <= {-1.0, 1.0}
    expected = np.maximum(x @ w.T, 0.0) @ a / np.sqrt(32)  # (1/√m) Σ_r a_r ReLU(w_r·x)
    got = model.apply(variables, jnp.asarray(x))
    assert got.shape == (6,)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_two_layer_init_statistics(x64):
    """w ~ N(0, κ²): sample std within 5 standard errors; a uniform ±1 (mean within 5 s.e.)."""
    kappa, m, d = 2.5, 8192, 8
    variables = TwoLayerReLU(width=m, kappa=kappa).init(jax.random.key(3), jnp.ones((2, d)))
    w = np.asarray(variables["params"]["w"]).ravel()
    a = np.asarray(variables["frozen"]["a"])
    n = w.size
    assert abs(w.std() / kappa - 1.0) < 5 / np.sqrt(2 * n)
    assert abs(w.mean()) < 5 * kappa / np.sqrt(n)
    assert abs(a.mean()) < 5 / np.sqrt(m)


def test_two_layer_apply_fn_differentiates_w_only(x64):
    x = jnp.asarray(_x())
    model, apply = _two_layer_apply(16, 1.0)
    variables = model.init(jax.random.key(1), x)
    apply_fn = functools.partial(apply, variables["frozen"])
    np.testing.assert_array_equal(apply_fn(variables["params"], x), model.apply(variables, x))
    grads = jax.grad(lambda p: apply_fn(p, x).sum())(variables["params"])
    assert set(grads) == {"w"}
    # ∂/∂w_r Σ_i f(x_i) = (1/√m) a_r Σ_i 1{w_r·x_i > 0} x_i
    w, a = np.asarray(variables["params"]["w"]), np.asarray(variables["frozen"]["a"])
    expected = (a[:, None] / 4.0) * ((np.asarray(x) @ w.T > 0).T @ np.asarray(x))
    np.testing.assert_allclose(grads["w"], expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# MLP
# ---------------------------------------------------------------------------------------------


def _mlp_forward_numpy(params, x, widths, w_std, b_std, activation):
    phi = {"relu": lambda z: np.maximum(z, 0.0), "erf": erf}[activation]
    h = x
    for i in range(len(widths) + 1):
        kernel = np.asarray(params[f"Dense_{i}"]["kernel"])
        bias = np.asarray(params[f"Dense_{i}"]["bias"])
        z = w_std / np.sqrt(h.shape[1]) * h @ kernel + b_std * bias
        h = phi(z) if i < len(widths) else z
    return h


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("out_dim", [1, 3])
def test_mlp_forward_is_ntk_parameterization(x64, activation, out_dim):
    x = _x()
    mlp = MLP(widths=(7, 5), out_dim=out_dim, w_std=1.3, b_std=0.4, activation=activation)
    params = mlp.init(jax.random.key(0), jnp.asarray(x))["params"]
    assert list(params) == ["Dense_0", "Dense_1", "Dense_2"]
    assert params["Dense_0"]["kernel"].shape == (4, 7) and params["Dense_2"]["bias"].shape == (
        out_dim,
    )
    got = mlp.apply({"params": params}, jnp.asarray(x))
    assert got.shape == (6, out_dim)  # trailing axis kept for out_dim = 1
    expected = _mlp_forward_numpy(params, x, (7, 5), 1.3, 0.4, activation)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_mlp_init_is_standard_normal(x64):
    params = MLP(widths=(512,)).init(jax.random.key(2), jnp.ones((1, 64)))["params"]
    kernel = np.asarray(params["Dense_0"]["kernel"]).ravel()
    assert abs(kernel.std() - 1.0) < 5 / np.sqrt(2 * kernel.size)
    assert abs(kernel.mean()) < 5 / np.sqrt(kernel.size)


def test_mlp_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation"):
        MLP(widths=(4,), activation="tanh").init(jax.random.key(0), jnp.ones((1, 2)))


def test_mlp_params_from_stax_layout(x64):
    rng = np.random.default_rng(0)
    w0, b0 = rng.normal(size=(4, 6)), rng.normal(size=(1, 6))  # stax stores b as (1, d_out)
    w1 = rng.normal(size=(6, 2))
    params = _mlp_params_from_stax([(w0, b0), (), (w1, None)])
    assert list(params) == ["Dense_0", "Dense_1"]
    np.testing.assert_array_equal(params["Dense_0"]["bias"], b0.ravel())
    np.testing.assert_array_equal(params["Dense_1"]["bias"], np.zeros(2))
    x = rng.normal(size=(3, 4))
    mlp = MLP(widths=(6,), out_dim=2, w_std=1.0, b_std=0.5)
    expected = (np.maximum(x @ w0 / 2.0 + 0.5 * b0, 0.0) @ w1) / np.sqrt(6)
    np.testing.assert_allclose(mlp.apply({"params": params}, x), expected, rtol=1e-12)
