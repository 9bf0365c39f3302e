"""Target rules as (init, update) pairs: the affine family against its formulas, grids and groups,
and one rule of one's own run both in the kernel limit and on a real network."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import unit_rows
from ntk_air import (
    distillation as distill,
)
from ntk_air import (
    distillation as targets,
)
from ntk_air import (
    networks as models,
)
from ntk_air import (
    networks as training,
)
from ntk_air.dynamics import Record
from ntk_air.empirical import two_layer_ntk
from ntk_air.spectral import eigensystem, linear_problem


def test_affine_update_is_the_formula_of_the_module_docstring(x64):
    """ỹ(k) = m ỹ(k−1) + (1 − m)[(1 − a) y + a p(q)], m = moving·α, a = moving + (1 − moving)·α."""
    rng = np.random.default_rng(0)
    y = np.sign(rng.standard_normal((9, 1)))
    u_prev, u, t_prev = (rng.standard_normal((9, 1)) for _ in range(3))
    state = targets.AffineState(target=jnp.asarray(t_prev), u_prev=jnp.asarray(u_prev))
    for rule in (
        targets.r1(0.3),
        targets.r1_lag(0.6, hard=True),
        targets.r3(0.8),
        targets.r3(0.4, hard=False, lag=True),
    ):
        q = u_prev if float(rule.lag) else u
        p = np.sign(q) if rule.hard else q
        m = float(rule.moving) * float(rule.alpha)
        a = float(rule.moving) + (1 - float(rule.moving)) * float(rule.alpha)
        expected = m * t_prev + (1 - m) * ((1 - a) * y + a * p)
        t, new_state = rule.update(jnp.asarray(u), jnp.asarray(y), state, 3)
        np.testing.assert_allclose(np.asarray(t), expected, atol=1e-14)
        np.testing.assert_allclose(np.asarray(new_state.u_prev), u)
        t0, _ = rule.update(jnp.asarray(u), jnp.asarray(y), state, 0)  # k = 0 keeps ỹ(0)
        np.testing.assert_allclose(np.asarray(t0), t_prev)
    # R3 starts from the labels; R1 from the mix with the initial predictions.
    np.testing.assert_allclose(
        np.asarray(targets.r3(0.9).init(jnp.asarray(u), jnp.asarray(y)).target), y
    )
    r1 = targets.r1(0.25).init(jnp.asarray(u), jnp.asarray(y)).target
    np.testing.assert_allclose(np.asarray(r1), 0.75 * y + 0.25 * u, atol=1e-14)


def test_schedules(x64):
    y = jnp.asarray([[1.0], [-1.0], [1.0], [1.0]])
    u = jnp.asarray([[0.5], [0.2], [-0.1], [2.0]])  # sign accuracy against y: 2/4
    inc = targets.r1(0.8, schedule="increasing", ramp=10)
    assert float(inc.alpha_at(5, u, y)) == pytest.approx(0.4)
    assert float(inc.alpha_at(50, u, y)) == pytest.approx(0.8)
    assert float(targets.r2(0.9).alpha_at(3, u, y)) == pytest.approx(0.45)


@pytest.mark.parametrize(
    "rule",
    [
        targets.r1(0.5, start=6),
        targets.r3(0.9, hard=False, start=6),
        targets.r3(0.8, hard=True, start=6),
        targets.r2(start=6),
        targets.r1(0.7, schedule="increasing", ramp=5, start=6),
    ],
    ids=["r1", "r3-soft", "r3-hard", "r2", "r1-increasing"],
)
def test_a_warm_up_is_plain_gd_then_the_rule_restarted_from_u_at_the_warm_up(rule, x64):
    """start = W: ỹ(k) = y for k < W, then the rule on its clock k − W from u(W): the run equals
    plain GD for W steps followed by the rule (start = 0) from u(0) = u(W), step for step."""
    rng = np.random.default_rng(3)
    x = unit_rows(24, 4, seed=3)
    H = np.asarray(two_layer_ntk(x, x))
    y_clean = np.sign(x[:, 0] + 0.3 * x[:, 1])
    y = np.where(rng.random(24) < 0.25, -y_clean, y_clean)
    eig, W, steps, eta = eigensystem(jnp.asarray(H)), rule.start, 40, 0.5
    problem = linear_problem(eig, y, y_clean, kernel=H)
    warm = distill.self_distill(problem, rule, steps=steps, eta=eta, engine="scan")
    plain = distill.self_distill(problem, targets.plain_gd(), steps=W, eta=eta, engine="scan")
    rest = distill.self_distill(
        linear_problem(eig, y, y_clean, u0=plain.u_final, kernel=H),
        dataclasses.replace(rule, start=0),
        steps=steps - W,
        eta=eta,
        engine="scan",
    )
    np.testing.assert_allclose(warm.dist_train[: W + 1], plain.dist_train, rtol=1e-12)
    np.testing.assert_allclose(warm.dist_train[W:], rest.dist_train, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(warm.u_final, rest.u_final, rtol=1e-10, atol=1e-12)
    assert not np.allclose(
        warm.dist_train,
        distill.self_distill(
            problem, dataclasses.replace(rule, start=0), steps=steps, eta=eta, engine="scan"
        ).dist_train,
    )  # the warm-up changes the run
    assert "from step 6" in targets.rule_label(rule)


def test_a_warm_up_is_refused_by_the_closed_form_and_exact_on_the_eigenbasis_scan(x64):
    x = unit_rows(20, 3, seed=4)
    H = np.asarray(two_layer_ntk(x, x))
    y = np.sign(x[:, 0])
    problem = linear_problem(eigensystem(jnp.asarray(H)), y, y, kernel=H)
    rule = targets.r1(0.6, start=4)
    assert not rule.linear and targets.r1(0.6).linear
    with pytest.raises(ValueError, match="warm-up"):
        distill.self_distill(problem, rule, steps=10, eta=0.5, engine="closed-form")
    auto = distill.self_distill(problem, rule, steps=30, eta=0.5)
    dense = distill.self_distill(problem, rule, steps=30, eta=0.5, engine="scan")
    np.testing.assert_allclose(auto.dist_train, dense.dist_train, rtol=1e-10)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="warm-up"):
            targets.r1(0.5, start=bad)


def test_hard_targets_accuracy_and_margin_on_both_label_formats():
    u = jnp.asarray([[0.2, 0.7, 0.1], [0.5, -1.0, 0.4]])
    labels = jnp.asarray([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(targets.hard_targets(u), [[0, 1, 0], [1, 0, 0]])
    assert float(targets.accuracy(u, labels)) == 0.5
    assert float(targets.margin(u, labels)) == pytest.approx(-0.1)
    v = jnp.asarray([0.3, -2.0, 0.1])
    for w in (v, v[:, None]):  # (n,) and (n, 1) are ±1 outputs
        np.testing.assert_array_equal(np.ravel(targets.hard_targets(w)), [1, -1, 1])
    assert float(targets.margin(v, jnp.asarray([1.0, -1.0, -1.0]))) == pytest.approx(-0.1)


def test_grids_group_by_structure_in_first_appearance_order():
    rules = [targets.r3(0.9), targets.r1(0.5), targets.r3(0.7), targets.r2(), targets.r1(0.1)]
    stacked = targets.stack_rules([targets.r3(0.9), targets.r3(0.7)])
    assert isinstance(stacked, targets.AffineRule) and np.shape(stacked.alpha) == (2,)
    assert isinstance(targets.stack_rules(rules), tuple)
    groups = targets.group_rules(rules)
    assert [idx for idx, _ in groups] == [[0, 2], [1, 4], [3]]
    np.testing.assert_allclose(groups[0][1].alpha, [0.9, 0.7])
    with pytest.raises(ValueError, match="at least one"):
        targets.stack_rules([])
    assert targets.cast_rule(targets.r1(0.5), jnp.float32).alpha.dtype == jnp.float32


def test_rules_from_names():
    labels = [lab for lab, _ in targets.rules_from_names(["r1", "r3", "r2"], alphas=(0.3,))]
    assert labels == [
        "plain GD",
        "R1 soft α=0.3",
        "R1 hard α=0.3",
        "R3 soft α=0.3",
        "R3 hard α=0.3",
        "R2 ×0.3",
    ]
    with pytest.raises(ValueError, match="unknown rule 'r4'"):
        targets.rules_from_names(["r4"])
    with pytest.raises(ValueError, match="soft / hard"):
        targets.rules_from_names(["r1"], soft=False, hard=False)


def _clip_rule(c):
    """A rule of one's own: the labels, clipped towards the current predictions."""

    def init(u0, y):
        return ()

    def update(u, y, state, k):
        return y + jnp.clip(u - y, -c, c), state

    return targets.TargetRule(init, update)


def test_one_rule_runs_both_ways_kernel_limit_and_real_network(x64):
    """The same TargetRule object drives the kernel limit (`self_distill` on the network's
    linearization H(W0), from its u(0)) and the real network (`train`), and a wide network
    trained by small steps follows it: the gap is O(1/√m) over a short horizon."""
    x = unit_rows(24, 5, seed=1)
    y = np.sign(x[:, 0] + 0.05)
    y_clean = y.copy()
    y[:4] *= -1
    rule = _clip_rule(0.5)
    gaps = {}
    for width in (256, 8192):
        apply_fn, params = models.two_layer_network(width, x, seed=3, init="symmetric")
        H0 = two_layer_ntk(params, x)
        eig = eigensystem(H0)
        eta = 0.5 / float(eig.eigenvalues[0])
        rec = Record(every=1, predictions=True)
        net = training.train(apply_fn, params, x, y, y_clean, rule, steps=30, eta=eta, record=rec)
        lp = linear_problem(eig, y, y_clean, kernel=H0)
        lin = distill.self_distill(lp, rule, steps=30, eta=eta, record=rec)
        gaps[width] = float(np.max(np.linalg.norm(np.asarray(net.u_path - lin.u_path), axis=1)))
    assert gaps[8192] < 0.02 * np.linalg.norm(y)
    assert gaps[8192] < gaps[256] / 2.5  # ×32 width → ≈ ×1/5.7


def test_a_rule_of_your_own_trains_a_network_exactly_like_an_eager_loop(x64):
    x = unit_rows(16, 4, seed=2)
    y_clean = np.sign(x[:, 1] + 0.05)
    y = y_clean.copy()
    y[:3] *= -1
    apply_fn, params = models.two_layer_network(64, x, seed=1)
    rule = _clip_rule(0.3)
    run = training.train(apply_fn, params, x, y, y_clean, rule, steps=12, eta=0.4)
    grad = jax.grad(lambda p, t: 0.5 * jnp.sum((apply_fn(p, x) - t) ** 2))
    p = params
    for _ in range(12):
        u = apply_fn(p, x)
        t = y + jnp.clip(u - y, -0.3, 0.3)
        p = jax.tree_util.tree_map(lambda a, g: a - 0.4 * g, p, grad(p, t))
    np.testing.assert_allclose(np.asarray(run.u_final), np.asarray(apply_fn(p, x)), atol=1e-10)
