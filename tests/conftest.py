"""Shared test fixtures: x64 switching that always restores, one dtype-keyed tolerance table, a
compile counter with a positive control, and shared inputs (unit rows, a numpy H∞)."""

from __future__ import annotations

import contextlib
import itertools
import os

import jax
import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

# One table: `elementwise` for closed-form kernels compared entry by entry (relative Frobenius),
# `linalg_factor` multiplies n·eps for anything that goes through an eigendecomposition/solve.
TOLERANCES = {
    "float32": {"elementwise": 2e-5, "linalg_factor": 50.0, "eps": float(np.finfo(np.float32).eps)},
    "float64": {
        "elementwise": 1e-12,
        "linalg_factor": 50.0,
        "eps": float(np.finfo(np.float64).eps),
    },
}


def linalg_tol(dtype: str, n: int) -> float:
    """Tolerance for linear algebra on n×n problems: factor · n · eps(dtype)."""
    t = TOLERANCES[str(np.dtype(dtype))]
    return t["linalg_factor"] * n * t["eps"]


def rel_fro(a, b) -> float:
    """Relative Frobenius error ‖a − b‖_F / ‖b‖_F (b the reference)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _set_x64(on: bool):
    prev = bool(jax.config.jax_enable_x64)
    jax.config.update("jax_enable_x64", on)
    return prev


@pytest.fixture
def x64():
    """Run the test with float64 enabled; restores the previous setting."""
    prev = _set_x64(True)
    yield
    _set_x64(prev)


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    """Parametrize over float32 and float64 (x64 switched on for float64 only, then restored)."""
    prev = _set_x64(request.param == "float64")
    yield request.param
    _set_x64(prev)


@pytest.fixture(autouse=True)
def _restore_x64_after_each_test():
    """Tests that go through the CLI turn x64 on (as `ntk-air --dtype float64` does); restore it
    so that no test's numerics depend on which tests ran before it in the same process."""
    prev = bool(jax.config.jax_enable_x64)
    yield
    jax.config.update("jax_enable_x64", prev)


# ---------------------------------------------------------------------------------------------
# Counting XLA compilations
# ---------------------------------------------------------------------------------------------

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compiles: list[str] = []
_listening = [False]
_fresh = itertools.count()


def _on_event(event, duration, **kwargs):
    if event == _COMPILE_EVENT:
        _compiles.append(event)


class CompileCounter:
    """Counts backend compilations inside `with counter:` blocks."""

    def __init__(self):
        self.count = 0

    @contextlib.contextmanager
    def __call__(self):
        start = len(_compiles)
        try:
            yield self
        finally:
            self.count = len(_compiles) - start


@pytest.fixture
def compile_counter():
    """`with compile_counter() as c: ...` then `c.count`: XLA compilations inside the block.

    Positive control: before the test, a function never seen before is compiled inside a block
    and must be counted — so "no recompilation" assertions can fail for the right reason.
    """
    if not _listening[0]:
        jax.monitoring.register_event_duration_secs_listener(_on_event)
        _listening[0] = True
    counter = CompileCounter()
    k = next(_fresh)
    with counter() as probe:
        jax.jit(lambda a: a * (k + 2) + k)(np.float32(1.0)).block_until_ready()
    assert probe.count >= 1, "the compile counter saw no compilation of a fresh function"
    return counter


# ---------------------------------------------------------------------------------------------
# Shared inputs
# ---------------------------------------------------------------------------------------------


def unit_rows(n, d, seed=0):
    """(n, d) rows of unit norm, drawn from a seeded Gaussian (numpy float64)."""
    x = np.random.default_rng(seed).standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def constant_dataset(n=5000, d=5):
    """n identical unit rows with +1 labels, no test set: a data set whose size, not content,
    matters (what the solver plans decide from; its dense kernel path needs 7n² floats)."""
    from ntk_air import data

    return data.Dataset(
        name="big",
        x=np.ones((n, d)) / np.sqrt(d),
        y=np.ones(n),
        y_clean=np.ones(n),
        x_test=np.zeros((0, d)),
        y_test_clean=np.zeros(0),
        info={},
    )


def h_inf_numpy(a, b):
    """The theorem's H∞ in plain numpy: ρ (π − arccos ρ) / (2π), unit rows
    (docs/science/kernels.md#infinite-width-ntk)."""
    rho = np.clip(a @ b.T, -1, 1)
    return rho * (np.pi - np.arccos(rho)) / (2 * np.pi)
