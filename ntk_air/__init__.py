"""ntk_air: Neural Tangent Kernel theory of wide networks, in JAX.

Modules, one concept each: `kernels` (infinite width), `empirical` (finite width, any model),
`models`, `data`, `noise` (label-noise models), `eigen` (the spectral core), `spectrum` (AIR
label spectra), `dynamics` (closed-form linearized training), `distill` (self-distillation
rules), `training` (real networks, flax + optax), `theorem` (the ℓ2 theorem check).
`nt_backend` (neural-tangents) is optional and imported only on request.
"""

from . import (
    data,
    distill,
    dynamics,
    eigen,
    empirical,
    kernels,
    models,
    noise,
    spectrum,
    theorem,
    tiling,
    training,
)
from .data import Dataset, clusters, from_npz, unit_normalize
from .distill import self_distill
from .dynamics import (
    distill_from_early_stopped_teacher,
    fitted_fractions,
    flow_predictor,
    gd_predictor,
    u_curve,
)
from .eigen import Eigensystem, apply_spectral_filter, eigensystem
from .empirical import (
    empirical_kernel_fn,
    empirical_ntk_fn,
    structured_mlp_ntk_fn,
    two_layer_ntk,
)
from .kernels import Kernel, fc_kernel_fn, make_kernel_fn, two_layer_relu, two_layer_relu_nngp
from .models import MLP, TwoLayerReLU
from .spectrum import air_spectra, label_spectrum
from .training import train

__version__ = "0.1.0"

__all__ = [
    "MLP",
    "Dataset",
    "Eigensystem",
    "Kernel",
    "TwoLayerReLU",
    "air_spectra",
    "apply_spectral_filter",
    "clusters",
    "data",
    "distill",
    "distill_from_early_stopped_teacher",
    "dynamics",
    "eigen",
    "eigensystem",
    "empirical",
    "empirical_kernel_fn",
    "empirical_ntk_fn",
    "fc_kernel_fn",
    "fitted_fractions",
    "flow_predictor",
    "from_npz",
    "gd_predictor",
    "kernels",
    "label_spectrum",
    "make_kernel_fn",
    "models",
    "noise",
    "self_distill",
    "spectrum",
    "structured_mlp_ntk_fn",
    "theorem",
    "tiling",
    "train",
    "training",
    "two_layer_ntk",
    "two_layer_relu",
    "two_layer_relu_nngp",
    "u_curve",
    "unit_normalize",
]
