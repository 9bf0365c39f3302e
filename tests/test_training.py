"""Finite-width training (docs/science/theorem.md, docs/science/index.md#identities): the jitted
loop against an eager loop, and the network against its linearization and the kernel limit as width
grows."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ntk_air import distillation as D
from ntk_air import distillation as RT
from ntk_air import networks as M
from ntk_air import networks as T
from ntk_air.dynamics import Record
from ntk_air.empirical import two_layer_ntk
from ntk_air.kernels import two_layer_relu
from ntk_air.networks._training import _tree_distance
from ntk_air.spectral import eigensystem, linear_problem


def _unit_rows(rng, n, d):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def problem(x64):
    rng = np.random.default_rng(7)
    x, xt = _unit_rows(rng, 16, 4), _unit_rows(rng, 5, 4)
    y_clean = np.sign(x[:, 0] + 0.05)
    y = y_clean.copy()
    y[:3] *= -1
    yt = np.sign(xt[:, 0] + 0.05)
    eta = 1.0 / np.linalg.eigvalsh(np.asarray(two_layer_relu(x)))[-1]
    return dict(x=x, xt=xt, y=y, y_clean=y_clean, yt=yt, eta=eta)


def _eager_r3_hard(apply_fn, params, x, xt, y, eta, alpha, steps):
    """R3 with sign targets and plain GD on ½‖u − ỹ‖², written out step by step (no scan)."""
    theta0 = params
    loss_grad = jax.grad(lambda p, t: 0.5 * jnp.sum((apply_fn(p, x) - t) ** 2))
    t = jnp.asarray(y)
    dists, dws = [], []
    for k in range(steps + 1):
        u = apply_fn(params, x)
        if k > 0:
            t = alpha * t + (1 - alpha) * jnp.sign(u)
        dists.append(u)
        dws.append(_tree_distance(params, theta0))
        if k == steps:
            break
        params = jax.tree_util.tree_map(lambda p, g: p - eta * g, params, loss_grad(params, t))
    return np.array(dists), np.array(dws), np.asarray(apply_fn(params, xt))


def test_jitted_training_equals_eager_loop(problem):
    pr = problem
    apply_fn, params = M.two_layer_network(64, pr["x"], seed=3)
    steps = 25
    run = T.train(
        apply_fn,
        params,
        pr["x"],
        pr["y"],
        pr["y_clean"],
        RT.r3(0.8),
        steps=steps,
        eta=pr["eta"],
        record=Record(every=5, predictions=True),
        x_test=pr["xt"],
        y_test_clean=pr["yt"],
    )
    us, dws, f = _eager_r3_hard(apply_fn, params, pr["x"], pr["xt"], pr["y"], pr["eta"], 0.8, steps)
    np.testing.assert_allclose(np.asarray(run.u_path), us[::5], atol=1e-10)
    np.testing.assert_allclose(
        np.asarray(run.dist_train_all), np.linalg.norm(us - pr["y_clean"], axis=1), atol=1e-10
    )
    np.testing.assert_allclose(np.asarray(run.weight_change), dws[::5], atol=1e-10)
    np.testing.assert_allclose(np.asarray(run.f_test_final), f, atol=1e-10)
    assert float(run.dist_test[-1]) == pytest.approx(np.linalg.norm(f - pr["yt"]), abs=1e-10)
    assert float(run.margin_train) == pytest.approx(np.min(pr["y_clean"] * us[-1]), abs=1e-10)


def test_grid_equals_single_runs(problem):
    pr = problem
    apply_fn, params = M.two_layer_network(32, pr["x"], seed=0)
    rules = [RT.plain_gd(), RT.r3(0.9), RT.r2(), RT.r1_lag(0.5, hard=True)]
    grid = T.train(
        apply_fn,
        params,
        pr["x"],
        pr["y"],
        pr["y_clean"],
        RT.stack_rules(rules),
        steps=13,
        eta=pr["eta"],
        record=Record(every=4),
    )
    assert grid.dist_train.shape == (4, 5) and grid.dist_train_all.shape == (4, 14)
    for i, r in enumerate(rules):
        one = T.train(
            apply_fn,
            params,
            pr["x"],
            pr["y"],
            pr["y_clean"],
            r,
            steps=13,
            eta=pr["eta"],
            record=Record(every=4),
        )
        np.testing.assert_allclose(
            np.asarray(grid.dist_train_all[i]), np.asarray(one.dist_train_all), atol=1e-12
        )
        np.testing.assert_allclose(np.asarray(grid.u_final[i]), np.asarray(one.u_final), atol=1e-12)


def test_fresh_network_of_the_same_width_does_not_recompile(problem, caplog):
    """The readout travels as data (`two_layer_network` returns a Partial): a new network of the
    same width, seed or init, reuses the compiled training loop."""
    pr = problem
    kw = dict(steps=6, eta=pr["eta"], record=Record(every=3, predictions=True))
    fn0, p0 = M.two_layer_network(32, pr["x"], seed=0)
    T.train(fn0, p0, pr["x"], pr["y"], pr["y_clean"], RT.r3(0.9), **kw)
    nets = [M.two_layer_network(32, pr["x"], seed=0, init=i) for i in ("iid", "symmetric")]
    with jax.log_compiles(), caplog.at_level("WARNING"):
        runs = [T.train(fn, p, pr["x"], pr["y"], pr["y_clean"], RT.r3(0.5), **kw) for fn, p in nets]
    assert not [r for r in caplog.records if "ompil" in r.getMessage()]
    # Each compiled run read its own network's readout: the symmetric one starts at f(W0) = 0.
    assert float(np.linalg.norm(np.asarray(runs[0].u_path[0]))) > 0.1
    assert float(np.linalg.norm(np.asarray(runs[1].u_path[0]))) < 1e-12


def _problem(K, pr, u0):
    """The linearized problem on kernel K from the network's own u(0) (dense scan: K kept)."""
    K = jnp.asarray(K, jnp.float64)
    return linear_problem(eigensystem(K), pr["y"], pr["y_clean"], u0=u0, kernel=K)


def _linearization_gaps(pr, width, steps, seeds=(0, 1)):
    """max_k ‖u_net(k) − u_lin(k)‖ against H(W0) from f(W0), and against H∞ from f(W0)."""
    gaps_lin, gaps_inf = [], []
    H_inf = two_layer_relu(pr["x"])
    for seed in seeds:
        apply_fn, params = M.two_layer_network(width, pr["x"], seed=seed)
        u0 = apply_fn(params, pr["x"])
        net = T.train(
            apply_fn,
            params,
            pr["x"],
            pr["y"],
            pr["y_clean"],
            RT.plain_gd(),
            steps=steps,
            eta=pr["eta"],
            record=Record(every=1, predictions=True),
        )
        lin = D.self_distill(
            _problem(two_layer_ntk(params, pr["x"]), pr, u0),
            RT.plain_gd(),
            steps=steps,
            eta=pr["eta"],
            engine="scan",
            record=Record(predictions=True),
        )
        inf = D.self_distill(
            _problem(H_inf, pr, u0),
            RT.plain_gd(),
            steps=steps,
            eta=pr["eta"],
            engine="scan",
            record=Record(predictions=True),
        )
        gaps_lin.append(np.linalg.norm(np.asarray(net.u_path - lin.u_path), axis=1).max())
        gaps_inf.append(np.linalg.norm(np.asarray(net.u_path - inf.u_path), axis=1).max())
    return np.mean(gaps_lin), np.mean(gaps_inf)


def test_wide_network_follows_its_linearization_closer_as_width_grows(problem):
    pr = problem
    y_norm = np.linalg.norm(pr["y"])
    lin_small, inf_small = _linearization_gaps(pr, 256, 60)
    lin_wide, inf_wide = _linearization_gaps(pr, 8192, 60)
    # Lazy training: ‖u_net − u_lin‖ = O(1/√m) (Lee et al. 2019); ×32 width → ≈ ×1/5.7.
    assert lin_wide < 0.02 * y_norm
    assert lin_wide < lin_small / 2.5
    # The kernel-limit prediction (H∞, same u(0)) also closes in, at the rate of ‖H(W0) − H∞‖.
    assert inf_wide < inf_small / 2.5
    assert inf_wide < 0.05 * y_norm


def test_arora_residual_formula_matches_a_wide_network(problem):
    pr = problem
    H = np.asarray(two_layer_relu(pr["x"]))
    lam, V = np.linalg.eigh(H)
    steps = np.arange(0, 81)
    rel = {}
    for width in (256, 8192):
        apply_fn, params = M.two_layer_network(width, pr["x"], seed=11)
        u0 = np.asarray(apply_fn(params, pr["x"]))
        run = T.train(
            apply_fn,
            params,
            pr["x"],
            pr["y"],
            pr["y_clean"],
            RT.plain_gd(),
            steps=80,
            eta=pr["eta"],
            record=Record(every=1, predictions=True),
        )
        residual = np.linalg.norm(pr["y"] - np.asarray(run.u_path), axis=1)
        # ‖y − u(k)‖² = Σ_i (1 − ηλ_i)^{2k} (v_iᵀ(y − u(0)))²  (Arora et al. 2019, Thm 4.1)
        c = V.T @ (pr["y"] - u0)
        formula = np.sqrt(((1 - pr["eta"] * lam)[None] ** (2 * steps[:, None]) * c**2).sum(1))
        rel[width] = np.max(np.abs(residual - formula)) / np.linalg.norm(pr["y"] - u0)
    assert rel[8192] < 0.03
    assert rel[8192] < rel[256]


def test_mlp_trains_and_matches_eager_gd(problem):
    pr = problem
    apply_fn, params = M.mlp_network((48, 48), pr["x"], w_std=1.5, b_std=0.1, seed=2)
    run = T.train(
        apply_fn,
        params,
        pr["x"],
        pr["y"],
        pr["y_clean"],
        RT.r1(0.5),
        steps=10,
        eta=0.05,
        record=Record(every=10, predictions=True),
    )
    grad = jax.grad(lambda p, t: 0.5 * jnp.sum((apply_fn(p, pr["x"])[:, 0] - t) ** 2))
    p = params
    for _ in range(10):
        u = apply_fn(p, pr["x"])[:, 0]
        t = 0.5 * pr["y"] + 0.5 * u
        p = jax.tree_util.tree_map(lambda a, g: a - 0.05 * g, p, grad(p, t))
    np.testing.assert_allclose(
        np.asarray(run.u_final), np.asarray(apply_fn(p, pr["x"])[:, 0]), atol=1e-10
    )
    assert float(run.weight_change[-1]) == pytest.approx(
        float(_tree_distance(p, params)), rel=1e-10
    )


def test_output_shape_mismatch_is_a_clear_error(problem):
    pr = problem
    apply_fn, params = M.mlp_network((8,), pr["x"], out_dim=3)
    with pytest.raises(ValueError, match="shape"):
        T.train(apply_fn, params, pr["x"], pr["y"], pr["y_clean"], RT.plain_gd(), steps=2, eta=0.1)
    with pytest.raises(ValueError, match="eta"):
        T.train(apply_fn, params, pr["x"], pr["y"], pr["y_clean"], RT.plain_gd(), steps=2, eta=-1.0)


@pytest.mark.slow
def test_width_beyond_ten_thousand_runs_on_cpu(problem):
    pr = problem
    apply_fn, params = M.two_layer_network(16384, pr["x"], seed=0)
    run = T.train(
        apply_fn,
        params,
        jnp.asarray(pr["x"], jnp.float32),
        pr["y"],
        pr["y_clean"],
        RT.stack_rules([RT.plain_gd(), RT.r3(0.9)]),
        steps=100,
        eta=pr["eta"],
        record=Record(every=50),
    )
    assert run.u_final.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(run.dist_train)))
    assert float(run.dist_train_all[0, -1]) < float(run.dist_train_all[0, 0])


def test_exactly_one_of_eta_and_optimizer(problem):
    import optax

    pr = problem
    apply_fn, params = M.two_layer_network(16, pr["x"])
    args = (apply_fn, params, pr["x"], pr["y"], pr["y_clean"], RT.plain_gd())
    with pytest.raises(ValueError, match="exactly one of eta"):
        T.train(*args, steps=2)
    with pytest.raises(ValueError, match="exactly one of eta"):
        T.train(*args, steps=2, eta=0.1, optimizer=optax.sgd(0.1))
    # The optimizer's own step size is the one used (not a silently ignored eta).
    a = T.train(*args, steps=3, optimizer=optax.sgd(0.05))
    b = T.train(*args, steps=3, eta=0.05)
    np.testing.assert_allclose(np.asarray(a.u_final), np.asarray(b.u_final), atol=1e-12)


def test_step_size_is_data_one_compilation_for_every_eta(problem, compile_counter):
    pr = problem
    apply_fn, params = M.two_layer_network(16, pr["x"])
    args = (apply_fn, params, pr["x"], pr["y"], pr["y_clean"], RT.r3(0.9))
    first = T.train(*args, steps=4, eta=0.1)
    with compile_counter() as c:
        second = T.train(*args, steps=4, eta=0.2)
    assert c.count == 0
    assert not np.allclose(np.asarray(first.u_final), np.asarray(second.u_final))


def _one_hot_problem(n=12, d=5, c=3):
    rng = np.random.default_rng(4)
    x = _unit_rows(rng, n, d)
    y_clean = np.eye(c)[np.arange(n) % c]
    y = y_clean.copy()
    y[:2] = np.eye(c)[(np.arange(2) + 1) % c]  # two flips
    return x, y, y_clean


@pytest.mark.parametrize("loss", ["mse", "xent"])
def test_epochs_schedule_is_the_loop_of_train_epochs(x64, loss):
    """`train(schedule=Epochs(B))` of one network = `train_epochs` of one seed: one loop."""
    import optax

    x, y, y_clean = _one_hot_problem()
    net = M.network("mlp", x, out_dim=3, widths=(8,), w_std=1.5, seed=1)
    opt, key, rule = optax.sgd(0.3, momentum=0.9), jax.random.key(2), RT.r3(0.7, hard=True)
    run = T.train(
        net.apply_fn, net.params, x, y, y_clean, rule, steps=4, optimizer=opt,
        schedule=T.Epochs(5), key=key, loss=loss,
    )  # fmt: skip
    seeds = T.train_epochs(
        net.apply_fn, jax.tree_util.tree_map(lambda a: a[None], net.params), x, y, y_clean,
        [rule], epochs=4, batch_size=5, optimizer=opt, key=key[None], loss=loss,
    )  # fmt: skip
    u = T.rule_view(run.u_final, loss)
    np.testing.assert_allclose(np.asarray(seeds.u_final[0, 0]), np.asarray(u), atol=1e-12)
    dist = np.asarray(run.dist_train) / np.sqrt(x.shape[0])
    np.testing.assert_allclose(np.asarray(seeds.dist_clean[0, 0]), dist, atol=1e-12)
    assert not np.allclose(np.asarray(run.u_final), np.asarray(net.apply_fn(net.params, x)))


def test_full_batch_cross_entropy_is_gradient_descent_on_the_summed_loss(x64):
    """FullBatch with loss 'xent': θ ← θ − η ∇ Σ_i −ỹ_i·log softmax(f(θ, x_i)), ỹ = y (plain)."""
    x, y, y_clean = _one_hot_problem()
    net = M.network("mlp", x, out_dim=3, widths=(8,), seed=0)

    def total(p):
        return -jnp.sum(y * jax.nn.log_softmax(net.apply_fn(p, x), axis=-1))

    p = net.params
    for _ in range(3):
        p = jax.tree_util.tree_map(lambda a, g: a - 0.2 * g, p, jax.grad(total)(p))
    run = T.train(
        net.apply_fn, net.params, x, y, y_clean, RT.plain_gd(), steps=3, eta=0.2, loss="xent"
    )
    np.testing.assert_allclose(np.asarray(run.u_final), np.asarray(net.apply_fn(p, x)), atol=1e-12)


def test_bad_schedule_and_loss_are_clear_errors(problem):
    pr = problem
    apply_fn, params = M.two_layer_network(16, pr["x"])
    args = (apply_fn, params, pr["x"], pr["y"], pr["y_clean"], RT.plain_gd())
    with pytest.raises(ValueError, match="needs key="):
        T.train(*args, steps=2, eta=0.1, schedule=T.Epochs(4))
    with pytest.raises(ValueError, match="batch_size"):
        T.train(*args, steps=2, eta=0.1, schedule=T.Epochs(99), key=jax.random.key(0))
    with pytest.raises(ValueError, match="loss must be one of"):
        T.train(*args, steps=2, eta=0.1, loss="hinge")
    with pytest.raises(ValueError, match="schedule must be"):
        T.train(*args, steps=2, eta=0.1, schedule="epochs")
