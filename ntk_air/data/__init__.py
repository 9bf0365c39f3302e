"""Data sets with known ground truth and controlled label noise: y = ŷ + e.

Every loader returns a `Dataset` whose training labels `y` are the clean labels `y_clean` (ŷ)
corrupted by one of the noise models of `ntk_air.data.noise`, and whose `info["corrupted"]` lists
exactly the training rows where `y` differs from `y_clean`. Inputs are unit-norm rows
(docs/science/kernels.md#unit-norm): the loaders call `unit_normalize` explicitly and say so in
`info["normalized"]`; `from_npz` and `from_arrays` never renormalize unless asked and report the
worst row norm instead.

Label formats (numpy float64; callers convert to JAX with the dtype they want):

* binary tasks: ±1.0, shape (n,);
* C-class tasks: one-hot rows, shape (n, C);
* Gaussian noise makes `y` real-valued (`y_clean` keeps its format);
* regression targets (a user's file or arrays): any real (n,) or (n, k); `info["task"]` is
  "classification" or "regression" (inferred from the ground truth, `with_task` forces it).

Modules: `clusters` (the theorem's clusterable model, the default), `digits` (scikit-learn's
8×8 digits and MNIST-1D), `npz` (a user's file), `noise` (flip, pair, Gaussian; exact
per-group flip fractions by default), and `subsample` (a stratified, seeded subset).
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
    gaussian_noise,
    pair_flip,
    symmetric_flip,
)
from .npz import NPZ_KEYS, DataFileError, from_npz, read_npz_arrays, save_npz

__all__ = [
    "DATASETS",
    "NOISE_MODELS",
    "NPZ_KEYS",
    "DataFileError",
    "Dataset",
    "NoisyLabels",
    "apply_noise",
    "clusters",
    "dataset_task",
    "digits",
    "from_arrays",
    "from_npz",
    "gaussian_noise",
    "load",
    "mnist1d",
    "noise",
    "pair_flip",
    "read_npz_arrays",
    "save_npz",
    "subsample",
    "symmetric_flip",
    "unit_normalize",
    "with_task",
]
