"""Data sets with known ground truth and controlled label noise: y = ŷ + e.

Every loader returns a `Dataset` (numpy float64) whose `info["corrupted"]` lists the training rows
where y differs from ŷ. Labels are ±1 (n,) for binary tasks, one-hot (n, C) for C classes, real
under Gaussian noise, or any real (n,) / (n, k) targets for regression (`info["task"]`). The
loaders unit-normalize the inputs explicitly (docs/science/kernels.md#unit-norm); `from_npz` and
`from_arrays` only when asked, reporting `info["max_norm_deviation"]` instead.
"""

from . import noise
from ._dataset import Dataset, dataset_task, from_arrays, subsample, unit_normalize, with_task
from ._registry import DATASETS, load
from .clusters import clusters
from .digits import digits, mnist1d
from .noise import (
    NOISE_MODELS,
    NoisyLabels,
    apply_noise,
    symmetric_flip,
)
from .npz import DataFileError, from_npz, read_npz_arrays, save_npz

__all__ = [
    "DATASETS",
    "NOISE_MODELS",
    "DataFileError",
    "Dataset",
    "NoisyLabels",
    "apply_noise",
    "clusters",
    "dataset_task",
    "digits",
    "from_arrays",
    "from_npz",
    "load",
    "mnist1d",
    "noise",
    "read_npz_arrays",
    "save_npz",
    "subsample",
    "symmetric_flip",
    "unit_normalize",
    "with_task",
]
