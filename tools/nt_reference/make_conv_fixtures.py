"""Write neural-tangents 0.6.5 kernels of conv/pool/norm/residual networks (float64) to
tests/fixtures/conv_kernels.npz, the reference of ntk_air's native spatial layers.

Run with the pinned side environment's python (jax 0.4.25 + NT 0.6.5):

    .nt-env/bin/python tools/nt_reference/make_conv_fixtures.py [--out PATH]

Each case is a network written as a small JSON list of layers (`CASES` below), turned into a
`stax` network here and into `ntk_air.kernels` in tests/test_conv_kernels.py; the file holds,
per case NAME: `NAME/net` (the JSON), `NAME/x1` (n1, *spatial, C), `NAME/x2`, `NAME/nngp`,
`NAME/ntk` ((n1, n2), x1 against x2) and `NAME/nngp_same`, `NAME/ntk_same` (x1 against
itself). Inputs come from numpy's seeded RandomState, so a rerun reproduces the file up to
float64 rounding. Layer entries:

    ["conv", filter, strides, padding, w_std, b_std]   ["dense", w_std, b_std]
    ["avg_pool", window, strides, padding]             ["gap"]  ["flatten"]  ["layer_norm"]
    ["relu"] ["leaky_relu", alpha] ["abs"] ["erf"] ["gelu"] ["identity"]
    ["residual", [layers...]]
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nt_import import import_neural_tangents  # noqa: E402

nt = import_neural_tangents(enable_x64=True)

from neural_tangents import stax  # noqa: E402

WIDTH = 8  # finite widths do not enter the infinite-width kernels
N1, N2 = 3, 2

C = ["conv", [3, 3], None, "SAME", 1.5, 0.1]  # the benchmark CNN's layer
C1 = ["conv", [3], None, "SAME", 1.3, 0.2]
READ = ["dense", 1.5, 0.1]

# name: (example shape, layers)
CASES = {
    # every layer on its own (with the affine layer an activation needs, and a readout)
    "conv_same": ((5, 4, 2), [["conv", [3, 3], None, "SAME", 1.3, 0.2], ["flatten"]]),
    "conv_valid": ((5, 4, 2), [["conv", [3, 2], None, "VALID", 1.1, 0.3], ["flatten"]]),
    "conv_circular": ((5, 4, 2), [["conv", [3, 3], None, "CIRCULAR", 0.9, 0.0], ["gap"]]),
    "dense_spatial": ((5, 4, 2), [["dense", 1.2, 0.3], ["flatten"]]),
    "avg_pool_valid": ((5, 4, 2), [["avg_pool", [2, 2], None, "VALID"], ["flatten"]]),
    "avg_pool_same": ((5, 4, 2), [["avg_pool", [3, 3], [2, 2], "SAME"], ["flatten"]]),
    "avg_pool_circular": ((5, 4, 2), [["avg_pool", [2, 3], None, "CIRCULAR"], ["gap"]]),
    "gap": ((5, 4, 2), [["gap"]]),
    "flatten": ((5, 4, 2), [["flatten"]]),
    "layer_norm": ((5, 4, 2), [["dense", 1.2, 0.3], ["layer_norm"], ["flatten"]]),
    "relu": ((5, 4, 2), [C, ["relu"], ["flatten"], READ]),
    "leaky_relu": ((5, 4, 2), [C, ["leaky_relu", 0.2], ["flatten"], READ]),
    "abs": ((5, 4, 2), [C, ["abs"], ["gap"], READ]),
    "erf": ((5, 4, 2), [C, ["erf"], ["flatten"], READ]),
    "gelu": ((5, 4, 2), [C, ["gelu"], ["gap"], READ]),
    "identity": ((5, 4, 2), [C, ["identity"], ["flatten"], READ]),
    "residual": ((5, 4, 2), [C, ["residual", [["relu"], C]], ["flatten"]]),
    # combinations
    "cnn3_flatten": ((6, 6, 1), [C, ["relu"]] * 3 + [["flatten"], READ]),
    "cnn3_gap": ((6, 6, 1), [C, ["relu"]] * 3 + [["gap"], READ]),
    "cnn1d_stride_erf": (
        (9, 2),
        [["conv", [3], [2], "SAME", 1.3, 0.2], ["erf"], C1, ["erf"], ["flatten"], READ],
    ),
    "cnn1d_valid_gelu_pool": (
        (9, 2),
        [
            ["conv", [3], None, "VALID", 1.2, 0.1],
            ["gelu"],
            ["avg_pool", [2], [2], "VALID"],
            C1,
            ["relu"],
            ["gap"],
            READ,
        ],
    ),
    "cnn1d_circular_residual_norm": (
        (7, 3),
        [
            ["conv", [3], None, "CIRCULAR", 1.4, 0.1],
            ["residual", [["layer_norm"], ["relu"], ["conv", [3], None, "CIRCULAR", 1.1, 0.2]]],
            ["layer_norm"],
            ["flatten"],
            READ,
        ],
    ),
    "cnn2d_strides_abs_gap": (
        (6, 5, 2),
        [
            ["conv", [3, 2], [2, 1], "SAME", 1.5, 0.1],
            ["relu"],
            ["conv", [2, 2], None, "VALID", 1.2, 0.0],
            ["abs"],
            ["gap"],
            READ,
        ],
    ),
    "resnet_norm_gap": (
        (5, 5, 1),
        [
            C,
            ["residual", [["layer_norm"], ["relu"], C]],
            ["residual", [["layer_norm"], ["gelu"], C]],
            ["layer_norm"],
            ["gap"],
            READ,
        ],
    ),
    "resnet_norm_flatten": (
        (5, 5, 1),
        [
            C,
            ["residual", [["layer_norm"], ["relu"], C]],
            ["residual", [["layer_norm"], ["erf"], C]],
            ["layer_norm"],
            ["flatten"],
            READ,
        ],
    ),
    "pool_then_conv_flatten": (
        (6, 6, 2),
        [C, ["relu"], ["avg_pool", [2, 2], [2, 2], "VALID"], C, ["relu"], ["flatten"], READ],
    ),
    "circular_stride_leaky_pool": (
        (6, 5, 1),
        [
            ["conv", [3, 3], [2, 2], "CIRCULAR", 1.3, 0.1],
            ["leaky_relu", -0.3],
            ["avg_pool", [2, 2], None, "SAME"],
            ["gap"],
            READ,
        ],
    ),
    "cnn3d_flatten": (
        (3, 4, 3, 1),
        [["conv", [2, 2, 2], None, "SAME", 1.5, 0.1], ["relu"], ["flatten"], READ],
    ),
    "cnn3d_gap": (
        (3, 3, 3, 2),
        [["conv", [2, 3, 2], [1, 2, 1], "VALID", 1.2, 0.2], ["erf"], ["gap"], READ],
    ),
    "gap_then_fc": ((5, 4, 2), [C, ["relu"], ["gap"], ["dense", 1.4, 0.2], ["relu"], READ]),
    "even_filter_erf": (
        (6, 5, 1),
        [
            ["conv", [2, 2], None, "SAME", 1.5, 0.1],
            ["erf"],
            ["conv", [4, 1], None, "SAME", 1.0, 0.0],
            ["gelu"],
            ["flatten"],
            READ,
        ],
    ),
    "deep_gelu_gap": ((5, 5, 1), [C, ["gelu"]] * 4 + [["gap"], READ]),
}


def to_stax(layers):
    """The stax network a JSON layer list describes."""
    out = []
    for entry in layers:
        kind, args = entry[0], entry[1:]
        if kind == "conv":
            filt, strides, padding, w, b = args
            strides = None if strides is None else tuple(strides)
            out.append(stax.Conv(WIDTH, tuple(filt), strides, padding, W_std=w, b_std=b))
        elif kind == "dense":
            out.append(stax.Dense(WIDTH, W_std=args[0], b_std=args[1]))
        elif kind == "avg_pool":
            window, strides, padding = args
            strides = None if strides is None else tuple(strides)
            out.append(stax.AvgPool(tuple(window), strides, padding))
        elif kind == "gap":
            out.append(stax.GlobalAvgPool())
        elif kind == "flatten":
            out.append(stax.Flatten())
        elif kind == "layer_norm":
            out.append(stax.LayerNorm())
        elif kind == "relu":
            out.append(stax.Relu())
        elif kind == "leaky_relu":
            out.append(stax.LeakyRelu(args[0]))
        elif kind == "abs":
            out.append(stax.Abs())
        elif kind == "erf":
            out.append(stax.Erf())
        elif kind == "gelu":
            out.append(stax.Gelu())
        elif kind == "identity":
            out.append(stax.Identity())
        elif kind == "residual":
            block = stax.serial(*to_stax(args[0]))
            out.append(
                stax.serial(stax.FanOut(2), stax.parallel(block, stax.Identity()), stax.FanInSum())
            )
        else:
            raise ValueError(f"unknown layer {kind!r}")
    return out


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", "..", "tests", "fixtures", "conv_kernels.npz")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.normpath(default))
    args = parser.parse_args()
    arrays = {}
    rng = np.random.RandomState(1905)
    for name, (shape, layers) in CASES.items():
        kernel_fn = stax.serial(*to_stax(layers))[2]
        x1 = rng.normal(size=(N1, *shape))
        x2 = rng.normal(size=(N2, *shape))
        k = kernel_fn(x1, x2, ("nngp", "ntk"))
        same = kernel_fn(x1, None, ("nngp", "ntk"))
        arrays.update(
            {
                f"{name}/net": np.array(json.dumps(layers)),
                f"{name}/x1": x1,
                f"{name}/x2": x2,
                f"{name}/nngp": np.broadcast_to(np.asarray(k.nngp), (N1, N2)).copy(),
                f"{name}/ntk": np.broadcast_to(np.asarray(k.ntk), (N1, N2)).copy(),
                f"{name}/nngp_same": np.broadcast_to(np.asarray(same.nngp), (N1, N1)).copy(),
                f"{name}/ntk_same": np.broadcast_to(np.asarray(same.ntk), (N1, N1)).copy(),
            }
        )
        print(f"{name:32s} ntk[0, 0] = {float(np.asarray(k.ntk).ravel()[0]):.6f}")
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {len(CASES)} cases to {args.out}")


if __name__ == "__main__":
    main()
