"""Monte-Carlo kernels: averages of finite-network NNGP/NTK over initialisations converge to the
analytic kernels of the same architecture at rate 1/√(samples · width)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntk_air.empirical import empirical_ntk_fn, monte_carlo_kernel_fn
from ntk_air.kernels import fc_kernel_fn
from ntk_air.networks import MLP

W_STD, B_STD = 1.5, 0.1


@pytest.fixture(scope="module")
def x64():
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


def mlp_fns(width):
    mlp = MLP(widths=(width,), w_std=W_STD, b_std=B_STD)
    return (
        lambda k, shape: mlp.init(k, jnp.zeros(shape))["params"],
        lambda p, x: mlp.apply({"params": p}, x),
    )


def rel_err(a, b):
    return float(jnp.linalg.norm(a - b) / jnp.linalg.norm(b))


def test_single_sample_equals_empirical_kernels(x64):
    """S = 1 is exactly one network's f fᵀ and its empirical NTK."""
    init, apply = mlp_fns(16)
    x = jax.random.normal(jax.random.key(1), (6, 3))
    key = jax.random.key(5)
    k = monte_carlo_kernel_fn(init, apply, key, 1)(x)
    params = init(jax.random.split(key, 1)[0], x.shape)
    f = apply(params, x)
    np.testing.assert_allclose(k.nngp, f @ f.T, rtol=1e-12)
    np.testing.assert_allclose(k.ntk, empirical_ntk_fn(apply)(params, x), rtol=1e-12)
    # x2 given: the cross kernel, shape (n1, n2)
    assert monte_carlo_kernel_fn(init, apply, key, 2)(x, x[:4]).ntk.shape == (6, 4)


@pytest.mark.slow
def test_error_shrinks_like_inverse_sqrt_samples_times_width(x64):
    x = jax.random.normal(jax.random.key(2), (8, 3))
    exact = fc_kernel_fn(1, "relu", W_STD, B_STD)(x)
    errs = {}
    for samples, width in ((2, 32), (8, 128)):  # samples · width grows 16×: error ÷ 4
        init, apply = mlp_fns(width)
        e_nngp, e_ntk = [], []
        for seed in range(4):
            k = monte_carlo_kernel_fn(init, apply, jax.random.key(seed), samples)(x)
            e_nngp.append(rel_err(k.nngp, exact.nngp))
            e_ntk.append(rel_err(k.ntk, exact.ntk))
        errs[samples * width] = (np.mean(e_nngp), np.mean(e_ntk))
    for i in range(2):
        ratio = errs[1024][i] / errs[64][i]
        assert 1 / 12 < ratio < 1 / 1.6, (i, errs)  # 1/4 expected; margin over 4 seeds


def test_arguments_checked():
    init, apply = mlp_fns(8)
    with pytest.raises(ValueError, match="n_samples"):
        monte_carlo_kernel_fn(init, apply, jax.random.key(0), 0)
