"""Crash check of the neural-tangents CNN example: fresh processes, exit status and time each.

Issue 13, item 4. The example of docs/neural_tangents.md

    ntk-air air --dataset digits-binary --backend neural-tangents \
        --arch "cnn:channels=8,depth=2,shape=8x8x1"

died with SIGSEGV in about half of the float64 runs. Cause
(docs/neural_tangents.md#float64-cnn-crash): XLA:CPU (jaxlib 0.10.2) compiles padded
convolutions that Eigen does not take (every float64 one) with an AVX-512 kernel whose first
vector load starts (W + 1) · itemsize bytes before its operand; when XLA has placed the operand
at the start of a buffer that malloc obtained by mmap, that is the page below it, usually
unmapped. `ntk_air.nt_backend.compat` pads NT's convolutions explicitly on CPU.

Modes (each run is a fresh `python` process; a run "crashes" when it is killed by a signal):

  readme   the docs' command above (float64, the CLI's default; --no-progress), end to end,
           each run into its own temporary --out (≈ 65 s a run on 2 idle cores)
  kernel   only its kernel calls: K(x, x) and K(x_test, x), n = 500 + 500, float64, auto tile
  minimal  the defect in plain JAX, without neural-tangents: a 3×3 'SAME' convolution of
           one-channel NCHW images in a `lax.map`, output transposed (so that XLA places the
           convolution's operand at offset 0 of the output buffer); `--variant` chooses
           'same' (the defect), 'explicit' (explicit zero padding behind an optimization
           barrier: the workaround) or 'explicit-nobarrier' (XLA folds the pad back: the
           defect again); MALLOC_MMAP_THRESHOLD_=131072 makes every large buffer an mmap

Results are merged into benchmarks/results/nt_crash.json under "<mode>/<label>" (meta: versions,
CPU, glibc, load average). Run it under the shared lock:

    flock /tmp/ntk_air_bench.lock python benchmarks/nt_crash.py readme --runs 20
    python benchmarks/nt_crash.py kernel --runs 20 --pythonpath /tmp/base --label before-fix
    python benchmarks/nt_crash.py minimal --runs 10 --variant same --dtype float32 --image 16
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "nt_crash.json"
README_ARGS = [
    "air",
    "--dataset",
    "digits-binary",
    "--backend",
    "neural-tangents",
    "--arch",
    "cnn:channels=8,depth=2,shape=8x8x1",
    "--no-progress",
]

KERNEL_CODE = """
import jax
jax.config.update("jax_enable_x64", True)
import numpy as np
from ntk_air import data
from ntk_air.nt_backend import kernel_fn_from_spec

ds = data.load("digits-binary")
kernel_fn = kernel_fn_from_spec("cnn:channels=8,depth=2,shape=8x8x1", dtype="float64")
k = kernel_fn(ds.x)
k_test = kernel_fn(ds.x_test, ds.x)
print("ntk", float(np.asarray(k.ntk).sum()), float(np.asarray(k_test.ntk).sum()))
"""

MINIMAL_CODE = """
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
from jax import lax

VARIANT, DTYPE, IMAGE, CALLS = {variant!r}, {dtype!r}, {image}, {calls}
BATCH, MAPPED = 2048, 4
DN = ("NCHW", "OIHW", "NCHW")


def conv(x, w):
    if VARIANT == "same":
        return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN)
    x = jnp.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    if VARIANT == "explicit":
        x = lax.optimization_barrier(x)  # else XLA folds the pad back into the window
    return lax.conv_general_dilated(x, w, (1, 1), "VALID", dimension_numbers=DN)


@jax.jit
def looped(xs, w):
    ys = lax.map(lambda x: conv(jnp.sin(x), w), xs)  # (MAPPED, BATCH, 1, IMAGE, IMAGE)
    return jnp.swapaxes(ys, 0, 1)  # a separate output buffer, free during the loop


w = jnp.ones((1, 1, 3, 3), DTYPE)
xs = jnp.asarray(
    np.random.default_rng(0).standard_normal((MAPPED, BATCH, 1, IMAGE, IMAGE)), DTYPE
)
for _ in range(CALLS):
    y = looped(xs, w).block_until_ready()
print("sum", float(y.sum()))
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("readme", "kernel", "minimal"))
    p.add_argument("--runs", type=int, default=20, help="fresh processes (default 20)")
    p.add_argument("--label", default="current", help="key of this batch in the JSON")
    p.add_argument(
        "--pythonpath", default=str(ROOT), help="checkout whose ntk_air is run (default: this one)"
    )
    p.add_argument("--variant", choices=("same", "explicit", "explicit-nobarrier"), default="same")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--image", type=int, default=8, help="image side (minimal mode)")
    p.add_argument("--calls", type=int, default=20, help="calls per process (minimal mode)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    return p.parse_args(argv)


def command(args, workdir: Path) -> tuple[list[str], dict]:
    env = dict(os.environ, PYTHONPATH=args.pythonpath, PYTHONFAULTHANDLER="1")
    if args.mode == "readme":
        return [sys.executable, "-m", "ntk_air", *README_ARGS, "--out", str(workdir)], env
    if args.mode == "kernel":
        return [sys.executable, "-c", textwrap.dedent(KERNEL_CODE)], env
    env["MALLOC_MMAP_THRESHOLD_"] = "131072"
    code = MINIMAL_CODE.format(
        variant=args.variant, dtype=args.dtype, image=args.image, calls=args.calls
    )
    return [sys.executable, "-c", code], env


def run_once(args) -> dict:
    with tempfile.TemporaryDirectory(prefix="nt_crash_") as tmp:
        cmd, env = command(args, Path(tmp) / "out")
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=args.timeout
            )
            rc = proc.returncode
            tail = (proc.stderr or proc.stdout)[-600:] if rc != 0 else ""
        except subprocess.TimeoutExpired:
            rc, tail = None, "timed out"
        wall = time.perf_counter() - t0
        # readme mode: a run counts as complete only if the report's air.json was written
        wrote = (Path(tmp) / "out" / "air.json").is_file() if args.mode == "readme" else None
    sig = signal.Signals(-rc).name if rc is not None and rc < 0 else None
    return {
        "exit_status": rc,
        "signal": sig,
        "wall_s": round(wall, 2),
        "air_json_written": wrote,
        "stderr_tail": tail,
    }


def cpu_info() -> dict:
    info = {"model": platform.processor() or "?", "avx512": None}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        if line.startswith("model name"):
            info["model"] = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            info["avx512"] = sorted({f for f in line.split() if f.startswith("avx512")})
            break
    return info


def meta(args) -> dict:
    import jax
    import jaxlib

    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "versions": {
            "python": platform.python_version(),
            "jax": jax.__version__,
            "jaxlib": jaxlib.__version__,
            "glibc": " ".join(platform.libc_ver()),
        },
        "host": platform.platform(),
        "cpu": cpu_info(),
        "cpu_count": os.cpu_count(),
        "pythonpath": args.pythonpath,
        "args": {k: v for k, v in vars(args).items() if k not in ("out", "pythonpath")},
    }


def summarize(args, runs: list[dict], load_before) -> dict:
    return {
        "meta": {**meta(args), "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "runs": len(runs),
        "runs_requested": args.runs,
        "crashes": sum(r["signal"] is not None for r in runs),
        "failures": sum(r["exit_status"] != 0 for r in runs),
        "median_wall_s": sorted(r["wall_s"] for r in runs)[len(runs) // 2],
        "per_run": runs,
    }


def save(out: Path, key: str, entry: dict) -> None:
    """Merge `entry` under `key` into the JSON file (other keys kept), atomically."""
    results = json.loads(out.read_text()) if out.exists() else {}
    results[key] = entry
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=1) + "\n")
    tmp.replace(out)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    key = f"{args.mode}/{args.label}"
    if args.mode == "minimal":
        key += f"/{args.variant}-{args.dtype}-{args.image}x{args.image}"
    load_before = os.getloadavg()
    runs = []
    for i in range(args.runs):
        r = run_once(args)
        runs.append(r)
        status = r["signal"] or r["exit_status"]
        print(f"run {i + 1}/{args.runs}: {status} in {r['wall_s']} s", flush=True)
        save(out, key, summarize(args, runs, load_before))  # partial results survive a kill
    entry = summarize(args, runs, load_before)
    print(f"{key}: {entry['crashes']} crashes, {entry['failures']} failures in {len(runs)} runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
