"""Benchmark: matrix-free top-k spectra, AIR energies and trajectories at large n (issue 11).

Two-layer ReLU H∞ (`kernels.two_layer_relu_kernel_fn(nngp=False)`) on unit-norm d = 20 inputs
drawn near 20 random centres (the theorem's cluster model, ε0 = 1: overlapping clusters), ±1
labels constant per cluster with 20 % flips per cluster (so the AIR energies mean something),
1000 clean test points. For each n, in a fresh subprocess (so the peak RSS is per size):

* top-k: `topk.topk_eigensystem` (block Krylov, k = 100): wall time, block products, residual
  norms, peak memory (VmHWM before anything dense);
* the Krylov space of (y, ŷ) on the deflated operator (`matfree.deflated_krylov`, `--tail-steps`
  extra passes of width 2, default 16) and the Rayleigh–Ritz reduction to both;
* AIR energies of clean labels, noise and noisy labels with their tail buckets
  (`spectrum.air_spectra` on the reduction);
* a 200-point GD trajectory (η = 1/λ_1, steps log-spaced to 10⁶) on the reduction
  (`dynamics.gd_predictor`): ‖u − y‖ split at the top k, ‖u − ŷ‖ and test predictions through
  the K(x_test, X) operator;
* where it fits (n ≤ --dense-max): dense K + `jnp.linalg.eigh` in the same process, after the
  top-k part: time ratio, eigenvalue agreement, trajectory agreement.

`--distill` runs `studies.distill` on the top-k path instead (plain GD and the soft rules with
their default values, 2000 steps; each n in a fresh subprocess): wall time, peak memory, the
reduction (rank, Krylov blocks, dimension, passes), each run's final ‖u − ŷ‖ and error estimate,
and, where n ≤ --dense-max, the dense study in the same process after it: the actual errors
against dense and whether each lies within its estimate (key "distill").

`--compare-solvers` runs block Krylov (several block sizes), randomized subspace iteration and
`jax.experimental.sparse.linalg.lobpcg_standard` on one n against dense eigenvalues (how the
default was chosen). `--device-count 8` times the block product on 8 forced host devices vs 1
(same cores), each in its own subprocess, and checks that the results agree.

    flock /tmp/ntk_air_bench.lock python benchmarks/scale.py --n 4000 16000 \
        --out benchmarks/results/scale.json
    flock /tmp/ntk_air_bench.lock python benchmarks/scale.py --compare-solvers --n 4000
    flock /tmp/ntk_air_bench.lock python benchmarks/scale.py --device-count 8 --n 16000
    flock /tmp/ntk_air_bench.lock python benchmarks/scale.py --distill --n 16000 100000

Results are merged into the JSON by key (sizes, comparison, devices), so sizes can be run in
separate invocations. Runs on any JAX backend; the device is recorded.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's ntk_air, whatever is installed


# ---------------------------------------------------------------------------------------------
# Shared helpers (imported lazily: XLA_FLAGS must be set before JAX is imported)
# ---------------------------------------------------------------------------------------------


def peak_rss_bytes() -> int:
    """VmHWM of this process (high-water mark of the resident set)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return -1


def cpu_seconds() -> float:
    """User + system CPU time of this process (÷ wall time = cores effectively used)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def environment() -> dict:
    import jax
    import numpy as np

    dev = jax.devices()[0]
    return {
        "jax": jax.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device_kind": dev.device_kind,
        "device_count": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def cluster_data(n, n_test=1000, d=20, centres=20, eps0=1.0, flip=0.2, seed=0):
    """Unit-norm points near random centres, ±1 labels by centre parity, exact flips."""
    import numpy as np

    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d))
    c /= np.linalg.norm(c, axis=1, keepdims=True)

    def points(m):
        cl = rng.integers(0, centres, m)
        g = rng.standard_normal((m, d))
        g -= np.sum(g * c[cl], axis=1, keepdims=True) * c[cl]  # tangent at the centre
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        radius = eps0 * rng.random(m) ** (1.0 / (d - 1))
        x = c[cl] + radius[:, None] * g
        return x / np.linalg.norm(x, axis=1, keepdims=True), cl

    x, cl = points(n)
    xt, clt = points(n_test)
    label = np.where(np.arange(centres) % 2 == 0, 1.0, -1.0)
    y_clean = label[cl]
    y = y_clean.copy()
    for j in range(centres):  # exactly round(flip · size) flips per cluster
        idx = np.flatnonzero(cl == j)
        y[rng.choice(idx, int(round(flip * idx.size)), replace=False)] *= -1
    return x, y, y_clean, xt, label[clt]


def log_steps(max_step, count):
    """`count` distinct whole numbers 0 … max_step, log-spaced (0 first)."""
    import numpy as np

    num = count
    while True:
        grid = np.unique(np.round(np.logspace(0, np.log10(max_step), num)))
        if grid.size >= count - 1:
            return np.concatenate([[0.0], grid[: count - 1]])
        num += 1


def _lists(a):
    import numpy as np

    return np.asarray(a, dtype=np.float64).tolist()


# ---------------------------------------------------------------------------------------------
# One size, in its own process
# ---------------------------------------------------------------------------------------------


def run_size(args) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np

    from ntk_air import (
        dynamics,
        kernels,
    )
    from ntk_air import (
        spectral as matfree,
    )
    from ntk_air import (
        spectral as operators,
    )
    from ntk_air import (
        spectral as problem,
    )
    from ntk_air import (
        spectral as resources,
    )
    from ntk_air import (
        spectral as spectrum,
    )
    from ntk_air.spectral import _topk as topk

    n, k = args.n[0], args.k
    out = {"n": n, "k": k, "tile": args.tile, "environment": environment()}
    x, y, yc, xt, yt = cluster_data(n)
    kernel_fn = kernels.two_layer_relu_kernel_fn(nngp=False)
    est = resources.estimate_topk(n, k, "float64", tile=args.tile, d=x.shape[1])
    out["estimate_topk"] = {"memory_bytes": est.memory_bytes, "seconds": est.seconds}
    dense_est = resources.estimate_dense(n, "float64")
    out["estimate_dense"] = {"memory_bytes": dense_est.memory_bytes, "seconds": dense_est.seconds}

    t_start, cpu_start = time.perf_counter(), cpu_seconds()
    op = operators.kernel_operator(kernel_fn, x, tile_size=args.tile)
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    top = topk.topk_eigensystem(op, k, block_size=args.block_size)
    jax.block_until_ready(top.eigenvectors)
    t_topk = time.perf_counter() - t0
    cpu_topk = cpu_seconds() - cpu0
    rss_topk = peak_rss_bytes()

    t0 = time.perf_counter()
    krylov = matfree.deflated_krylov(op, top, np.stack([-y, yc], 1), args.tail_steps or 16)
    red = matfree.ritz_reduction(top, krylov)
    air = spectrum.air_spectra(red, yc, y)
    jax.block_until_ready(air)
    t_air = time.perf_counter() - t0

    t0 = time.perf_counter()
    test_op = operators.kernel_operator(kernel_fn, xt, x, tile_size=args.tile)
    eta = 1.0 / float(top.eigenvalues[0])
    lp = problem.linear_problem(red, y, yc, kv_test=test_op.apply(red.eigenvectors))
    steps = log_steps(1e6, 200)
    traj = dynamics.gd_predictor(lp, eta=eta)(steps)
    jax.block_until_ready(traj)
    modes = np.asarray(traj.residual_modes)  # (T, m): the top k first
    residual_top = modes[:, :k]
    tail_norm = np.linalg.norm(modes[:, k:], axis=1)
    residual_norm = np.linalg.norm(modes, axis=1)
    clean_dist = np.linalg.norm(np.asarray(traj.train) - yc[None], axis=1)
    t_traj = time.perf_counter() - t0
    t_total = time.perf_counter() - t_start
    cpu_total = cpu_seconds() - cpu_start
    rss_all = peak_rss_bytes()
    test_acc = np.mean(np.sign(np.asarray(traj.test)) == yt[None], axis=1)

    out["topk"] = {
        "seconds": t_topk,
        "cpu_seconds": cpu_topk,
        "block_products": int(top.block_products),
        "columns_multiplied": int(top.columns_multiplied),
        "converged": bool(top.converged),
        "tol": float(top.tol),
        "block_size": args.block_size or topk.default_block_size(k, n),
        "eigenvalues": _lists(top.eigenvalues),
        "next_eigenvalue": float(top.next_eigenvalue),
        "residual_norms": _lists(top.residual_norms),
        "max_relative_residual": float(top.residual_norms.max() / top.eigenvalues[0]),
        "label_krylov_steps": int(krylov.steps),
    }
    out["air"] = {
        "seconds": t_air,
        **{
            name: {
                "energy": _lists(s.energy),
                "cumulative_k": float(s.cumulative[-1]),
                "tail": float(s.tail),
            }
            for name, s in air._asdict().items()
        },
    }
    out["trajectory"] = {
        "seconds": t_traj,
        "tail_method": "rayleigh-ritz reduction on the deflated Krylov space of (y, y_clean)",
        "tail_passes": int(krylov.steps),
        "reduction_dimension": int(red.eigenvalues.shape[0]),
        "eta": eta,
        "steps": _lists(steps),
        "residual_norm": _lists(residual_norm),
        "tail_norm": _lists(tail_norm),
        "clean_dist": _lists(clean_dist),
        "test_accuracy": _lists(test_acc),
        "best_clean_dist": float(np.min(clean_dist)),
        "best_step": float(steps[int(np.argmin(clean_dist))]),
    }
    out["total_seconds"] = t_total
    out["total_cpu_seconds"] = cpu_total
    out["peak_rss_bytes_topk"] = rss_topk
    out["peak_rss_bytes"] = rss_all
    if jax.default_backend() != "cpu":
        stats = jax.devices()[0].memory_stats() or {}
        out["device_peak_bytes"] = stats.get("peak_bytes_in_use")

    if n <= args.dense_max:
        # The top-k results so far, in case the dense side outlives the driver's time limit.
        out["dense"] = {"status": "started", "started_unix": time.time()}
        Path(args.save).write_text(json.dumps(out))
        t0 = time.perf_counter()
        K = jax.block_until_ready(kernel_fn.replace(tile_size=args.tile)(x).ntk)
        t_kernel = time.perf_counter() - t0
        eigh = jax.jit(jnp.linalg.eigh)
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        lam, V = jax.block_until_ready(eigh(K))
        t_eigh = time.perf_counter() - t0
        cpu_eigh = cpu_seconds() - cpu0
        lam, V = lam[::-1], V[:, ::-1]
        rel = np.abs(np.asarray(top.eigenvalues) - np.asarray(lam[:k])) / np.asarray(lam[:k])
        # Trajectory from the dense spectrum: ‖u(k) − y‖ = ‖(1 − ηλ)^k Vᵀy‖.
        c = np.asarray(V.T @ jnp.asarray(y))
        lam_np = np.asarray(lam)
        base = np.abs(1.0 - eta * lam_np)  # |1 − ηλ| < 1 for η = 1/θ_1 (up to rounding)
        with np.errstate(under="ignore"):
            res = np.sqrt([np.sum((np.power(base, s) * c) ** 2) for s in steps])
        rnorm = residual_norm
        out["dense"] = {
            "status": "done",
            "kernel_seconds": t_kernel,
            "eigh_seconds": t_eigh,
            "eigh_cpu_seconds": cpu_eigh,
            "seconds": t_kernel + t_eigh,
            "speedup_topk_vs_dense": (t_kernel + t_eigh) / t_topk,
            "speedup_topk_vs_eigh_only": t_eigh / t_topk,
            "max_relative_eigenvalue_error": float(rel.max()),
            "eigenvalue_k_plus_1": float(lam[k]),
            "lambda_min": float(lam[-1]),
            "trajectory_max_abs_error": float(np.max(np.abs(rnorm - res))),
            # relative to the exact value where it is above rounding (1e-12 of the start)
            "trajectory_max_rel_error": float(
                np.max((np.abs(rnorm - res) / np.maximum(res, 1e-300))[res > 1e-12 * res[0]])
            ),
            "trajectory_max_abs_error_over_initial": float(np.max(np.abs(rnorm - res)) / res[0]),
            "tail_exact": _lists(
                np.sqrt(np.maximum(res**2 - np.sum(residual_top**2, axis=1), 0.0))
            ),
            "peak_rss_bytes": peak_rss_bytes(),
        }
    return out


# ---------------------------------------------------------------------------------------------
# Self-distillation on the top-k path, in its own process
# ---------------------------------------------------------------------------------------------


def _distill_runs(study) -> dict:
    return {
        r.label: {
            "final_dist": r.final_dist,
            "best_dist": r.best_dist,
            "final_test_dist": r.final_test_dist,
            "accuracy_test": r.accuracy_test,
            "error_estimate": r.error_estimate,
            "error_estimate_test": r.error_estimate_test,
            "dist_train": _lists(r.dist_train),
        }
        for r in study.runs
    }


def run_distill_size(args) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    from ntk_air import data, kernels, studies
    from ntk_air.spectral import Budget

    n, k = args.n[0], args.k
    x, y, yc, xt, yt = cluster_data(n)
    ds = data.Dataset(
        name=f"clusters{n}", x=x, y=y, y_clean=yc, x_test=xt, y_test_clean=yt, info={}
    )
    kernel_fn = kernels.two_layer_relu_kernel_fn(nngp=False).replace(tile_size=args.tile)
    config = studies.DistillConfig(soft=True, hard=False, steps=2000)
    out = {"n": n, "k": k, "tile": args.tile, "steps": config.steps, "environment": environment()}
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    top = studies.distill(ds, kernel_fn, config, budget=Budget(solver="topk", rank=k))
    out["topk"] = {
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": cpu_seconds() - cpu0,
        "peak_rss_bytes": peak_rss_bytes(),
        "estimate": {"memory_bytes": top.solver.memory_bytes, "seconds": top.solver.seconds},
        "reduction": {
            key: value for key, value in top.topk._asdict().items() if key not in ("skipped",)
        },
        "plain_gd": {
            "final_dist": float(top.plain_gd.final_dist),
            "best_early_stop_dist": float(top.plain_gd.best_dist),
            "best_early_stop_step": int(top.plain_gd.best_step),
        },
        "runs": _distill_runs(top),
    }
    if n <= args.dense_max:
        t0 = time.perf_counter()
        dense = studies.distill(ds, kernel_fn, config, budget=Budget(solver="dense"))
        seconds = time.perf_counter() - t0
        by_label = {r.label: r for r in dense.runs}
        errors = {}
        for r in top.runs:
            d = by_label[r.label]
            err = float(np.max(np.abs(r.dist_train - d.dist_train)))
            err_test = float(np.max(np.abs(r.dist_test - d.dist_test)))
            errors[r.label] = {
                "max_abs_error": err,
                "max_abs_error_test": err_test,
                "relative_to_final_dist": err / d.final_dist,
                "within_estimate": bool(err <= r.error_estimate),
                "test_within_estimate": bool(err_test <= r.error_estimate_test),
            }
        out["dense"] = {
            "seconds": seconds,
            "speedup_topk_vs_dense": seconds / out["topk"]["seconds"],
            "peak_rss_bytes": peak_rss_bytes(),
            "plain_gd_best_early_stop_dist": float(dense.plain_gd.best_dist),
            "runs": _distill_runs(dense),
            "errors": errors,
            "all_within_estimates": all(
                e["within_estimate"] and e["test_within_estimate"] for e in errors.values()
            ),
        }
    return out


# ---------------------------------------------------------------------------------------------
# Solver comparison
# ---------------------------------------------------------------------------------------------


def run_compare(args) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    from jax.experimental.sparse.linalg import lobpcg_standard

    from ntk_air import kernels
    from ntk_air import spectral as operators
    from ntk_air.spectral import _topk as topk

    n, k = args.n[0], args.k
    x, *_ = cluster_data(n)
    kernel_fn = kernels.two_layer_relu_kernel_fn(nngp=False)
    K = kernel_fn(x).ntk
    lam = np.asarray(jnp.linalg.eigvalsh(K))[::-1]
    op = operators.kernel_operator(kernel_fn, x, tile_size=args.tile)
    v = jnp.ones((n, 128))
    jax.block_until_ready(op.apply(v))
    t0 = time.perf_counter()
    jax.block_until_ready(op.apply(v))
    pass_s = time.perf_counter() - t0
    # float32 tiles: cheaper per entry? and what eigenvalue accuracy would they give?
    op32 = operators.kernel_operator(
        kernel_fn.replace(dtype="float32"), x.astype(np.float32), tile_size=args.tile
    )
    v32 = jnp.ones((n, 128), jnp.float32)
    jax.block_until_ready(op32.apply(v32))
    t0 = time.perf_counter()
    jax.block_until_ready(op32.apply(v32))
    pass32_s = time.perf_counter() - t0
    top32 = topk.topk_eigensystem(op32, k)
    err32 = np.abs(np.asarray(top32.eigenvalues, np.float64) - lam[:k]) / lam[:k]
    float32_tiles = {
        "pass_seconds_b128_float32": pass32_s,
        "pass_seconds_b128_float64": pass_s,
        "max_relative_eigenvalue_error_float32": float(err32.max()),
        "block_products_float32": int(top32.block_products),
    }
    print(float32_tiles, flush=True)
    runs = []
    configs = [("block-krylov", b) for b in (32, 64, 128, 256)]
    configs += [("subspace", b) for b in (128, 256, 384)]
    for method, b in configs:
        t0 = time.perf_counter()
        top = topk.topk_eigensystem(op, k, method=method, block_size=b, max_products=80)
        jax.block_until_ready(top.eigenvectors)
        el = time.perf_counter() - t0
        err = np.abs(np.asarray(top.eigenvalues) - lam[:k]) / lam[:k]
        runs.append(
            {
                "method": method,
                "block_size": b,
                "seconds": el,
                "block_products": int(top.block_products),
                "columns_multiplied": int(top.columns_multiplied),
                "converged": bool(top.converged),
                "max_relative_eigenvalue_error": float(err.max()),
                "max_relative_residual": float(top.residual_norms.max() / top.eigenvalues[0]),
            }
        )
        print(runs[-1], flush=True)
    # LOBPCG (JAX's): each iteration multiplies [X, P, R] (3k columns) and X (k columns).
    for iters in (10, 20, 40):
        x0 = jnp.asarray(np.random.default_rng(0).standard_normal((n, k)))
        t0 = time.perf_counter()
        theta, vecs, it = lobpcg_standard(op.apply, x0, m=iters)
        jax.block_until_ready(vecs)
        el = time.perf_counter() - t0
        theta = np.sort(np.asarray(theta))[::-1]
        err = np.abs(theta - lam[:k]) / lam[:k]
        kv = np.asarray(op.apply(vecs))
        rayleigh = np.sum(np.asarray(vecs) * kv, axis=0)
        res = np.linalg.norm(kv - np.asarray(vecs) * rayleigh, axis=0)
        runs.append(
            {
                "method": "lobpcg (jax.experimental.sparse.linalg)",
                "block_size": k,
                "iterations": int(it),
                "seconds": el,
                "block_products": 2 + 2 * int(it),
                "columns_multiplied": k + 4 * k * int(it),
                "converged": bool(err.max() < 1e-8),
                "max_relative_eigenvalue_error": float(err.max()),
                "max_relative_residual": float(res.max() / lam[0]),
            }
        )
        print(runs[-1], flush=True)
    return {
        "n": n,
        "k": k,
        "tile": args.tile,
        "pass_seconds_b128": pass_s,
        "float32_tiles": float32_tiles,
        "lambda_k": float(lam[k - 1]),
        "lambda_k_plus_1": float(lam[k]),
        "runs": runs,
        "environment": environment(),
    }


# ---------------------------------------------------------------------------------------------
# 8 forced host devices vs 1
# ---------------------------------------------------------------------------------------------


def run_device_worker(args) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np

    from ntk_air import kernels
    from ntk_air import spectral as operators

    n = args.n[0]
    x, *_ = cluster_data(n)
    v = np.random.default_rng(1).standard_normal((n, 128))
    kernel_fn = kernels.two_layer_relu_kernel_fn(nngp=False)
    out = {"devices": jax.device_count(), "n": n, "environment": environment()}
    for symmetric in (True, False):
        op = operators.kernel_operator(kernel_fn, x, tile_size=args.tile, symmetric=symmetric)
        jax.block_until_ready(op(v))
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            kv = jax.block_until_ready(op(v))
            times.append(time.perf_counter() - t0)
        name = "symmetric" if symmetric else "rows"
        out[name] = {"times_s": times, "median_s": float(np.median(times))}
        np.save(Path(args.save) / f"{name}_{jax.device_count()}.npy", np.asarray(kv))
    return out


def run_devices(args) -> dict:
    import numpy as np

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (1, args.device_count):
            env = dict(os.environ)
            env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={count}"
            env["PYTHONPATH"] = str(ROOT)
            cmd = [sys.executable, __file__, "--device-worker", "--save", tmp, "--n"]
            cmd += [str(args.n[0]), "--tile", str(args.tile), "--repeats", str(args.repeats)]
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            results[count] = json.loads(res.stdout.strip().splitlines()[-1])
        agree = {}
        for name in ("symmetric", "rows"):
            a = np.load(Path(tmp) / f"{name}_1.npy")
            b = np.load(Path(tmp) / f"{name}_{args.device_count}.npy")
            agree[name] = float(np.max(np.abs(a - b)) / np.max(np.abs(a)))
    one, many = results[1], results[args.device_count]
    return {
        "n": args.n[0],
        "block_width": 128,
        "tile": args.tile,
        "devices": args.device_count,
        "one_device": one,
        "many_devices": many,
        "ratio_many_over_one": {
            name: many[name]["median_s"] / one[name]["median_s"] for name in ("symmetric", "rows")
        },
        "max_relative_difference": agree,
    }


# ---------------------------------------------------------------------------------------------
# Driver: fresh subprocess per size, results merged into the JSON
# ---------------------------------------------------------------------------------------------


def merge(path: Path, key: str, value) -> None:
    data = json.loads(path.read_text()) if path.exists() else {}
    if key in ("sizes", "distill"):
        data.setdefault(key, {})[str(value["n"])] = value
    else:
        data[key] = value
    data["benchmark"] = "benchmarks/scale.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1) + "\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, nargs="+", default=[4000, 16000, 64000, 100000])
    p.add_argument("--k", type=int, default=100)
    p.add_argument("--tile", type=int, default=1024)
    p.add_argument("--block-size", type=int, default=None)
    p.add_argument("--tail-steps", type=int, default=16, help="deflated Krylov passes (0: 16)")
    p.add_argument("--dense-max", type=int, default=16000, help="largest n with dense eigh")
    p.add_argument("--compare-solvers", action="store_true")
    p.add_argument("--distill", action="store_true", help="distill on the top-k path per n")
    p.add_argument("--device-count", type=int, default=0)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument(
        "--worker-timeout", type=int, default=2250, help="seconds per size (dense part cut off)"
    )
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/scale.json"))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--device-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(run_distill_size(args) if args.distill else run_size(args)))
        return
    if args.device_worker:
        print(json.dumps(run_device_worker(args)))
        return
    out = Path(args.out)
    if args.compare_solvers:
        merge(out, "solver_comparison", run_compare(args))
        return
    if args.device_count:
        res = run_devices(args)
        print(json.dumps(res, indent=1))
        merge(out, "multi_device", res)
        return
    for n in args.n:
        cmd = [sys.executable, __file__, "--worker", "--n", str(n), "--k", str(args.k)]
        cmd += ["--tile", str(args.tile), "--tail-steps", str(args.tail_steps)]
        cmd += ["--dense-max", str(args.dense_max)] + (["--distill"] if args.distill else [])
        if args.block_size:
            cmd += ["--block-size", str(args.block_size)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            partial = Path(tmp) / "partial.json"
            cmd += ["--save", str(partial)]
            try:
                res = subprocess.run(
                    cmd, env=env, capture_output=True, text=True, timeout=args.worker_timeout
                )
            except subprocess.TimeoutExpired:
                # Only the dense side may run this long: keep the top-k part, bound the dense.
                if not partial.exists():
                    raise SystemExit(f"size n = {n}: top-k part exceeded the time limit") from None
                value = json.loads(partial.read_text())
                started = value["dense"]["started_unix"]
                value["dense"] = {
                    "status": f"not finished within the {args.worker_timeout} s limit",
                    "seconds_lower_bound": time.time() - started,
                    "speedup_topk_vs_dense_lower_bound": (time.time() - started)
                    / value["topk"]["seconds"],
                }
            else:
                if res.returncode != 0:
                    print(res.stderr[-4000:], file=sys.stderr)
                    raise SystemExit(f"size n = {n} failed")
                value = json.loads(res.stdout.strip().splitlines()[-1])
        value["process_seconds"] = time.perf_counter() - t0
        if args.distill:
            merge(out, "distill", value)
            summary = {"n": n, "topk_seconds": value["topk"]["seconds"]}
            summary["peak_rss_bytes"] = value["topk"]["peak_rss_bytes"]
            if "dense" in value:
                summary["speedup"] = value["dense"]["speedup_topk_vs_dense"]
                summary["all_within_estimates"] = value["dense"]["all_within_estimates"]
            print(json.dumps(summary), flush=True)
            continue
        merge(out, "sizes", value)
        summary = {
            key: value.get(key)
            for key in ("n", "total_seconds", "peak_rss_bytes_topk", "peak_rss_bytes")
        }
        summary["block_products"] = value["topk"]["block_products"]
        if "dense" in value:
            summary["dense"] = {
                key: value["dense"].get(key)
                for key in ("status", "speedup_topk_vs_dense", "max_relative_eigenvalue_error")
            }
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
