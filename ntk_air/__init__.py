"""ntk_air: Neural Tangent Kernel theory of wide networks, in JAX.

Layers, each importing only from the ones below it:

* core — `kernels` (the `KernelFn` protocol, H∞, deep FC), `layers` (infinite-width layers),
  `empirical` (finite networks' NTKs), `eigen` (the spectral core), `problem` (`LinearProblem`),
  `record` (what a run records), `tiling`, `data` (data sets and label noise), `models` (flax
  networks), `nt_backend` (neural-tangents, optional, imported only on request);
* science — `spectrum` (AIR label spectra), `dynamics` (closed-form linearized training),
  `early_stopping`, `targets` (target rules), `distill` (self-distillation engines), `rounds`,
  `training` (real networks, flax + optax), `theorem` (the ℓ2 theorem check);
* studies — `studies` (air, distill, theorem, kernel: data + kernel + config → result pytree);
* report — `report` (JSON, figures, index.md) and `plots` (figures on a given Axes);
* cli — `cli` and `commands` (parse options, call one study, hand its result to the report).

`import ntk_air` stays light: flax and optax (models, training, theorem, empirical) load when
first used.
"""

from __future__ import annotations

import importlib

from . import (
    _env,  # noqa: F401  (first: checks the environment before JAX is imported)
    data,
    distill,
    dynamics,
    early_stopping,
    eigen,
    kernels,
    layers,
    problem,
    record,
    rounds,
    spectrum,
    targets,
    tiling,
)
from .data import Dataset, clusters, from_npz, unit_normalize
from .distill import self_distill
from .dynamics import fitted_fractions, flow_predictor, gd_predictor
from .early_stopping import distill_from_early_stopped_teacher, u_curve
from .eigen import Eigensystem, apply_spectral_filter, eigensystem
from .kernels import (
    Kernel,
    KernelFn,
    fc_kernel_fn,
    from_layers,
    from_pairwise,
    make_kernel_fn,
    two_layer_relu,
    two_layer_relu_kernel_fn,
    two_layer_relu_nngp,
)
from .problem import LinearProblem, linear_problem
from .record import Record
from .rounds import distill_rounds
from .spectrum import air_spectra, label_spectrum
from .targets import AffineRule, TargetRule

__version__ = "0.3.0"

# Loaded on first use (they import flax / optax / matplotlib).
_LAZY_MODULES = ("empirical", "models", "training", "theorem", "studies", "report", "plots")
_LAZY_NAMES = {
    "empirical_ntk_fn": "empirical",
    "empirical_kernel_fn": "empirical",
    "structured_mlp_ntk_fn": "empirical",
    "two_layer_ntk": "empirical",
    "MLP": "models",
    "TwoLayerReLU": "models",
    "train": "training",
}


def __getattr__(name):
    if name in _LAZY_MODULES:
        return importlib.import_module(f"ntk_air.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"ntk_air.{_LAZY_NAMES[name]}"), name)
    if name == "noise":
        return importlib.import_module("ntk_air.data.noise")
    raise AttributeError(f"module 'ntk_air' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_MODULES) | set(_LAZY_NAMES))


__all__ = [
    "AffineRule",
    "Dataset",
    "Eigensystem",
    "Kernel",
    "KernelFn",
    "LinearProblem",
    "MLP",
    "Record",
    "TargetRule",
    "TwoLayerReLU",
    "air_spectra",
    "apply_spectral_filter",
    "clusters",
    "data",
    "distill",
    "distill_from_early_stopped_teacher",
    "distill_rounds",
    "dynamics",
    "early_stopping",
    "eigen",
    "eigensystem",
    "empirical",
    "empirical_kernel_fn",
    "empirical_ntk_fn",
    "fc_kernel_fn",
    "fitted_fractions",
    "flow_predictor",
    "from_layers",
    "from_npz",
    "from_pairwise",
    "gd_predictor",
    "kernels",
    "label_spectrum",
    "layers",
    "linear_problem",
    "make_kernel_fn",
    "models",
    "problem",
    "record",
    "rounds",
    "self_distill",
    "spectrum",
    "structured_mlp_ntk_fn",
    "targets",
    "theorem",
    "tiling",
    "train",
    "training",
    "two_layer_ntk",
    "two_layer_relu",
    "two_layer_relu_kernel_fn",
    "two_layer_relu_nngp",
    "u_curve",
    "unit_normalize",
]
