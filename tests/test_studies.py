"""The study layer: pure functions (no files, no output) whose results equal the science layer's
direct computations, with progress injected; a kernel of one's own plugs into a study."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from conftest import h_inf_numpy
from ntk_air import data, kernels, studies
from ntk_air import distillation as targets
from ntk_air import kernels as layers
from ntk_air.dynamics import u_curve
from ntk_air.spectral import eigensystem, linear_problem


@pytest.fixture
def small(x64):
    ds = data.clusters(n_clusters=3, n_per_cluster=12, dim=6, n_test_per_cluster=4, seed=2)
    return ds, kernels.two_layer_relu_kernel_fn()


def test_air_study_equals_the_direct_computation(small, tmp_path, monkeypatch):
    ds, kernel_fn = small
    monkeypatch.chdir(tmp_path)
    stages = []
    study = studies.air(
        ds,
        kernel_fn,
        studies.AIRConfig(steps=1000, num_steps=30),
        progress=lambda *a: stages.append(a),
    )
    assert list(tmp_path.iterdir()) == []  # no files
    assert [s[1:] for s in stages] == [(1, 3), (2, 3), (3, 3)]
    H = h_inf_numpy(ds.x, ds.x)
    lam, V = np.linalg.eigh(H)
    # Entries of near-parallel pairs are determined only to ~√eps by their Gram entry (arccos is
    # ill-conditioned at 1; the clusters are tight), so two implementations agree to ~1e-7.
    np.testing.assert_allclose(np.asarray(study.eigenvalues), lam[::-1], rtol=1e-6, atol=1e-9)
    assert study.eta == pytest.approx(1 / lam[-1], rel=1e-6)
    energy = (V.T @ ds.y_clean) ** 2 / np.sum(ds.y_clean**2)
    np.testing.assert_allclose(
        np.sort(np.asarray(study.spectra.clean.energy)), np.sort(energy), atol=1e-10
    )
    u = np.zeros(len(ds.y))
    dists = {}
    for k in range(1001):
        dists[k] = np.linalg.norm(u - ds.y_clean)
        u = u - study.eta * H @ (u - ds.y)
    np.testing.assert_allclose(
        np.asarray(study.curve.train_dist), [dists[int(k)] for k in study.steps], rtol=1e-6
    )


def test_distill_study_runs_rules_of_your_own_beside_the_named_ones(small):
    ds, kernel_fn = small

    def half_hard(alpha):
        def init(u0, y):
            return ()

        def update(u, y, state, k):
            return (1 - alpha) * y + alpha * jnp.sign(u), state

        return targets.TargetRule(init, update)

    config = studies.DistillConfig(
        rules=("r1",),
        hard=True,
        soft=False,
        alphas=(0.5,),
        steps=200,
        record_every=10,
        extra_rules=(("mine", half_hard(0.5)),),
    )
    study = studies.distill(ds, kernel_fn, config)
    labels = [r.label for r in study.runs]
    assert labels == ["plain GD", "R1 hard α=0.5", "mine"]
    # R1 hard with α = 0.5 is the same rule written the other way (u(0) = 0: sign 0 at k = 0).
    a, b = study.runs[1], study.runs[2]
    np.testing.assert_allclose(a.dist_train, b.dist_train, atol=1e-10)
    assert [r.engine for r in study.runs] == ["closed-form", "scan", "scan"]
    eig = eigensystem(h_inf_numpy(ds.x, ds.x))
    best = u_curve(linear_problem(eig, ds.y, ds.y_clean), steps=np.arange(201)).best_dist
    assert float(study.plain_gd.best_dist) == pytest.approx(float(best), rel=1e-6)


def test_a_kernel_of_your_own_plugs_into_a_study(small):
    """A pairwise function (an RBF) and a composition of layers: a few lines each."""
    ds, _ = small

    def rbf(a, b):
        return jnp.exp(-jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1))

    study = studies.air(ds, kernels.from_pairwise(rbf, tile_size=7))
    d2 = ((ds.x[:, None] - ds.x[None]) ** 2).sum(-1)
    np.testing.assert_allclose(
        np.asarray(study.eigenvalues), np.linalg.eigvalsh(np.exp(-d2))[::-1], rtol=1e-9, atol=1e-12
    )
    net = layers.serial(layers.dense(1.5, 0.1), layers.erf(), layers.dense(1.5, 0.1))
    from_layers = studies.air(ds, kernels.from_layers(net))
    fc = studies.air(ds, kernels.fc_kernel_fn(1, "erf", 1.5, 0.1))
    np.testing.assert_allclose(
        np.asarray(from_layers.eigenvalues), np.asarray(fc.eigenvalues), rtol=1e-12
    )


def test_theorem_study_is_a_pytree_of_results(x64):
    study = studies.theorem(
        studies.TheoremConfig(widths=(16,), steps=20, record_every=5, harder=False)
    )
    assert study.check.networks[0].width == 16
    assert set(study.claims["self_distill_below_best_early_stop"]) == {"inf", "16"}
    assert study.harder is None
    assert study.noise_norm == pytest.approx(
        np.linalg.norm(data.clusters(seed=1).y - data.clusters(seed=1).y_clean)
    )


def test_one_system_serves_several_studies(small):
    ds, kernel_fn = small
    system = studies.kernel_system(ds, kernel_fn)
    k = studies.kernel(ds, kernel_fn, system=system)
    a = studies.air(ds, kernel_fn, system=system)
    assert k.eigenvalues is a.eigenvalues is system.eig.eigenvalues
    assert k.lambda_max / k.lambda_min == pytest.approx(k.condition_number)
