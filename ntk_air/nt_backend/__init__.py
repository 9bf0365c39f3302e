"""neural-tangents 0.6.5 as an optional kernel backend, on the installed JAX.

Install it with `pip install frozendict && pip install --no-deps neural-tangents==0.6.5`
(`--no-deps`: its declared dependencies pull TensorFlow, never needed here). Importing this
subpackage does not import NT; the factories do, through `import_neural_tangents`, which adapts
NT to the installed JAX (`ADAPTATIONS`) or raises `NeuralTangentsUnavailable` naming what is
missing (docs/neural_tangents.md).
"""

from __future__ import annotations

from .backend import (
    DEFAULT_MEMORY_BUDGET,
    auto_tile_size,
    empirical_ntk_fn,
    kernel_fn_from_stax,
)
from .compat import (
    ADAPTATIONS,
    GATES,
    INSTALL_COMMAND,
    NeuralTangentsUnavailable,
    adaptations_markdown,
    diagnose,
    import_neural_tangents,
    is_available,
    require,
)
from .specs import ARCHS, ArchSpec, StaxNetwork, kernel_fn_from_spec, parse_spec, stax_from_spec

__all__ = [
    "ADAPTATIONS",
    "ARCHS",
    "ArchSpec",
    "DEFAULT_MEMORY_BUDGET",
    "GATES",
    "INSTALL_COMMAND",
    "NeuralTangentsUnavailable",
    "StaxNetwork",
    "adaptations_markdown",
    "auto_tile_size",
    "diagnose",
    "empirical_ntk_fn",
    "import_neural_tangents",
    "is_available",
    "kernel_fn_from_spec",
    "kernel_fn_from_stax",
    "parse_spec",
    "require",
    "stax_from_spec",
]
