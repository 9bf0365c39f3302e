"""ntk_air: Neural Tangent Kernel theory of wide networks, in JAX.

One folder per concept, each a small public namespace over private modules; each layer imports
only from the ones below it (tests/test_architecture.py reads the import graph):

* core — `kernels` (the `KernelFn` protocol, H∞, deep FC and convolutional kernels from
  infinite-width layers), `empirical` (finite networks' NTKs), `spectral` (the eigensystem,
  dense or top-k; the kernel operator; the linear problem; label spectra; planning), `data`
  (data sets and label noise), `checked` (checks that survive `jit`), `nt_backend`
  (neural-tangents, optional, imported only on request);
* science — `dynamics` (closed-form linearized training, early stopping, records),
  `distillation` (target rules and their engines, rounds), `networks` (flax networks, the
  training loop, the ℓ2 theorem check), `predict` (neural-tangents' `predict`);
* studies — `studies` (data + kernel + config → result pytree);
* report — `report` (JSON, figures, index.md) and `plots` (figures on a given Axes);
* cli — `cli` and `commands` (parse options, call one study, hand its result to the report).

`import ntk_air` stays light: the packages that load flax, optax or matplotlib (`empirical`,
`networks`, `predict`, `studies`, `report`, `plots`) load when first used.
"""

from __future__ import annotations

import importlib

from . import (
    _env,  # noqa: F401, I001  (first: checks the environment before JAX is imported)
    data,
    distillation,
    dynamics,
    kernels,
    spectral,
)

__version__ = "0.3.0"

# Loaded on first use (they import flax / optax / matplotlib).
_LAZY_MODULES = ("checked", "empirical", "networks", "predict", "studies", "report", "plots")


def __getattr__(name):
    if name in _LAZY_MODULES:
        return importlib.import_module(f"ntk_air.{name}")
    raise AttributeError(f"module 'ntk_air' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_MODULES))


__all__ = [
    "checked",
    "data",
    "distillation",
    "dynamics",
    "empirical",
    "kernels",
    "networks",
    "plots",
    "predict",
    "report",
    "spectral",
    "studies",
]
