"""What a run records: the recorded steps, the shared scan loop against a plain loop, and an
observable of one's own in the kernel limit and on a real network."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from conftest import unit_rows
from ntk_air import distillation as targets
from ntk_air import networks as models
from ntk_air import networks as training
from ntk_air.dynamics import Record, scan_blocks


@pytest.mark.parametrize("steps, every", [(0, 1), (7, 1), (10, 5), (12, 5), (3, 10)])
def test_scan_blocks_equals_a_plain_loop(steps, every):
    """Observations at k = 0, every, 2·every, … and the last step, as a Python loop records them."""

    def advance(s, r):
        for _ in range(r):
            s = 0.5 * s + 1.0
        return s

    state, obs = scan_blocks(
        advance, lambda s: {"s": s}, jnp.float32(3.0), steps=steps, every=every
    )
    expected, s = {}, 3.0
    for k in range(steps + 1):
        expected[k] = s
        s = 0.5 * s + 1.0
    rec = Record(every=every).steps(steps)
    np.testing.assert_allclose(np.asarray(obs["s"]), [expected[k] for k in rec], rtol=1e-6)
    assert float(state) == pytest.approx(expected[steps], rel=1e-6)
    assert rec[0] == 0 and rec[-1] == steps and len(set(rec)) == len(rec)


def test_record_checks_its_arguments():
    with pytest.raises(ValueError, match="record every must be an integer ≥ 1"):
        Record(every=0)
    with pytest.raises(TypeError, match="callable"):
        Record(fn=3)
    assert Record(every=4).steps(9).tolist() == [0, 4, 8, 9]


def test_an_observable_of_your_own_on_a_real_network(x64):
    """Record.fn sees the parameters too: ‖θ(k)‖ and the training accuracy against ŷ."""
    x = unit_rows(12, 3, seed=4)
    y = np.sign(x[:, 0] + 0.1)
    apply_fn, params = models.two_layer_network(32, x, seed=0)
    y_col = jnp.asarray(y)[:, None]

    def observe(s):
        return {"w_norm": jnp.linalg.norm(s.params["w"]), "acc": targets.accuracy(s.u, y_col)}

    run = training.train(
        apply_fn,
        params,
        x,
        y,
        y,
        targets.plain_gd(),
        steps=6,
        eta=0.3,
        record=Record(every=3, fn=observe, predictions=True),
    )
    assert np.asarray(run.observed["w_norm"]).shape == (3,)
    assert float(run.observed["w_norm"][0]) == pytest.approx(float(np.linalg.norm(params["w"])))
    acc = [np.mean(np.sign(u) == y) for u in np.asarray(run.u_path)]
    np.testing.assert_allclose(np.asarray(run.observed["acc"]), acc)


@pytest.mark.parametrize("at, steps", [((0, 1, 3, 10), 10), ((2, 5), 9), ((0,), 4), ((7,), 7)])
def test_scan_blocks_at_explicit_steps_equals_a_plain_loop(at, steps):
    """Record(at=...): observations exactly at the given steps (gaps traced), then on to `steps`."""

    def advance(s, r):  # r traced: a fori_loop
        return lax.fori_loop(0, r, lambda _, s: 0.5 * s + 1.0, s)

    state, obs = scan_blocks(
        advance, lambda s: {"s": s}, jnp.float32(3.0), steps=steps, every=1, at=at
    )
    expected, s = {}, 3.0
    for k in range(steps + 1):
        expected[k] = s
        s = 0.5 * s + 1.0
    np.testing.assert_allclose(np.asarray(obs["s"]), [expected[k] for k in at], rtol=1e-6)
    assert float(state) == pytest.approx(expected[steps], rel=1e-6)


def test_record_at_normalizes_and_checks():
    assert Record(at=np.array([10.0, 0.0, 3.0, 3.0])).at == (0, 3, 10)
    assert hash(Record(at=[1, 2])) == hash(Record(at=(2, 1)))
    with pytest.raises(ValueError, match="Record\\(at=\\) step must be an integer ≥ 0"):
        Record(at=[-1, 2])
    with pytest.raises(ValueError, match="non-empty"):
        Record(at=[])
    with pytest.raises(ValueError, match="asks for step 12 but the run has 10 steps"):
        Record(at=(0, 12)).steps(10)


def test_training_records_at_explicit_steps(x64):
    """train(record=Record(at=...)) = the same run recorded every step, at those steps."""
    x = unit_rows(10, 3, seed=2)
    y = np.sign(x[:, 1] + 0.05)
    apply_fn, params = models.two_layer_network(16, x, seed=1)

    def weights(s):
        return s.params["w"]

    kw = dict(steps=9, eta=0.5)
    every = training.train(
        apply_fn, params, x, y, y, targets.plain_gd(), record=Record(fn=weights), **kw
    )
    at = (0, 1, 4, 7)
    run = training.train(
        apply_fn, params, x, y, y, targets.plain_gd(), record=Record(at=at, fn=weights), **kw
    )
    assert run.steps.tolist() == list(at)
    np.testing.assert_allclose(run.observed, np.asarray(every.observed)[list(at)], rtol=1e-12)
    np.testing.assert_allclose(run.dist_train_all, every.dist_train_all, rtol=1e-12)
    np.testing.assert_allclose(run.u_final, every.u_final, rtol=1e-12)


def test_self_distill_refuses_record_at():
    from ntk_air.distillation import self_distill
    from ntk_air.spectral import eigensystem, linear_problem

    x = unit_rows(6, 3)
    y = np.sign(x[:, 0])
    problem = linear_problem(eigensystem(x @ x.T + np.eye(6)), y, y)
    with pytest.raises(ValueError, match="Record\\(at=...\\) is for training.train"):
        self_distill(problem, targets.plain_gd(), steps=5, record=Record(at=(0, 5)))
