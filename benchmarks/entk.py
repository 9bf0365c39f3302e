"""Benchmark ntk_air's empirical NTK engine against neural-tangents 0.6.5, same machine, same run.

Models (tools/nt_reference/entk_models.py: pure-JAX apply functions shared by both libraries,
parameters in the flax layout; the equivalent flax modules are checked to give the same outputs):

  mlp        d=64 → 3 hidden layers of 512 (ReLU, NTK parameterization) → 1
  cnn8       two 3×3 SAME convolutions of 32 channels + ReLU, dense readout; 8×8×1 inputs
  cnn28      the same on 28×28×1 inputs
  attention  residual 4-head self-attention (16 tokens × 32 features) + dense readout

For each model and n ∈ {256, 1024, 4096}, Θ(x, x) (n × n, float32, the single output traced)
is computed by every ntk_air implementation that applies ('jacobian', 'ntvp', 'structured' for
the MLP, and 'auto') and by neural-tangents' three implementations (`empirical_ntk_fn(apply_fn,
trace_axes=(-1,), vmap_axes=0, implementation=1, 2, 3)`, jitted) in the pinned reference
environment. Every configuration runs in its own subprocess (so its peak memory is its own):
one warm-up call (compilation), then up to `--repeats` timed calls with `block_until_ready`
(fewer when a call is slow: at most ~60 s of timed calls), median reported. Peak memory is the
process's peak resident memory above its baseline after loading the inputs (CPU) or the device's
peak bytes in use (accelerators).

A configuration is skipped, with the reason recorded, when the same implementation at the
previous n predicts more than `--max-config-s` (time × (n/n_prev)²), when it was skipped or
timed out at a smaller n, or when the remaining benchmark time (`--time-budget-min`) cannot
hold it. Each row records every time, the NT best, the ratio NT best / ntk_air 'auto', the
largest relative difference (Frobenius) between any ntk_air output and any NT output, and peak
memory; `targets` summarizes the issue's targets as met / not met. One float64 row per model
at n = `--float64-n` (default 64: neural-tangents' float64 convolutions on its pinned jaxlib
take seconds per 64 examples), 'auto' against NT implementation 1 (3 for the MLP), checks
float64 agreement.

    flock /tmp/ntk_air_bench.lock python benchmarks/entk.py              # full run
    python benchmarks/entk.py --models cnn8 --n 256 --out /tmp/entk.json  # quick
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NT_TOOLS = os.path.join(REPO, "tools", "nt_reference")
DEFAULT_OUT = os.path.join(REPO, "benchmarks", "results", "entk.json")
DEFAULT_NT_PYTHON = os.path.join(REPO, ".nt-env", "bin", "python")

MODELS = {
    # name: (entk_models model, example shape)
    "mlp": ("mlp", (64,)),
    "cnn8": ("cnn", (8, 8, 1)),
    "cnn28": ("cnn", (28, 28, 1)),
    "attention": ("attention", (16, 32)),
}
OURS = ("jacobian", "ntvp", "structured", "auto")
NT_IMPLS = ("1", "2", "3")  # jacobian contraction, NTK-vector products, structured derivatives
TIMED_SECONDS = 60.0  # at most about this much time in timed calls per configuration
NT_JACOBIAN_BYTES_MAX = 6e9  # NT implementation 1 holds the Jacobians of all n examples at once


# ---------------------------------------------------------------------------------------------
# Worker: one configuration in its own process (ntk_air's python or the pinned NT python)
# ---------------------------------------------------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _device_info():
    import jax

    dev = jax.devices()[0]
    return dict(
        platform=jax.default_backend(),
        device=f"{dev.platform}:{getattr(dev, 'device_kind', '?')}",
        device_count=jax.device_count(),
        python=platform.python_version(),
        jax=jax.__version__,
        numpy=np.__version__,
    )


def _worker(side, name, n, impl, dtype, inputs, output, repeats, memory_budget):
    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    sys.path.insert(0, NT_TOOLS)
    import entk_models

    model, _ = MODELS[name]
    data = np.load(inputs)
    x = jax.numpy.asarray(data["x"][:n], dtype)
    params = jax.tree_util.tree_map(
        lambda a: jax.numpy.asarray(a, dtype), entk_models.unflatten(dict(data))
    )
    apply_fn = entk_models.APPLY[model]
    info = _device_info()
    plan = None
    if side == "nt":
        from nt_import import import_neural_tangents

        nt = import_neural_tangents()
        info["neural_tangents"] = nt.__version__
        fn = jax.jit(
            nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=int(impl))
        )

        def call():
            return fn(x, None, params)
    else:
        from ntk_air.empirical import empirical_ntk_fn
        from ntk_air.networks import MLP

        mlp = None
        if model == "mlp":
            mlp = MLP(
                widths=(512,) * 3,
                out_dim=1,
                w_std=entk_models.MLP_W_STD,
                b_std=entk_models.MLP_B_STD,
            )
        fn = empirical_ntk_fn(apply_fn, implementation=impl, model=mlp, memory_budget=memory_budget)
        plan = fn.plan(params, x)._asdict()

        def call():
            return fn(params, x)

    dev = jax.devices()[0]
    baseline_kb = _status_kb("VmRSS")
    t0 = time.perf_counter()
    out = jax.block_until_ready(call())
    warmup = time.perf_counter() - t0
    n_timed = max(1, min(repeats, int(TIMED_SECONDS / max(warmup, 1e-9))))
    times = []
    for _ in range(n_timed):
        t0 = time.perf_counter()
        out = jax.block_until_ready(call())
        times.append(time.perf_counter() - t0)
    peak = (_status_kb("VmHWM") - baseline_kb) * 1024
    if dev.platform != "cpu":
        stats = dev.memory_stats() or {}
        peak = stats.get("peak_bytes_in_use", peak)
    np.save(output + ".npy", np.asarray(out))
    meta = dict(
        status="ok",
        median_s=statistics.median(times),
        min_s=min(times),
        times_s=times,
        warmup_s=warmup,
        peak_bytes=int(peak),
        peak_kind="device peak_bytes_in_use" if dev.platform != "cpu" else "RSS above baseline",
        output_dtype=str(np.asarray(out).dtype),
        info=info,
        plan=plan,
    )
    with open(output + ".json", "w") as f:
        json.dump(meta, f)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def _rel_fro(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _run(python, side, name, n, impl, dtype, inputs, tmpdir, args, timeout):
    output = os.path.join(tmpdir, f"{side}_{name}_{n}_{impl}_{dtype}")
    cmd = [
        python,
        os.path.abspath(__file__),
        "--worker",
        side,
        name,
        str(n),
        impl,
        dtype,
        inputs,
        output,
        "--repeats",
        str(args.repeats),
        "--memory-budget",
        str(args.memory_budget),
    ]
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return dict(status="timeout", reason=f"did not finish within {timeout:.0f} s"), None
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-3:]
        return dict(status="failed", reason=" | ".join(tail)[-600:], wall_s=wall), None
    with open(output + ".json") as f:
        meta = json.load(f)
    meta["wall_s"] = wall
    out = np.load(output + ".npy")
    os.remove(output + ".npy")
    return meta, out


def _predicted(history, n):
    """(seconds predicted at n from the last run at a smaller n, or None, why)."""
    if not history:
        return None, None
    n_prev, entry = history[-1]
    if entry["status"] != "ok":
        return math.inf, f"{entry['status']} at n={n_prev}"
    t = entry["median_s"] * (n / n_prev) ** 2 + entry["warmup_s"] - entry["median_s"]
    return t, f"{entry['median_s']:.3g} s at n={n_prev} × (n/{n_prev})²"


def _flax_check(names):
    """Max relative output difference between each pure-JAX model and its flax module."""
    import jax
    import jax.numpy as jnp

    sys.path.insert(0, NT_TOOLS)
    import entk_models

    modules = entk_models.flax_modules()
    out = {}
    for name in names:
        model, shape = MODELS[name]
        params = jax.tree_util.tree_map(
            lambda a: jnp.asarray(a, jnp.float32), entk_models.init_params(model, shape)
        )
        x = jnp.asarray(np.random.default_rng(1).normal(size=(8, *shape)), jnp.float32)
        module = modules[model]()
        same_tree = jax.tree_util.tree_structure(
            module.init(jax.random.key(0), x[:1])["params"]
        ) == jax.tree_util.tree_structure(params)
        a, b = module.apply({"params": params}, x), entk_models.APPLY[model](params, x)
        out[name] = dict(
            same_param_tree=bool(same_tree),
            max_rel_output_diff=float(jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b))),
        )
    return out


def _targets(rows, budget):
    t = {}
    ratios = []
    for r in rows:
        if r["n"] >= 1024 and r["dtype"] == "float32":
            ratios.append(
                dict(
                    model=r["model"],
                    n=r["n"],
                    ratio=r.get("ratio_nt_best_over_auto"),
                    nt_best=r.get("nt_best"),
                )
            )
    valid = [x for x in ratios if x["ratio"] is not None]
    t["auto_at_least_1x_nt_best_n_ge_1024"] = dict(
        met=bool(valid) and all(x["ratio"] >= 1.0 for x in valid) and len(valid) == len(ratios),
        aim_2x_met=bool(valid) and all(x["ratio"] >= 2.0 for x in valid),
        rows=ratios,
    )
    growth = []
    for model in sorted({r["model"] for r in rows}):
        by_n = {r["n"]: r for r in rows if r["model"] == model and r["dtype"] == "float32"}
        a, b = by_n.get(1024), by_n.get(4096)
        if (
            a
            and b
            and a["ntk_air"].get("auto", {}).get("status") == "ok"
            and b["ntk_air"].get("auto", {}).get("status") == "ok"
        ):
            ta, tb = a["ntk_air"]["auto"]["median_s"], b["ntk_air"]["auto"]["median_s"]
            growth.append(dict(model=model, exponent=math.log(tb / ta) / math.log(4.0)))
        else:
            growth.append(dict(model=model, exponent=None))
    t["auto_time_growth_1024_to_4096_le_n_2_1"] = dict(
        met=all(g["exponent"] is not None and g["exponent"] <= 2.1 for g in growth), rows=growth
    )
    peaks = []
    for r in rows:
        for impl, e in r["ntk_air"].items():
            if e.get("status") == "ok":
                peaks.append(
                    dict(
                        model=r["model"],
                        n=r["n"],
                        implementation=impl,
                        peak_bytes=e["peak_bytes"],
                        plan_peak_bytes=(e.get("plan") or {}).get("peak_bytes"),
                    )
                )
    t["peak_memory_within_budget"] = dict(
        met=all(p["peak_bytes"] <= budget for p in peaks),
        budget_bytes=budget,
        max_peak_bytes=max((p["peak_bytes"] for p in peaks), default=None),
        rows=peaks,
    )
    agree32 = [
        r["max_rel_diff"]
        for r in rows
        if r["dtype"] == "float32" and r.get("max_rel_diff") is not None
    ]
    agree64 = [
        r["max_rel_diff"]
        for r in rows
        if r["dtype"] == "float64" and r.get("max_rel_diff") is not None
    ]
    t["agreement_float32_le_1e-5"] = dict(
        met=bool(agree32) and max(agree32) <= 1e-5, max=max(agree32, default=None)
    )
    t["agreement_float64_le_1e-12"] = dict(
        met=bool(agree64) and max(agree64) <= 1e-12, max=max(agree64, default=None)
    )
    return t


def markdown_table(report) -> str:
    """Per model and n: each implementation's median seconds, NT best, ratio, diff, peak."""
    lines = [
        "| model | n | dtype | ntk_air (s) | auto plan | NT (s) | NT best | ratio NT/auto "
        "| max rel diff | auto peak (GB) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(entries):
        parts = []
        for impl, e in entries.items():
            parts.append(f"{impl} {e['median_s']:.3g}" if e["status"] == "ok" else f"{impl} –")
        return ", ".join(parts)

    for r in report["rows"]:
        auto = r["ntk_air"].get("auto", {})
        plan = auto.get("plan") or {}
        best = r.get("nt_best")
        ratio = r.get("ratio_nt_best_over_auto")
        diff = r.get("max_rel_diff")
        best_s = f"impl {best['implementation']} {best['median_s']:.3g}" if best else "–"
        ratio_s = f"{ratio:.2f}" if ratio else "–"
        diff_s = f"{diff:.1e}" if diff is not None else "–"
        peak_s = f"{auto['peak_bytes'] / 1e9:.2f}" if auto.get("status") == "ok" else "–"
        plan_s = f"{plan.get('implementation', '–')} t={plan.get('tile_size', '–')}"
        lines.append(
            f"| {r['model']} | {r['n']} | {r['dtype']} | {fmt(r['ntk_air'])} | {plan_s} | "
            f"{fmt(r['neural_tangents'])} | {best_s} | {ratio_s} | {diff_s} | {peak_s} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--n", type=int, nargs="+", default=[256, 1024, 4096])
    p.add_argument("--repeats", type=int, default=5, help="timed calls at most (median kept)")
    p.add_argument(
        "--memory-budget",
        type=int,
        default=4 << 30,
        help="ntk_air's memory_budget in bytes (the peak-memory target)",
    )
    p.add_argument(
        "--max-config-s",
        type=float,
        default=600.0,
        help="skip a configuration predicted to take longer (s)",
    )
    p.add_argument("--time-budget-min", type=float, default=45.0, help="whole benchmark (min)")
    p.add_argument("--no-float64", action="store_true", help="skip the float64 rows")
    p.add_argument(
        "--float64-n", type=int, default=64, help="n of the float64 agreement rows (default 64)"
    )
    p.add_argument(
        "--ours",
        nargs="+",
        default=list(OURS),
        choices=list(OURS),
        help="ntk_air implementations to run (default: all that apply)",
    )
    p.add_argument(
        "--nt-impls",
        nargs="+",
        default=list(NT_IMPLS),
        choices=list(NT_IMPLS),
        help="neural-tangents implementations to run (default: 1 2 3)",
    )
    p.add_argument("--nt-python", default=DEFAULT_NT_PYTHON)
    p.add_argument(
        "--no-nt",
        action="store_true",
        help="ntk_air only (an accelerator without neural-tangents' pinned environment)",
    )
    p.add_argument("--out", default=DEFAULT_OUT)
    p.add_argument("--table", metavar="JSON", help="print the markdown table of a results file")
    p.add_argument("--worker", nargs=7, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.table:
        with open(args.table) as f:
            print(markdown_table(json.load(f)))
        return 0
    if args.worker:
        side, name, n, impl, dtype, inputs, output = args.worker
        _worker(side, name, int(n), impl, dtype, inputs, output, args.repeats, args.memory_budget)
        return 0

    nt_python = os.path.abspath(args.nt_python)
    if args.no_nt:
        args.nt_impls = []
    elif not (os.path.isfile(nt_python) and os.access(nt_python, os.X_OK)):
        print(
            f"error: neural-tangents python not found at {nt_python}; build it with "
            "`bash tools/nt_reference/build_env.sh`, pass --nt-python, or --no-nt",
            file=sys.stderr,
        )
        return 2
    sys.path.insert(0, NT_TOOLS)
    import entk_models
    import jax

    start = time.perf_counter()
    deadline = start + 60.0 * args.time_budget_min
    load_before = os.getloadavg()
    rows = []
    env_info = {"ntk_air": _device_info()}
    flax_check = _flax_check(args.models)
    n_max = max(*args.n, args.float64_n)
    with tempfile.TemporaryDirectory() as tmpdir:
        inputs, n_params = {}, {}
        for name in args.models:
            model, shape = MODELS[name]
            params = entk_models.init_params(model, shape, seed=0)
            n_params[name] = sum(v.size for v in entk_models.flatten(params).values())
            x = np.random.default_rng(0).normal(size=(n_max, *shape))
            inputs[name] = os.path.join(tmpdir, f"inputs_{name}.npz")
            np.savez(inputs[name], x=x, **entk_models.flatten(params))
        # the MLP last at each n: its 'jacobian' (559k parameters) is the slowest configuration
        order = sorted(args.models, key=lambda name: name == "mlp")
        configs = [(name, n, "float32") for n in sorted(args.n) for name in order]
        if not args.no_float64:
            configs += [(name, args.float64_n, "float64") for name in order]
        history = {}
        for name, n, dtype in configs:
            row = dict(model=name, n=n, dtype=dtype, ntk_air={}, neural_tangents={})
            # 'auto' first: the targets' rows come before the others if the time budget runs out
            ours = sorted(
                (i for i in args.ours if i != "structured" or name == "mlp"),
                key=lambda i: i != "auto",
            )
            nts = list(args.nt_impls)
            if dtype == "float64":
                ours = ["auto"]
                nts = ["3" if name == "mlp" else "1"] if nts else []
            outputs = {}
            for side, impls in (("ntk_air", ours), ("nt", nts)):
                for impl in impls:
                    key = (side, name, impl, dtype)
                    pred, why = _predicted(history.get(key, []), n)
                    remaining = deadline - time.perf_counter()
                    jac_bytes = n * n_params[name] * (4 if dtype == "float32" else 8)
                    if side == "nt" and impl == "1" and jac_bytes > NT_JACOBIAN_BYTES_MAX:
                        entry = dict(
                            status="skipped",
                            reason=f"the Jacobians of all {n} examples at once need "
                            f"{jac_bytes / 1e9:.3g} GB > {NT_JACOBIAN_BYTES_MAX / 1e9:g} "
                            "GB on this shared machine",
                        )
                        out = None
                    elif pred is not None and pred > args.max_config_s:
                        entry = dict(
                            status="skipped",
                            reason=f"predicted {pred:.3g} s > {args.max_config_s:g} s ({why})",
                        )
                        out = None
                    elif pred is not None and pred > remaining:
                        entry = dict(
                            status="skipped",
                            reason=f"predicted {pred:.3g} s > the "
                            f"{remaining:.0f} s left of the time budget",
                        )
                        out = None
                    else:
                        python = sys.executable if side == "ntk_air" else nt_python
                        timeout = min(args.max_config_s * 1.5 + 120, max(remaining, 60))
                        entry, out = _run(
                            python, side, name, n, impl, dtype, inputs[name], tmpdir, args, timeout
                        )
                    history.setdefault(key, []).append((n, entry))
                    if side == "nt" and entry.get("info"):
                        env_info.setdefault("neural_tangents", entry["info"])
                    entry.pop("info", None)
                    row["ntk_air" if side == "ntk_air" else "neural_tangents"][impl] = entry
                    if out is not None:
                        outputs[(side, impl)] = out
                    msg = entry.get("median_s", entry.get("reason", ""))
                    print(
                        f"{name:9s} n={n:5d} {dtype} {side:7s} {impl:10s} {entry['status']:8s}"
                        f" {msg}",
                        flush=True,
                    )
            nt_ok = {i: e for i, e in row["neural_tangents"].items() if e["status"] == "ok"}
            if nt_ok:
                best = min(nt_ok, key=lambda i: nt_ok[i]["median_s"])
                row["nt_best"] = dict(implementation=int(best), median_s=nt_ok[best]["median_s"])
                auto = row["ntk_air"].get("auto", {})
                if auto.get("status") == "ok":
                    row["ratio_nt_best_over_auto"] = nt_ok[best]["median_s"] / auto["median_s"]
            diffs = {}
            for (side_a, impl_a), a in outputs.items():
                if side_a != "ntk_air":
                    continue
                for (side_b, impl_b), b in outputs.items():
                    if side_b == "nt":
                        diffs[f"{impl_a}_vs_nt{impl_b}"] = _rel_fro(a, b)
            row["rel_diff"] = diffs
            row["max_rel_diff"] = max(diffs.values()) if diffs else None
            rows.append(row)
            del outputs

    report = dict(
        benchmark="empirical NTK: ntk_air vs neural-tangents 0.6.5",
        config=dict(
            models={k: dict(model=MODELS[k][0], example_shape=MODELS[k][1]) for k in args.models},
            n=args.n,
            ours=args.ours,
            nt_impls=args.nt_impls,
            repeats_max=args.repeats,
            timed_seconds_max=TIMED_SECONDS,
            memory_budget_bytes=args.memory_budget,
            max_config_s=args.max_config_s,
            time_budget_min=args.time_budget_min,
            output_reduction="mean",
            nt_call="empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0, "
            "implementation=i), jitted, x2=None",
        ),
        machine=dict(
            cpu_count=os.cpu_count(),
            processor=platform.processor(),
            system=platform.platform(),
            loadavg_1min_before=load_before[0],
            loadavg_1min_after=os.getloadavg()[0],
            driver_max_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        ),
        env=env_info,
        flax_check=flax_check,
        wall_minutes=(time.perf_counter() - start) / 60.0,
        rows=rows,
        targets=_targets(rows, args.memory_budget),
        note="ratio_nt_best_over_auto = NT's fastest implementation / ntk_air 'auto' (> 1: "
        "ntk_air faster); times in seconds (median of the timed calls after a warm-up).",
    )
    del jax
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    os.replace(tmp, args.out)
    print(markdown_table(report))
    for name, target in report["targets"].items():
        print(f"{name}: {'met' if target['met'] else 'NOT met'}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
