"""Memory and time estimates of the dense and the top-k spectral paths, and the choice between
them (`plan_solver`), refused (ResourceError) before anything is allocated when nothing fits."""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np

from .._checks import check_int

_SOLVERS = ("dense", "topk")

# benchmarks/results/scale.json: 2-core CPU, float64, H∞ (d = 20); other kernels cost more.
DEFAULT_RATES = {
    "entry_seconds": 1.2e-8,  # one kernel entry (tile evaluation), whole machine
    "flop_seconds": 1.0 / 3.0e10,  # one float64 multiply-add pair in a block product
    "eigh_seconds_per_n3": 2.0e-10,  # dense symmetric eigendecomposition with vectors
    "step_seconds": 5.0e-6,  # fixed cost of one step of a compiled loop (lax.scan), per run
}
"""Cost rates behind the time estimates (seconds per kernel entry, per multiply-add, per n³ of
dense eigh, per compiled loop step); measured on the 2-core CPU, override for other hardware."""
# Passes the block Krylov solver needed for k ≤ 100 at 1e-9 in benchmarks/scale.py (5–9).
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

    memory ≈ itemsize · (7n² + n_test·n): K, its temporaries (2n²), eigh's copy, eigenvectors and
    workspace (2n²), K(x_test, X); time ≈ (n² + n_test·n)·entry + c·n³ (measured peak 7.4n²).

    Args:
      n: training points. dtype: float32/float64. n_test: test points.
      rates: overrides of DEFAULT_RATES.

    Returns:
      Estimate(solver='dense', ...).

    Example:
      >>> format_bytes(estimate_dense(100_000).memory_bytes)
      '560.0 GB'
    """
    n = check_int("n", n, minimum=1)
    n_test = check_int("n_test", n_test, minimum=0)
    size = _itemsize(dtype)
    r = _rates(rates)
    parts = {
        "kernel": n * n * size,
        "kernel_temporaries": 2 * n * n * size,
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
    """Memory and time of the matrix-free top-k path (`topk_eigensystem` on an operator).

    memory ≈ itemsize · [4n·M + 6n·b + 3n·k + 2n·C·s + n·d + devices · (2n·(b + C) + 8t²)],
    M = max_basis, b = block size, C = label columns, s = label steps, t = tile;
    time ≈ passes · (f·n²·entry + 2n²(b + C)·flop) / devices, f = ½ for the symmetric schedule.

    Args:
      n: points. k: eigenpairs. dtype: float32/float64. tile: rows per kernel tile.
      block_size: as in `topk_eigensystem` (default the same), and so is max_basis.
      n_labels: label columns C carried in the passes; label_steps: their Krylov steps s.
      n_devices: devices sharing the tiles. passes: expected passes (default DEFAULT_PASSES).
      symmetric: the tile-pair schedule (each off-diagonal tile used twice).
      d: input features (x is held once per device too).
      rates: overrides of DEFAULT_RATES.

    Returns:
      Estimate(solver='topk', ...).

    Example:
      >>> e = estimate_topk(100_000, 100); format_bytes(e.memory_bytes)
      '3.0 GB'
    """
    from ._topk import _default_max_basis, default_block_size  # the solver's own defaults

    n = check_int("n", n, minimum=1)
    k = check_int("k", k, minimum=1, maximum=n)
    tile = check_int("tile", tile, minimum=1)
    n_devices = check_int("n_devices", n_devices, minimum=1)
    n_labels = check_int("n_labels", n_labels, minimum=0)
    label_steps = check_int("label_steps", label_steps, minimum=0)
    b = default_block_size(k, n) if block_size is None else check_int("block_size", block_size)
    m = _default_max_basis(k, b, n) if max_basis is None else check_int("max_basis", max_basis)
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


_DEFAULT_RANK = 100  # eigenpairs of the top-k path when no rank is given (capped at n)
DEFAULT_TIME_LIMIT = 3600.0
"""Seconds: loops estimated longer are refused unless forced."""
_REQUESTS = ("auto", "dense", "topk")


class ResourceError(ValueError):
    """A request that cannot fit the memory budget or the time limit, refused before any work."""


class Budget(NamedTuple):
    """What a study may use, and how its spectral solver is chosen (plain values)."""

    solver: str = "auto"  # "auto" (dense when it fits the memory budget), "dense" or "topk"
    rank: int | None = None  # eigenpairs k of the top-k path (None: min(_DEFAULT_RANK, n))
    memory_bytes: int | None = None  # the memory budget (None: `available_memory()`)
    seconds: float = DEFAULT_TIME_LIMIT  # loops estimated longer are refused unless `force`
    force: bool = False  # run such loops anyway (memory is never forced)


class SolverChoice(NamedTuple):
    """The spectral path a study will take, with its estimates (made before allocating)."""

    solver: str  # "dense" or "topk"
    requested: str  # "auto", "dense" or "topk"
    rank: int  # eigenpairs computed: n (dense) or k (top-k)
    memory_bytes: int  # estimated peak memory of the chosen path
    seconds: float  # estimated wall time of the chosen path
    budget_bytes: int  # the memory budget it was checked against
    reason: str  # one line: why this path
    estimates: dict  # {"dense": Estimate, "topk": Estimate}

    def line(self) -> str:
        """One line for the terminal: the choice, its memory (GB) and time estimate."""
        what = "dense eigendecomposition" if self.solver == "dense" else f"top-{self.rank}"
        return (
            f"solver: {self.solver} ({self.requested}; {what}), estimated "
            f"{_gb(self.memory_bytes)} of {_gb(self.budget_bytes)} budget, "
            f"~{_seconds(self.seconds)}"
        )


class LoopEstimate(NamedTuple):
    """Memory and time of a study's long loops (GD steps, rounds, network training)."""

    what: str  # e.g. "distill: 2000 steps × 19 rules"
    seconds: float  # estimated wall time
    memory_bytes: int  # estimated memory of what the loops record
    detail: dict  # named parts (seconds and bytes)

    def line(self) -> str:
        """One line for the terminal."""
        return f"{self.what}: ~{_seconds(self.seconds)}, {_gb(self.memory_bytes)}"


def _gb(b: float) -> str:
    """Bytes in GB, always (the unit the CLI's lines and refusals use)."""
    return f"{b / 1e9:.3g} GB"


def _seconds(s: float) -> str:
    if s < 120:
        return f"{s:.2g} s"
    if s < 2 * 3600:
        return f"{s / 60:.0f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.3g} days"


def _budget_bytes(budget: Budget) -> int:
    if budget.memory_bytes is None:
        return available_memory()
    b = budget.memory_bytes
    if isinstance(b, bool) or not isinstance(b, int | float | np.integer | np.floating) or b <= 0:
        raise ValueError(f"the memory budget must be a positive number of bytes, got {b!r}")
    return int(b)


def _max_dense_n(budget_bytes: int, dtype="float64", *, n_test: int = 0) -> int:
    """The largest n whose dense path (`estimate_dense`) fits `budget_bytes` (0 if none)."""
    size = _itemsize(dtype)
    a, b, c = 7.0 * size, float(size) * (6 + n_test), float(size) - float(budget_bytes)
    if c >= 0:
        return 0
    n = int((-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)) + 2
    while n > 0 and estimate_dense(n, dtype, n_test=n_test).memory_bytes > budget_bytes:
        n -= 1
    return n


def _max_topk_rank(n: int, budget_bytes: int, dtype="float64", **topk_options) -> int:
    """The largest k ≤ n whose top-k path (`estimate_topk`) fits `budget_bytes` (0 if none)."""
    lo, hi = 0, n
    while lo < hi:  # the estimate grows with k
        mid = (lo + hi + 1) // 2
        if estimate_topk(n, mid, dtype, **topk_options).memory_bytes <= budget_bytes:
            lo = mid
        else:
            hi = mid - 1
    return lo


def plan_solver(
    n: int,
    *,
    budget: Budget | None = None,
    dtype="float64",
    n_test: int = 0,
    n_labels: int = 1,
    d: int = 0,
    tile: int = 1024,
    solvers=_SOLVERS,
    what: str = "the study",
    rates=None,
) -> SolverChoice:
    """Dense or top-k for a study of n points, checked against the memory budget first.

    "auto": dense when `estimate_dense` fits the budget, else top-k when `estimate_topk` fits;
    "dense"/"topk": that path, checked; a refusal names the options that would fit.

    Args:
      n: training points. budget: `Budget` (solver, rank, memory). dtype: float32/float64.
      n_test: test points. n_labels: label columns carried by the top-k passes. d: features.
      tile: rows per tile of the operator. solvers: the paths this study has.
      what: the study's name, for messages. rates: overrides of DEFAULT_RATES.

    Returns:
      SolverChoice.

    Raises:
      ResourceError: the chosen path cannot fit (nothing was allocated).

    Example:
      >>> plan_solver(100_000, budget=Budget(memory_bytes=8 * 10**9)).solver
      'topk'
      >>> plan_solver(1000).solver
      'dense'
    """
    n = check_int("n", n, minimum=1)
    budget = Budget() if budget is None else budget
    if budget.solver not in _REQUESTS:
        raise ValueError(f"solver must be one of {_REQUESTS}, got {budget.solver!r}")
    if budget.solver != "auto" and budget.solver not in solvers:
        raise ResourceError(
            f"--solver {budget.solver} is not available for {what} (it has: "
            f"{', '.join(solvers)}); use --solver {solvers[0]}"
        )
    if budget.rank is not None:
        check_int("rank", budget.rank, minimum=1, maximum=n)
    k = min(_DEFAULT_RANK, n) if budget.rank is None else int(budget.rank)
    size_budget = _budget_bytes(budget)
    topk_opts = dict(tile=tile, n_labels=n_labels, d=d, rates=rates)
    est = {
        "dense": estimate_dense(n, dtype, n_test=n_test, rates=rates),
        "topk": estimate_topk(n, k, dtype, **topk_opts),
    }
    gb = _gb(size_budget)

    def fits(name):
        return est[name].memory_bytes <= size_budget

    def choice(name, reason):
        e = est[name]
        rank = n if name == "dense" else k
        return SolverChoice(
            name, budget.solver, rank, e.memory_bytes, e.seconds, size_budget, reason, est
        )

    if budget.solver == "auto":
        if fits("dense"):
            return choice("dense", f"dense fits: {_gb(est['dense'].memory_bytes)} ≤ {gb}")
        if "topk" in solvers and fits("topk"):
            return choice(
                "topk",
                f"dense needs {_gb(est['dense'].memory_bytes)} > budget {gb}; "
                f"top-{k} needs {_gb(est['topk'].memory_bytes)}",
            )
    elif fits(budget.solver):
        return choice(budget.solver, f"--solver {budget.solver}: fits the budget {gb}")
    options = []
    if "topk" in solvers:
        k_max = _max_topk_rank(n, size_budget, dtype, **topk_opts)
        if k_max >= 1:
            k_fit = min(k, k_max)
            options.append(
                f"--solver topk --rank {k_fit} "
                f"({_gb(estimate_topk(n, k_fit, dtype, **topk_opts).memory_bytes)})"
            )
    n_max = _max_dense_n(size_budget, dtype, n_test=n_test)
    if n_max >= 1 and "dense" in solvers:
        options.append(f"--n-train {n_max} (dense)")
    avail = available_memory()
    if budget.memory_bytes is not None and size_budget < avail:
        options.append(f"--memory-budget up to {_gb(avail)} (available now)")
    wanted = "dense" if budget.solver == "auto" else budget.solver
    e = est[wanted]
    msg = f"{what} cannot fit: {wanted} at n = {n} needs {_gb(e.memory_bytes)} > memory budget {gb}"
    if budget.solver == "auto" and "topk" in solvers:
        msg += f" (top-{k} needs {_gb(est['topk'].memory_bytes)})"
    msg += "; nothing was allocated. " + (
        "Options that fit: " + "; ".join(options) if options else "No option fits this budget"
    )
    raise ResourceError(msg)


_DEFAULT_REMEDY = (
    "Use fewer steps, or --force to run it anyway",
    " (--force does not lift a memory limit). Use fewer steps, a larger recording period or "
    "smaller sizes",
)


def check_loop(
    estimate: LoopEstimate,
    budget: Budget | None = None,
    *,
    remedy: tuple[str, str] | None = None,
) -> LoopEstimate:
    """Refuse a study's loops that cannot fit the memory budget or run past `budget.seconds`.

    Args:
      estimate: the study's `LoopEstimate`. budget: `Budget`.
      remedy: (time, memory): what would fit, ending each refusal (default: fewer steps or
        --force for time; fewer steps, a larger recording period or smaller sizes for memory).

    Returns:
      The estimate, unchanged, when it fits.

    Raises:
      ResourceError: with the estimate and the remedy.

    Example:
      >>> est = LoopEstimate("distill: 10⁹ steps", 4e5, 10**6, {})
      >>> check_loop(est, Budget(force=True)).seconds
      400000.0
    """
    budget = Budget() if budget is None else budget
    size_budget = _budget_bytes(budget)
    time_fix, memory_fix = (remedy[0], f". {remedy[1]}") if remedy else _DEFAULT_REMEDY
    if estimate.seconds > budget.seconds and not budget.force:
        raise ResourceError(
            f"{estimate.what} is estimated to take ~{_seconds(estimate.seconds)} (> the "
            f"{_seconds(budget.seconds)} limit) and to need "
            f"{_gb(estimate.memory_bytes)}; nothing was run. {time_fix}"
        )
    if estimate.memory_bytes > size_budget:
        raise ResourceError(
            f"{estimate.what} would need {_gb(estimate.memory_bytes)} > memory "
            f"budget {_gb(size_budget)} (~{_seconds(estimate.seconds)}); nothing was "
            f"allocated{memory_fix}"
        )
    return estimate


def estimate_kernel(
    n1: int,
    n2: int,
    dtype="float64",
    *,
    tile: int | None = None,
    outputs: int = 2,
    depth: int = 1,
    rates=None,
) -> Estimate:
    """Memory and time of one kernel evaluation K(x1, x2) of n1 × n2 entries (`ntk-air kernel`).

    memory ≈ itemsize · n2 · (2·outputs·n1 + 6·t): the kernels on the device and the host, six
    (t × n2) intermediates of a tile of t rows (t = n1 untiled); time ≈ n1·n2·depth·entry.

    Example:
      >>> format_bytes(estimate_kernel(100_000, 100_000).memory_bytes)  # 4·8·10¹⁰ + 6·8·10¹⁰
      '800.0 GB'
    """
    n1 = check_int("n1", n1, minimum=1)
    n2 = check_int("n2", n2, minimum=1)
    t = n1 if tile is None else min(check_int("tile", tile, minimum=1), n1)
    size = _itemsize(dtype)
    parts = {
        "kernels": outputs * n1 * n2 * size,
        "host_copies": outputs * n1 * n2 * size,
        "tile_intermediates": 6 * t * n2 * size,
    }
    seconds = float(n1) * n2 * max(1, int(depth)) * _rates(rates)["entry_seconds"]
    memory = sum(parts.values())
    return Estimate("kernel", int(memory), seconds, int(memory), 1, {**parts, "seconds": seconds})
