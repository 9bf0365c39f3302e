"""The CLI's one error type (its own module, so every option module can import it first)."""

from __future__ import annotations

__all__ = ["CliError"]


class CliError(Exception):
    """A user-facing error: printed as one line by `ntk-air`, exit status 2."""
