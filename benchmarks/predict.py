"""Benchmark ntk_air.predict against neural-tangents 0.6.5's predict, same inputs, same run.

Part "ensemble": `gradient_descent_mse_ensemble` of the FC network
stax.serial(Dense(512, 1.5, 0.1), Relu, Dense(512, 1.5, 0.1), Relu, Dense(1, 1.5, 0.1)) on n
random training points (d = 8, targets sin(x₀), diag_reg = 1e-4 relative), mean and covariance
at T log-spaced times in [0.1, 1e4], on the training set and on m test points, NNGP and NTK.
Both sides get the inputs through an .npz and compute everything from the inputs (kernels,
decomposition, all T times — in chunks of --time-chunk times on both sides, so the (T, n, n)
train covariances need not be held at once); the first run of each side includes compilation
(warmup_s), the second is timed (run_s). neural-tangents runs in a subprocess with the pinned
environment's python (this file is its own worker: --nt-worker). Agreement: the largest
difference of the means (all times) and of the covariance diagonals (all times), relative to the
largest |value|.

Part "matfree": `gp_mean_matfree` (end-of-training mean, conjugate gradients on H∞ + δI) at
--n points of the unit sphere in d = 20, to relative residual --tol, with its time, passes over
the kernel and the peak resident memory.

Run only under the shared lock:

    flock /tmp/ntk_air_bench.lock python benchmarks/predict.py --part ensemble --n 2048 --times 100
    flock /tmp/ntk_air_bench.lock python benchmarks/predict.py --part matfree --n 100000 \
        --preconditioner nystrom --rank 256 --landmarks 1024

Results are merged into benchmarks/results/predict.json (one entry per part and size:
`ensemble_n{n}_T{times}`, `matfree_n{n}`, `matfree_n{n}_nystrom` with
`--preconditioner nystrom`: the top --rank eigenpairs of the Nyström approximation on
--landmarks rows instead of block Krylov passes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(REPO, "benchmarks", "results", "predict.json")
DEFAULT_NT_PYTHON = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".nt-env", "bin", "python"
)
W_STD, B_STD, DEPTH = 1.5, 0.1, 2
DIAG_REG = 1e-4


def _inputs(n, m, n_times, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8))
    xt = rng.normal(size=(m, 8))
    return dict(
        x_train=x,
        x_test=xt,
        y_train=np.sin(x[:, :1]),
        times=np.logspace(-1, 4, n_times),
    )


def _run_all(predict_fn, times, x_test, chunk):
    """Means and covariance diagonals of every (get, set) at every time, chunked over times."""
    out = {}
    for get in ("nngp", "ntk"):
        for where, xt in (("train", None), ("test", x_test)):
            means, diags = [], []
            for i in range(0, len(times), chunk):
                g = predict_fn(t=times[i : i + chunk], x_test=xt, get=get, compute_cov=True)
                means.append(np.asarray(g.mean))
                diags.append(np.diagonal(np.asarray(g.covariance), axis1=-2, axis2=-1))
            out[f"{get}/{where}/mean"] = np.concatenate(means)
            out[f"{get}/{where}/var"] = np.concatenate(diags)
    return out


def nt_worker(inp, out_path, chunk):
    sys.path.insert(0, os.path.join(REPO, "tools", "nt_reference"))
    from nt_import import import_neural_tangents

    nt = import_neural_tangents(enable_x64=True)
    from neural_tangents import stax

    d = dict(np.load(inp))
    layers = [stax.Dense(512, W_STD, B_STD), stax.Relu()] * DEPTH
    _, _, kernel_fn = stax.serial(*layers, stax.Dense(1, W_STD, B_STD))
    result = {}
    for run in ("warmup_s", "run_s"):
        t0 = time.perf_counter()
        p = nt.predict.gradient_descent_mse_ensemble(
            kernel_fn, d["x_train"], d["y_train"], diag_reg=DIAG_REG
        )
        outs = _run_all(p, d["times"], d["x_test"], chunk)
        result[run] = time.perf_counter() - t0
    np.savez(out_path, **outs, **{k: np.float64(v) for k, v in result.items()})


def ours(d, chunk):
    import jax

    jax.config.update("jax_enable_x64", True)
    from ntk_air import predict
    from ntk_air.kernels import fc_kernel_fn

    kernel_fn = fc_kernel_fn(DEPTH, "relu", W_STD, B_STD)
    result = {}
    for run in ("warmup_s", "run_s"):
        t0 = time.perf_counter()
        p = predict.gradient_descent_mse_ensemble(
            kernel_fn, d["x_train"], d["y_train"], diag_reg=DIAG_REG
        )
        outs = _run_all(p, d["times"], d["x_test"], chunk)
        result[run] = time.perf_counter() - t0
    return outs, result


def _machine():
    import jax

    return dict(
        cpu_count=os.cpu_count(),
        load_average_at_start=os.getloadavg(),
        python=platform.python_version(),
        jax=jax.__version__,
        device=str(jax.devices()[0]),
        note="2 CPU cores shared with other agents' work (see load average)",
    )


def part_ensemble(args):
    d = _inputs(args.n, args.m, args.times)
    with tempfile.TemporaryDirectory() as tmp:
        inp, nt_out = os.path.join(tmp, "in.npz"), os.path.join(tmp, "nt.npz")
        np.savez(inp, **d)
        nt_s = time.perf_counter()
        subprocess.run(
            [
                args.nt_python,
                __file__,
                "--nt-worker",
                inp,
                nt_out,
                "--time-chunk",
                str(args.time_chunk),
            ],
            check=True,
        )
        nt_wall = time.perf_counter() - nt_s
        ref = dict(np.load(nt_out))
    mine, timing = ours(d, args.time_chunk)
    agree = {}
    for k in mine:
        scale = max(float(np.max(np.abs(ref[k]))), 1e-300)
        agree[k] = float(np.max(np.abs(mine[k] - ref[k])) / scale)
    return dict(
        n=args.n,
        m=args.m,
        n_times=args.times,
        time_chunk=args.time_chunk,
        diag_reg=DIAG_REG,
        ntk_air=timing,
        neural_tangents=dict(
            warmup_s=float(ref["warmup_s"]), run_s=float(ref["run_s"]), subprocess_wall_s=nt_wall
        ),
        ratio_nt_over_ntk_air=float(ref["run_s"]) / timing["run_s"],
        max_relative_difference=agree,
        machine=_machine(),
    )


def part_matfree(args):
    import jax

    jax.config.update("jax_enable_x64", True)
    from ntk_air import predict
    from ntk_air.kernels import two_layer_relu_kernel_fn

    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, 20))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    xt = rng.normal(size=(100, 20))
    xt /= np.linalg.norm(xt, axis=1, keepdims=True)
    y = np.sign(x[:, 0]) * np.abs(x[:, 1]) ** 0.5
    kernel_fn = two_layer_relu_kernel_fn()
    t0 = time.perf_counter()
    out = predict.gp_mean_matfree(
        kernel_fn,
        x,
        y,
        xt,
        diag_reg=args.diag_reg,
        tol=args.tol,
        rank=args.rank,
        preconditioner=args.preconditioner,
        landmarks=args.landmarks,
        max_iterations=args.max_iterations,
    )
    jax.block_until_ready(out.test)
    seconds = time.perf_counter() - t0
    return dict(
        n=args.n,
        d=20,
        kernel="H∞ (two-layer ReLU)",
        diag_reg_relative=args.diag_reg,
        diag_reg_absolute=out.diag_reg_absolute,
        tol=args.tol,
        preconditioner=args.preconditioner,
        preconditioner_rank=args.rank,
        landmarks=args.landmarks,
        relative_residual=float(out.relative_residual),
        converged=bool(out.converged),
        cg_iterations=int(out.iterations),
        preconditioner_passes=int(out.preconditioner_passes),
        seconds=seconds,
        peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        machine=_machine(),
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", choices=("ensemble", "matfree"), default="ensemble")
    ap.add_argument("--n", type=int, default=None, help="2048 (ensemble) / 100000 (matfree)")
    ap.add_argument("--m", type=int, default=256, help="test points (ensemble)")
    ap.add_argument("--times", type=int, default=100)
    ap.add_argument("--time-chunk", type=int, default=10)
    ap.add_argument("--diag-reg", type=float, default=1e-3, help="matfree: relative δ")
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--rank", type=int, default=100, help="matfree: preconditioner rank")
    ap.add_argument("--preconditioner", choices=("topk", "nystrom"), default="topk")
    ap.add_argument("--landmarks", type=int, default=None, help="matfree nystrom: rows m")
    ap.add_argument("--max-iterations", type=int, default=2000)
    ap.add_argument("--nt-python", default=DEFAULT_NT_PYTHON)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--nt-worker", nargs=2, metavar=("IN", "OUT"))
    args = ap.parse_args()
    if args.nt_worker:
        nt_worker(*args.nt_worker, args.time_chunk)
        return
    if args.n is None:
        args.n = 2048 if args.part == "ensemble" else 100_000
    sys.path.insert(0, REPO)
    res = part_ensemble(args) if args.part == "ensemble" else part_matfree(args)
    results = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            results = json.load(f)
    results[
        f"{args.part}_n{args.n}_T{args.times}"
        if args.part == "ensemble"
        else f"{args.part}_n{args.n}" + ("_nystrom" if args.preconditioner == "nystrom" else "")
    ] = res
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
