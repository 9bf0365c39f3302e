"""What a run records: the recorded steps, the shared scan loop against a plain loop, and an
observable of one's own in the kernel limit and on a real network."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import unit_rows
from ntk_air import models, targets, training
from ntk_air.record import Record, record_steps, scan_blocks


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
    rec = record_steps(steps, every)
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
