"""`ntk-air` command line: one subcommand per module of `ntk_air.commands` (`COMMANDS`)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys

from . import __version__
from ._env import after_run, check_backend, check_plotting, interrupt_handled, interrupts_raise
from .commands._common import CliError
from .commands._lists import join_space_lists

__all__ = ["main", "build_parser", "COMMANDS"]

COMMANDS = (
    "kernel",
    "air",
    "distill",
    "theorem",
    "reproduce",
    "noisy_labels",
    "entk",
    "learning_curve",
    "predict",
)
"""The `ntk-air` subcommands, each a module of `ntk_air.commands` with add_parser(subparsers) and
run(args) -> int (`_` in a module's name is `-` in the command's)."""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line refusals: `ntk-air air: error: argument --seed: …` (no usage
    block; `--help` shows it), exit status 2 as for every bad option."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The `ntk-air` argument parser, one subcommand per module of `ntk_air.commands`."""
    parser = _Parser(
        prog="ntk-air",
        description="Neural Tangent Kernel theory of wide networks: kernels, Anisotropic "
        "Information Retrieval, closed-form dynamics and self-distillation.",
    )
    parser.add_argument("--version", action="version", version=f"ntk-air {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"ntk_air.commands.{name}").add_parser(sub)
    return parser


def _safe_streams() -> None:
    """Characters the terminal's encoding lacks (PYTHONIOENCODING=ascii) are escaped, not fatal."""
    for stream in (sys.stdout, sys.stderr):
        # a replaced stream (pytest's capture, a StringIO) has none
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")


class _ToleratedStdout:
    """stdout that a full disk or a closed pipe cannot stop: the run's output is its report
    folder, so after the first OSError the lines go to the null device (the error is kept)."""

    def __init__(self, stream):
        self.stream, self.error = stream, None

    def _guarded(self, method, *args):
        try:
            return method(*args)
        except OSError as err:
            self.error = self.error or err
            # what the stream still buffers, and every later line, goes nowhere
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), self.stream.fileno())
            return None

    def write(self, text):
        if self.error is None:
            self._guarded(self.stream.write, text)
        return len(text)

    def flush(self):
        if self.error is None:
            self._guarded(self.stream.flush)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def main(argv: list[str] | None = None) -> int:
    """Run `ntk-air` with `argv` (default: sys.argv[1:]); returns the exit status.

    0 on success, 2 for a bad input or option (one line on stderr naming it), 1 for an OS error
    (disk full, permission lost mid-run), 130 when interrupted. A refused, failed or interrupted
    run leaves its output folder as it was (`report.ReportWriter`).
    """
    command = "ntk-air"
    status = 1
    stdout = None if sys.stdout is None else _ToleratedStdout(sys.stdout)  # None: fd 1 closed
    if stdout is not None:
        sys.stdout = stdout
    try:
        interrupts_raise(abandon=_abort_open_writers)  # the command's process: Ctrl-C → below
        _safe_streams()
        # The command line only writes figures to files (`Figure.savefig`, no window): matplotlib
        # gets its file backend whatever MPLBACKEND says, so a name it does not know is no error.
        os.environ["MPLBACKEND"] = "Agg"
        parser = build_parser()
        argv = sys.argv[1:] if argv is None else list(argv)
        args = parser.parse_args(join_space_lists(argv))
        command = f"ntk-air {args.command}"
        try:
            check_backend()
            if args.command != "kernel":  # every other command draws figures
                check_plotting()
        except ValueError as err:
            raise CliError(str(err)) from None
        status = int(args.func(args) or 0)
        return status
    except CliError as err:
        print(f"{command}: error: {err}", file=sys.stderr)
        status = 2
        return 2
    except KeyboardInterrupt:
        print(
            f"{command}: interrupted; outputs of earlier complete runs are intact "
            "(a report folder is updated only when a run completes)",
            file=sys.stderr,
        )
        interrupt_handled()
        status = 130
        return 130
    except OSError as err:  # disk full, permission lost mid-run, …
        where = f" ({err.filename})" if err.filename else ""
        print(f"{command}: error: {err.strerror or err}{where}", file=sys.stderr)
        return 1
    except MemoryError:
        print(
            f"{command}: error: out of memory; lower the sizes or --memory-budget",
            file=sys.stderr,
        )
        return 1
    except RuntimeError as err:  # XLA's allocation failure, past every estimate
        if "RESOURCE_EXHAUSTED" not in str(err):
            raise
        print(
            f"{command}: error: the accelerator ran out of memory "
            f"({str(err).strip().splitlines()[0][:200]}); lower the sizes or --memory-budget",
            file=sys.stderr,
        )
        return 1
    finally:
        _abort_open_writers()
        if stdout is not None:
            stdout.flush()
            sys.stdout = stdout.stream
            if stdout.error is not None and not isinstance(stdout.error, BrokenPipeError):
                print(
                    f"{command}: note: standard output could not be written "
                    f"({stdout.error.strerror or stdout.error}); what it would have shown is in "
                    "the report files",
                    file=sys.stderr,
                )
        after_run(status, failing=sys.exc_info()[0] is not None)


def _abort_open_writers() -> None:
    """`report.abort_open_writers`, when the report package was loaded (else none is open)."""
    files = sys.modules.get("ntk_air.report._files")
    if files is not None:
        files.abort_open_writers()


if __name__ == "__main__":
    sys.exit(main())
