"""ntk_air: Neural Tangent Kernel theory of wide networks, in JAX."""

from . import kernels, tiling
from .kernels import Kernel, fc_kernel_fn, make_kernel_fn, two_layer_relu, two_layer_relu_nngp

__version__ = "0.1.0"

__all__ = [
    "Kernel",
    "fc_kernel_fn",
    "kernels",
    "make_kernel_fn",
    "tiling",
    "two_layer_relu",
    "two_layer_relu_nngp",
]
