"""Write neural-tangents 0.6.5 reference values to tests/fixtures/nt/*.npz (float64).

Run with the pinned side environment's python (built by build_env.sh), never .venv:

    .nt-env/bin/python tools/nt_reference/make_fixtures.py [--out-dir tests/fixtures/nt]

The layout of both files is documented in tests/fixtures/nt/README.md; tests/test_nt_fixtures.py
reads them without neural-tangents. Everything is deterministic (fixed PRNG keys), so a rerun
reproduces the same values up to float64 rounding.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nt_import import import_neural_tangents  # noqa: E402

nt = import_neural_tangents(enable_x64=True)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from neural_tangents import stax  # noqa: E402

ACTS = {"relu": stax.Relu, "erf": stax.Erf}  # stax.Erf() = erf(x) (a=1, b=1, c=0)

# Infinite-width FC configurations: every (depth, activation, (W_std, b_std)).
FC_DEPTHS = (0, 1, 2, 3)
FC_STDS = ((1.0, 0.0), (1.5, 0.1), (2.0, 0.5), (0.8, 1.0))
FC_WIDTH = 512  # irrelevant to the infinite-width kernel; kept as the brief's architecture

# Empirical MLP: serial(Dense(16), act, Dense(16), act, Dense(k)).
EMP_WIDTHS = (16, 16)
EMP_W_STD, EMP_B_STD = 1.5, 0.1
EMP_OUT_DIMS = (1, 3)


def rel_fro(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def fc_kernels():
    k1, k2 = jax.random.split(jax.random.PRNGKey(20240901))
    x1 = np.asarray(jax.random.normal(k1, (12, 7), dtype=jnp.float64))
    x2 = np.asarray(jax.random.normal(k2, (9, 7), dtype=jnp.float64))
    rows = []
    for depth, act, (w_std, b_std) in itertools.product(FC_DEPTHS, ACTS, FC_STDS):
        layers = [stax.Dense(FC_WIDTH, W_std=w_std, b_std=b_std), ACTS[act]()] * depth
        _, _, kernel_fn = stax.serial(*layers, stax.Dense(1, W_std=w_std, b_std=b_std))
        k11 = kernel_fn(x1, None, ("nngp", "ntk"))
        k12 = kernel_fn(x1, x2, ("nngp", "ntk"))
        rows.append((depth, act, w_std, b_std, k11.nngp, k11.ntk, k12.nngp, k12.ntk))
    depth, act, w_std, b_std, nngp11, ntk11, nngp12, ntk12 = zip(*rows, strict=True)
    out = dict(
        x1=x1,
        x2=x2,
        depth=np.asarray(depth, np.int64),
        activation=np.asarray(act, dtype="<U8"),
        w_std=np.asarray(w_std, np.float64),
        b_std=np.asarray(b_std, np.float64),
        nngp_11=np.stack([np.asarray(k, np.float64) for k in nngp11]),
        ntk_11=np.stack([np.asarray(k, np.float64) for k in ntk11]),
        nngp_12=np.stack([np.asarray(k, np.float64) for k in nngp12]),
        ntk_12=np.stack([np.asarray(k, np.float64) for k in ntk12]),
    )
    assert all(v.dtype != np.float32 for v in out.values())
    return out


def empirical_mlp():
    kx1, kx2, kp = jax.random.split(jax.random.PRNGKey(7), 3)
    x1 = jax.random.normal(kx1, (10, 5), dtype=jnp.float64)
    x2 = jax.random.normal(kx2, (6, 5), dtype=jnp.float64)
    out = dict(
        x1=np.asarray(x1),
        x2=np.asarray(x2),
        w_std=np.float64(EMP_W_STD),
        b_std=np.float64(EMP_B_STD),
        widths=np.asarray(EMP_WIDTHS, np.int64),
        activations=np.asarray(list(ACTS), dtype="<U8"),
        out_dims=np.asarray(EMP_OUT_DIMS, np.int64),
    )
    checks = {}
    for i_variant, (act, k) in enumerate(itertools.product(ACTS, EMP_OUT_DIMS)):
        tag = f"{act}_k{k}"
        layers = []
        for w in EMP_WIDTHS:
            layers += [stax.Dense(w, W_std=EMP_W_STD, b_std=EMP_B_STD), ACTS[act]()]
        init_fn, apply_fn, _ = stax.serial(*layers, stax.Dense(k, W_std=EMP_W_STD, b_std=EMP_B_STD))
        _, params = init_fn(jax.random.fold_in(kp, i_variant), x1.shape)
        params = jax.tree_util.tree_map(lambda a: a.astype(jnp.float64), params)
        dense = [p for p in params if p != ()]
        assert len(dense) == len(EMP_WIDTHS) + 1
        for i, (W, b) in enumerate(dense):
            out[f"{tag}_W{i}"] = np.asarray(W)  # (d_in, d_out)
            out[f"{tag}_b{i}"] = np.asarray(b).reshape(-1)  # stax stores (1, d_out)
        out[f"{tag}_f1"] = np.asarray(apply_fn(params, x1))  # (n1, k)
        out[f"{tag}_f2"] = np.asarray(apply_fn(params, x2))  # (n2, k)

        for impl in (1, 3):
            mean_fn = jax.jit(
                nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=impl)
            )
            out[f"{tag}_ntk_mean_11_impl{impl}"] = np.asarray(mean_fn(x1, None, params))
            out[f"{tag}_ntk_mean_12_impl{impl}"] = np.asarray(mean_fn(x1, x2, params))
        full_fn = jax.jit(
            nt.empirical_ntk_fn(apply_fn, trace_axes=(), vmap_axes=0, implementation=1)
        )
        full11 = np.asarray(full_fn(x1, None, params))  # (n1, n1, k, k)
        full12 = np.asarray(full_fn(x1, x2, params))  # (n1, n2, k, k)
        if k > 1:
            out[f"{tag}_ntk_full_11"] = full11
            out[f"{tag}_ntk_full_12"] = full12
        # NT's default trace_axes=(-1,) divides the trace over the output axis by its size k:
        # it is the MEAN of the diagonal output blocks, not their sum.
        trace_mean = np.trace(full12, axis1=2, axis2=3) / k
        checks[tag] = dict(
            impl3_vs_impl1=rel_fro(
                out[f"{tag}_ntk_mean_12_impl3"], out[f"{tag}_ntk_mean_12_impl1"]
            ),
            mean_vs_trace_over_k=rel_fro(out[f"{tag}_ntk_mean_12_impl1"], trace_mean),
        )
        assert checks[tag]["mean_vs_trace_over_k"] < 1e-13, checks[tag]
        assert checks[tag]["impl3_vs_impl1"] < 1e-12, checks[tag]
    out["trace_axes_reduction"] = np.asarray("mean")
    return out, checks


def main(argv=None):
    repo = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out-dir", default=os.path.join(repo, "tests", "fixtures", "nt"))
    args = p.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    meta = dict(
        meta_neural_tangents=np.asarray(nt.__version__),
        meta_jax=np.asarray(jax.__version__),
        meta_numpy=np.asarray(np.__version__),
    )

    fc = fc_kernels()
    path = os.path.join(args.out_dir, "fc_kernels.npz")
    np.savez_compressed(path, **fc, **meta)
    print(f"wrote {path}: {len(fc['depth'])} configs, {os.path.getsize(path)} bytes")

    emp, checks = empirical_mlp()
    path = os.path.join(args.out_dir, "empirical_mlp.npz")
    np.savez_compressed(path, **emp, **meta)
    print(f"wrote {path}: {os.path.getsize(path)} bytes")
    for tag, c in checks.items():
        print(
            f"  {tag}: impl3 vs impl1 rel_fro {c['impl3_vs_impl1']:.2e}; "
            f"trace_axes=(-1,) vs trace(full)/k rel_fro {c['mean_vs_trace_over_k']:.2e}"
        )


if __name__ == "__main__":
    main()
