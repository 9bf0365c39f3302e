"""Benchmark the infinite-width kernel engines at growing n (CPU, GPU or TPU).

Times `two_layer_relu` (H∞) and `fc_kernel_fn` (depth 3, ReLU) in float32 and float64, untiled
and tiled, after a compile warm-up, with `block_until_ready`, median of repeats. Records device,
versions and sizes, and writes JSON.

    python benchmarks/bench_kernels.py --sizes 1000,2000 --out benchmarks/results/kernels_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import jax
import numpy as np
from _timing import time_calls


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="500,1000,2000")
    p.add_argument("--d", type=int, default=100)
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--tile-size", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="benchmarks/results/kernels.json")
    args = p.parse_args(argv)
    jax.config.update("jax_enable_x64", True)
    from ntk_air.kernels import _kernel_fn as kernels

    rng = np.random.default_rng(0)
    rows = []
    for dtype in args.dtypes.split(","):
        for n in map(int, args.sizes.split(",")):
            x = rng.standard_normal((n, args.d))
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            xj = jax.device_put(jax.numpy.asarray(x, dtype))
            fc = kernels.fc_kernel_fn(3, "relu", 1.5, 0.1)
            cases = {
                "two_layer_relu": lambda t, xj=xj, dt=dtype: kernels.two_layer_relu(
                    xj, tile_size=t, dtype=dt
                ),
                "fc_depth3_relu": lambda t, xj=xj, fc=fc, dt=dtype: fc(xj, tile_size=t, dtype=dt),
            }
            for name, fn in cases.items():
                for tile in (None, args.tile_size):
                    if tile is not None and tile >= n:
                        continue
                    t = time_calls(lambda fn=fn, tile=tile: fn(tile), args.repeats)
                    med, all_t = t.median_s, t.times_s
                    rows.append(
                        {
                            "kernel": name,
                            "n": n,
                            "d": args.d,
                            "dtype": dtype,
                            "tile_size": tile,
                            "median_s": med,
                            "times_s": all_t,
                            "entries_per_s": n * n / med,
                        }
                    )
                    print(f"{name:16s} n={n:6d} {dtype} tile={tile}: {med * 1e3:9.2f} ms")
    result = {
        "benchmark": "infinite-width kernels",
        "device": str(jax.devices()[0]),
        "platform": jax.devices()[0].platform,
        "jax": jax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "results": rows,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
