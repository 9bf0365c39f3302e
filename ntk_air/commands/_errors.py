"""The CLI's one error type (its own module, so every option module can import it first)."""

from __future__ import annotations

import contextlib


class CliError(Exception):
    """A user-facing error: printed as one line by `ntk-air`, exit status 2."""


@contextlib.contextmanager
def cli_errors(message=str, errors=ValueError):
    """Refusals (`errors`) raised inside become a `CliError` of `message(err)`."""
    try:
        yield
    except errors as err:
        raise CliError(message(err)) from err
