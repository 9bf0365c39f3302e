"""Learning curves from the spectrum: the eigenlearning theory of kernel ridge regression
(effective regularization κ, learnability per mode, overfitting factor E₀, predicted test and
train error), population spectra from data, and learning curves measured over draws.
"""

from ._eigenlearning import (
    LearningCurve,
    MeasuredCurve,
    PopulationKernel,
    PopulationSpectrum,
    TailSpread,
    dense_population_kernel,
    effective_regularization,
    learnabilities,
    learning_curve,
    measured_learning_curve,
    population_spectrum,
    tail_spread,
    tiled_population_kernel,
    topk_population_spectrum,
)

__all__ = [
    "LearningCurve",
    "MeasuredCurve",
    "PopulationKernel",
    "PopulationSpectrum",
    "TailSpread",
    "dense_population_kernel",
    "effective_regularization",
    "learnabilities",
    "learning_curve",
    "measured_learning_curve",
    "population_spectrum",
    "tail_spread",
    "tiled_population_kernel",
    "topk_population_spectrum",
]
