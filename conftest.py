"""Root conftest: runs the `>>>` examples of the ntk_air docstrings (`--doctest-modules`, see
pyproject.toml) with a shared namespace of the names they use.

Each docstring example sees its own module's globals first, then the names below (a module's
own name wins: `studies.theorem`'s examples call its function `theorem`, not the module). The
examples run in float64 (x64 on, restored after each example), on small, seeded data, in a
fresh temporary directory `tmp_path`.

Names: np, jnp, jax, ntk_air and its public packages by their names (kernels, spectral, dynamics,
distillation, networks, data, studies, report, plots, …: what a user imports); small data
from the clusterable model
(`data.clusters(n_per_cluster=10, dim=5, n_test_per_cluster=3, noise_rate=0.2)`): x (40, 5)
unit rows, y (40,) ±1 labels with 8 flipped, y_clean (40,) the clean labels, x_test (12, 5) with
y_test_clean; H = H∞(x, x) (the theorem's kernel), K_test_train = H∞(x_test, x),
eig = eigensystem(H), problem =
linear_problem(eig, y, y_clean, k_test_train=K_test_train, y_test_clean=y_test_clean),
ds = data.clusters() (160 points), kernel_fn = kernels.two_layer_relu_kernel_fn().
"""

from __future__ import annotations

import importlib
import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# Most tests compile many small programs once each: XLA's expensive optimization passes cost
# more than they save there (a tenth of the suite's time on 2 cores: 1041 s → 923 s). Set
# before JAX is imported, so xdist workers and the subprocesses of CLI and notebook tests
# inherit it; results are the same programs' (tolerances unchanged).
# `JAX_DISABLE_MOST_OPTIMIZATIONS=0` restores the optimizing compiler for a run.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
# Two test processes share the 2 cores of CI: each runs XLA's CPU kernels on one thread instead
# of a pool per process that oversubscribes the cores (5 % less time on a subset of the suite,
# in two alternating pairs of runs; the whole suite 882 s with it and the two changes made
# beside it, 923 s before). Only where XLA_FLAGS is unset; the CLI's XLA_FLAGS probe
# (`_env.check_backend`) then costs each CLI subprocess about a second.
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)

# Not collected for doctests:
collect_ignore = [
    "ntk_air/__main__.py",  # runs the CLI (sys.exit) when imported
    # Needs the optional neural-tangents install (the `nt` extra); its examples are exercised by
    # tests/test_nt_backend.py where NT is installed.
    "ntk_air/nt_backend",
]

_MODULES = {
    # short name in the docstring examples -> module
    "checked": "checked",
    "data": "data",
    "distillation": "distillation",
    "dynamics": "dynamics",
    "empirical": "empirical",
    "kernels": "kernels",
    "learning_curves": "learning_curves",
    "networks": "networks",
    "plots": "plots",
    "predict": "predict",
    "report": "report",
    "spectral": "spectral",
    "studies": "studies",
}

_cache: dict = {}


def _shared_names() -> dict:
    """The namespace, built once (with x64 on) on the first example that runs."""
    if _cache:
        return _cache
    import jax
    import jax.numpy as jnp
    import numpy as np

    import ntk_air

    names = {"np": np, "jnp": jnp, "jax": jax, "ntk_air": ntk_air}
    names.update({m: importlib.import_module(f"ntk_air.{p}") for m, p in _MODULES.items()})
    from ntk_air.kernels import two_layer_relu, two_layer_relu_kernel_fn
    from ntk_air.spectral import eigensystem, linear_problem

    small = ntk_air.data.clusters(
        n_per_cluster=10, dim=5, n_test_per_cluster=3, noise_rate=0.2, seed=0
    )
    x, y, y_clean = small.x, small.y, small.y_clean  # (40, 5), (40,) ±1 with 8 flipped
    x_test, y_test_clean = small.x_test, small.y_test_clean  # (12, 5), (12,)
    H = two_layer_relu(x, x)
    K_test_train = two_layer_relu(x_test, x)
    eig = eigensystem(H)
    names.update(
        x=x,
        x_test=x_test,
        y=y,
        y_clean=y_clean,
        y_test_clean=y_test_clean,
        H=H,
        K_test_train=K_test_train,
        eig=eig,
        problem=linear_problem(
            eig, y, y_clean, k_test_train=K_test_train, y_test_clean=y_test_clean
        ),
        ds=ntk_air.data.clusters(),
        kernel_fn=two_layer_relu_kernel_fn(),
    )
    _cache.update(names)
    return _cache


@pytest.fixture(autouse=True)
def _doctest_setup(request, doctest_namespace):
    """For docstring examples only: x64 on (restored after), the shared names, a tmp_path."""
    if not isinstance(request.node, pytest.DoctestItem):
        yield
        return
    import jax

    prev = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", True)
    own = request.node.dtest.globs  # the module's globals: they win over the shared names
    doctest_namespace.clear()
    doctest_namespace.update({k: v for k, v in _shared_names().items() if k not in own})
    doctest_namespace["tmp_path"] = request.getfixturevalue("tmp_path")
    try:
        yield
    finally:
        jax.config.update("jax_enable_x64", prev)
