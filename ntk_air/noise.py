"""Deprecated location: the label-noise models live in `ntk_air.data.noise`."""

import warnings

from .data.noise import *  # noqa: F403
from .data.noise import (  # noqa: F401
    __all__,  # noqa: F401
    _canonical_noise,
    _check_rate,
    _class_labels,
)

warnings.warn(
    "ntk_air.noise moved to ntk_air.data.noise (also re-exported by ntk_air.data)",
    DeprecationWarning,
    stacklevel=2,
)
