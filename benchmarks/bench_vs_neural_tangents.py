"""Benchmark ntk_air against neural-tangents 0.6.5 on the same machine, in the same run.

Two computations, each timed on both sides with the same inputs and parameters:

  (a) empirical NTK of a ReLU MLP, d → 512 → 512 → 512 → 1 (NT parameterization, float32):
      `ntk_air.empirical.structured_mlp_ntk_fn` vs NT's
      `empirical_ntk_fn(apply_fn, vmap_axes=0, implementation=3)` (structured derivatives);
      both give Θ(x, x) (n, n) with the single output axis traced.
  (b) the infinite-width NNGP and NTK of the same architecture:
      `ntk_air.kernels.fc_kernel_fn(3, 'relu', w_std, b_std)` vs NT's `stax.serial(...)` kernel_fn,
      in float32 and in float64.

neural-tangents needs an old JAX, so its side runs in a subprocess with the pinned environment's
python (build it with `bash tools/nt_reference/build_env.sh`); this file is its own worker
(`--nt-worker`, imports only numpy and neural-tangents there). Each side is compiled by one
warm-up call (its time is recorded as warmup_s), then timed `--repeats` times with
`block_until_ready`; the JSON records every time, the medians, the ratio NT/ntk_air
(> 1: ntk_air faster), the relative Frobenius error between the two outputs (whole matrix, off
the diagonal, on the diagonal), and the device, dtypes, versions and CPU count.

    python benchmarks/bench_vs_neural_tangents.py                  # n = 2000, 5 repeats
    python benchmarks/bench_vs_neural_tangents.py --n 200 --repeats 3 --out /tmp/b.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NT_TOOLS = os.path.join(REPO, "tools", "nt_reference")
DEFAULT_OUT = os.path.join(REPO, "benchmarks", "results", "vs_neural_tangents.json")
DEFAULT_NT_PYTHON = os.path.join(REPO, ".nt-env", "bin", "python")

DEPTH = 3  # hidden layers
WIDTH = 512
ACTIVATION = "relu"
W_STD, B_STD = 1.5, 0.1


def _time(fn, repeats):
    """(last output, times_s) under the shared protocol (benchmarks/_timing.py).

    times_s[0] is the warm-up call (compile + run), kept apart by `_summary`.
    """
    from _timing import time_calls

    t = time_calls(fn, repeats)
    return t.output, [t.warmup_s, *t.times_s]


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _machine_info():
    import jax

    dev = jax.devices()[0]
    return dict(
        platform=jax.default_backend(),
        device=f"{dev.platform}:{getattr(dev, 'device_kind', '?')}",
        device_count=jax.device_count(),
        python=platform.python_version(),
        jax=jax.__version__,
        jaxlib=getattr(__import__("jaxlib"), "__version__", "?"),
        numpy=np.__version__,
    )


# ---------------------------------------------------------------------------------------------
# neural-tangents side (runs in the pinned env's python)
# ---------------------------------------------------------------------------------------------


def _nt_worker(task: str, dtype: str, inputs: str, output: str, repeats: int) -> None:
    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    sys.path.insert(0, NT_TOOLS)
    from nt_import import import_neural_tangents

    nt = import_neural_tangents()
    from neural_tangents import stax

    data = np.load(inputs)
    x = jax.numpy.asarray(data["x"], dtype)
    hidden = []
    for _ in range(DEPTH):
        hidden += [stax.Dense(WIDTH, W_std=W_STD, b_std=B_STD), stax.Relu()]
    _, apply_fn, kernel_fn = stax.serial(*hidden, stax.Dense(1, W_std=W_STD, b_std=B_STD))

    if task == "entk":
        params = []
        for i in range(DEPTH + 1):
            w = jax.numpy.asarray(data[f"W{i}"], dtype)
            b = jax.numpy.asarray(data[f"b{i}"], dtype).reshape(1, -1)  # stax bias is (1, d_out)
            params += [(w, b), ()]
        params = params[:-1]
        ntk_fn = jax.jit(
            nt.empirical_ntk_fn(apply_fn, trace_axes=(-1,), vmap_axes=0, implementation=3)
        )
        out, times = _time(lambda: ntk_fn(x, None, params).block_until_ready(), repeats)
        arrays = dict(ntk=np.asarray(out))
    elif task == "kernel":
        kfn = jax.jit(kernel_fn, static_argnames="get")

        def call():
            k = kfn(x, None, ("nngp", "ntk"))
            return jax.block_until_ready(k)

        out, times = _time(call, repeats)
        arrays = dict(nngp=np.asarray(out.nngp), ntk=np.asarray(out.ntk))
    else:
        raise ValueError(f"unknown task {task!r}")
    info = _machine_info()
    info["neural_tangents"] = nt.__version__
    info["output_dtype"] = str(arrays["ntk"].dtype)
    np.savez(output, times=np.asarray(times), info=np.asarray(json.dumps(info)), **arrays)


def _run_nt(nt_python, task, dtype, inputs, repeats, tmpdir):
    output = os.path.join(tmpdir, f"nt_{task}_{dtype}.npz")
    cmd = [
        nt_python,
        os.path.abspath(__file__),
        "--nt-worker",
        task,
        dtype,
        inputs,
        output,
        "--repeats",
        str(repeats),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"neural-tangents worker failed ({' '.join(cmd)}):\n{proc.stderr[-4000:]}"
        )
    with np.load(output) as f:
        return {k: f[k] for k in f.files}


# ---------------------------------------------------------------------------------------------
# ntk_air side (this interpreter)
# ---------------------------------------------------------------------------------------------


def _rel_fro(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _summary(times):
    warmup, times = times[0], times[1:]
    return dict(
        median_s=statistics.median(times), min_s=min(times), times_s=list(times), warmup_s=warmup
    )


def _rel_fro_parts(ours, theirs):
    """Relative Frobenius error on the whole matrix, off the diagonal, and on the diagonal.

    The ReLU NTK diagonal of K(x, x) is computed by both libraries through an angle that rounds
    to O(√eps) instead of 0 (cancellation in arccos / √(c c' − Σ²)), so there the two sides can
    differ by ~√eps relative; off the diagonal they agree to ~eps.
    """
    a, b = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    off = ~np.eye(a.shape[0], dtype=bool)
    return dict(
        all=_rel_fro(a, b), offdiag=_rel_fro(a[off], b[off]), diag=_rel_fro(np.diag(a), np.diag(b))
    )


def _bench_entk(x, params, repeats, nt_python, inputs, tmpdir):
    import jax

    from ntk_air.empirical import structured_mlp_ntk_fn
    from ntk_air.networks import MLP

    jax.config.update("jax_enable_x64", False)
    mlp = MLP(widths=(WIDTH,) * DEPTH, out_dim=1, w_std=W_STD, b_std=B_STD, activation=ACTIVATION)
    ntk_fn = structured_mlp_ntk_fn(mlp, output_reduction="mean")
    x32 = np.asarray(x, np.float32)
    p32 = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), params)
    ours, times = _time(lambda: ntk_fn(p32, x32, dtype="float32").block_until_ready(), repeats)
    theirs = _run_nt(nt_python, "entk", "float32", inputs, repeats, tmpdir)
    a, b = _summary(times), _summary(theirs["times"].tolist())
    return dict(
        name="empirical_ntk_mlp_structured",
        what=(
            f"Theta(x, x), MLP d->{WIDTH}x{DEPTH}->1 {ACTIVATION}; ntk_air "
            "structured_mlp_ntk_fn(output_reduction='mean') vs NT empirical_ntk_fn("
            "implementation=3, trace_axes=(-1,), vmap_axes=0)"
        ),
        dtype="float32",
        ntk_air=dict(**a, output_dtype=str(ours.dtype)),
        neural_tangents=dict(**b, output_dtype=json.loads(str(theirs["info"]))["output_dtype"]),
        ratio_nt_over_ntk_air=b["median_s"] / a["median_s"],
        rel_fro_ntk_air_vs_nt=_rel_fro(ours, theirs["ntk"]),
        rel_fro_ntk_parts=_rel_fro_parts(ours, theirs["ntk"]),
    ), json.loads(str(theirs["info"]))


def _bench_kernel(x, dtype, repeats, nt_python, inputs, tmpdir):
    import jax

    from ntk_air.kernels import fc_kernel_fn

    jax.config.update("jax_enable_x64", dtype == "float64")
    kernel_fn = fc_kernel_fn(DEPTH, ACTIVATION, W_STD, B_STD)
    xd = np.asarray(x, dtype)
    ours, times = _time(lambda: jax.block_until_ready(kernel_fn.replace(dtype=dtype)(xd)), repeats)
    theirs = _run_nt(nt_python, "kernel", dtype, inputs, repeats, tmpdir)
    a, b = _summary(times), _summary(theirs["times"].tolist())
    return dict(
        name="infinite_width_fc_kernel",
        what=(
            f"NNGP and NTK K(x, x), serial([Dense({WIDTH}), Relu()] * {DEPTH}, Dense(1)); "
            "ntk_air fc_kernel_fn vs NT stax kernel_fn (jit)"
        ),
        dtype=dtype,
        ntk_air=dict(**a, output_dtype=str(ours.ntk.dtype)),
        neural_tangents=dict(**b, output_dtype=json.loads(str(theirs["info"]))["output_dtype"]),
        ratio_nt_over_ntk_air=b["median_s"] / a["median_s"],
        rel_fro_ntk_air_vs_nt=_rel_fro(ours.ntk, theirs["ntk"]),
        rel_fro_ntk_parts=_rel_fro_parts(ours.ntk, theirs["ntk"]),
        rel_fro_nngp_ntk_air_vs_nt=_rel_fro(ours.nngp, theirs["nngp"]),
    ), json.loads(str(theirs["info"]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="number of inputs (rows of x)")
    p.add_argument("--d", type=int, default=100, help="input dimension")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per side (median kept)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--nt-python",
        default=DEFAULT_NT_PYTHON,
        help="python of the pinned neural-tangents env (default: .nt-env/bin/python)",
    )
    p.add_argument("--out", default=DEFAULT_OUT, help="JSON results path")
    p.add_argument(
        "--nt-worker", nargs=4, metavar=("TASK", "DTYPE", "IN", "OUT"), help=argparse.SUPPRESS
    )
    args = p.parse_args(argv)

    if args.nt_worker:
        _nt_worker(*args.nt_worker, repeats=args.repeats)
        return 0

    if args.n < 2 or args.d < 1:
        p.error(f"need --n >= 2 and --d >= 1, got n={args.n}, d={args.d}")
    if args.repeats < 3:
        p.error(f"--repeats must be >= 3 (median of at least three), got {args.repeats}")
    nt_python = os.path.abspath(args.nt_python)
    if not (os.path.isfile(nt_python) and os.access(nt_python, os.X_OK)):
        print(
            f"error: neural-tangents python not found at {nt_python}.\n"
            "Build the pinned env with `bash tools/nt_reference/build_env.sh` (creates .nt-env) "
            "or pass --nt-python /path/to/env/bin/python.",
            file=sys.stderr,
        )
        return 2

    import jax

    from ntk_air.networks import MLP

    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.n, args.d))  # float64 master copy; each side casts
    mlp = MLP(widths=(WIDTH,) * DEPTH, out_dim=1, w_std=W_STD, b_std=B_STD, activation=ACTIVATION)
    params = mlp.init(jax.random.key(args.seed), np.zeros((1, args.d), np.float32))["params"]
    params = jax.tree_util.tree_map(np.asarray, params)
    arrays = {"x": x}
    for i in range(DEPTH + 1):
        arrays[f"W{i}"] = params[f"Dense_{i}"]["kernel"]
        arrays[f"b{i}"] = params[f"Dense_{i}"]["bias"]

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    results = []
    with tempfile.TemporaryDirectory() as tmpdir:
        inputs = os.path.join(tmpdir, "inputs.npz")
        np.savez(inputs, **arrays)
        entk, nt_info = _bench_entk(x, params, args.repeats, nt_python, inputs, tmpdir)
        results.append(entk)
        for dtype in ("float32", "float64"):
            results.append(_bench_kernel(x, dtype, args.repeats, nt_python, inputs, tmpdir)[0])
    jax.config.update("jax_enable_x64", False)

    nt_info.pop("output_dtype", None)
    report = dict(
        benchmark="ntk_air vs neural-tangents",
        config=dict(
            n=args.n,
            d=args.d,
            depth=DEPTH,
            width=WIDTH,
            activation=ACTIVATION,
            w_std=W_STD,
            b_std=B_STD,
            out_dim=1,
            repeats=args.repeats,
            seed=args.seed,
            tile_size=None,
        ),
        machine=dict(
            cpu_count=os.cpu_count(),
            cpus_available=len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else None,
            processor=_cpu_model(),
            system=platform.platform(),
            # The machine may be shared: 1-minute load averages just before and after the run.
            loadavg_1min_before=load_before[0] if load_before else None,
            loadavg_1min_after=os.getloadavg()[0] if load_before else None,
        ),
        ntk_air_env=_machine_info(),
        neural_tangents_env=nt_info,
        results=results,
        note="ratio_nt_over_ntk_air = NT median / ntk_air median (> 1 means ntk_air is faster)",
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    os.replace(tmp, args.out)
    for r in results:
        print(
            f"{r['name']:32s} {r['dtype']:8s} ntk_air {r['ntk_air']['median_s']:.4f} s  "
            f"NT {r['neural_tangents']['median_s']:.4f} s  ratio NT/ntk_air "
            f"{r['ratio_nt_over_ntk_air']:.2f}  rel_fro {r['rel_fro_ntk_air_vs_nt']:.2e}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
