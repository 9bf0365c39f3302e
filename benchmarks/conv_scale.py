"""Scale targets of the native convolutional kernels (issue 19), measured at a size that fits a
session and extrapolated to the target size.

* gap28: the NTK of the three-layer GlobalAvgPool CNN (`nt_conv.py`'s cnn3_gap) on 28 × 28 × 1
  inputs (S² ≈ 6 · 10⁵ position pairs per pair of examples), float32, n inputs (target: n = 256
  within 2 GB and 10 minutes). The work grows as the number of tiles computed, T(T + 1)/2 with
  T = ⌈n / tile⌉ (upper tiles only); the memory is the output plus one tile, the same at any n
  but for the output (2 n² · 4 bytes).
* spectrum: the top-k eigenpairs of the three-layer Flatten CNN's NTK on 8 × 8 × 1 inputs
  through the matrix-free path (`spectral.kernel_operator` + `topk_eigensystem`), float32, k = 100
  (target: n = 20 000 in 30 minutes within 4 GB). Each block product is one pass over the
  kernel's tiles, whose cost grows as n²; the extrapolation assumes the same number of products
  at n = 20 000 (stated in the JSON as an assumption, not measured).

Memory: how much the peak resident set grows during the measured call (VmHWM reset through
/proc/self/clear_refs after the warm-up call; compilation not counted), and the process's whole
peak resident set (`peak_rss_mb`, interpreter and JAX included).

`--once` measures at the target size itself: one call, compilation included (no warm-up call,
which would double a run of many minutes), so `seconds` is an upper bound of the computation.

    flock /tmp/ntk_air_bench.lock python benchmarks/conv_scale.py --gap-n 32 --spectrum-n 2000
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from _timing import _proc_status, measured

HERE = os.path.dirname(os.path.abspath(__file__))
W_STD, B_STD = 1.5, 0.1


def _cnn(readout):
    from ntk_air import kernels as L

    block = L.serial(L.conv((3, 3), None, "SAME", W_STD, B_STD), L.relu())
    return L.serial(L.repeat(block, 3), readout, L.dense(W_STD, B_STD))


def _first_and_measured(call, once: bool):
    """(first call's seconds or None, result, seconds, peak growth): a warm-up call unless once."""
    first = None
    if not once:
        t0 = time.perf_counter()
        call()
        first = time.perf_counter() - t0
    return (first, *measured(call))


def gap28(n: int, target_n: int = 256, once: bool = False) -> dict:
    import jax

    from ntk_air import kernels
    from ntk_air import kernels as L

    x = np.random.default_rng(n).normal(size=(n, 28, 28, 1)).astype(np.float32)
    fn = kernels.from_layers(_cnn(L.global_avg_pool()), dtype="float32")
    tile = fn.tile_for(x, x)
    first, _, seconds, peak = _first_and_measured(lambda: jax.block_until_ready(fn(x)), once)

    def tiles(m):
        t_count = -(-m // (tile or m))
        return t_count * (t_count + 1) // 2

    scale = tiles(target_n) / tiles(n)
    out_bytes = lambda m: 2 * m * m * 4  # noqa: E731
    return {
        "n": n,
        "tile_size": tile,
        "first_call_s": first,
        "compile_included": once,
        "seconds": seconds,
        "peak_delta_mb": peak / 2**20,
        "peak_rss_mb": _proc_status("VmHWM") / 2**20,
        "target_n": target_n,
        "tiles_ratio": scale,
        "extrapolated_seconds": seconds * scale,
        "extrapolated_peak_mb": (peak + out_bytes(target_n) - out_bytes(n)) / 2**20,
        "load_average": os.getloadavg(),
    }


def spectrum(n: int, k: int = 100, target_n: int = 20_000, once: bool = False) -> dict:
    from ntk_air import kernels, spectral
    from ntk_air import kernels as L

    x = np.random.default_rng(n).normal(size=(n, 8, 8, 1)).astype(np.float32)
    fn = kernels.from_layers(_cnn(L.flatten()), dtype="float32")
    op = spectral.kernel_operator(fn, x)

    def solve():
        top = spectral.topk_eigensystem(op, k)
        top.eigenvalues.block_until_ready()
        return top

    # the warm-up call compiles the operator's products and the solver's steps
    first, top, seconds, peak = _first_and_measured(solve, once)
    products = int(top.block_products)
    scale = (target_n / n) ** 2
    return {
        "n": n,
        "k": k,
        "tile_size": op.tile_size,
        "first_call_s": first,
        "compile_included": once,
        "seconds": seconds,
        "block_products": products,
        "columns_multiplied": int(top.columns_multiplied),
        "converged": bool(top.converged),
        "seconds_per_product": seconds / max(products, 1),
        "peak_delta_mb": peak / 2**20,
        "peak_rss_mb": _proc_status("VmHWM") / 2**20,
        "target_n": target_n,
        "extrapolated_seconds": seconds * scale,
        "extrapolation_assumes": "the same number of block products at target_n; each product "
        "a pass over the kernel's tiles, cost ∝ n²",
        "load_average": os.getloadavg(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gap-n", type=int, default=32, help="0: skip")
    p.add_argument("--spectrum-n", type=int, default=2000, help="0: skip")
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--once", action="store_true", help="one call, compilation included")
    p.add_argument("--out", default=os.path.join(HERE, "results", "conv_scale.json"))
    args = p.parse_args()
    try:
        with open(args.out) as f:
            results = json.load(f)
    except (OSError, ValueError):
        results = {}
    meta = {"cpus": os.cpu_count(), "load_average_start": os.getloadavg()}
    runs = []
    if args.gap_n:
        runs.append((f"gap28/{args.gap_n}", lambda: gap28(args.gap_n, once=args.once)))
    if args.spectrum_n:
        runs.append(
            (
                f"spectrum/{args.spectrum_n}",
                lambda: spectrum(args.spectrum_n, args.k, once=args.once),
            )
        )
    for name, run in runs:
        results[name] = {**run(), "meta": meta}
        print(json.dumps({name: results[name]}))
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
