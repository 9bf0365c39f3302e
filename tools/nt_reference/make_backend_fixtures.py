"""Write neural-tangents 0.6.5 CNN and attention kernels to tests/fixtures/nt_backend/ (float64).

Run with the pinned side environment's python (jax 0.4.25, built by build_env.sh), never with
.venv — the point is a reference computed where NT runs unmodified:

    .nt-env/bin/python tools/nt_reference/make_backend_fixtures.py [--out-dir DIR]

Each case is written as the explicit `stax` network below, independently of ntk_air's spec
parser, together with the spec string that should describe the same network;
tests/test_nt_backend.py checks both `kernel_fn_from_spec(spec)` and `kernel_fn_from_stax` on
the current JAX against these values. Inputs come from numpy's seeded RandomState (identical on
every numpy), so a rerun reproduces the files up to float64 rounding. The format is described in
tests/fixtures/nt_backend/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nt_import import import_neural_tangents  # noqa: E402

nt = import_neural_tangents(enable_x64=True)

import warnings  # noqa: E402

import jax  # noqa: E402
from neural_tangents import stax  # noqa: E402

N1, N2 = 6, 5  # rows of x1 and x2
N1_DIGITS = 24  # rows of x1 in the CLI case (AIR needs a few more points)


def cnn(channels, kernel, depth, padding, pool, act, w_std, b_std, n_spatial):
    conv = stax.Conv(channels, (kernel,) * n_spatial, padding=padding, W_std=w_std, b_std=b_std)
    pooling = stax.GlobalAvgPool() if pool == "global" else stax.Flatten()
    return stax.serial(*[conv, act] * depth, pooling, stax.Dense(1, W_std=w_std, b_std=b_std))


def attention(channels, heads, depth, pos_emb, pool, act, w_std, b_std):
    attn = stax.GlobalSelfAttention(
        n_chan_out=channels,
        n_chan_key=channels,
        n_chan_val=channels,
        n_heads=heads,
        W_key_std=w_std,
        W_value_std=w_std,
        W_query_std=w_std,
        W_out_std=w_std,
        pos_emb_type=pos_emb,
    )
    pooling = stax.GlobalAvgPool() if pool == "global" else stax.Flatten()
    return stax.serial(
        stax.Dense(channels, W_std=w_std, b_std=b_std),
        *[attn, act] * depth,
        pooling,
        stax.Dense(1, W_std=w_std, b_std=b_std),
    )


# name: (spec, example shape, stax network, description of the network)
CASES = {
    # The CLI's example: `ntk-air air DATA.npz --backend neural-tangents --arch <this spec>`;
    # inputs are digit-like (integers 0..16 on an 8×8 grid, rows unit-normalized) and more rows.
    "cnn_air_digits": (
        "cnn:channels=8,kernel=3,depth=2,pool=global,act=relu,shape=8x8x1",
        (8, 8, 1),
        cnn(8, 3, 2, "SAME", "global", stax.Relu(), 1.0, 0.0, 2),
        "serial(*[Conv(8,(3,3),SAME,1,0), Relu()]*2, GlobalAvgPool(), Dense(1,1,0))",
    ),
    "cnn_relu_gap": (
        "cnn:channels=8,kernel=3,depth=2,pool=global,act=relu,w_std=1.5,b_std=0.1,shape=6x6x1",
        (6, 6, 1),
        cnn(8, 3, 2, "SAME", "global", stax.Relu(), 1.5, 0.1, 2),
        "serial(*[Conv(8,(3,3),SAME,1.5,0.1), Relu()]*2, GlobalAvgPool(), Dense(1,1.5,0.1))",
    ),
    "cnn_erf_valid_flatten": (
        "cnn:channels=4,kernel=2,depth=2,padding=valid,pool=flatten,act=erf,w_std=1.2,"
        "b_std=0.3,shape=5x5x2",
        (5, 5, 2),
        cnn(4, 2, 2, "VALID", "flatten", stax.Erf(), 1.2, 0.3, 2),
        "serial(*[Conv(4,(2,2),VALID,1.2,0.3), Erf()]*2, Flatten(), Dense(1,1.2,0.3))",
    ),
    "cnn1d_gelu_circular": (
        "cnn:kernel=3,depth=3,padding=circular,pool=global,act=gelu,w_std=1.4,b_std=0.05,"
        "shape=12x1",
        (12, 1),
        cnn(64, 3, 3, "CIRCULAR", "global", stax.Gelu(), 1.4, 0.05, 1),
        "serial(*[Conv(64,(3,),CIRCULAR,1.4,0.05), Gelu()]*3, GlobalAvgPool(), Dense(1,1.4,0.05))",
    ),
    "attention_relu": (
        "attention:channels=16,heads=4,depth=1,act=relu,shape=6x4",
        (6, 4),
        attention(16, 4, 1, "NONE", "global", stax.Relu(), 1.0, 0.0),
        "serial(Dense(16,1,0), GlobalSelfAttention(16,16,16,4, stds 1, NONE), Relu(), "
        "GlobalAvgPool(), Dense(1,1,0))",
    ),
    "attention_sum_erf": (
        "attention:channels=8,heads=2,depth=2,pos_emb=sum,act=erf,w_std=1.3,b_std=0.2,shape=5x3",
        (5, 3),
        attention(8, 2, 2, "SUM", "global", stax.Erf(), 1.3, 0.2),
        "serial(Dense(8,1.3,0.2), *[GlobalSelfAttention(8,8,8,2, stds 1.3, SUM), Erf()]*2, "
        "GlobalAvgPool(), Dense(1,1.3,0.2))",
    ),
    "attention_flatten": (
        "attention:depth=1,pool=flatten,act=relu,w_std=1.2,b_std=0.1,shape=4x5",
        (4, 5),
        attention(64, 4, 1, "NONE", "flatten", stax.Relu(), 1.2, 0.1),
        "serial(Dense(64,1.2,0.1), GlobalSelfAttention(64,64,64,4, stds 1.2, NONE), Relu(), "
        "Flatten(), Dense(1,1.2,0.1))",
    ),
}


def write_case(out_dir, index, name, spec, shape, net, description):
    rng = np.random.RandomState(1000 + index)
    d = int(np.prod(shape))
    if name == "cnn_air_digits":
        n1 = N1_DIGITS
        x1 = rng.randint(0, 17, size=(n1, d)).astype(np.float64)
        x2 = rng.randint(0, 17, size=(N2, d)).astype(np.float64)
        x1 /= np.linalg.norm(x1, axis=1, keepdims=True)
        x2 /= np.linalg.norm(x2, axis=1, keepdims=True)
    else:
        n1 = N1
        x1 = rng.standard_normal((n1, d))
        x2 = rng.standard_normal((N2, d))
    kernel_fn = net[2]
    k11 = kernel_fn(x1.reshape(n1, *shape), None, ("nngp", "ntk"))
    k12 = kernel_fn(x1.reshape(n1, *shape), x2.reshape(N2, *shape), ("nngp", "ntk"))
    arrays = {
        "x1": x1,
        "x2": x2,
        "nngp_11": np.asarray(k11.nngp),
        "ntk_11": np.asarray(k11.ntk),
        "nngp_12": np.asarray(k12.nngp),
        "ntk_12": np.asarray(k12.ntk),
    }
    for key, value in arrays.items():
        assert value.dtype == np.float64, (name, key, value.dtype)
        assert np.all(np.isfinite(value)), (name, key)
    meta = {
        "spec": np.array(spec),
        "example_shape": np.array(shape, dtype=np.int64),
        "stax": np.array(description),
        "jax_version": np.array(jax.__version__),
        "nt_version": np.array(nt.__version__),
    }
    path = os.path.join(out_dir, f"{name}.npz")
    np.savez(path, **arrays, **meta)
    print(f"{path}: K11 {arrays['ntk_11'].shape}, K12 {arrays['ntk_12'].shape}")


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "..", "..", "tests", "fixtures", "nt_backend")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=os.path.normpath(default_out))
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    assert jax.config.jax_enable_x64
    # NT warns at every attention init that linear scaling ties the query weights (no effect on
    # the analytic kernel).
    warnings.filterwarnings("ignore", message="Linear scaling attention used")
    for index, (name, (spec, shape, net, description)) in enumerate(CASES.items()):
        write_case(args.out_dir, index, name, spec, shape, net, description)


if __name__ == "__main__":
    main()
