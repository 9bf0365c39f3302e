"""neural-tangents 0.6.5 as an optional kernel backend, on the installed JAX (`INSTALL_COMMAND`).

Importing this subpackage does not import NT; the factories do, through `import_neural_tangents`,
which adapts NT to the installed JAX (`ADAPTATIONS`) or raises `NeuralTangentsUnavailable` naming
what is missing (docs/neural_tangents.md).
"""

from __future__ import annotations

from .backend import empirical_ntk_fn, kernel_fn_from_stax
from .compat import (
    ADAPTATIONS,
    GATES,
    INSTALL_COMMAND,
    NeuralTangentsUnavailable,
    adaptations_markdown,
    import_neural_tangents,
    is_available,
)
from .specs import kernel_fn_from_spec

__all__ = [
    "ADAPTATIONS",
    "GATES",
    "INSTALL_COMMAND",
    "NeuralTangentsUnavailable",
    "adaptations_markdown",
    "empirical_ntk_fn",
    "import_neural_tangents",
    "is_available",
    "kernel_fn_from_spec",
    "kernel_fn_from_stax",
]
