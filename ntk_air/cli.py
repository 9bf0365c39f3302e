"""`ntk-air` command line: kernel, air, distill, theorem, reproduce, noisy-labels, entk,
learning-curve."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .commands._common import CliError

__all__ = ["main", "build_parser", "COMMANDS"]

# Each module in ntk_air.commands exposes add_parser(subparsers) and run(args) -> int
# (modules noisy_labels, learning_curve register noisy-labels, learning-curve).
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
"""The `ntk-air` subcommands, each a module of `ntk_air.commands`."""


def build_parser() -> argparse.ArgumentParser:
    """The `ntk-air` argument parser, one subcommand per module of `ntk_air.commands`."""
    parser = argparse.ArgumentParser(
        prog="ntk-air",
        description="Neural Tangent Kernel theory of wide networks: kernels, Anisotropic "
        "Information Retrieval, closed-form dynamics and self-distillation.",
    )
    parser.add_argument("--version", action="version", version=f"ntk-air {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"ntk_air.commands.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run `ntk-air` with `argv` (default: sys.argv[1:]); returns the exit status.

    0 on success, 2 for a bad input or option (one line on stderr naming it), 1 for an OS error
    (disk full, permission lost mid-run), 130 when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as err:
        print(f"ntk-air {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"ntk-air {args.command}: interrupted; outputs of earlier complete runs are intact "
            "(files are written atomically; an unfinished report has no manifest.json)",
            file=sys.stderr,
        )
        return 130
    except OSError as err:  # disk full, permission lost mid-run, …
        where = f" ({err.filename})" if err.filename else ""
        print(f"ntk-air {args.command}: error: {err.strerror or err}{where}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
