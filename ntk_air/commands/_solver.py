"""Solver options of the CLI: the spectral path, the memory it may use, and the time limit."""

from __future__ import annotations

import argparse

from ._errors import CliError


def whole_number(text: str) -> int:
    """An argparse type for counts that may be written 20000 or 2e4 (a whole number ≥ 0)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not (value >= 0 and value == int(value)) or value > 1e18:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, got {text!r}")
    return int(value)


def add_solver_options(
    p: argparse.ArgumentParser, solvers=("dense", "topk"), why: str | None = None
) -> None:
    """--solver, --rank, --memory-budget: the spectral path and the memory it may use (`why`:
    the reason a command has only some paths, for its help)."""
    g = p.add_argument_group("solver")
    g.add_argument(
        "--solver",
        default="auto",
        choices=("auto", *solvers),
        help="spectral path: dense (K and all its eigenvectors), topk (matrix-free top-k "
        "eigenpairs, never forming K) or auto (default: dense when it fits --memory-budget)"
        if "topk" in solvers
        else "spectral path: dense, or auto (default; checked against --memory-budget)"
        + ("" if why is None else f"; {why}"),
    )
    if "topk" in solvers:
        g.add_argument(
            "--rank",
            type=int,
            default=None,
            metavar="K",
            help="eigenpairs of the top-k solver (default min(100, n))",
        )
    g.add_argument(
        "--memory-budget",
        type=float,
        default=None,
        metavar="GB",
        help="memory the run may use, in GB (default: the memory available now); a path "
        "estimated above it is refused before anything is allocated",
    )


def add_time_options(p: argparse.ArgumentParser, *, force: bool = True) -> None:
    """--time-limit and --force: long loops estimated above the limit are refused (`force`:
    False for a command whose --force means something else; only the limit then)."""
    from ..spectral._resources import DEFAULT_TIME_LIMIT

    p.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT,
        metavar="SECONDS",
        help=f"refuse runs estimated to take longer (default {DEFAULT_TIME_LIMIT:.0f} s)"
        + (" unless --force" if force else ""),
    )
    if not force:
        return
    p.add_argument(
        "--force",
        action="store_true",
        help="run even when the time estimate exceeds --time-limit",
    )


def budget_from_args(args):
    """The `resources.Budget` of the options (solver, rank, memory budget, time limit, force)."""
    from ..spectral._resources import Budget

    gb = getattr(args, "memory_budget", None)
    if gb is not None and not (gb > 0 and gb < float("inf")):
        raise CliError(f"--memory-budget must be a positive number of GB, got {gb}")
    rank = getattr(args, "rank", None)
    if rank is not None and getattr(args, "solver", "auto") == "dense":
        raise CliError("--rank applies to the top-k solver only (drop it or use --solver topk)")
    if rank is not None and rank < 1:
        raise CliError(f"--rank must be ≥ 1, got {rank}")
    limit = getattr(args, "time_limit", None)
    if limit is not None and not limit > 0:
        raise CliError(f"--time-limit must be a positive number of seconds, got {limit}")
    return Budget(
        solver=getattr(args, "solver", "auto"),
        rank=rank,
        memory_bytes=None if gb is None else int(gb * 1e9),
        seconds=float(limit) if limit is not None else Budget().seconds,
        force=bool(getattr(args, "force", False)),
    )
