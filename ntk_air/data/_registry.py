"""Data sets by name (the CLI's vocabulary)."""

from __future__ import annotations

import inspect

from ._dataset import Dataset
from .clusters import clusters
from .digits import digits, mnist1d

_REGISTRY = {
    "clusters": (clusters, {}),
    "digits": (digits, {"binary": False}),
    "digits-binary": (digits, {"binary": True}),
    "mnist1d": (mnist1d, {"binary": False}),
    "mnist1d-binary": (mnist1d, {"binary": True}),
}
DATASETS = tuple(_REGISTRY)
"""Names of the built-in data sets, for `load(name)` and the CLI's `--dataset`."""


def load(name: str = "clusters", **kwargs) -> Dataset:
    """Load a data set by name (`DATASETS`); keyword arguments go to its loader.

    Example:
      >>> load("clusters", noise_rate=0.1, seed=1).info["noise_rate"]
      0.1
    """
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")
    fn, fixed = _REGISTRY[name]
    params = inspect.signature(fn).parameters
    for key in kwargs:
        if key in fixed:
            raise ValueError(
                f"dataset {name!r} fixes {key}={fixed[key]!r}; pick the other name instead of "
                f"passing {key}={kwargs[key]!r}"
            )
        if key not in params:
            allowed = sorted(k for k in params if k not in fixed)
            raise TypeError(f"dataset {name!r} has no option {key!r}; options: {allowed}")
    return fn(**fixed, **kwargs)
