"""Self-distillation rules (docs/science/distillation.md) against independent numpy recursions
and closed forms, the engines and their grouping, rules and observables of one's own."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import h_inf_numpy
from ntk_air import data
from ntk_air import distillation as D
from ntk_air import distillation as R
from ntk_air import distillation as T
from ntk_air.dynamics import Record, u_curve
from ntk_air.kernels import two_layer_relu
from ntk_air.spectral import apply_spectral_filter, eigensystem, linear_problem


def _unit_rows(rng, n, d):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def problem(x64):
    rng = np.random.default_rng(3)
    x, xt = _unit_rows(rng, 24, 5), _unit_rows(rng, 7, 5)
    H, Kt = np.asarray(two_layer_relu(x)), np.asarray(two_layer_relu(xt, x))
    y_clean = np.sign(x[:, 0] + 0.1)
    y = y_clean.copy()
    y[:5] *= -1
    yt = np.sign(xt[:, 0] + 0.1)
    cls = np.argmax(x[:, :3], 1)
    Y_clean = np.eye(3)[cls]
    Y = Y_clean.copy()
    Y[:4] = np.eye(3)[(cls[:4] + 1) % 3]
    Yt = np.eye(3)[np.argmax(xt[:, :3], 1)]
    eta = 1.0 / np.linalg.eigvalsh(H)[-1]
    return dict(H=H, Kt=Kt, y=y, y_clean=y_clean, yt=yt, Y=Y, Y_clean=Y_clean, Yt=Yt, eta=eta)


def _labels(pr, labels):
    if labels == "binary":
        return pr["y"], pr["y_clean"], pr["yt"]
    return pr["Y"], pr["Y_clean"], pr["Yt"]


def _lp(pr, y, yc, yt=None, *, u0=None, test=True):
    """The LinearProblem of the fixture (test points unless test=False)."""
    f0 = None if u0 is None or not test else np.zeros_like(yt)
    return linear_problem(
        eigensystem(pr["H"]),
        y,
        yc,
        u0=u0,
        k_test_train=pr["Kt"] if test else None,
        f0_test=f0,
        y_test_clean=yt if test else None,
        kernel=pr["H"],
    )


def _hard(u):
    if u.ndim == 1:
        return np.sign(u)
    return np.eye(u.shape[1])[np.argmax(u, 1)]


def _acc(u, y):
    if u.ndim == 1:
        return np.mean(np.sign(u) == np.sign(y))
    return np.mean(np.argmax(u, 1) == np.argmax(y, 1))


def reference(
    H,
    Kt,
    y,
    eta,
    steps,
    *,
    kind,
    alpha=0.0,
    lag=False,
    hard=False,
    schedule="constant",
    ramp=0,
    u0=None,
):
    """docs/science/distillation.md written out per rule, stepped in numpy: (u path, f_test)."""

    def alpha_at(k, q):
        if schedule == "increasing":
            return alpha * min(1.0, k / ramp)
        if schedule == "adaptive":
            return alpha * _acc(q, y)
        return alpha

    def p(q):
        return _hard(q) if hard else q

    u = np.zeros_like(y) if u0 is None else u0.copy()
    f = np.zeros((Kt.shape[0],) + y.shape[1:])
    if kind == "r1":  # ỹ(k) = (1 − α_k) y + α_k p(k)
        a0 = alpha_at(0, u)
        t = (1 - a0) * y + a0 * p(u)
    else:  # R3: ỹ(0) = y
        t = y.copy()
    path = [u]
    for k in range(steps):
        r = u - t
        f = f - eta * Kt @ r
        u_new = u - eta * H @ r
        q = u if lag else u_new
        a = alpha_at(k + 1, q)
        t = (1 - a) * y + a * p(q) if kind == "r1" else a * t + (1 - a) * p(q)
        u = u_new
        path.append(u)
    return np.array(path), f


STEP_RULES = {
    "plain": (T.plain_gd(), dict(kind="r1", alpha=0.0)),
    "r1": (T.r1(0.6), dict(kind="r1", alpha=0.6)),
    "r1-lag": (T.r1_lag(0.7), dict(kind="r1", alpha=0.7, lag=True)),
    "r3": (T.r3(0.8, hard=False), dict(kind="r3", alpha=0.8)),
    "r3-lag": (T.r3(0.5, hard=False, lag=True), dict(kind="r3", alpha=0.5, lag=True)),
    "bootstrap": (T.bootstrap(0.3), dict(kind="r1", alpha=0.7)),
}


@pytest.mark.parametrize("name", list(STEP_RULES))
@pytest.mark.parametrize("labels", ["binary", "classes"])
def test_soft_closed_form_equals_stepped_recursion(problem, name, labels):
    rule, ref_kw = STEP_RULES[name]
    pr = problem
    y, yc, yt = _labels(pr, labels)
    steps = 37
    path, f = reference(pr["H"], pr["Kt"], y, pr["eta"], steps, **ref_kw)
    lp = _lp(pr, y, yc, yt)
    for engine in (D.ClosedForm(), D.EigenScan(), D.DenseScan()):
        run = D.self_distill(
            lp, rule, steps=steps, engine=engine, record=Record(every=5, predictions=True)
        )
        rec = np.asarray(run.steps)
        assert list(rec) == [0, 5, 10, 15, 20, 25, 30, 35, 37]
        np.testing.assert_allclose(
            np.asarray(run.u_path), path[rec], atol=1e-10, err_msg=engine.name
        )
        np.testing.assert_allclose(np.asarray(run.f_test_final), f, atol=1e-10, err_msg=engine.name)
        dist = np.linalg.norm((path[rec] - yc).reshape(len(rec), -1), axis=1)
        np.testing.assert_allclose(np.asarray(run.dist_train), dist, atol=1e-10)
        np.testing.assert_allclose(float(run.dist_test[-1]), np.linalg.norm(f - yt), atol=1e-10)


def test_r1_soft_is_gd_with_step_eta_one_minus_alpha(problem):
    pr, alpha, steps = problem, 0.75, 60
    run = D.self_distill(
        _lp(pr, pr["y"], pr["y_clean"], pr["yt"]),
        T.r1(alpha),
        steps=steps,
        record=Record(predictions=True),
    )
    u, f = np.zeros(24), np.zeros(7)
    step = pr["eta"] * (1 - alpha)
    for k in range(steps):
        np.testing.assert_allclose(np.asarray(run.u_path[k]), u, atol=1e-10)
        f = f - step * pr["Kt"] @ (u - pr["y"])
        u = u - step * pr["H"] @ (u - pr["y"])
    np.testing.assert_allclose(np.asarray(run.u_final), u, atol=1e-10)
    np.testing.assert_allclose(np.asarray(run.f_test_final), f, atol=1e-10)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.9])
def test_r3_soft_converges_to_filtered_labels(problem, alpha):
    pr = problem
    H, y, eta = pr["H"], pr["y"], pr["eta"]
    # Per mode the transient decays like (α(1 − ηλ))^k ≤ α^k: 400 steps suffice for α ≤ 0.9.
    lp = _lp(pr, y, pr["y_clean"], test=False)
    run = D.self_distill(lp, T.r3(alpha, hard=False), steps=400, record=Record(every=400))
    expected = eta * H @ np.linalg.solve((1 - alpha) * np.eye(24) + alpha * eta * H, y)
    np.testing.assert_allclose(np.asarray(run.u_final), expected, atol=1e-9)
    eig = eigensystem(H)
    g = T.r3_soft_limit_filter(eig.eigenvalues, alpha, eta)
    np.testing.assert_allclose(np.asarray(apply_spectral_filter(eig, g, y)), expected, atol=1e-10)


def test_r3_filter_tends_to_kernel_ridge(x64):
    lam, gamma = np.array([3.0, 1.0, 0.1, 1e-3]), 0.05
    ridge = lam / (lam + gamma)
    errs = []
    for eta in (1e-2, 1e-3, 1e-4):
        g = np.asarray(T.r3_soft_limit_filter(lam, 1.0 - gamma * eta, eta))
        errs.append(np.abs(g - ridge).max())
    assert errs[0] > 5 * errs[1] > 25 * errs[2], errs


HARD_RULES = {
    "r2": (T.r2(), dict(kind="r1", alpha=1.0, hard=True, schedule="adaptive")),
    "r3-hard": (T.r3(0.9), dict(kind="r3", alpha=0.9, hard=True)),
    "r1-lag-hard": (T.r1_lag(0.5, hard=True), dict(kind="r1", alpha=0.5, hard=True, lag=True)),
    "r1-increasing": (
        T.r1(0.8, hard=True, schedule="increasing", ramp=10),
        dict(kind="r1", alpha=0.8, hard=True, schedule="increasing", ramp=10),
    ),
    "r3-soft-increasing": (
        T.r3(0.9, hard=False, schedule="increasing", ramp=7),
        dict(kind="r3", alpha=0.9, schedule="increasing", ramp=7),
    ),
    "bootstrap-hard": (T.bootstrap(0.4, hard=True), dict(kind="r1", alpha=0.6, hard=True)),
}


@pytest.mark.parametrize("name", list(HARD_RULES))
@pytest.mark.parametrize("labels", ["binary", "classes"])
def test_stepped_rules_match_reference(problem, name, labels):
    rule, ref_kw = HARD_RULES[name]
    pr = problem
    y, yc, yt = _labels(pr, labels)
    u0 = 0.3 * np.cos(np.arange(y.size)).reshape(y.shape)  # nonzero start: signs defined at k = 0
    path, f = reference(pr["H"], pr["Kt"], y, pr["eta"], 40, u0=u0, **ref_kw)
    lp = _lp(pr, y, yc, yt, u0=u0)
    run = D.self_distill(lp, rule, steps=40, record=Record(every=8, predictions=True))
    np.testing.assert_allclose(np.asarray(run.u_path), path[::8], atol=1e-10)
    np.testing.assert_allclose(np.asarray(run.f_test_final), f, atol=1e-10)
    u = path[-1]
    assert float(run.accuracy_train) == pytest.approx(_acc(u, yc))
    assert float(run.accuracy_test) == pytest.approx(_acc(f, yt))
    if labels == "binary":
        assert float(run.margin_train) == pytest.approx(np.min(yc * u), abs=1e-12)
    else:
        true = np.argmax(yc, 1)
        other = np.where(yc > 0, -np.inf, u).max(1)
        assert float(run.margin_train) == pytest.approx(
            np.min(u[np.arange(len(u)), true] - other), abs=1e-12
        )


MIXED = [
    T.plain_gd(),
    T.r1(0.5),
    T.r3(0.9),
    T.r2(),
    T.r1_lag(0.3, hard=True),
    T.r3(0.7, hard=False, schedule="increasing", ramp=5),
    T.r3(0.6, hard=False),
]


def test_mixed_grid_equals_single_runs_and_keeps_soft_rules_on_the_closed_form(problem):
    """A grid mixing soft and hard rules runs each rule on its fastest engine, in order."""
    pr = problem
    lp = _lp(pr, pr["y"], pr["y_clean"], pr["yt"])
    assert [D.engine_for(r).name for r in MIXED] == [
        "closed-form",
        "closed-form",
        "scan",
        "scan",
        "scan",
        "eigen-scan",
        "closed-form",
    ]
    grid = D.self_distill(lp, MIXED, steps=30, record=Record(every=4))
    assert grid.dist_train.shape == (len(MIXED), 9)
    for i, rule in enumerate(MIXED):
        one = D.self_distill(lp, rule, steps=30, record=Record(every=4), engine=D.DenseScan())
        for field in (
            "dist_train",
            "dist_test",
            "u_final",
            "f_test_final",
            "margin_train",
            "accuracy_train",
            "accuracy_test",
        ):
            np.testing.assert_allclose(
                np.asarray(getattr(grid, field)[i]),
                np.asarray(getattr(one, field)),
                atol=1e-10,
                err_msg=f"{field} of rule {i}",
            )


def test_a_rule_of_your_own_runs_on_the_dense_scan(problem):
    """A TargetRule of two pure functions (a few lines) runs unchanged, against numpy."""

    def tanh_mix(beta):
        def init(u0, y):
            return ()

        def update(u, y, state, k):
            return (1 - beta) * y + beta * jnp.tanh(3 * u), state

        return T.TargetRule(init, update)

    pr = problem
    H, y, eta = pr["H"], pr["y"], pr["eta"]
    run = D.self_distill(_lp(pr, y, pr["y_clean"], test=False), tanh_mix(0.4), steps=25)
    u = np.zeros(24)
    for _ in range(25):
        u = u - eta * H @ (u - (0.6 * y + 0.4 * np.tanh(3 * u)))
    np.testing.assert_allclose(np.asarray(run.u_final), u, atol=1e-10)
    with pytest.raises(ValueError, match="closed-form"):
        D.self_distill(
            _lp(pr, y, pr["y_clean"], test=False), tanh_mix(0.4), steps=2, engine="closed-form"
        )


def test_an_observable_of_your_own_is_recorded(problem):
    """Record.fn sees every recorded step; here the training accuracy against ŷ and ‖ỹ‖."""
    pr = problem
    yc = jnp.asarray(pr["y_clean"])[:, None]
    record = Record(every=5, fn=lambda s: (T.accuracy(s.u, yc), jnp.linalg.norm(s.target)))
    lp = _lp(pr, pr["y"], pr["y_clean"], pr["yt"])
    for rule, engine in ((T.r3(0.8, hard=False), "closed-form"), (T.r3(0.8), "scan")):
        run = D.self_distill(lp, rule, steps=20, record=record, engine=engine)
        ref = D.self_distill(
            lp, rule, steps=20, record=Record(every=5, predictions=True), engine="scan"
        )
        acc, tnorm = run.observed
        u_path = np.asarray(ref.u_path)
        np.testing.assert_allclose(
            np.asarray(acc), [np.mean(np.sign(u) == pr["y_clean"]) for u in u_path]
        )
        assert np.asarray(tnorm).shape == (5,) and float(tnorm[0]) == pytest.approx(
            np.linalg.norm(pr["y"])
        )


def test_rule_values_are_data_but_structure_compiles_anew(problem, compile_counter):
    """A rule of the same structure (hard, schedule) reuses the compiled program; another
    structure compiles once (the positive control that the counter sees compilations)."""
    pr = problem
    lp = _lp(pr, pr["y"], pr["y_clean"], test=False)
    kw = dict(steps=12, record=Record(every=3))
    D.self_distill(lp, T.r3(0.9), **kw)
    with compile_counter() as same:
        D.self_distill(lp, T.r3(0.5), **kw)
        D.self_distill(lp, T.r3(0.7, lag=True), **kw)
    assert same.count == 0
    with compile_counter() as other:
        D.self_distill(lp, T.r2(), **kw)
    assert other.count >= 1


def test_hard_r3_beats_best_early_stop_on_tight_clusters(x64):
    ds = data.clusters(
        n_clusters=4,
        n_per_cluster=20,
        dim=10,
        eps0=0.1,
        noise_rate=0.25,
        seed=5,
        n_test_per_cluster=5,
    )
    H = two_layer_relu(ds.x)
    eig = eigensystem(H)
    lp = linear_problem(eig, ds.y, ds.y_clean)
    steps = 3000
    run = D.self_distill(lp, T.r3(0.9, hard=True), steps=steps, record=Record(every=100))
    best = float(u_curve(lp, steps=np.arange(steps + 1)).best_dist)
    noise = np.linalg.norm(ds.y - ds.y_clean)
    assert best < noise
    assert float(run.dist_train[-1]) < 0.01 * best
    assert float(run.margin_train) > 0.99
    assert float(run.accuracy_train) == 1.0


def _ridge_student(H, c, z):
    return H @ np.linalg.solve(H + c * np.eye(len(H)), z)


def test_ridge_rounds_are_repeated_ridge_smoothing(problem):
    pr, c, steps = problem, 0.05, 6
    H = pr["H"]
    lp = _lp(pr, pr["y"], pr["y_clean"], pr["yt"])
    run = R.distill_rounds(lp, R.ridge_rounds(c), rounds=steps)
    targets = [pr["y"]]
    for _ in range(steps):
        targets.append(_ridge_student(H, c, targets[-1]))
    u = _ridge_student(H, c, targets[steps])  # student of the last round trained on its target
    np.testing.assert_allclose(np.asarray(run.u_final), u, atol=1e-10)
    dists = [np.linalg.norm(_ridge_student(H, c, t) - pr["y_clean"]) for t in targets]
    np.testing.assert_allclose(np.asarray(run.dist_train), dists, atol=1e-10)
    f = pr["Kt"] @ np.linalg.solve(H + c * np.eye(24), targets[steps])
    np.testing.assert_allclose(np.asarray(run.f_test_final), f, atol=1e-10)


@pytest.mark.parametrize("xi", [0.5, 1.7])
@pytest.mark.parametrize("hard", [False, True])
@pytest.mark.parametrize("student", ["ridge", "gd"])
def test_xi_weighted_rounds_match_reference(problem, xi, hard, student):
    pr, rounds = problem, 5
    H, y, eta = pr["H"], pr["y"], pr["eta"]
    if student == "ridge":
        rule = R.xi_distill(xi, ridge=0.1, hard=hard)

        def train_student(z):
            a = np.linalg.solve(H + 0.1 * np.eye(24), z)
            return H @ a, pr["Kt"] @ a
    else:
        rule = R.xi_distill(xi, student_steps=25, hard=hard)

        def train_student(z):
            u, f = np.zeros(24), np.zeros(7)
            for _ in range(25):
                f = f - eta * pr["Kt"] @ (u - z)
                u = u - eta * H @ (u - z)
            return u, f

    target, dists = y, []
    for _ in range(rounds + 1):
        u, f = train_student(target)
        dists.append(np.linalg.norm(u - pr["y_clean"]))
        target = (1 - xi) * y + xi * (np.sign(u) if hard else u)
    lp = _lp(pr, y, pr["y_clean"], pr["yt"])
    divergent = xi > 1 and not hard  # ξF(λ_max) > 1 here: refused unless asked for
    if divergent:
        with pytest.raises(ValueError, match="diverge"):
            R.distill_rounds(lp, rule, rounds=rounds)
    run = R.distill_rounds(lp, rule, rounds=rounds, check_convergence=not divergent)
    np.testing.assert_allclose(np.asarray(run.dist_train), dists, atol=1e-9)
    np.testing.assert_allclose(np.asarray(run.u_final), u, atol=1e-9)
    np.testing.assert_allclose(np.asarray(run.f_test_final), f, atol=1e-9)
    if not hard:  # closed form per mode = stepping the rounds
        stepped = R.distill_rounds(
            lp, rule, rounds=rounds, engine="scan", check_convergence=not divergent
        )
        np.testing.assert_allclose(np.asarray(stepped.dist_train), dists, atol=1e-9)


def test_born_again_rounds_grid(problem):
    pr = problem
    rules = [R.born_again(10), R.ridge_rounds(0.2), R.xi_distill(0.7, ridge=0.2)]
    lp = _lp(pr, pr["Y"], pr["Y_clean"], test=False)
    grid = R.distill_rounds(lp, R.stack_rounds(rules), rounds=3)
    for i, r in enumerate(rules):
        one = R.distill_rounds(lp, r, rounds=3)
        np.testing.assert_allclose(
            np.asarray(grid.dist_train[i]), np.asarray(one.dist_train), atol=1e-12
        )
        np.testing.assert_allclose(np.asarray(grid.u_final[i]), np.asarray(one.u_final), atol=1e-12)


def test_clear_errors(problem):
    pr = problem
    y, yc = pr["y"], pr["y_clean"]
    lp = _lp(pr, y, yc, test=False)
    with pytest.raises(ValueError, match="diverges"):
        D.self_distill(lp, T.r1(0.5), steps=3, eta=2.5 * pr["eta"])
    with pytest.raises(ValueError, match="soft, non-adaptive"):
        D.self_distill(lp, T.r3(0.9, hard=True), steps=3, engine="closed-form")
    with pytest.raises(ValueError, match="constant"):
        D.self_distill(lp, T.r1(0.5, schedule="increasing", ramp=3), steps=3, engine="closed-form")
    with pytest.raises(ValueError, match="engine must be one of"):
        D.self_distill(lp, T.r1(0.5), steps=3, engine="fastest")
    with pytest.raises(ValueError, match="±1"):  # real ground truth is regression, not classes
        linear_problem(eigensystem(pr["H"]), y, 0.5 * yc, task="classification")
    with pytest.raises(ValueError, match="need class labels"):  # hard targets on regression
        D.self_distill(_lp(pr, y, 0.5 * yc, test=False), T.r3(0.9), steps=3)
    with pytest.raises(ValueError, match="shape"):
        _lp(pr, y[:-1], yc[:-1], test=False)
    with pytest.raises(ValueError, match="ramp"):
        T.r1(0.5, schedule="increasing")
    with pytest.raises(ValueError, match="schedule"):
        T.r1(0.5, schedule="cosine")
    with pytest.raises(ValueError, match="alpha must be finite"):
        T.r3(float("nan"))
    with pytest.raises(ValueError, match="different rule types"):
        T.stack_rules([T.r1(0.5), R.ridge_rounds(0.1)])
    with pytest.raises(ValueError, match="ridge > 0"):
        R.xi_distill(1.5)
    with pytest.raises(ValueError, match="k_test_train"):
        linear_problem(eigensystem(pr["H"]), y, yc, y_test_clean=pr["yt"])
    with pytest.raises(ValueError, match="steps must be an integer ≥ 0"):
        D.self_distill(lp, T.r1(0.5), steps=-1)
    with pytest.raises(ValueError, match="rounds must be an integer ≥ 0"):
        R.distill_rounds(lp, R.ridge_rounds(0.1), rounds=-1)
    with pytest.raises(TypeError, match="RoundsRule"):
        R.distill_rounds(lp, T.r1(0.5), rounds=2)
    f0 = np.zeros(7)
    f0[2] = np.nan
    with pytest.raises(ValueError, match="f0_test"):
        linear_problem(
            eigensystem(pr["H"]), y, yc, k_test_train=pr["Kt"], y_test_clean=pr["yt"], f0_test=f0
        )
    with pytest.raises(ValueError, match=r"f0_test must have shape \(7,\)"):
        linear_problem(
            eigensystem(pr["H"]),
            y,
            yc,
            k_test_train=pr["Kt"],
            y_test_clean=pr["yt"],
            f0_test=np.zeros(6),
        )
    with pytest.raises(ValueError, match="f0_test was not"):
        linear_problem(eigensystem(pr["H"]), y, yc, u0=0.1 * y, k_test_train=pr["Kt"])


def test_only_the_problem_form_is_accepted(problem):
    """The kernel-first form and the names that moved to targets/rounds are gone (0.3)."""
    pr = problem
    with pytest.raises(TypeError, match="needs a LinearProblem"):
        D.self_distill(pr["H"], T.r3(0.9), steps=20)
    with pytest.raises(TypeError, match="needs a LinearProblem"):
        R.distill_rounds(pr["H"], R.ridge_rounds(0.1), rounds=2)
    from ntk_air.distillation import _engines

    # the engines' module no longer re-exports the rule constructors or the rounds (0.3)
    assert not hasattr(_engines, "r3") and not hasattr(_engines, "distill_rounds")


def test_float32_kernel_stays_float32(problem):
    """No silent upcast: a float32 kernel gives a float32 problem and float32 runs."""
    pr = problem
    H32 = jnp.asarray(pr["H"], jnp.float32)
    lp = linear_problem(eigensystem(H32), pr["y"], pr["y_clean"], kernel=H32)
    assert lp.dtype == jnp.float32
    run = D.self_distill(lp, [T.r3(0.9), T.r1(0.5)], steps=10)
    assert run.u_final.dtype == jnp.float32 and run.dist_train.dtype == jnp.float32


@pytest.mark.parametrize("make", [lambda: T.r1(1.5), lambda: T.r3(-0.1), lambda: T.r2(2.0)])
def test_rule_weights_outside_the_unit_interval_are_refused(make):
    """α ∉ [0, 1] extrapolates: soft R1 with α = 5 is GD with step −4η (results of 1e136)."""
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        make()
    with pytest.raises(ValueError, match="beta must lie"):
        T.bootstrap(-1.0)
    assert float(T.bootstrap(0.0).alpha) == 1.0 and float(T.r1(1).alpha) == 1.0  # edges are fine


def test_xi_and_ridge_ranges_and_divergent_soft_rounds(problem):
    """ξ ≥ 0 and a finite ridge; soft rounds with ξ·F(λ_max) > 1 grow like (ξF)^t: refused with
    the bound, which itself runs (contracting) and a hard rule (bounded targets) runs past it."""
    with pytest.raises(ValueError, match="xi must be finite and ≥ 0"):
        R.xi_distill(-2.0, ridge=0.1)
    with pytest.raises(ValueError, match="ridge must be finite"):
        R.xi_distill(0.5, ridge=float("inf"))
    lp = _lp(problem, problem["y"], problem["y_clean"], problem["yt"])
    lam_max = float(np.linalg.eigvalsh(problem["H"])[-1])
    c = 0.1
    bound = (lam_max + c) / lam_max
    with pytest.raises(ValueError, match=f"choose ξ < {bound:.4g}"):
        R.distill_rounds(lp, R.xi_distill(1.5 * bound, ridge=c), rounds=3)
    ok = R.distill_rounds(lp, R.xi_distill(0.99 * bound, ridge=c), rounds=3)
    assert np.all(np.isfinite(np.asarray(ok.dist_train)))
    hard = R.distill_rounds(lp, R.xi_distill(1.5 * bound, ridge=c, hard=True), rounds=3)
    assert np.all(np.isfinite(np.asarray(hard.dist_train)))


def test_rule_labels():
    assert T.rule_label(T.plain_gd()) == "plain GD"
    assert T.rule_label(T.r3(0.9)) == "R3 hard α=0.9"
    assert T.rule_label(T.r2()) == "R2"
    assert T.rule_label(T.r1_lag(0.5)) == "R1-lag soft α=0.5"
    assert R.rounds_label(R.ridge_rounds(0.1)) == "ridge rounds c=0.1"
    assert R.rounds_label(R.xi_distill(1.5, ridge=0.1, hard=True)) == "ξ=1.5 ridge c=0.1 hard"


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_cli_distill_json_and_predictions_match_numpy(tmp_path, x64, capsys):
    import json

    from ntk_air import cli

    rng = np.random.default_rng(4)
    x, xt = _unit_rows(rng, 30, 4), _unit_rows(rng, 6, 4)
    y_clean = np.sign(x[:, 1] + 0.01)
    y = y_clean.copy()
    y[::6] *= -1
    np.savez(tmp_path / "data.npz", x=x, y=y, y_clean=y_clean, x_test=xt, y_test=np.sign(xt[:, 1]))
    out, pred = tmp_path / "out", tmp_path / "pred.npz"
    code = cli.main(
        [
            "distill",
            str(tmp_path / "data.npz"),
            "--rule",
            "r1",
            "r3",
            "--alpha",
            "0.5",
            "--soft",
            "--steps",
            "40",
            "--record-every",
            "1",
            "--out",
            str(out),
            "--save-predictions",
            str(pred),
            "--no-progress",
        ]
    )
    assert code == 0
    assert "plain GD" in capsys.readouterr().out
    rep = json.loads((out / "distill.json").read_text())
    for key in (
        "eta",
        "lambda_max",
        "steps",
        "noise_norm",
        "plain_gd",
        "runs",
        "figures",
        "best_rule",
    ):
        assert key in rep
    for fig in rep["figures"]:
        assert (out / fig).stat().st_size > 0
    labels = [r["label"] for r in rep["runs"]]
    assert labels == ["plain GD", "R1 soft α=0.5", "R3 soft α=0.5"]

    H = h_inf_numpy(x, x)
    eta = 1.0 / np.linalg.eigvalsh(H)[-1]
    # numpy's arccos loses ~√eps on near-parallel pairs (the library uses arctan2): rel 1e-8.
    assert rep["eta"] == pytest.approx(eta, rel=1e-8)
    u, dists = np.zeros(30), [np.linalg.norm(y_clean)]
    for _ in range(40):  # R1 soft, α = 0.5 = GD with step η/2
        u = u - 0.5 * eta * H @ (u - y)
        dists.append(np.linalg.norm(u - y_clean))
    r1 = rep["runs"][1]
    assert r1["final_dist"] == pytest.approx(dists[-1], rel=1e-8)
    np.testing.assert_allclose(r1["dist_train"], dists, rtol=1e-8)
    with np.load(pred) as f:
        assert list(f["labels"]) == labels
        np.testing.assert_allclose(f["u"][1], u, atol=1e-8)
    v, best = np.zeros(30), np.inf
    for _ in range(41):
        best = min(best, np.linalg.norm(v - y_clean))
        v = v - eta * H @ (v - y)
    assert rep["plain_gd"]["best_early_stop_dist"] == pytest.approx(best, rel=1e-8)


def test_cli_distill_runs_each_rule_on_its_engine_in_rule_order(tmp_path, x64, capsys):
    from ntk_air import cli

    rng = np.random.default_rng(5)
    x = _unit_rows(rng, 20, 4)
    y_clean = np.sign(x[:, 0] + 0.01)
    y = y_clean.copy()
    y[::5] *= -1
    np.savez(tmp_path / "data.npz", x=x, y=y, y_clean=y_clean)
    out = tmp_path / "out"
    argv = ["distill", str(tmp_path / "data.npz"), "--rule", "r3", "--schedule", "increasing"]
    argv += ["--ramp", "6", "--steps", "25", "--record-every", "1", "--rounds", "0"]
    assert cli.main([*argv, "--out", str(out), "--no-progress"]) == 0
    import json

    runs = json.loads((out / "distill.json").read_text())["runs"]
    assert [r["label"] for r in runs] == [
        "plain GD",
        "R3 soft α=0.9 ramp 6",
        "R3 hard α=0.9 ramp 6",
    ]
    assert [r["engine"] for r in runs] == ["closed-form", "eigen-scan", "scan"]
    H = h_inf_numpy(x, x)
    eta = 1.0 / np.linalg.eigvalsh(H)[-1]
    for run, hard in zip(runs[1:], (False, True), strict=True):
        kw = dict(kind="r3", alpha=0.9, hard=hard, schedule="increasing", ramp=6)
        path, _ = reference(H, np.zeros((0, 20)), y, eta, 25, **kw)
        dist = np.linalg.norm(path - y_clean, axis=1)
        np.testing.assert_allclose(run["dist_train"], dist, rtol=1e-8, atol=1e-10)


def test_cli_distill_rejects_bad_steps(tmp_path, x64, capsys):
    from ntk_air import cli

    code = cli.main(["distill", "--steps", "0", "--out", str(tmp_path), "--no-progress"])
    assert code == 2
    assert "--steps" in capsys.readouterr().err


def test_step_zero_test_distance_of_a_large_closed_form_group(x64):
    """Five soft rules, 1000 test points: the step-0 test distance is ‖f_0 − ŷ_test‖ = ‖ŷ_test‖
    (jaxlib 0.10.2 on CPU returned NaN/inf there when S(0) was a zeros constant)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 20))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    xt = rng.standard_normal((1000, 20))
    xt /= np.linalg.norm(xt, axis=1, keepdims=True)
    y, yt = np.sign(x[:, 0]) + (x[:, 0] == 0), np.sign(xt[:, 0]) + (xt[:, 0] == 0)
    eig = eigensystem(two_layer_relu(x, x))
    problem = linear_problem(eig, y, y, k_test_train=two_layer_relu(xt, x), y_test_clean=yt)
    rules = [T.plain_gd(), T.r1(0.5), T.r1_lag(0.5), T.r3(0.9, hard=False), T.bootstrap(0.8)]
    run = D.self_distill(
        problem, rules, steps=20, eta=1 / float(eig.eigenvalues[0]), record=Record(4)
    )
    assert all(D.engine_for(r).name == "closed-form" for r in rules)
    np.testing.assert_allclose(np.asarray(run.dist_test)[:, 0], np.sqrt(1000.0), rtol=1e-12)
    assert np.all(np.isfinite(np.asarray(run.dist_test)))
