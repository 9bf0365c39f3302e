"""Shared test fixtures: x64 switching that always restores, and one dtype-keyed tolerance table."""

from __future__ import annotations

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
