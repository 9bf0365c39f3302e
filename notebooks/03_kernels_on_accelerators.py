# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.7
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Kernels on accelerators: timing ntk_air's kernel engines
#
# ntk_air computes neural tangent kernels in two ways:
#
# * **infinite width**, in closed form: the theorem's two-layer Gram matrix
#   H∞_ij = ρ_ij (π − arccos ρ_ij) / (2π) with ρ_ij = x_i·x_j (`ntk_air.kernels.two_layer_relu`),
#   and the deep fully connected NNGP/NTK by the layer recursion (`ntk_air.kernels.fc_kernel_fn`,
#   neural-tangents' conventions);
# * **finite width** (empirical NTK) Θ = J Jᵀ, J the Jacobian of the outputs with respect to all
#   parameters, with three implementations (`ntk_air.empirical`): the Jacobian contraction
#   (reference), NTK-vector products (J is never stored), and structured per-layer Gram products
#   for dense networks (`structured_mlp_ntk_fn`) and for the theorem's two-layer network
#   (H(W)_ij = (x_i·x_j / m) Σ_r 1{w_r·x_i ≥ 0} 1{w_r·x_j ≥ 0}, `two_layer_ntk`).
#
# This notebook times them at growing n on whatever device JAX finds — first the device, then
# the engines, then a log–log plot of time against n — and checks on the way that the
# implementations agree. It runs at a small size on a CPU; set the environment variable
# `NTK_AIR_NOTEBOOK_SIZE=large` (or edit `SIZE` below) for bigger sizes, which a GPU handles.

# %% [markdown]
# **Why float64.** The next cell turns on JAX's 64-bit mode *before any array is created*
# (JAX fixes the default dtype at that point). ntk_air computes in the dtype of its inputs, or in
# the dtype a kernel function's factory fixes (`fc_kernel_fn(..., dtype="float64")`); its
# spectral computations want float64: an NTK's eigenvalues span many orders of magnitude, and
# float32 (eps ≈ 1.2·10⁻⁷) cannot resolve the small ones, nor powers like (1 − ηλ)^k over 10⁵
# steps. Here we time both dtypes: on GPUs
# float64 is often many times slower than float32, and seeing by how much is part of the point.

# %%
import os

import jax

jax.config.update("jax_enable_x64", True)  # first, before any JAX array exists

import platform
import statistics
import time

import matplotlib.pyplot as plt
import numpy as np

import ntk_air
from ntk_air import data, empirical, kernels
from ntk_air.networks import _models as models

SIZE = os.environ.get("NTK_AIR_NOTEBOOK_SIZE", "small")  # "small" (CPU, < 2 min) or "large"
if SIZE not in ("small", "large", "ci"):  # "ci": the least work that runs every cell (tests)
    raise ValueError(f"NTK_AIR_NOTEBOOK_SIZE must be 'small', 'large' or 'ci', got {SIZE!r}")


# %% [markdown]
# ## The device
#
# JAX runs on the first device it finds (a GPU or TPU if one is installed and visible,
# otherwise the CPU). Sizes below grow with the device: a CPU gets the small grid even at
# `SIZE = "large"` unless you edit it.

# %%
device = jax.devices()[0]
on_accelerator = device.platform != "cpu"
print(
    f"JAX {jax.__version__} on {device.platform}: {device.device_kind} ({len(jax.devices())} "
    "device(s))"
)
print(f"ntk_air {ntk_air.__version__}, numpy {np.__version__}, Python {platform.python_version()}")
print(f"host CPU cores: {os.cpu_count()}; notebook size: {SIZE}")
if on_accelerator:
    try:
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            print(f"device memory limit: {stats['bytes_limit'] / 2**30:.1f} GiB")
    except Exception as err:  # memory_stats is optional in the PJRT API
        print(f"(device memory stats unavailable: {err})")

big = SIZE == "large" and on_accelerator
if big:
    N_INFINITE = [1024, 2048, 4096, 8192, 16384]
    N_EMPIRICAL = [256, 512, 1024, 2048]
    WIDTH = 512
elif SIZE == "large":
    N_INFINITE = [256, 512, 1024, 2048, 4096]
    N_EMPIRICAL = [64, 128, 256, 512]
    WIDTH = 256
elif SIZE == "small":
    N_INFINITE = [128, 256, 512, 1024]
    N_EMPIRICAL = [32, 64, 128]
    WIDTH = 128
else:
    N_INFINITE = [64, 128]
    N_EMPIRICAL = [16, 32]
    WIDTH = 32
D = 32  # input dimension
REPEATS = 1 if SIZE == "ci" else 3
MAX_SECONDS = 20.0 if big else 4.0  # an engine that takes longer than this stops growing n
print("infinite kernels at n =", N_INFINITE, "; empirical NTKs at n =", N_EMPIRICAL, "width", WIDTH)

# %% [markdown]
# ## A fair timer
#
# JAX compiles a function the first time it sees a new shape, and dispatches work asynchronously.
# A fair timing therefore calls once to compile (not counted), then times `repeats` calls with
# `jax.block_until_ready`, and reports the median. Each size is a new shape, so each size
# compiles once.


# %%
def median_seconds(fn, repeats=REPEATS):
    """Median wall time of fn() after one compile/warm-up call; returns (median, compile+first)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times), first


def unit_rows(n, d=D, seed=0):
    """n random unit-norm inputs (the theorem assumes ‖x‖ = 1)."""
    return data.unit_normalize(np.random.default_rng(seed).standard_normal((n, d)))


def time_engine(name, make_call, sizes, results):
    """Time make_call(x)() over growing n, stopping once one size takes more than MAX_SECONDS."""
    for n in sizes:
        med, first = median_seconds(make_call(unit_rows(n)))
        results.append({"engine": name, "n": n, "seconds": med, "first_call_seconds": first})
        print(
            f"{name:34s} n={n:6d}: {med * 1e3:10.2f} ms  (first call incl. compile {first:6.2f} s)"
        )
        if med > MAX_SECONDS:
            print(f"{'':34s} stopping: above {MAX_SECONDS} s")
            break


# %% [markdown]
# ## Infinite-width kernels
#
# Both kernels cost O(n² d) for the Gram matrix x·x′ plus O(n²·depth) elementwise work. A kernel
# function's factory fixes its dtype and its `tile_size`, which computes the n × n output in row
# blocks, so that memory is bounded by the output, not by the intermediates of the recursion; any
# tile size works (no divisibility rule). `kernel_fn.replace(tile_size=…)` is the same kernel
# with another schedule.

# %%
fc3 = {
    dtype: kernels.fc_kernel_fn(depth=3, activation="relu", w_std=1.5, b_std=0.1, dtype=dtype)
    for dtype in ("float32", "float64")
}
h_inf_fn = {dtype: kernels.two_layer_relu_kernel_fn(nngp=False, dtype=dtype) for dtype in fc3}
infinite_results = []
for dtype in ("float32", "float64"):
    time_engine(
        f"H∞ two-layer ReLU ({dtype})",
        lambda x, dtype=dtype: lambda: h_inf_fn[dtype](x).ntk,
        N_INFINITE,
        infinite_results,
    )
    time_engine(
        f"FC NTK depth 3 ({dtype})",
        lambda x, dtype=dtype: lambda: fc3[dtype](x).ntk,
        N_INFINITE,
        infinite_results,
    )
tile = max(N_INFINITE) // 3 + 1  # deliberately not a divisor of n
fc3_tiled = fc3["float64"].replace(tile_size=tile)
time_engine(
    f"FC NTK depth 3, tiled {tile} (float64)",
    lambda x: lambda: fc3_tiled(x).ntk,
    N_INFINITE[-1:],
    infinite_results,
)

# %% [markdown]
# Tiling changes the schedule, not the numbers: the tiled and untiled kernels agree to rounding
# (relative Frobenius error ‖A − B‖_F / ‖B‖_F).

# %%
x_check = unit_rows(N_INFINITE[0])
untiled = fc3["float64"](x_check).ntk
tiled = fc3["float64"].replace(tile_size=37)(x_check).ntk
err = float(np.linalg.norm(tiled - untiled) / np.linalg.norm(untiled))
print(f"tiled (tile_size=37) vs untiled, n={x_check.shape[0]}: rel. Frobenius error {err:.2e}")
assert err < 1e-12

# %% [markdown]
# ## Empirical NTKs of finite networks
#
# A dense network `ntk_air.networks.MLP` (neural-tangents' NTK parameterization, 3 hidden layers of
# width `WIDTH`), and the theorem's two-layer network `TwoLayerReLU` of width m. For the MLP,
# the three implementations compute the same Θ = J Jᵀ at very different costs:
#
# * `jacobian` materializes J (n × #params) — memory n·P;
# * `ntvp` never stores J but needs one vjp and one jvp per column of the output;
# * `structured` uses Θ_ij = Σ_l (δ_l(x_i)·δ_l(x_j)) (w²/d_l · h_l(x_i)·h_l(x_j) + b²), with h_l
#   the layer inputs and δ_l the back-propagated signals: Gram products only.
#
# Empirical kernels are timed in float32, the dtype networks are trained in.

# %%
x_init = unit_rows(8)
mlp = models.MLP(widths=(WIDTH,) * 3, w_std=1.5, b_std=0.1)
mlp_params = mlp.init(jax.random.key(0), x_init)["params"]
n_params = sum(p.size for p in jax.tree_util.tree_leaves(mlp_params))
print(f"MLP: 3 hidden layers of width {WIDTH}, {n_params} parameters")


def mlp_apply(params, x):
    return mlp.apply({"params": params}, x)


mlp_engines = {
    impl: empirical.empirical_ntk_fn(mlp_apply, implementation=impl, model=mlp)
    for impl in ("jacobian", "ntvp", "structured")
}
empirical_results = []
for impl, ntk_fn in mlp_engines.items():
    sizes = N_EMPIRICAL if impl != "structured" else N_INFINITE
    time_engine(
        f"MLP eNTK {impl} (float32)",
        lambda x, ntk_fn=ntk_fn: lambda: ntk_fn(mlp_params, x, dtype="float32"),
        sizes,
        empirical_results,
    )

two_layer = models.TwoLayerReLU(width=16 * WIDTH)
two_layer_vars = two_layer.init(jax.random.key(1), x_init)
time_engine(
    f"two-layer H(W), m={16 * WIDTH}, structured",
    lambda x: lambda: empirical.two_layer_ntk(two_layer_vars["params"], x, dtype="float32"),
    N_INFINITE,
    empirical_results,
)

# %% [markdown]
# The three MLP implementations agree (float64, relative Frobenius error against the Jacobian
# contraction), and the empirical two-layer H(W) is close to its infinite-width limit H∞ — the
# gap shrinks like 1/√m.

# %%
x_check = unit_rows(N_EMPIRICAL[0], seed=3)
reference = mlp_engines["jacobian"](mlp_params, x_check, dtype="float64")
for impl in ("ntvp", "structured"):
    other = mlp_engines[impl](mlp_params, x_check, dtype="float64")
    err = float(np.linalg.norm(other - reference) / np.linalg.norm(reference))
    print(f"{impl:10s} vs jacobian: rel. Frobenius error {err:.2e}")
    assert err < 1e-10
h_inf = kernels.two_layer_relu(x_check)
for m in (256, 4096, 65536):
    net = models.TwoLayerReLU(width=m)
    H_m = empirical.two_layer_ntk(net.init(jax.random.key(2), x_check)["params"], x_check)
    err = float(np.linalg.norm(H_m - h_inf) / np.linalg.norm(h_inf))
    print(
        f"two-layer width m={m:6d}: ‖H(W) − H∞‖_F/‖H∞‖_F = {err:.4f}   (× √m = "
        f"{err * np.sqrt(m):.2f})"
    )

# %% [markdown]
# ## The neural-tangents backend (optional)
#
# neural-tangents does not import on current JAX by itself; ntk_air's optional backend
# (`ntk_air.nt_backend`, installed with the `nt` extra plus `neural-tangents==0.6.5 --no-deps`)
# makes its `stax` kernels usable. When it is not installed, this cell prints why and moves on.
# Its FC NTK must equal ntk_air's: compared on a cross kernel K(x, x′), because on the diagonal of
# a ReLU self-kernel neural-tangents is accurate to about √eps only (it takes the arccos of a
# cosine that rounds to 1 − O(eps)).

# %%
from ntk_air import nt_backend  # never imports neural-tangents itself; the factories do

nt_results = []
try:
    nt_fc3 = nt_backend.kernel_fn_from_spec("fc", depth=3, activation="relu", w_std=1.5, b_std=0.1)
except nt_backend.NeuralTangentsUnavailable as err:
    nt_fc3 = None
    print(f"neural-tangents backend not available, skipping it:\n{err}")
if nt_fc3 is not None:
    x_a, x_b = unit_rows(N_INFINITE[0]), unit_rows(N_INFINITE[0], seed=1)
    reference = fc3["float64"](x_a, x_b).ntk
    err = float(np.linalg.norm(nt_fc3(x_a, x_b).ntk - reference) / np.linalg.norm(reference))
    print(f"neural-tangents FC NTK vs ntk_air, K(x, x′): rel. Frobenius error {err:.2e}")
    assert err < 1e-10
    time_engine(
        "neural-tangents FC NTK depth 3 (float64)",
        lambda x: lambda: nt_fc3(x).ntk,
        N_INFINITE,
        nt_results,
    )

# %% [markdown]
# ## Time against n
#
# On a log–log plot a cost ∝ n^p is a line of slope p. The infinite kernels and the structured
# eNTKs are dominated by O(n²) work (slope 2 once n is large enough to fill the device); the
# Jacobian contraction adds O(n·P) to build J and O(n²·P) to contract it. At small n every curve
# flattens: the cost is then the fixed overhead of dispatching a compiled computation. On a GPU
# that regime lasts long — an H100 or H200 computes a 16384 × 16384 infinite kernel in a few
# milliseconds, barely more than a 1024 × 1024 one — so there the interesting comparison is
# between engines at the largest n, and against the CPU numbers.

# %%
all_results = infinite_results + empirical_results + nt_results
fig, ax = plt.subplots(figsize=(8, 5))
for name in dict.fromkeys(r["engine"] for r in all_results):
    rows = [r for r in all_results if r["engine"] == name]
    ns = [r["n"] for r in rows]
    ts = [r["seconds"] for r in rows]
    ax.loglog(ns, ts, "o-" if len(rows) > 1 else "s", label=name)
n_ref = np.array([min(N_EMPIRICAL), max(N_INFINITE)], float)
ax.loglog(n_ref, 1e-3 * (n_ref / n_ref[0]) ** 2, "k:", label="∝ n² (reference slope)")
ax.set_xlabel("n (number of inputs)")
ax.set_ylabel("median seconds per kernel (after compilation)")
ax.set_title(f"NTK engines on {device.platform} ({device.device_kind})")
ax.grid(True, which="both", alpha=0.3)
ax.legend(fontsize=7, loc="upper left")
plt.show()

# %% [markdown]
# The same numbers as a table, largest n per engine, with throughput in kernel entries per second:

# %%
print(f"{'engine':42s} {'n':>6s} {'ms':>10s} {'entries/s':>12s}")
for name in dict.fromkeys(r["engine"] for r in all_results):
    r = [r for r in all_results if r["engine"] == name][-1]
    print(f"{name:42s} {r['n']:6d} {r['seconds'] * 1e3:10.2f} {r['n'] ** 2 / r['seconds']:12.3g}")

# %% [markdown]
# **What to take away.** For the theorem's network and for dense MLPs, never build the Jacobian:
# the closed-form infinite kernels and the structured eNTKs are orders of magnitude faster and
# equal to rounding. The generic implementations (`jacobian`, `ntvp`) are for arbitrary models
# (any `apply_fn(params, x)`, e.g. a flax CNN); use `tile_size=` to bound their memory.
# For benchmark numbers with JSON output, see `benchmarks/bench_kernels.py`.
