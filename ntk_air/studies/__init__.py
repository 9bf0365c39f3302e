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

from ._system import KernelSystem, Progress, data_summary, kernel_system
from .air import AIRConfig, AIRStudy, air
from .distill import DistillConfig, DistillStudy, RuleRun, best_run, distill
from .kernel import KernelStudy, kernel
from .theorem import HarderCase, TheoremConfig, TheoremStudy, theorem

__all__ = [
    "AIRConfig",
    "AIRStudy",
    "DistillConfig",
    "DistillStudy",
    "HarderCase",
    "KernelStudy",
    "KernelSystem",
    "Progress",
    "RuleRun",
    "TheoremConfig",
    "TheoremStudy",
    "air",
    "best_run",
    "data_summary",
    "distill",
    "kernel",
    "kernel_system",
    "theorem",
]
