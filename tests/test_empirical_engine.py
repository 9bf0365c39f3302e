"""The eNTK engine: per-example = whole-batch = neural-tangents, coupled batches, memory, plans.

Reference values: tests/fixtures/nt/empirical_generic.npz (neural-tangents 0.6.5, float64) for
the pure-JAX models of tools/nt_reference/entk_models.py (a CNN, a self-attention block, and a
batch-normalized MLP in training mode whose examples are coupled).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import rel_fro
from ntk_air.empirical import (
    EntkPlan,
    MemoryBudgetError,
    empirical_kernel_fn,
    empirical_ntk_fn,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "nt_reference"))
import entk_models  # noqa: E402

FIXTURES = dict(np.load(ROOT / "tests" / "fixtures" / "nt" / "empirical_generic.npz"))
TOL64 = 1e-12  # float64 against neural-tangents' float64 values (observed ~1e-15)


def _fixture(name):
    prefix = f"{name}/p/"
    params = entk_models.unflatten(
        {"p/" + k[len(prefix) :]: v for k, v in FIXTURES.items() if k.startswith(prefix)}
    )
    return params, FIXTURES[f"{name}/x1"], FIXTURES[f"{name}/x2"]


def _apply(name):
    return entk_models.APPLY["batchnorm_mlp" if name == "batchnorm_mlp" else name]


class CompileCounter:
    """Counts XLA backend compilations while active (jax.monitoring)."""

    def __init__(self):
        self.count = 0

    def _listen(self, event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listen)


# ---------------------------------------------------------------------------------------------
# Per-example = whole batch = neural-tangents
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cnn", "attention"])
def test_per_example_equals_whole_batch_equals_neural_tangents(x64, name):
    """For models whose examples are independent, the per-example derivatives (vmapped; both
    generic implementations, tiled), the whole-batch Jacobians and NT's values (its
    implementations 1 and 3) are one kernel."""
    params, x1, x2 = _fixture(name)
    fns = {
        "jacobian": empirical_ntk_fn(_apply(name), implementation="jacobian", tile_size=2),
        "ntvp": empirical_ntk_fn(_apply(name), implementation="ntvp", tile_size=2),
        "whole batch": empirical_ntk_fn(_apply(name), per_example=False),
    }
    for args, key in (((x1,), "11"), ((x1, x2), "12")):
        for label, fn in fns.items():
            got = fn(params, *args)
            assert got.shape == FIXTURES[f"{name}/ntk_{key}_impl1"].shape
            for impl in (1, 3):
                ref = FIXTURES[f"{name}/ntk_{key}_impl{impl}"]
                assert rel_fro(got, ref) <= TOL64, (label, key, impl)


def test_coupled_batch_is_detected_and_falls_back_to_whole_batch(x64):
    """Batch statistics in training mode couple the examples: the per-example kernel is wrong
    for such a model (positive control), the default detects it, warns why, and computes the
    whole-batch kernel = NT without vmap_axes."""
    params, x1, x2 = _fixture("batchnorm_mlp")
    apply_fn = _apply("batchnorm_mlp")
    ref11, ref12 = FIXTURES["batchnorm_mlp/ntk_11_impl1"], FIXTURES["batchnorm_mlp/ntk_12_impl1"]
    forced = empirical_ntk_fn(apply_fn, per_example=True)(params, x1)
    assert rel_fro(forced, ref11) > 0.1  # the check below can fail
    for implementation in ("jacobian", "ntvp", "auto"):
        ntk_fn = empirical_ntk_fn(apply_fn, implementation=implementation)
        with pytest.warns(UserWarning, match="couples the examples of a batch.*batch statistics"):
            got11 = ntk_fn(params, x1)
        assert rel_fro(got11, ref11) <= TOL64
        assert rel_fro(ntk_fn(params, x1, x2), ref12) <= TOL64
        plan = ntk_fn.plan(params, x1)
        assert not plan.per_example and plan.implementation == "jacobian"
        assert "whole-batch" in plan.reason
    silent = empirical_ntk_fn(apply_fn, per_example=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rel_fro(silent(params, x1), ref11) <= TOL64


def test_independent_examples_raise_no_coupling_warning(x64):
    params, x1, _ = _fixture("cnn")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = empirical_ntk_fn(_apply("cnn")).plan(params, x1)
    assert plan.per_example


# ---------------------------------------------------------------------------------------------
# Tiles: any size, exact symmetry, stored features in chunks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "implementation", ["jacobian", pytest.param("ntvp", marks=pytest.mark.slow)]
)
def test_tiles_that_do_not_divide_n_equal_untiled(x64, implementation, monkeypatch):
    """Tile size 4 divides neither n1 = 5 nor n2 = 3 (tile 2 is in the test above); features
    stored in chunks of one row (many calls of the chunk program) or recomputed per tile inside
    the loop (a budget too small to store them) give the same kernel."""
    params, x1, x2 = _fixture("attention")
    ref11 = FIXTURES["attention/ntk_11_impl1"]
    ref12 = FIXTURES["attention/ntk_12_impl1"]
    fn = empirical_ntk_fn(_apply("attention"), implementation=implementation, tile_size=4)
    assert rel_fro(fn(params, x1), ref11) <= TOL64
    assert rel_fro(fn(params, x1, x2), ref12) <= TOL64
    monkeypatch.setattr("ntk_air.empirical._plan.CPU_CHUNK_ROWS", 1)  # one row per chunk
    fn = empirical_ntk_fn(_apply("attention"), implementation=implementation, tile_size=2)
    assert fn.plan(params, x1).chunk_size == 1
    assert rel_fro(fn(params, x1), ref11) <= TOL64
    assert rel_fro(fn(params, x1, x2), ref12) <= TOL64
    # a budget too small for stored features: recomputed per tile inside the loop
    plan = empirical_ntk_fn(_apply("attention"), implementation=implementation).plan(params, x1, x2)
    budget = int(plan.peak_bytes - 1)
    small = empirical_ntk_fn(
        _apply("attention"), implementation=implementation, memory_budget=budget
    )
    small_plan = small.plan(params, x1, x2)
    assert small_plan.peak_bytes <= budget
    assert small_plan.tile_size < plan.tile_size or not small_plan.store_cols
    assert rel_fro(small(params, x1, x2), ref12) <= TOL64


@pytest.mark.parametrize("reduction", ["mean", "none"])
@pytest.mark.parametrize("implementation", ["jacobian", "ntvp"])
def test_mirrored_symmetric_kernel_is_exactly_symmetric(dtype, implementation, reduction):
    """K(x, x) from upper-triangle tiles: K[i, j] == K[j, i] bit for bit (and for 'none',
    K[i, j, a, b] == K[j, i, b, a]), tiled (tile 3, n = 7) and untiled."""
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(4, 6)), "v": rng.normal(size=(6, 3))}

    def apply_fn(p, x):
        return jnp.tanh(x @ p["w"]) @ p["v"]

    x = rng.normal(size=(7, 4)).astype(dtype)
    for tile in (None, 3):
        k = np.asarray(
            empirical_ntk_fn(
                apply_fn, implementation=implementation, output_reduction=reduction, tile_size=tile
            )(params, x)
        )
        mirrored = k.transpose(1, 0, 3, 2) if k.ndim == 4 else k.T
        assert np.array_equal(k, mirrored), (tile, np.abs(k - mirrored).max())
        assert not np.allclose(k, 0.0)


# ---------------------------------------------------------------------------------------------
# One compilation per shape, reused across parameter values (training checkpoints)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("implementation", ["jacobian", "ntvp", "auto"])
def test_one_compile_per_shape_reused_across_checkpoints(implementation, monkeypatch):
    """New parameter values at the same shapes compile nothing; a new input shape does (the
    counter's positive control). Stored features in several chunks exercise the chunk program."""
    monkeypatch.setattr("ntk_air.empirical._plan.CPU_CHUNK_ROWS", 2)
    params, x1, _ = _fixture("cnn")
    x1 = np.concatenate([x1, x1[:2] + 0.5]).astype(np.float32)  # n = 7
    ntk_fn = empirical_ntk_fn(_apply("cnn"), implementation=implementation, tile_size=3)
    checkpoints = [
        jax.tree_util.tree_map(lambda a, s=s: np.asarray(a * (1 + 0.1 * s), np.float32), params)
        for s in range(3)
    ]
    with CompileCounter() as first:
        k0 = ntk_fn(checkpoints[0], x1)
    assert first.count > 0
    with CompileCounter() as later:
        k1 = ntk_fn(checkpoints[1], x1)
        k2 = ntk_fn(checkpoints[2], x1)
    assert later.count == 0
    assert not np.allclose(k0, k1) and not np.allclose(k1, k2)  # new parameters really used
    with CompileCounter() as new_shape:
        ntk_fn(checkpoints[0], x1[:6])
    assert new_shape.count > 0


# ---------------------------------------------------------------------------------------------
# Memory: the budget picks the tile; a request that cannot fit is refused before allocating
# ---------------------------------------------------------------------------------------------


def test_memory_refusal_fires_before_allocating():
    """n = 30000 needs a 3.6 GB output: refused with the estimate, and no XLA program was
    compiled (so none ran and nothing was allocated on the device). Positive control: the same
    function with a fitting request compiles and runs."""
    params = {"w": np.ones((3, 2), np.float32)}

    def apply_fn(p, x):
        return jnp.tanh(x @ p["w"]).sum(-1)

    x = np.ones((30000, 3), np.float32)
    ntk_fn = empirical_ntk_fn(apply_fn, memory_budget=100 << 20)
    with CompileCounter() as counter:
        with pytest.raises(MemoryBudgetError, match=r"needs at least 7\.2\d* GB.*0\.105 GB"):
            ntk_fn(params, x)
        with pytest.raises(MemoryBudgetError):
            ntk_fn.plan(params, x)
    assert counter.count == 0
    assert isinstance(MemoryBudgetError("x"), ValueError)
    with CompileCounter() as control:
        assert ntk_fn(params, x[:50]).shape == (50, 50)
    assert control.count > 0


def test_budget_chooses_the_tile_and_the_result_does_not_change(x64):
    params, x1, _ = _fixture("cnn")
    x = np.concatenate([x1] * 4)  # n = 20
    big = empirical_ntk_fn(_apply("cnn"))
    plan_big = big.plan(params, x)
    assert plan_big.tile_size == 20 and plan_big.store_rows and plan_big.store_cols
    budget = int(plan_big.peak_bytes * 0.6)
    small = empirical_ntk_fn(_apply("cnn"), memory_budget=budget)
    plan_small = small.plan(params, x)
    assert plan_small.peak_bytes <= budget < plan_big.peak_bytes
    settings = ("tile_size", "chunk_size", "store_rows", "store_cols")
    assert [getattr(plan_small, f) for f in settings] != [getattr(plan_big, f) for f in settings]
    k = np.asarray(small(params, x))
    assert rel_fro(k, big(params, x)) <= TOL64
    assert np.array_equal(k, k.T)


# ---------------------------------------------------------------------------------------------
# 'auto' and the plan
# ---------------------------------------------------------------------------------------------


def test_auto_plan_is_reported_and_can_be_overridden(x64):
    params, x1, _ = _fixture("cnn")
    kernel_fn = empirical_kernel_fn(_apply("cnn"), params)
    plan = kernel_fn.plan(x1)
    assert isinstance(plan, EntkPlan)
    assert plan.implementation == "jacobian"  # 'mean' of one output: contraction is cheapest
    assert plan.symmetric and plan.per_example
    assert plan.flops > 0 and 0 < plan.peak_bytes <= plan.memory_budget
    assert plan.reason.startswith("auto: jacobian") and "ntvp est." in plan.reason
    assert "structured n/a" in plan.reason
    forced = kernel_fn.replace(implementation="ntvp")
    assert forced.plan(x1).implementation == "ntvp"
    assert rel_fro(forced(x1).ntk, kernel_fn(x1).ntk) <= TOL64


def test_auto_picks_ntk_vector_products_for_many_outputs_untraced(x64):
    """'none' with k = 16 outputs: the contraction costs 2k²P per pair, the forward products
    about k·(a few P): 'auto' chooses 'ntvp', and it equals the Jacobian contraction."""
    rng = np.random.default_rng(0)
    params = {"w": rng.normal(size=(5, 32)) / 2, "v": rng.normal(size=(32, 16)) / 6}

    def apply_fn(p, x):
        return jnp.tanh(x @ p["w"]) @ p["v"]

    x = rng.normal(size=(6, 5))
    auto = empirical_ntk_fn(apply_fn, implementation="auto", output_reduction="none")
    assert auto.plan(params, x).implementation == "ntvp"
    ref = empirical_ntk_fn(apply_fn, implementation="jacobian", output_reduction="none")
    assert rel_fro(auto(params, x), ref(params, x)) <= TOL64
    mean = empirical_ntk_fn(apply_fn, implementation="auto", output_reduction="mean")
    assert mean.plan(params, x).implementation == "jacobian"
