"""Plumbing shared by the CLI subcommands: errors, subcommands, output, dtype, progress; the
option groups of `_data`, `_kernel` and `_solver` re-exported."""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from dataclasses import dataclass

from ._errors import CliError, cli_errors  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class CommandText:
    """A subcommand's name, `--help` line, description and examples (one command a line)."""

    name: str
    help: str
    description: str
    examples: str

    def add_to(self, subparsers) -> argparse.ArgumentParser:
        """The subcommand's parser; its `--help` ends with the examples."""
        lines = (line.strip() for line in self.examples.splitlines())
        return subparsers.add_parser(
            self.name,
            help=self.help,
            description=self.description,
            epilog="examples:\n" + "\n".join(f"  {line}" for line in lines if line),
            formatter_class=argparse.RawDescriptionHelpFormatter,
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


def same_file(path, other) -> bool:
    """Whether `path` and `other` (None: none) name one existing file."""
    paths = (path, other)
    return other is not None and all(map(os.path.exists, paths)) and os.path.samefile(*paths)


def open_report(path):
    """A `report.ReportWriter` on the output folder, checked before any work starts."""
    from ..report import OutputError, ReportWriter

    with cli_errors(errors=OutputError):
        return ReportWriter(path)


class Timer:
    """Wall-clock seconds per stage, for timings.json (never inside the results JSON)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self._t
        self._t = now


@contextlib.contextmanager
def studying(args, command: str, message=str):
    """(progress bar, `Timer`) around a command's study: a refusal becomes a `CliError` of
    `message(err)`, the time its "study" lap."""
    timer = Timer()
    with progress_bar(f"ntk-air {command}", not args.no_progress) as bar, cli_errors(message):
        yield bar, timer
    timer.lap("study")


def finish_report(writer, timer: Timer, command: str) -> None:
    """Close a command's report: the "report" lap, timings.json, then the manifest."""
    timer.lap("report")
    writer.json("timings.json", {"seconds": timer.seconds})
    writer.finish({"command": command})


# The option groups, re-exported (each imports CliError from _errors).
from ._data import add_data_options, load_dataset  # noqa: E402, F401
from ._kernel import add_kernel_options, build_kernel_fn, kernel_config  # noqa: E402, F401
from ._solver import add_solver_options, add_time_options, budget_from_args, whole_number  # noqa: E402, F401
