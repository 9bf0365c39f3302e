"""neural-tangents as an optional kernel backend, on the installed JAX.

neural-tangents 0.6.5 (NT) supplies infinite-width kernels the native engine does not cover
(convolutions, pooling, attention). It is optional: install it with

    pip install frozendict && pip install --no-deps neural-tangents==0.6.5

(`--no-deps`: its declared dependencies pull TensorFlow, which is never needed here).
Importing this subpackage does not import NT; the factories below do, through
`compat.import_neural_tangents`, which adapts NT to the installed JAX (see `compat.ADAPTATIONS`)
or raises `NeuralTangentsUnavailable` naming what is missing.

* `kernel_fn_from_stax(model)` — a stax triple or kernel_fn → ntk_air kernel_fn → Kernel.
* `kernel_fn_from_spec("cnn:depth=2,shape=8x8x1")` — the CLI's `--backend neural-tangents --arch`.
* `empirical_ntk_fn(apply_fn, implementation=...)` — NT's empirical NTK, ntk_air's conventions.
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
