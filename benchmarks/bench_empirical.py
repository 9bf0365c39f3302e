"""Benchmark the empirical-NTK implementations (jacobian, ntvp, structured) on a dense MLP.

For each (n, width) the three implementations run in the same process on the same params and
inputs: one warm-up call (compilation, timed separately), then `--repeats` timed calls with
`block_until_ready`; the median is reported with its ratio to 'jacobian' (the reference) and
the relative Frobenius difference from it (from the first implementation run when
'jacobian' is not among `--implementations`). Results go to benchmarks/results/empirical.json
with the device, dtype and library versions.

  python benchmarks/bench_empirical.py                        # small default (2-core CPU)
  python benchmarks/bench_empirical.py --n 256 1024 --width 1024 --depth 3 --dtype float64
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import statistics
import sys

import jax
import numpy as np
from _timing import time_calls

IMPLEMENTATIONS = ("jacobian", "ntvp", "structured")
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "empirical.json")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--n", type=int, nargs="+", default=[32, 128], help="numbers of inputs (x1 = x2)"
    )
    p.add_argument("--width", type=int, nargs="+", default=[128, 512], help="hidden widths")
    p.add_argument("--depth", type=int, default=2, help="hidden layers")
    p.add_argument("--d", type=int, default=16, help="input dimension")
    p.add_argument("--out-dim", type=int, default=1, help="outputs k")
    p.add_argument("--activation", choices=("relu", "erf"), default="relu")
    p.add_argument("--reduction", choices=("mean", "sum", "none"), default="mean")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--tile-size", type=int, default=None)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--implementations", nargs="+", choices=IMPLEMENTATIONS, default=list(IMPLEMENTATIONS)
    )
    p.add_argument("--out", default=DEFAULT_OUT, help="JSON output path")
    return p.parse_args(argv)


def mlp_apply_fn(mlp):
    return lambda params, x: mlp.apply({"params": params}, x)


def versions():
    import flax
    import jaxlib

    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "flax": flax.__version__,
        "numpy": np.__version__,
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    from ntk_air.empirical import empirical_ntk_fn
    from ntk_air.networks import MLP

    device = jax.devices()[0]
    meta = {
        "device": str(device),
        "device_kind": device.device_kind,
        "platform": device.platform,
        "n_devices": jax.device_count(),
        "dtype": args.dtype,
        "versions": versions(),
        "host": platform.platform(),
        "cpu_count": os.cpu_count(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "args": vars(args),
    }
    print(f"device={meta['device']} dtype={args.dtype} jax={jax.__version__}", file=sys.stderr)
    # The reference (rel_err and ratio) is 'jacobian' whenever it runs, so it must run first.
    implementations = sorted(dict.fromkeys(args.implementations), key=lambda i: i != "jacobian")
    rows = []
    cols = ("n", 6), ("width", 6), ("impl", 11), ("median_s", 10), ("first_s", 10)
    cols += ("vs_jac", 8), ("rel_err", 9)
    print(" ".join(f"{name:>{w}}" for name, w in cols))
    for width in args.width:
        mlp = MLP(
            widths=(width,) * args.depth,
            out_dim=args.out_dim,
            activation=args.activation,
            w_std=1.4,
            b_std=0.1,
        )
        for n in args.n:
            x = jax.random.normal(jax.random.key(n), (n, args.d), dtype=args.dtype)
            params = mlp.init(jax.random.key(0), x)["params"]
            n_params = sum(int(np.prod(a.shape)) for a in jax.tree_util.tree_leaves(params))
            reference = None
            jac_median = None
            for impl in implementations:
                ntk_fn = empirical_ntk_fn(
                    mlp_apply_fn(mlp),
                    implementation=impl,
                    output_reduction=args.reduction,
                    tile_size=args.tile_size,
                    model=mlp,
                )
                out, first, times, _ = time_calls(
                    functools.partial(ntk_fn, params, x, dtype=args.dtype), args.repeats
                )
                out = np.asarray(out, np.float64)
                median = statistics.median(times)
                if reference is None:
                    reference = out
                if impl == "jacobian":
                    jac_median = median
                rel_err = float(np.linalg.norm(out - reference) / np.linalg.norm(reference))
                ratio = None if jac_median is None else median / jac_median
                rows.append(
                    {
                        "n": n,
                        "width": width,
                        "depth": args.depth,
                        "d": args.d,
                        "out_dim": args.out_dim,
                        "n_params": n_params,
                        "implementation": impl,
                        "median_s": median,
                        "times_s": times,
                        "first_call_s": first,
                        "ratio_vs_jacobian": ratio,
                        "rel_err_vs_first": rel_err,
                        "reference_implementation": implementations[0],
                    }
                )
                ratio_s = "—" if ratio is None else f"{ratio:.3f}"
                print(
                    f"{n:>6} {width:>6} {impl:>11} {median:>10.4g} {first:>10.3g} "
                    f"{ratio_s:>8} {rel_err:>9.2e}",
                    flush=True,
                )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=2)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
