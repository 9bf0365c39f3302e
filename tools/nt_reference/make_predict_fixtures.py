"""Write neural-tangents 0.6.5 `nt.predict` reference values to tests/fixtures/predict_nt.npz.

Run with the pinned side environment's python (built by build_env.sh):

    .nt-env/bin/python tools/nt_reference/make_predict_fixtures.py [--out PATH]

Random float64 data (fixed keys): 12 train and 5 test points in 3 dimensions, targets (12, 2);
the kernels of stax.serial(Dense(512, 1.5, 0.1), Relu, Dense(512, 1.5, 0.1), Relu,
Dense(1, 1.5, 0.1)) are stored too, so tests/test_predict.py feeds ntk_air exactly the same
kernels. Keys (every array float64):

* x_train (12, 3), x_test (5, 3), y_train (12, 2), fx_train_0 (12, 2), fx_test_0 (5, 2), t (4,);
  {nngp,ntk}_{dd,td,tt}: the kernels (train-train, test-train, test-test).
* gd_mse/{reg}/{train,test}: predict.gradient_descent_mse(ntk_dd, y, learning_rate=0.7, **reg)
  at t (4,) and at t=None ("inf"), from fx_train_0, fx_test_0.
* ens/{reg}/{get}/{train,test}/{t,inf}/{mean,cov}: gradient_descent_mse_ensemble(kernel_fn,
  x_train, y_train, learning_rate=0.7, **reg)(t, x_test or None, get, compute_cov=True).
* gp/{reg}/{nngp,ntk,ntkgp}/{mean,cov}: gp_inference(k_dd, y, **reg)(get, k_td, k_tt).
* max_lr/{momentum}/{size}: max_learning_rate(ntk_dd, y_train_size, momentum).
* gd_ce/{none,0.9}/{train,test}: gradient_descent(softmax cross-entropy, ntk_dd, y_onehot,
  learning_rate=0.7, momentum) at t, from fx_train_0, fx_test_0; y_onehot (12, 2).

reg names: "r0" (diag_reg=0), "rel" (diag_reg=1e-2, relative), "abs" (diag_reg=0.1, absolute).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nt_import import import_neural_tangents  # noqa: E402

nt = import_neural_tangents(enable_x64=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from neural_tangents import stax  # noqa: E402

REGS = {"r0": (0.0, False), "rel": (1e-2, False), "abs": (0.1, True)}
LR = 0.7


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/predict_nt.npz")
    out_path = ap.parse_args().out
    k1, k2, k3, k4, k5 = jax.random.split(jax.random.PRNGKey(2020), 5)
    n, m, d, c = 12, 5, 3, 2
    x = jax.random.normal(k1, (n, d), jnp.float64)
    xt = jax.random.normal(k2, (m, d), jnp.float64)
    y = jax.random.normal(k3, (n, c), jnp.float64)
    f0 = 0.3 * jax.random.normal(k4, (n, c), jnp.float64)
    g0 = 0.3 * jax.random.normal(k5, (m, c), jnp.float64)
    t = jnp.array([0.0, 0.5, 7.0, 300.0])
    _, _, kernel_fn = stax.serial(
        stax.Dense(512, 1.5, 0.1),
        stax.Relu(),
        stax.Dense(512, 1.5, 0.1),
        stax.Relu(),
        stax.Dense(1, 1.5, 0.1),
    )
    kdd = kernel_fn(x, None, ("nngp", "ntk"))
    ktd = kernel_fn(xt, x, ("nngp", "ntk"))
    ktt = kernel_fn(xt, None, ("nngp", "ntk"))
    out = dict(x_train=x, x_test=xt, y_train=y, fx_train_0=f0, fx_test_0=g0, t=t)
    for name, kk in (("dd", kdd), ("td", ktd), ("tt", ktt)):
        out[f"nngp_{name}"], out[f"ntk_{name}"] = kk.nngp, kk.ntk
    for reg, (dr, absolute) in REGS.items():
        kw = dict(diag_reg=dr, diag_reg_absolute_scale=absolute)
        p = nt.predict.gradient_descent_mse(kdd.ntk, y, learning_rate=LR, **kw)
        out[f"gd_mse/{reg}/train"], out[f"gd_mse/{reg}/test"] = p(t, f0, g0, ktd.ntk)
        out[f"gd_mse/{reg}/train_inf"], out[f"gd_mse/{reg}/test_inf"] = p(None, f0, g0, ktd.ntk)
        ens = nt.predict.gradient_descent_mse_ensemble(kernel_fn, x, y, learning_rate=LR, **kw)
        for get in ("nngp", "ntk"):
            for where, x_test in (("train", None), ("test", xt)):
                for when, tt in (("t", t), ("inf", None)):
                    g = ens(tt, x_test, get, compute_cov=True)
                    key = f"ens/{reg}/{get}/{where}/{when}"
                    out[f"{key}/mean"], out[f"{key}/cov"] = g.mean, g.covariance
        gp = nt.predict.gp_inference(kdd, y, **kw)
        for get in ("nngp", "ntk", "ntkgp"):
            g = gp(get, ktd, ktt)
            out[f"gp/{reg}/{get}/mean"], out[f"gp/{reg}/{get}/cov"] = g.mean, g.covariance
    for mom in (0.0, 0.9):
        for size in (None, 24):
            lr = nt.predict.max_learning_rate(kdd.ntk, size, mom)
            out[f"max_lr/{mom}/{size}"] = np.float64(lr)
    y_onehot = jax.nn.one_hot(jnp.argmax(y, axis=1), c, dtype=jnp.float64)
    out["y_onehot"] = y_onehot

    def cross_entropy(fx, y_hat):
        return -jnp.mean(jax.nn.log_softmax(fx) * y_hat)

    for mom in (None, 0.9):
        p = nt.predict.gradient_descent(cross_entropy, kdd.ntk, y_onehot, LR, mom)
        tr, te = p(t[:3], f0, g0, ktd.ntk)
        out[f"gd_ce/{mom}/train"], out[f"gd_ce/{mom}/test"] = tr, te
    out = {k: np.asarray(v, np.float64) for k, v in out.items()}
    assert all(np.isfinite(v).all() for v in out.values()), [
        k for k, v in out.items() if not np.isfinite(v).all()
    ]
    np.savez_compressed(out_path, **out)
    print(f"wrote {out_path}: {len(out)} arrays")


if __name__ == "__main__":
    main()
