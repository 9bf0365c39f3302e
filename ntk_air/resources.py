"""Memory and time estimates for the dense and the top-k (matrix-free) spectral paths (core).

Used before anything large is allocated: `choose_solver` picks the dense path when K, its
eigenvectors and the eigensolver's workspace fit the memory budget and the matrix-free top-k
path otherwise, and refuses (ValueError with the estimates) when the chosen path cannot fit.
The formulas count the arrays each path holds at its peak; the rates are measured defaults
(benchmarks/scale.py, 2-core CPU, float64) that callers should override on other hardware.

Dense path (kernels → eigen.eigensystem): K (n²), the eigensolver's copy of K (n²), the
eigenvectors (n²) and LAPACK syevd's workspace (≈ 2n²): ≈ 5n² numbers; time n²·entry + c·n³.
Top-k path (operators → topk): the basis Q and its products W (2·n·max_basis), a restart's
copies of both, the blocks being orthogonalized (≈ 6·n·b), the Ritz vectors and products
(3·n·k), the label Krylov data (2·n·C·steps), and per device a copy of the block and its partial
product (2·n·(b + C)) plus the tiles' intermediates (≈ 8·t²); time passes × (½n²·entry +
2n²(b + C)·flop) / devices.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from ._checks import check_int

__all__ = [
    "Estimate",
    "SOLVERS",
    "DEFAULT_RATES",
    "estimate_dense",
    "estimate_topk",
    "choose_solver",
    "available_memory",
    "format_bytes",
]

SOLVERS = ("dense", "topk")

# Measured by benchmarks/scale.py (benchmarks/results/scale.json) on the 2-core CPU, float64,
# two-layer ReLU H∞ (d = 20); other kernels cost more per entry (NT convolutions: far more).
DEFAULT_RATES = {
    "entry_seconds": 1.2e-8,  # one kernel entry (tile evaluation), whole machine
    "flop_seconds": 1.0 / 3.0e10,  # one float64 multiply-add pair in a block product
    "eigh_seconds_per_n3": 2.0e-10,  # dense symmetric eigendecomposition with vectors
}
# Passes over K the block Krylov solver needed for k ≤ 100 at 1e-9 relative residual in
# benchmarks/scale.py (k = 100, b = 128: 5–9); used when the caller gives none.
DEFAULT_PASSES = 8


class Estimate(NamedTuple):
    """Peak memory and wall time of one spectral path (plain numbers, for printing and JSON)."""

    solver: str  # "dense" or "topk"
    memory_bytes: int  # estimated peak bytes held by the path (all devices of this process)
    seconds: float  # estimated wall time
    per_device_bytes: int  # the largest share on one device
    passes: int  # passes over K (dense: 1, the kernel evaluation)
    detail: dict  # named parts of memory_bytes (bytes) and of seconds


def _itemsize(dtype) -> int:
    name = str(np.dtype(dtype))
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
    return np.dtype(dtype).itemsize


def _rates(rates):
    out = dict(DEFAULT_RATES)
    if rates:
        unknown = set(rates) - set(out)
        if unknown:
            raise ValueError(f"unknown rate names {sorted(unknown)}; known: {sorted(out)}")
        out.update(rates)
    return out


def estimate_dense(n: int, dtype="float64", *, n_test: int = 0, rates=None) -> Estimate:
    """Memory and time of the dense path: form K (n × n), then one full eigendecomposition.

    memory ≈ itemsize · (5n² + n_test·n): K, the eigensolver's copy, the eigenvectors, the
    syevd workspace (≈ 2n²) and the test kernel K(x_test, X); time ≈ (n² + n_test·n)·entry +
    c·n³ (c = rates['eigh_seconds_per_n3']).

    Args:
      n: training points. dtype: float32/float64. n_test: test points.
      rates: overrides of DEFAULT_RATES.

    Returns:
      Estimate(solver='dense', ...).

    Example:
      >>> format_bytes(estimate_dense(100_000).memory_bytes)   # '400.0 GB'
    """
    n = check_int("n", n, minimum=1)
    n_test = check_int("n_test", n_test, minimum=0)
    size = _itemsize(dtype)
    r = _rates(rates)
    parts = {
        "kernel": n * n * size,
        "eigh_input_copy": n * n * size,
        "eigenvectors": n * n * size,
        "eigh_workspace": (2 * n * n + 6 * n + 1) * size,
        "test_kernel": n_test * n * size,
    }
    memory = sum(parts.values())
    kernel_s = (n * n + n_test * n) * r["entry_seconds"]
    eigh_s = r["eigh_seconds_per_n3"] * float(n) ** 3
    detail = {**parts, "kernel_seconds": kernel_s, "eigh_seconds": eigh_s}
    return Estimate("dense", int(memory), kernel_s + eigh_s, int(memory), 1, detail)


def estimate_topk(
    n: int,
    k: int,
    dtype="float64",
    *,
    tile: int = 2048,
    block_size: int | None = None,
    max_basis: int | None = None,
    n_labels: int = 1,
    label_steps: int = 16,
    n_devices: int = 1,
    passes: int | None = None,
    symmetric: bool = True,
    d: int = 0,
    rates=None,
) -> Estimate:
    """Memory and time of the matrix-free top-k path (`topk.topk_eigensystem` on an operator).

    memory ≈ itemsize · [4n·M + 6n·b + 3n·k + 2n·C·s + n·d] (this process's outer iteration) +
    devices · itemsize · [2n·(b + C) + 8t²] (each device's block copy, partial product, tiles),
    M = max_basis, b = block size, C = label columns, s = label steps, t = tile.
    time ≈ passes · (f·n²·entry + 2n²(b + C)·flop) / devices, f = ½ for the symmetric schedule.

    Args:
      n: points. k: eigenpairs. dtype: float32/float64. tile: rows per kernel tile.
      block_size, max_basis: as in `topk_eigensystem` (defaults the same).
      n_labels: label columns C carried in the passes; label_steps: their Krylov steps s.
      n_devices: devices sharing the tiles. passes: expected passes (default DEFAULT_PASSES).
      symmetric: the tile-pair schedule (each off-diagonal tile used twice).
      d: input features (x is held once per device too).
      rates: overrides of DEFAULT_RATES.

    Returns:
      Estimate(solver='topk', ...).

    Example:
      >>> e = estimate_topk(100_000, 100); format_bytes(e.memory_bytes)
    """
    from .topk import default_block_size  # the solver's own default, one place

    n = check_int("n", n, minimum=1)
    k = check_int("k", k, minimum=1, maximum=n)
    tile = check_int("tile", tile, minimum=1)
    n_devices = check_int("n_devices", n_devices, minimum=1)
    n_labels = check_int("n_labels", n_labels, minimum=0)
    label_steps = check_int("label_steps", label_steps, minimum=0)
    b = default_block_size(k, n) if block_size is None else check_int("block_size", block_size)
    m = min(n, max(k + 3 * b, 4 * b)) if max_basis is None else check_int("max_basis", max_basis)
    passes = DEFAULT_PASSES if passes is None else check_int("passes", passes, minimum=1)
    size = _itemsize(dtype)
    r = _rates(rates)
    t = min(tile, n)
    device = (2 * n * (b + n_labels) + 8 * t * t + n * max(d, 1)) * size
    parts = {
        "basis_and_products": 2 * n * m * size,
        "restart_copies": 2 * n * m * size,
        "blocks": 6 * n * b * size,
        "ritz_vectors": 3 * n * k * size,
        "label_krylov": 2 * n * n_labels * label_steps * size,
        "inputs": n * max(d, 1) * size,
        "devices": n_devices * device,
    }
    memory = sum(parts.values())
    fraction = 0.5 if symmetric else 1.0
    pass_s = (
        fraction * float(n) ** 2 * r["entry_seconds"]
        + 2.0 * float(n) ** 2 * (b + n_labels) * r["flop_seconds"]
    ) / n_devices
    detail = {**parts, "pass_seconds": pass_s, "block_size": b, "max_basis": m}
    return Estimate("topk", int(memory), passes * pass_s, int(device), passes, detail)


def available_memory() -> int:
    """Bytes of memory available to this process now (MemAvailable; else total physical)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def format_bytes(b: float) -> str:
    """'1.2 GB'-style (decimal units, as memory budgets are usually written)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(b) < 1000 or unit == "TB":
            return f"{b:.1f} {unit}" if unit != "B" else f"{int(b)} B"
        b /= 1000.0
    return f"{b:.1f} TB"


def choose_solver(
    n: int,
    k: int,
    dtype="float64",
    memory_budget: int | None = None,
    *,
    solver: str | None = None,
    **topk_options,
):
    """Dense when K and its eigenvectors fit the budget, else matrix-free top-k; refuse if neither.

    Args:
      n: points. k: eigenpairs wanted on the top-k path. dtype: float32/float64.
      memory_budget: bytes (default `available_memory()`).
      solver: None (automatic), "dense" or "topk" (forced: checked against the budget).
      **topk_options: passed to `estimate_topk` (tile, block_size, n_devices, passes, ...).

    Returns:
      (solver, reason, estimates): solver "dense" or "topk"; reason a one-line explanation with
      memory in GB and time; estimates {"dense": Estimate, "topk": Estimate}.

    Raises:
      ValueError: the forced or the only possible path does not fit the budget (the message
        gives both estimates and the remedy).

    Example:
      >>> solver, reason, est = choose_solver(100_000, 100, memory_budget=16 * 10**9)
      >>> solver, reason   # ('topk', 'dense needs 400.0 GB > budget 16.0 GB; top-k needs ...')
    """
    if solver is not None and solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS} or None, got {solver!r}")
    budget = available_memory() if memory_budget is None else int(memory_budget)
    if budget <= 0:
        raise ValueError(f"memory_budget must be a positive number of bytes, got {memory_budget}")
    dense = estimate_dense(n, dtype)
    top = estimate_topk(n, min(k, n), dtype, **topk_options)
    est = {"dense": dense, "topk": top}

    def describe(e):
        return f"{e.solver} needs {format_bytes(e.memory_bytes)}, ~{e.seconds:.0f} s"

    b = format_bytes(budget)
    if solver is not None:
        e = est[solver]
        if e.memory_bytes > budget:
            other = est["topk" if solver == "dense" else "dense"]
            raise ValueError(
                f"--solver {solver} cannot fit: {describe(e)} > budget {b} (n = {n}); "
                f"{describe(other)}; use the other solver, a smaller n or a larger budget"
            )
        return solver, f"{describe(e)} (forced; budget {b})", est
    if dense.memory_bytes <= budget:
        return "dense", f"{describe(dense)} ≤ budget {b}", est
    if top.memory_bytes <= budget:
        reason = f"dense needs {format_bytes(dense.memory_bytes)} > budget {b}; {describe(top)}"
        return "topk", reason, est
    raise ValueError(
        f"neither path fits the memory budget {b} at n = {n}: {describe(dense)}, {describe(top)};"
        " lower k or the block size, add devices, or raise the budget"
    )
