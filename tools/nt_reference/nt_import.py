"""Import neural-tangents 0.6.5 inside the pinned side environment (see build_env.sh).

`neural_tangents/__init__.py` imports its `experimental` subpackage, which pulls in
`jax.experimental.jax2tf` and therefore TensorFlow/absl. We never use it, so a stub module
is registered under that name before the import. Run only with the pinned env's python;
ntk_air itself never imports neural-tangents.
"""

from __future__ import annotations

import sys
import types

__all__ = ["import_neural_tangents"]


def import_neural_tangents(enable_x64: bool = False):
    """Return the `neural_tangents` module, optionally with JAX float64 switched on first."""
    import jax

    if enable_x64:
        jax.config.update("jax_enable_x64", True)
    sys.modules.setdefault(
        "neural_tangents.experimental", types.ModuleType("neural_tangents.experimental")
    )
    import neural_tangents

    return neural_tangents
