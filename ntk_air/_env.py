"""The environment, checked before JAX is imported: one sentence per problem, never a traceback.

`check_environment` runs when this module is imported, first thing in `import ntk_air`. A bad
`JAX_ENABLE_X64` (JAX itself raises from deep inside its import) becomes one sentence; invoked
as the `ntk-air` command the sentence goes to stderr with exit status 2, and a Ctrl-C before the
command's own handler is in place exits 130 with one line (no traceback, nothing written).
`check_backend` turns a `JAX_PLATFORMS` that names a backend this machine lacks into one sentence.
"""

from __future__ import annotations

import os
import signal
import sys

__all__ = ["EnvironmentProblem", "check_environment", "check_backend", "is_cli"]

_TRUTH = ("y", "yes", "t", "true", "on", "1", "n", "no", "f", "false", "off", "0")


class EnvironmentProblem(ImportError):
    """An environment variable that JAX cannot work with (one sentence naming it)."""


def is_cli() -> bool:
    """Whether this process is the `ntk-air` command (`ntk-air …` or `python -m ntk_air …`)."""
    argv = getattr(sys, "orig_argv", sys.argv)
    if "-m" in argv[:-1] and argv[argv.index("-m") + 1] == "ntk_air":
        return True
    return os.path.basename(sys.argv[0] if sys.argv else "") in ("ntk-air", "ntk-air.exe")


def _interrupted_early(signum, frame):  # pragma: no cover - exercised in a subprocess
    sys.stderr.write("ntk-air: interrupted before the run started; nothing was written\n")
    sys.stderr.flush()
    os._exit(130)


def check_environment() -> None:
    """Refuse environment variables that would make JAX fail in its import, in one sentence."""
    cli = is_cli()
    if cli and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted_early)  # until cli.main takes over
    value = os.environ.get("JAX_ENABLE_X64")
    if value is not None and value.strip().lower() not in _TRUTH:
        msg = (
            f"the environment variable JAX_ENABLE_X64={value!r} is not a truth value; "
            "set it to 1 or 0, or unset it"
        )
        if cli:
            sys.stderr.write(f"ntk-air: error: {msg}\n")
            raise SystemExit(2)
        raise EnvironmentProblem(msg)


def check_backend() -> None:
    """ValueError in one sentence when `JAX_PLATFORMS` names a backend this machine lacks."""
    import jax

    try:
        jax.devices()
    except (RuntimeError, AssertionError, ValueError) as err:
        platforms = os.environ.get("JAX_PLATFORMS") or jax.config.jax_platforms
        first = (str(err).strip().splitlines() or ["no backend"])[0][:160]
        raise ValueError(
            f"JAX cannot start the backend JAX_PLATFORMS={platforms!r} on this machine "
            f"({first}); unset it or set JAX_PLATFORMS=cpu"
        ) from None


check_environment()  # at import, before `import ntk_air` imports JAX
