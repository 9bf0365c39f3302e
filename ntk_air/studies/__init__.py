"""The study layer: pure functions from (data, kernel function, config) to result pytrees.

No argument parsing, no files, no printing: progress is an injected callback
`progress(stage, done, total)`. The CLI (`ntk_air.commands`) and the notebooks call these and
hand the results to `ntk_air.report` (JSON, figures, index.md) or to `ntk_air.plots`.

    >>> ds = ntk_air.data.clusters()
    >>> kernel_fn = ntk_air.kernels.two_layer_relu_kernel_fn()
    >>> system = studies.kernel_system(ds, kernel_fn)        # one eigendecomposition …
    >>> a = studies.air(ds, kernel_fn, system=system)          # … shared by the studies
    >>> config = studies.DistillConfig(rules=("r3",), soft=False, steps=500)
    >>> d = studies.distill(ds, kernel_fn, config, system=system)
    >>> [run.label for run in d.runs]
    ['plain GD', 'R3 hard α=0.9']
    >>> bool(studies.best_run(d).final_dist < a.curve.best_dist)   # below the best early stop
    True
"""

from ._air import AIRConfig, AIRStudy, TopKDiagnostics, air, air_estimate, air_plan
from ._distill import (
    DistillConfig,
    DistillStudy,
    DistillTopK,
    RuleRun,
    best_run,
    distill,
    distill_plan,
)
from ._entk import (
    NETWORK_DEFAULTS,
    EntkConfig,
    EntkNetwork,
    EntkStudy,
    KernelLimit,
    LabelAlignment,
    TrainingCurves,
    entk,
    entk_network,
    kernel_target_alignment,
    network_options,
)
from ._kernel import KernelStudy, kernel
from ._learning_curve import (
    LearningCurveConfig,
    LearningCurveStudy,
    learning_curve_plan,
    learning_curve_study,
)
from ._noisy_labels import NoisyLabelsConfig, NoisyLabelsStudy, noisy_labels
from ._predict import PredictConfig, PredictStudy, predict, predict_plan
from ._system import KernelSystem, data_summary, kernel_system
from ._theorem import HarderCase, TheoremConfig, TheoremStudy, theorem, theorem_plan

__all__ = [
    "AIRConfig",
    "AIRStudy",
    "DistillConfig",
    "DistillStudy",
    "DistillTopK",
    "EntkConfig",
    "EntkNetwork",
    "EntkStudy",
    "HarderCase",
    "KernelLimit",
    "LearningCurveConfig",
    "LearningCurveStudy",
    "learning_curve_study",
    "learning_curve_plan",
    "KernelStudy",
    "KernelSystem",
    "LabelAlignment",
    "NoisyLabelsConfig",
    "NoisyLabelsStudy",
    "PredictConfig",
    "PredictStudy",
    "RuleRun",
    "TheoremConfig",
    "TheoremStudy",
    "TrainingCurves",
    "air",
    "best_run",
    "data_summary",
    "distill",
    "entk",
    "entk_network",
    "network_options",
    "NETWORK_DEFAULTS",
    "kernel",
    "kernel_system",
    "kernel_target_alignment",
    "noisy_labels",
    "predict",
    "theorem",
    "TopKDiagnostics",
    "air_plan",
    "air_estimate",
    "distill_plan",
    "theorem_plan",
    "predict_plan",
]
