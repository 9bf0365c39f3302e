"""Numerical guards and checks under jit (issue 13): a non-finite kernel or trajectory is an error
naming where it first appeared, and the checkify variants catch what eager checks cannot see."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import unit_rows
from ntk_air import checked, kernels
from ntk_air import distillation as distill
from ntk_air import distillation as targets
from ntk_air._checks import NonFiniteError
from ntk_air.dynamics import Record, gd_predictor
from ntk_air.spectral import eigensystem, linear_problem


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


@pytest.mark.parametrize("bad", ["nan", "inf", "norm2"])
def test_checked_run_of_a_plain_jitted_kernel_raises_on_bad_rows(bad):
    """The README's promise: `checked.run(jax.jit(f), x)` raises for NaN/inf inputs and for rows
    of norm 2, with f the plain kernel function (its traced checks are checkify.debug_checks)."""
    x = jnp.asarray(unit_rows(5, 3, seed=2))
    x = {"nan": x.at[1, 0].set(jnp.nan), "inf": x.at[2, 1].set(jnp.inf), "norm2": 2 * x}[bad]
    kernel_fn = kernels.two_layer_relu_kernel_fn()
    with pytest.raises(Exception, match="NaN or inf|unit norm"):
        checked.run(jax.jit(lambda a: kernel_fn(a).ntk), x)
    assert jax.jit(lambda a: kernel_fn(a).ntk)(unit_rows(5, 3, seed=2)).shape == (5, 5)


@pytest.mark.parametrize("tile", [None, 3])
def test_kernel_diagonals_are_the_closed_form_at_theta_zero_exactly(x64, tile):
    """θ = 0 on the diagonal: H∞_ii = ‖x_i‖²/2 and the FC recursion's diagonal, bit for bit, at
    d = 1024 (entries k/64 with |k| ≤ 8: every square, sum and division by d is exact, whatever
    the order; before, the tiled H∞ diagonal was 1.7e-8 off at d = 784)."""
    k = np.random.default_rng(0).integers(-8, 9, size=(6, 1024)).astype(np.float64)
    x = k / 64
    sq = (k**2).sum(1) / 64**2
    h = kernels.two_layer_relu_kernel_fn(general=True, tile_size=tile)(x)
    np.testing.assert_array_equal(np.diag(np.asarray(h.ntk)), sq / 2)
    np.testing.assert_array_equal(np.diag(np.asarray(h.nngp)), sq / 2)
    fc = kernels.fc_kernel_fn(2, "relu", 1.0, 0.0, tile_size=tile)(x)
    sigma = sq / 1024
    theta = sigma.copy()
    for _ in range(2):  # Dense(1, 0) after ReLU at θ = 0: Σ → Σ/2, Θ → Σ/2 + Θ/2
        sigma = sigma / 2
        theta = sigma + theta / 2
    np.testing.assert_array_equal(np.diag(np.asarray(fc.nngp)), sigma)
    np.testing.assert_array_equal(np.diag(np.asarray(fc.ntk)), theta)
