"""Models the eNTK accepts directly: flax linen (with held-fixed collections), flax nnx, the
benchmark's pure-JAX models against their flax modules; and the KernelFn of a finite network."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.flatten_util import ravel_pytree

from conftest import rel_fro
from ntk_air.empirical import EntkPlan, empirical_kernel_fn, empirical_ntk_fn
from ntk_air.kernels import Kernel, KernelFn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "nt_reference"))
import entk_models  # noqa: E402

TOL64 = 1e-12


def _flat_jacobian_ntk(apply_fn, params, x1, x2):
    """Independent reference: jacfwd over the raveled parameters, Θ = mean over outputs."""
    flat, unravel = ravel_pytree(params)

    def jac(x):
        j = jax.jacfwd(lambda v: apply_fn(unravel(v), x))(flat)
        return j.reshape(x.shape[0], -1, flat.size)

    j1, j2 = jac(x1), jac(x2)
    return np.einsum("iap,jap->ij", j1, j2) / j1.shape[1]


class BatchNormNet(nn.Module):
    """Dense → BatchNorm (running averages: eval mode) → tanh → Dense(2)."""

    @nn.compact
    def __call__(self, x):
        h = nn.Dense(6)(x)
        h = nn.BatchNorm(use_running_average=True)(h)
        return nn.Dense(2)(jnp.tanh(h))


def test_linen_module_with_batch_stats_equals_its_apply_fn(x64):
    """variables = {'params', 'batch_stats'}: 'params' differentiated, 'batch_stats' held fixed
    (eval mode: no coupling warning). Same kernel as the apply_fn closing over batch_stats, and
    as a flattened forward-mode Jacobian; the batch statistics really enter (positive control)."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    module = BatchNormNet()
    variables = module.init(jax.random.key(0), jnp.asarray(x1))
    stats = {"BatchNorm_0": {"mean": rng.normal(size=6), "var": 0.5 + rng.uniform(size=6)}}
    variables = {"params": variables["params"], "batch_stats": stats}

    def apply_fn(p, x):
        return module.apply({"params": p, "batch_stats": stats}, x)

    ref = _flat_jacobian_ntk(apply_fn, variables["params"], x1, x2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kernel_fn = empirical_kernel_fn(module, variables)
        got = kernel_fn(x1, x2).ntk
    assert rel_fro(got, ref) <= TOL64
    assert rel_fro(empirical_ntk_fn(apply_fn)(variables["params"], x1, x2), ref) <= TOL64
    # params-varying use: the whole variables or only 'params' (then no batch_stats: flax errs)
    ntk_fn = empirical_ntk_fn(module, implementation="ntvp")
    assert rel_fro(ntk_fn(variables, x1, x2), ref) <= TOL64
    other = {
        "params": variables["params"],
        "batch_stats": {
            "BatchNorm_0": {
                "mean": stats["BatchNorm_0"]["mean"] + 1.0,
                "var": stats["BatchNorm_0"]["var"],
            }
        },
    }
    assert rel_fro(ntk_fn(other, x1, x2), ref) > 1e-3


class NnxNet(nnx.Module):
    def __init__(self, rngs):
        self.hidden = nnx.Linear(3, 7, rngs=rngs)
        self.readout = nnx.Linear(7, 2, rngs=rngs)

    def __call__(self, x):
        return self.readout(jnp.tanh(self.hidden(x)))


def test_nnx_module_equals_the_equivalent_apply_fn(x64):
    rng = np.random.default_rng(1)
    x1, x2 = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    net = NnxNet(nnx.Rngs(0))
    params = {
        "w1": np.asarray(net.hidden.kernel[...]),
        "b1": np.asarray(net.hidden.bias[...]),
        "w2": np.asarray(net.readout.kernel[...]),
        "b2": np.asarray(net.readout.bias[...]),
    }

    def apply_fn(p, x):
        return jnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]

    ref = empirical_ntk_fn(apply_fn)(params, x1, x2)
    assert rel_fro(ref, _flat_jacobian_ntk(apply_fn, params, x1, x2)) <= TOL64
    assert rel_fro(empirical_kernel_fn(net)(x1, x2).ntk, ref) <= TOL64
    ntk_fn = empirical_ntk_fn(net, implementation="auto")
    assert rel_fro(ntk_fn(net, x1, x2), ref) <= TOL64  # the module itself
    assert rel_fro(ntk_fn(nnx.state(net, nnx.Param), x1, x2), ref) <= TOL64  # its Param state
    # a checkpoint: change the module in place; the same ntk_fn follows it
    net.readout.kernel[...] = net.readout.kernel[...] * 2.0
    assert rel_fro(ntk_fn(net, x1, x2), ref) > 0.1


@pytest.mark.parametrize(
    ("model", "shape", "kwargs"),
    [
        ("mlp", (5,), {"width": 16, "depth": 2}),
        ("cnn", (5, 5, 1), {"channels": 3}),
        ("attention", (4, 8), {"heads": 2}),
    ],
)
def test_benchmark_models_equal_their_flax_modules(x64, model, shape, kwargs):
    """The pure-JAX models of benchmarks/entk.py give the flax modules' outputs and kernels."""
    rng = np.random.default_rng(2)
    params = entk_models.init_params(model, shape, seed=3, **kwargs)
    module = entk_models.flax_modules()[model](**kwargs)
    x = rng.normal(size=(4, *shape))
    flax_params = module.init(jax.random.key(0), jnp.asarray(x))["params"]
    assert jax.tree_util.tree_structure(flax_params) == jax.tree_util.tree_structure(params)
    apply_fn = entk_models.APPLY[model]
    out_flax = module.apply({"params": params}, x)
    np.testing.assert_allclose(out_flax, apply_fn(params, x), rtol=1e-12, atol=1e-12)
    k_flax = empirical_kernel_fn(module, {"params": params})(x).ntk
    assert rel_fro(k_flax, empirical_ntk_fn(apply_fn)(params, x)) <= TOL64


def test_kernel_fn_protocol(x64):
    """empirical_kernel_fn is a KernelFn: Kernel(nngp=None, ntk), dtype follows x1 unless
    fixed, settings through replace, the plan through plan."""
    rng = np.random.default_rng(4)
    params = {"w": rng.normal(size=(3, 5)), "v": rng.normal(size=(5, 2))}

    def apply_fn(p, x):
        return jnp.sin(x @ p["w"]) @ p["v"]

    x1, x2 = rng.normal(size=(6, 3)), rng.normal(size=(4, 3))
    kernel_fn = empirical_kernel_fn(apply_fn, params)
    assert isinstance(kernel_fn, KernelFn)
    k = kernel_fn(x1, x2)
    assert isinstance(k, Kernel) and k.nngp is None
    assert k.ntk.shape == (6, 4) and k.ntk.dtype == jnp.float64
    assert kernel_fn(x1.astype(np.float32)).ntk.dtype == jnp.float32
    fixed = kernel_fn.replace(dtype="float32", tile_size=4)
    assert fixed.tile_size == 4 and fixed(x1).ntk.dtype == jnp.float32
    assert rel_fro(fixed(x1).ntk, kernel_fn(x1).ntk) < 1e-5
    full = kernel_fn.replace(output_reduction="none")(x1, x2).ntk
    assert full.shape == (6, 4, 2, 2)
    np.testing.assert_allclose(np.trace(full, axis1=2, axis2=3) / 2, k.ntk, rtol=1e-12)
    assert isinstance(kernel_fn.plan(x1), EntkPlan)
    with pytest.raises(ValueError, match="cannot replace"):
        kernel_fn.replace(width=3)
    with pytest.raises(ValueError, match="params_or_variables is required"):
        empirical_kernel_fn(apply_fn)
    bad = dict(params, w=np.full((3, 5), np.nan))
    with pytest.raises(ValueError, match=r"params\['w'\] has 15 non-finite"):
        empirical_kernel_fn(apply_fn, bad)
