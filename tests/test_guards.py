"""Numerical guards and checks under jit (issue 13): a non-finite kernel or trajectory is an error
naming where it first appeared, and the checkify variants catch what eager checks cannot see."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import unit_rows
from ntk_air import checked, distill, kernels, targets
from ntk_air._checks import NonFiniteError
from ntk_air.dynamics import gd_predictor
from ntk_air.eigen import eigensystem
from ntk_air.problem import linear_problem
from ntk_air.record import Record


def test_an_overflowing_deep_kernel_names_the_layer(x64):
    x = unit_rows(4, 3, seed=0)
    with pytest.raises(
        NonFiniteError, match=r"first at \(0, 0\); it first appears in layer 0\.repeat\[\d+\]"
    ):
        kernels.fc_kernel_fn(400, "relu", 5.0, 0.0)(x)


def test_a_diverging_run_names_the_first_bad_step(x64):
    x = unit_rows(10, 3, seed=1)
    y = np.sign(x[:, 0] + 0.1)
    eig = eigensystem(kernels.two_layer_relu(x))
    lp = linear_problem(eig, y, y)
    eta = 2.5 / float(eig.eigenvalues[0])
    with pytest.raises(
        NonFiniteError, match="rule 0's predictions are not finite from recorded step"
    ):
        distill.self_distill(
            lp, targets.plain_gd(), steps=4000, eta=eta, force=True, record=Record(500)
        )
    predict = gd_predictor(eig, y, eta=eta, force=True)
    assert np.isfinite(np.asarray(predict(np.array([0, 10, 100])).train)).all()
    with pytest.raises(NonFiniteError, match=r"time index 1 \(t = 1e\+06\)"):
        predict(np.array([0, 1e6]))


def _h(x):
    return checked.kernel(kernels.two_layer_relu_kernel_fn(), x, unit_norm=True).ntk


def test_checks_run_under_jit_and_vmap(x64):
    x = jnp.asarray(unit_rows(5, 3, seed=2))
    np.testing.assert_allclose(checked.run(jax.jit(_h), x), kernels.two_layer_relu(x), rtol=1e-14)
    assert checked.run(jax.vmap(_h), jnp.stack([x, x])).shape == (2, 5, 5)
    with pytest.raises(Exception, match="x1 holds a NaN or inf"):
        checked.run(jax.jit(_h), x.at[1, 2].set(jnp.nan))
    with pytest.raises(Exception, match=r"unit norm .* = 1\.0"):
        checked.run(jax.jit(_h), 2 * x)
    # Without the checked variant, the traced call returns garbage silently: what the module fixes.
    assert not np.isfinite(
        np.asarray(jax.jit(kernels.two_layer_relu)(x.at[1, 2].set(jnp.nan)))
    ).all()


def test_checked_steps_and_step_size(x64):
    eig = eigensystem(kernels.two_layer_relu(unit_rows(6, 3, seed=3)))

    def f(steps, eta):
        return checked.steps(steps), checked.step_size(eig, eta)

    checked.run(jax.jit(f), jnp.array([0.0, 3.0]), 0.5 / eig.eigenvalues[0])
    with pytest.raises(Exception, match="whole numbers"):
        checked.run(jax.jit(f), jnp.array([0.0, 2.5]), 0.5 / eig.eigenvalues[0])
    with pytest.raises(Exception, match="non-negative"):
        checked.run(jax.jit(f), jnp.array([-1.0]), 0.5 / eig.eigenvalues[0])
    with pytest.raises(Exception, match="diverges"):
        checked.run(jax.jit(f), jnp.array([1.0]), 2.5 / eig.eigenvalues[0])
