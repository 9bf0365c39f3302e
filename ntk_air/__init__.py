"""ntk_air: Neural Tangent Kernel theory of wide networks, in JAX.

One folder per concept, each a small public namespace over private modules, in layers that import
only from the ones below them: core (`kernels`, `empirical`, `spectral`, `data`, `checked`,
`nt_backend`), science (`dynamics`, `distillation`, `networks`, `predict`, `learning_curves`),
`studies`, report (`report`, `plots`) and the CLI. `import ntk_air` stays light: the packages that
load flax, optax or matplotlib load when first used.
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
