"""Native convolutional kernels against neural-tangents 0.6.5, same inputs, same machine.

Issue 19. Per architecture, n and dtype: the NTK (and NNGP) of n inputs against themselves,
computed by ntk_air's native layers (`kernels.from_layers`) and by neural-tangents in its pinned
environment (jax 0.4.25), each in a fresh process reading the same inputs from an .npz. Reports
median time of the timed calls (after one warm-up call that compiles), the first call's time,
the agreement max|K_native − K_NT| / max|K_NT| and the peak resident memory of each process
(ru_maxrss, which includes the ~0.3 GB of an imported JAX) and, native side, `peak_delta_mb`: how
much one more call raises the resident set above what it was before the call (against
`output_mb` + `tile_estimate_mb`, the issue's "2× the output plus one tile").

    flock /tmp/ntk_air_bench.lock python benchmarks/nt_conv.py --n 256 1024
    python benchmarks/nt_conv.py --n 256 --archs cnn3_gap --dtypes float32 --no-nt

Each side tiles over rows its own way: native through `from_layers` with its default
(cache-sized tiles, see `kernels.from_layers`; K(x, x) from the upper tiles only),
neural-tangents through `nt.batch(kernel_fn, batch_size)` with the largest batch size dividing
n that fits 512 MiB of intermediates (BUDGET; NT's batches must divide n). A neural-tangents run
that exceeds --nt-timeout seconds is recorded as "timeout" (the speedup is then a lower bound).
Results: benchmarks/results/nt_conv.json (merged by key "arch/n/dtype").
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NT_PYTHON = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".nt-env", "bin", "python"
)  # make nt-reference
BUDGET = 512 * 2**20  # bytes of intermediates per tile, both sides
LIVE = 8  # arrays of one pair's positions alive at once (the native estimate)

# name: (example shape, readout, conv layers as (filter, padding), activation)
ARCHS = {
    # the CNN: Conv(64, (3, 3), SAME, W_std 1.5, b_std 0.1) + ReLU, three times
    "cnn3_flatten": ((8, 8, 1), "flatten", 3, "relu"),
    "cnn3_gap": ((8, 8, 1), "gap", 3, "relu"),
    "cnn1d_erf_flatten": ((40, 1), "flatten", 2, "erf"),
    # the memory target: the GlobalAvgPool CNN on 28 × 28 × 1 inputs (S² ≈ 6 · 10⁵)
    "cnn3_gap_28": ((28, 28, 1), "gap", 3, "relu"),
}
W_STD, B_STD = 1.5, 0.1


def positions_per_pair(arch: str) -> int:
    shape, readout, _, _ = ARCHS[arch]
    s = math.prod(shape[:-1])
    return s * s if readout == "gap" else s


def nt_batch_size(arch: str, n: int, itemsize: int) -> int:
    """The largest divisor of n whose tile fits the budget (NT's batch needs a divisor)."""
    per_pair = LIVE * positions_per_pair(arch) * itemsize
    t = max(1, math.isqrt(BUDGET // per_pair))
    return max(d for d in range(1, min(n, t) + 1) if n % d == 0)


# ----------------------------------------------------------------------------------- workers


def _worker_native(arch, dtype, inputs, out, repeats):
    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    sys.path.insert(0, ROOT)
    sys.path.insert(0, HERE)
    from _timing import measured, time_calls

    from ntk_air import kernels
    from ntk_air import kernels as L

    shape, readout, depth, act = ARCHS[arch]
    d = len(shape) - 1
    block = L.serial(L.conv((3,) * d, None, "SAME", W_STD, B_STD), getattr(L, act)())
    pool = L.flatten() if readout == "flatten" else L.global_avg_pool()
    net = L.serial(L.repeat(block, depth), pool, L.dense(W_STD, B_STD))
    x = np.load(inputs)["x"].astype(dtype)
    fn = kernels.from_layers(net, dtype=dtype)
    timing = time_calls(lambda: fn(x), repeats)
    ntk = np.asarray(timing.output.ntk)
    tile = fn.tile_for(x, x)
    t = len(x) if tile is None else tile
    extra = {
        "tile_size": tile,
        "output_mb": 2 * len(x) ** 2 * x.itemsize / 2**20,
        "tile_estimate_mb": t * t * fn.bytes_per_pair(x.shape[1:], x.itemsize) / 2**20,
        # one more call, its peak resident memory above the resident memory before it
        "peak_delta_mb": measured(lambda: jax.block_until_ready(fn(x)))[2] / 2**20,
    }
    return timing, ntk, extra


def _worker_nt(arch, dtype, inputs, out, repeats):
    sys.path.insert(0, os.path.join(ROOT, "tools", "nt_reference"))
    sys.path.insert(0, HERE)
    from nt_import import import_neural_tangents

    nt = import_neural_tangents(enable_x64=dtype == "float64")
    import jax
    from _timing import time_calls
    from neural_tangents import stax

    shape, readout, depth, act = ARCHS[arch]
    d = len(shape) - 1
    acts = {"relu": stax.Relu, "erf": stax.Erf}
    layers = [stax.Conv(64, (3,) * d, None, "SAME", W_std=W_STD, b_std=B_STD), acts[act]()]
    pool = stax.Flatten() if readout == "flatten" else stax.GlobalAvgPool()
    kernel_fn = stax.serial(*layers * depth, pool, stax.Dense(1, W_std=W_STD, b_std=B_STD))[2]
    x = jax.numpy.asarray(np.load(inputs)["x"].astype(dtype))
    batch = nt_batch_size(arch, len(x), x.dtype.itemsize)
    fn = nt.batch(jax.jit(kernel_fn, static_argnames="get"), batch_size=batch)
    timing = time_calls(lambda: fn(x, None, "ntk"), repeats)
    return timing, np.asarray(timing.output), {"batch_size": batch}


def worker(args) -> None:
    run = _worker_native if args.worker == "native" else _worker_nt
    t0 = time.perf_counter()
    timing, ntk, extra = run(args.arch, args.worker_dtype, args.inputs, args.result, args.repeats)
    np.savez(
        args.result,
        ntk=ntk,
        times=np.asarray(timing.times_s),
        warmup=timing.warmup_s,
        median=timing.median_s,
        total=time.perf_counter() - t0,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        extra=json.dumps(extra),
    )


# ----------------------------------------------------------------------------------- driver


def _spawn_cached(cache, python, side, arch, dtype, inputs, result, repeats, timeout):
    """_spawn, or its earlier result for the same inputs from `cache` (a folder; None: no
    cache). The inputs depend on (arch, n) only, so a neural-tangents run is reused while the
    native side is measured again."""
    if cache is None:
        return _spawn(python, side, arch, dtype, inputs, result, repeats, timeout)
    n = len(np.load(inputs)["x"])
    path = os.path.join(cache, f"{side}_{arch}_{n}_{dtype}")
    if os.path.exists(path + ".json"):
        with open(path + ".json") as f:
            out = json.load(f)
        if out["status"] == "ok":
            out["_ntk"] = np.load(path + ".npy")
        out["cached"] = True
        return out
    out = _spawn(python, side, arch, dtype, inputs, result, repeats, timeout)
    os.makedirs(cache, exist_ok=True)
    if out["status"] == "ok":
        np.save(path + ".npy", out["_ntk"])
    with open(path + ".json", "w") as f:
        json.dump({k: v for k, v in out.items() if k != "_ntk"}, f)
    return out


def _spawn(python, side, arch, dtype, inputs, result, repeats, timeout):
    load_before = os.getloadavg()
    cmd = [
        python,
        os.path.abspath(__file__),
        "--worker",
        side,
        "--arch",
        arch,
        "--worker-dtype",
        dtype,
        "--inputs",
        inputs,
        "--result",
        result,
        "--repeats",
        str(repeats),
    ]
    env = {**os.environ, "PYTHONPATH": ROOT if side == "native" else "", "JAX_PLATFORMS": ""}
    if side == "nt":
        env["JAX_PLATFORMS"] = "cpu"
    env = {k: v for k, v in env.items() if v != ""}
    t0 = time.perf_counter()
    try:
        run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {
            "status": "timeout",
            "seconds": time.perf_counter() - t0,
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        }
    if run.returncode != 0:
        return {"status": f"exit {run.returncode}", "stderr": run.stderr[-1500:]}
    r = np.load(result)
    return {
        "status": "ok",
        "median_s": float(r["median"]),
        "times_s": [float(t) for t in r["times"]],
        "first_call_s": float(r["warmup"]),
        "peak_rss_mb": float(r["peak_rss_mb"]),
        **json.loads(str(r["extra"])),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "_ntk": r["ntk"],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker", choices=("native", "nt"), help=argparse.SUPPRESS)
    p.add_argument("--worker-dtype", help=argparse.SUPPRESS)
    p.add_argument("--inputs", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    p.add_argument("--arch", help=argparse.SUPPRESS)
    p.add_argument("--archs", nargs="+", default=["cnn3_flatten", "cnn3_gap"], choices=ARCHS)
    p.add_argument("--n", nargs="+", type=int, default=[256, 1024])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--nt-python", default=NT_PYTHON)
    p.add_argument("--no-nt", action="store_true", help="native side only (e.g. on a GPU)")
    p.add_argument("--nt-timeout", type=float, default=300.0)
    p.add_argument("--native-timeout", type=float, default=600.0)
    p.add_argument("--max-gap-n", type=int, default=1024, help="skip gap archs above this n")
    p.add_argument(
        "--nt-cache",
        default=None,
        help="folder keeping neural-tangents results (kernel and timings) for reuse by later "
        "runs on the same inputs",
    )
    p.add_argument("--out", default=os.path.join(HERE, "results", "nt_conv.json"))
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    try:
        with open(args.out) as f:
            results = json.load(f)
    except (OSError, ValueError):
        results = {}
    meta = {
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": sys.executable,
        "budget_bytes": BUDGET,
    }
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs:
            shape = ARCHS[arch][0]
            for n in args.n:
                if ARCHS[arch][1] == "gap" and n > args.max_gap_n:
                    continue
                inputs = os.path.join(tmp, f"{arch}_{n}.npz")
                x = np.random.default_rng(n).normal(size=(n, *shape))
                np.savez(inputs, x=x)
                for dtype in args.dtypes:
                    key = f"{arch}/{n}/{dtype}"
                    res = os.path.join(tmp, "r.npz")
                    ours = _spawn(
                        sys.executable,
                        "native",
                        arch,
                        dtype,
                        inputs,
                        res,
                        args.repeats,
                        args.native_timeout,
                    )
                    entry = {"arch": arch, "n": n, "dtype": dtype, "native": ours}
                    if not args.no_nt:
                        theirs = _spawn_cached(
                            args.nt_cache,
                            args.nt_python,
                            "nt",
                            arch,
                            dtype,
                            inputs,
                            res,
                            args.repeats,
                            args.nt_timeout,
                        )
                        entry["neural_tangents"] = theirs
                        if ours["status"] == "ok" and theirs["status"] == "ok":
                            a, b = ours["_ntk"], theirs["_ntk"]
                            entry["agreement"] = float(np.abs(a - b).max() / np.abs(b).max())
                            off = ~np.eye(len(a), dtype=bool)  # diagonal angles: NT's ~√eps
                            entry["agreement_off_diagonal"] = float(
                                np.abs(a - b)[off].max() / np.abs(b).max()
                            )
                            entry["speedup"] = theirs["median_s"] / ours["median_s"]
                        elif ours["status"] == "ok" and theirs["status"] == "timeout":
                            # NT's process (warm-up + timed calls) against native's same protocol
                            spent = ours["first_call_s"] + sum(ours["times_s"])
                            entry["speedup_at_least"] = theirs["seconds"] / spent
                    for side in ("native", "neural_tangents"):
                        if side in entry:
                            entry[side].pop("_ntk", None)
                    entry["meta"] = {**meta, "load_average": os.getloadavg()}
                    results[key] = entry
                    print(json.dumps({k: v for k, v in entry.items() if k != "meta"}))
                    os.makedirs(os.path.dirname(args.out), exist_ok=True)
                    with open(args.out, "w") as f:
                        json.dump(results, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
