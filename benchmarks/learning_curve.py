"""Learning curves: eigenlearning's prediction against kernel ridge regression, timed.

Part 1 (`digits`): the full curve on scikit-learn's digits (population N = 1797, H∞): 10 values
of n up to 1000, ridges 0 and 1e-3, 20 draws — target ≤ 2 min on 2 cores.
Part 2 (`topk`): a large population through the top-k path (tiled kernel, matrix-free top-k
eigenpairs, lumped tail, K(X, X_D) tile by tile, one program per n): population N and largest n
from the command line (the issue's target: N = 10⁵, n = 10⁴ in ≤ 20 min).

    flock /tmp/ntk_air_bench.lock python benchmarks/learning_curve.py [digits] \
        [topk N n_max k draws [float32]] [krr N n draws]

`topk ... float32`: the population spectrum from float32 kernel tiles under float64 arithmetic
(`LearningCurveConfig.tile_dtype`), written under `topk_N{N}_k{k}_float32tiles`.

Part 3 (`krr`): the measured side alone at scale (KRR on n of N points tested on all N).

Writes benchmarks/results/learning_curve.json (the parts run, merged into what is there).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from ntk_air import data, kernels, studies  # noqa: E402
from ntk_air.report import learning_curve_summary  # noqa: E402

OUT = Path(__file__).parent / "results" / "learning_curve.json"


def _rows(summary):
    return [
        {
            k: r[k]
            for k in (
                "n",
                "ridge",
                "kappa",
                "e0",
                "test_mse_predicted",
                "test_mse_measured",
                "heldout_mse_measured",
                "train_mse_predicted",
                "train_mse_measured",
                "relative_error",
                "distinct_points",
                "null_dimension_max",
                *(["test_mse_tail_range"] if "test_mse_tail_range" in r else []),
            )
        }
        for r in summary["rows"]
    ]


def _stages():
    """progress callback recording the wall and CPU seconds at the end of each study stage."""
    t0, c0 = time.perf_counter(), time.process_time()
    stages = {}

    def progress(stage, done, total):
        stages[stage] = {
            "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - c0,
        }

    return stages, progress


def digits_part():
    ds = data.load("digits", n_train=None, n_test=0)
    cfg = studies.LearningCurveConfig(
        n=(10, 20, 40, 70, 100, 200, 300, 500, 700, 1000), ridge=(0.0, 1e-3), draws=20, modes=20
    )
    stages, progress = _stages()
    t0, c0 = time.perf_counter(), time.process_time()
    study = studies.learning_curve_study(
        ds, kernels.two_layer_relu_kernel_fn(), cfg, progress=progress
    )
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = learning_curve_summary(study)
    return {
        "loadavg_after": os.getloadavg(),
        "stages_cumulative": stages,
        "population": "digits (sklearn, all 1797 rows)",
        "kernel": "two-layer ReLU H∞",
        "config": s["config"],
        "seconds": seconds,
        "cpu_seconds": cpu,
        "seconds_note": "one cold run of the whole study (kernel, eigh of K (1797²), prediction, "
        "20 draws × 10 n × KRR by one Cholesky per ridge; includes compilation, once per n)",
        "rows": _rows(s),
        "off_by_more_than_10_percent": s["off_by_more_than_10_percent"],
    }


def sphere_population(N: int, d: int = 8, seed: int = 0):
    """N points uniform on S^{d−1}; target a degree-≤3 polynomial (modes of several degrees)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.sqrt(d) * x[:, 0] + d * x[:, 1] * x[:, 2] + d**1.5 * x[:, 3] * x[:, 4] * x[:, 5]
    return data.from_arrays(x, y, y_clean=y, name=f"sphere{d}")


def topk_part(N: int, n_max: int, k: int, draws: int, tile_dtype: str = "float64"):
    ds = sphere_population(N)
    n_values = tuple(int(v) for v in np.unique(np.round(np.geomspace(100, n_max, 4))))
    cfg = studies.LearningCurveConfig(
        n=n_values,
        ridge=(1e-3,),
        draws=draws,
        modes=10,
        solver="topk",
        rank=k,
        tile_dtype=tile_dtype,
    )
    stages, progress = _stages()
    t0, c0 = time.perf_counter(), time.process_time()
    study = studies.learning_curve_study(
        ds, kernels.two_layer_relu_kernel_fn(), cfg, progress=progress
    )
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = learning_curve_summary(study)
    return {
        "loadavg_after": os.getloadavg(),
        "stages_cumulative": stages,
        "population": f"{N} points uniform on S^7, target √d x1 + d x2x3 + d^1.5 x4x5x6",
        "kernel": "two-layer ReLU H∞ (tiled, matrix-free)",
        "config": s["config"],
        "tail": s.get("tail"),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": _rows(s),
        "off_by_more_than_10_percent": s["off_by_more_than_10_percent"],
    }


def krr_part(N: int, n: int, draws: int):
    """The measured side alone at scale: KRR (ridge 1e-3, Cholesky) on `draws` draws of n of N
    sphere points, tested on all N through the tiled K(X, X_D) (no spectrum, no learnabilities)."""
    from ntk_air import learning_curves as lc

    ds = sphere_population(N)
    pk = lc.tiled_population_kernel(kernels.two_layer_relu_kernel_fn(), ds.x)
    t0, c0 = time.perf_counter(), time.process_time()
    m = lc.measured_learning_curve(pk, ds.y_clean, [n], [1e-3], draws=draws)
    return {
        "population": f"{N} points uniform on S^7 (as topk)",
        "n": n,
        "draws": draws,
        "ridge": 1e-3,
        "seconds": time.perf_counter() - t0,
        "cpu_seconds": time.process_time() - c0,
        "test_mse": m.test_mse[0, 0],
        "loadavg_after": os.getloadavg(),
        "note": "per n: K(X_D, X_D), one Cholesky, K(X, X_D)α tile by tile; includes compilation",
    }


def _write(results):
    from ntk_air._json import to_jsonable

    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(to_jsonable(results), indent=2) + "\n")


def main(argv):
    results = json.loads(OUT.read_text()) if OUT.exists() else {}
    results["machine"] = {
        "platform": platform.platform(),
        "cpus_visible": os.cpu_count(),
        "jax": jax.__version__,
        "device": str(jax.devices()[0]),
        "dtype": "float64",
        "load_note": "2 CPU cores shared with other agents' jobs (wall times are upper bounds; "
        "cpu_seconds / 2 estimates the wall time on 2 idle cores)",
        "loadavg_at_start": os.getloadavg(),
    }
    if not argv or argv[0] == "digits":
        load = os.getloadavg()
        results["digits"] = {"loadavg_at_start": load, **digits_part()}
        print(f"digits: {results['digits']['seconds']:.1f} s", flush=True)
        _write(results)
        argv = argv[1:]
    if argv and argv[0] == "topk":
        N, n_max, k, draws = (int(float(v)) for v in argv[1:5])
        explicit = len(argv) > 5 and argv[5] in ("float32", "float64")
        tiles = argv[5] if explicit else "float64"
        key = f"topk_N{N}_k{k}" + ("_float32tiles" if tiles == "float32" else "")
        load = os.getloadavg()
        results[key] = {"loadavg_at_start": load, **topk_part(N, n_max, k, draws, tiles)}
        print(f"topk N = {N}, k = {k}, {tiles} tiles: {results[key]['seconds']:.1f} s", flush=True)
        _write(results)
        argv = argv[6:] if explicit else argv[5:]
    if argv and argv[0] == "krr":
        N, n, draws = (int(float(v)) for v in argv[1:4])
        key = f"krr_N{N}_n{n}"
        results[key] = {"loadavg_at_start": os.getloadavg(), **krr_part(N, n, draws)}
        print(f"krr N = {N}, n = {n}: {results[key]['seconds']:.1f} s", flush=True)
        _write(results)


if __name__ == "__main__":
    main(sys.argv[1:])
