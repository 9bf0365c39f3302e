"""Plumbing shared by the CLI subcommands: errors, subcommands, output, dtype, progress.

The option groups live in their own modules and are re-exported here: `_data` (DATA.npz or a
built-in data set, sizes), `_kernel` (architecture, dtype, tiling, backend), `_solver` (spectral
path, memory, time), `_config` (configs from options), `_lists` (comma-list options).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from ._errors import CliError

__all__ = [
    "CliError",
    "add_data_options",
    "add_kernel_options",
    "add_output_options",
    "load_dataset",
    "build_kernel_fn",
    "kernel_config",
    "setup_dtype",
    "progress_bar",
    "open_report",
    "Timer",
    "finish_report",
    "add_command",
    "CommandText",
    "add_solver_options",
    "add_time_options",
    "budget_from_args",
    "whole_number",
]


def add_command(subparsers, name: str, *, help: str, description: str, examples):
    """A subcommand whose `--help` ends with example command lines."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog="examples:\n" + "\n".join(f"  {e}" for e in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


@dataclass(frozen=True)
class CommandText:
    """A subcommand's texts: its name, `--help` line, description and example command lines.

    `examples` holds one command line a line (indentation and blank lines are dropped).
    """

    name: str
    help: str
    description: str
    examples: str

    def add_to(self, subparsers) -> argparse.ArgumentParser:
        """The subcommand's parser (`add_command` with these texts)."""
        lines = (line.strip() for line in self.examples.splitlines())
        return add_command(
            subparsers,
            self.name,
            help=self.help,
            description=self.description,
            examples=tuple(line for line in lines if line),
        )


def add_output_options(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--out", default=default, help=f"output folder (default {default})")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def setup_dtype(args) -> str:
    """Turn JAX x64 on for float64 (must happen before any array is created)."""
    import jax

    if getattr(args, "dtype", "float64") == "float64":
        jax.config.update("jax_enable_x64", True)
    return getattr(args, "dtype", "float64")


class progress_bar:
    """A tqdm bar driven by a study's progress(stage, done, total) callback (a context manager)."""

    def __init__(self, desc: str, enabled: bool):
        self.desc, self.enabled, self.bar = desc, enabled, None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="stage")
        self.bar.set_postfix_str(stage)
        self.bar.update(done - self.bar.n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def open_report(path):
    """A `report.ReportWriter` on the output folder, checked before any work starts."""
    from ..report import OutputError, ReportWriter

    try:
        return ReportWriter(path)
    except OutputError as err:
        raise CliError(str(err)) from err


class Timer:
    """Wall-clock seconds per stage, for timings.json (never inside the results JSON)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self._t
        self._t = now


def finish_report(writer, timer: Timer, command: str) -> None:
    """Close a command's report: the "report" lap, timings.json, then the manifest."""
    timer.lap("report")
    writer.json("timings.json", {"seconds": timer.seconds})
    writer.finish({"command": command})


# The option groups, re-exported (each imports CliError from _errors).
from ._data import add_data_options, load_dataset  # noqa: E402
from ._kernel import add_kernel_options, build_kernel_fn, kernel_config  # noqa: E402
from ._solver import (  # noqa: E402
    add_solver_options,
    add_time_options,
    budget_from_args,
    whole_number,
)
