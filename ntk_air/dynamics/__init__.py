"""Closed-form linearized dynamics (gradient descent and flow, train and test), early stopping and
the U-curve, and what a run records.
"""

from ._early_stopping import (
    Distillation,
    UCurve,
    distill_from_early_stopped_teacher,
    noise_fit_horizon,
    u_curve,
)
from ._linearized import (
    FittedFractions,
    ModeFactors,
    Trajectory,
    check_step_size,
    fitted_fractions,
    flow_half_lives,
    flow_mode_factors,
    flow_predictor,
    gd_half_lives,
    gd_mode_factors,
    gd_predictor,
    log_spaced_steps,
    resolve_step_size,
)
from ._record import Record, Snapshot, scan_blocks

__all__ = [
    "Distillation",
    "FittedFractions",
    "ModeFactors",
    "Record",
    "Snapshot",
    "Trajectory",
    "UCurve",
    "check_step_size",
    "distill_from_early_stopped_teacher",
    "fitted_fractions",
    "flow_half_lives",
    "flow_mode_factors",
    "flow_predictor",
    "gd_half_lives",
    "gd_mode_factors",
    "gd_predictor",
    "log_spaced_steps",
    "noise_fit_horizon",
    "resolve_step_size",
    "scan_blocks",
    "u_curve",
]
