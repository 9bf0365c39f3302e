"""Monte-Carlo NNGP and NTK: finite-network kernels averaged over random initialisations; as
width → ∞ they converge to the analytic kernels, error O(1/√(S · width)) (Novak et al. 2019)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp

from .._checks import as_float_array, check_int
from ..kernels._kernel_fn import Kernel
from ._ntk_fn import empirical_ntk_fn


def _params_of(init_out):
    """stax's (output_shape, params) pair, or the params themselves."""
    if (
        isinstance(init_out, tuple)
        and len(init_out) == 2
        and isinstance(init_out[0], tuple)
        and all(isinstance(s, int | None) for s in init_out[0])
    ):
        return init_out[1]
    return init_out


@dataclasses.dataclass(frozen=True)
class MonteCarloKernelFn:
    """A `KernelFn` averaging finite-network kernels over `n_samples` initialisations."""

    init_fn: Any
    apply_fn: Any
    key: Any
    n_samples: int
    implementation: str = "jacobian"
    tile_size: int | None = None
    memory_budget: int | None = None
    dtype: Any = None

    def __call__(self, x1, x2=None) -> Kernel:
        """Kernel(nngp, ntk), each (n1, n2): the averages over the samples (streamed)."""
        x1 = as_float_array(x1, "x1", self.dtype)
        if x2 is not None:
            x2 = as_float_array(x2, "x2", x1.dtype)
        ntk_fn, init, nngp_sample = _engines(
            self.init_fn, self.apply_fn, self.implementation, self.tile_size, self.memory_budget
        )
        keys = jax.random.split(self.key, self.n_samples)
        n2 = x1.shape[0] if x2 is None else x2.shape[0]
        nngp = jnp.zeros((x1.shape[0], n2), x1.dtype)
        ntk = jnp.zeros((x1.shape[0], n2), x1.dtype)
        for s in range(self.n_samples):  # one sample's parameters in memory at a time
            params = init(keys[s], tuple(x1.shape))
            params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, x1.dtype), params)
            nngp = nngp + nngp_sample(params, x1, x2)
            ntk = ntk + ntk_fn(params, x1, x2, dtype=x1.dtype)
        return Kernel(nngp=nngp / self.n_samples, ntk=ntk / self.n_samples)


@functools.lru_cache(maxsize=16)
def _engines(init_fn, apply_fn, implementation, tile_size, memory_budget):
    """Compiled init, NNGP sample and NTK engines, shared by every key and sample count."""
    ntk_fn = empirical_ntk_fn(
        apply_fn,
        implementation=implementation,
        output_reduction="mean",
        tile_size=tile_size,
        memory_budget=memory_budget,
    )
    init = jax.jit(lambda k, shape: _params_of(init_fn(k, shape)), static_argnums=1)
    nngp = jax.jit(functools.partial(_nngp_sample, apply_fn))
    return ntk_fn, init, nngp


def _nngp_sample(apply_fn, params, x1, x2):
    """(1/k) f(x1) f(x2)ᵀ for one parameter draw ((n,) outputs count as k = 1)."""
    f1 = apply_fn(params, x1)
    f2 = f1 if x2 is None else apply_fn(params, x2)
    f1 = f1.reshape(f1.shape[0], -1)
    f2 = f2.reshape(f2.shape[0], -1)
    return (f1 @ f2.T) / f1.shape[1]


def monte_carlo_kernel_fn(
    init_fn,
    apply_fn,
    key,
    n_samples: int,
    *,
    implementation: str = "jacobian",
    tile_size: int | None = None,
    memory_budget: int | None = None,
    dtype=None,
) -> MonteCarloKernelFn:
    """NNGP and empirical NTK averaged over `n_samples` random initialisations (a `KernelFn`).

    K̂(x, x') = (1/S) Σ_s (1/k) Σ_a f_a(θ_s, x) f_a(θ_s, x') and Θ̂ = (1/S) Σ_s J_s(x) J_s(x')ᵀ,
    θ_s = init_fn(split(key, S)[s], x.shape), streamed over the samples.

    Args:
      init_fn: init_fn(key, input_shape) -> params, or stax's (output_shape, params).
      apply_fn: apply_fn(params, x) -> (n,) or (n, k) outputs.
      key: a JAX PRNG key.
      n_samples: S ≥ 1.
      implementation: the empirical-NTK engine ('jacobian', 'ntvp', 'auto', ...).
      tile_size: rows per NTK tile (None: from the memory budget).
      memory_budget: bytes per NTK call (None: as in `empirical_ntk_fn`).
      dtype: float32 / float64, or None to follow x1.

    Returns:
      MonteCarloKernelFn: kernel_fn(x1, x2=None) -> Kernel(nngp (n1, n2), ntk (n1, n2)).

    Example:
      >>> mlp = ntk_air.networks.MLP(widths=(64,), w_std=1.5, b_std=0.1)
      >>> init = lambda k, shape: mlp.init(k, jnp.zeros(shape))["params"]
      >>> apply = lambda p, x: mlp.apply({"params": p}, x)
      >>> kernel_fn = monte_carlo_kernel_fn(init, apply, jax.random.key(0), 4)
      >>> k = kernel_fn(x, x_test)
      >>> k.nngp.shape, k.ntk.shape
      ((40, 12), (40, 12))

    Reference: Novak et al. arXiv 1810.05148 (Monte-Carlo kernels); arXiv 1912.02803
    (neural-tangents `monte_carlo_kernel_fn`).
    """
    n_samples = check_int("n_samples", n_samples, minimum=1)
    if not callable(init_fn) or not callable(apply_fn):
        raise TypeError("init_fn and apply_fn must be callables")
    return MonteCarloKernelFn(
        init_fn, apply_fn, key, n_samples, implementation, tile_size, memory_budget, dtype
    )
