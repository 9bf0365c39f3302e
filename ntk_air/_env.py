"""The environment, checked before JAX is imported (one sentence per problem), and Ctrl-C in the
`ntk-air` command: it reaches the main code even from a callback; a run not ended a few seconds
later, or a second Ctrl-C, ends the process with status 130."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

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
    _exit_now("ntk-air: interrupted before the run started; nothing was written")


def _exit_now(line: str | None, status: int = 130) -> None:  # pragma: no cover - subprocess
    """Write `line` (if any) to stderr and end the process at once."""
    with contextlib.suppress(Exception):  # a closed or broken stream: end anyway
        if line:
            sys.stderr.write(line + "\n")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    os._exit(status)


GRACE_SECONDS = 5.0
"""Seconds the command has to end after Ctrl-C before it is ended without its clean-up."""
_INTERRUPT = {"first": None, "again": False, "handled": False, "abandon": None}


def _interrupt(signum, frame):  # pragma: no cover - exercised in a subprocess
    if frame is not None and frame.f_code is _reraise_swallowed.__code__:
        _raise_later()  # never inside the hook itself: Python would print it, not raise it
        return
    if _INTERRUPT["again"]:  # a swallowed interrupt, raised again
        _INTERRUPT["again"] = False
        raise KeyboardInterrupt
    if _INTERRUPT["first"] is not None:  # a second Ctrl-C: end now
        _abandon("ntk-air: interrupted again; stopped at once")
    _INTERRUPT["first"] = True
    threading.Thread(target=_last_resort, name="ntk-air-interrupt", daemon=True).start()
    raise KeyboardInterrupt


def _raise_later() -> None:  # pragma: no cover - exercised in a subprocess
    """Interrupt the main thread again in a moment (outside the callback)."""
    import _thread

    _INTERRUPT["again"] = True
    timer = threading.Timer(0.01, _thread.interrupt_main)
    timer.daemon = True
    timer.start()


def _abandon(line: str) -> None:  # pragma: no cover - exercised in a subprocess
    cleanup = _INTERRUPT["abandon"]
    try:
        if cleanup is not None:
            cleanup()
    finally:
        _exit_now(None if _INTERRUPT["handled"] else line)


def _last_resort() -> None:  # pragma: no cover - exercised in a subprocess
    """End a run that Ctrl-C did not end within GRACE_SECONDS (an interrupt lost in C++ code)."""
    import time

    time.sleep(GRACE_SECONDS)
    _abandon("ntk-air: interrupted; the run did not stop by itself and was ended")


def _reraise_swallowed(unraisable) -> None:  # pragma: no cover - exercised in a subprocess
    """sys.unraisablehook raising a KeyboardInterrupt a callback swallowed in the main thread."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt):
        _raise_later()
        return
    sys.__unraisablehook__(unraisable)


def interrupts_raise(abandon=None) -> bool:
    """Ctrl-C raises KeyboardInterrupt in the `ntk-air` command's main thread from here on;
    `abandon()` runs before a forced end. Returns whether it took over."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGINT) is not _interrupted_early:
        return False
    _INTERRUPT.update(first=None, again=False, handled=False, abandon=abandon)
    sys.unraisablehook = _reraise_swallowed
    signal.signal(signal.SIGINT, _interrupt)
    return True


def interrupt_handled() -> None:
    """The command has reported the interrupt (its one line); a later forced end adds none."""
    _INTERRUPT["handled"] = True


def after_run(status: int, *, failing: bool = False) -> None:
    """End the command's own process with `status` now, skipping the teardown (where Ctrl-C would
    kill it without a line); while an exception propagates (`failing`), let the teardown run."""
    if signal.getsignal(signal.SIGINT) is not _interrupt:
        return  # not the command's own process (e.g. cli.main called from Python)
    if failing:
        signal.signal(signal.SIGINT, lambda s, f: _exit_now(None, 130))
        return
    _exit_now(None, status)


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


def _first_sentence(text: str, limit: int = 200) -> str:
    line = (text.strip().splitlines() or [""])[0]
    for end in (". ", "; "):
        if end in line:
            line = line[: line.index(end)]
    return line if len(line) <= limit else line[: limit - 1] + "…"


_XLA_PROBE = "import jax; jax.devices()"
_XLA_FLAGS_ACCEPTED: set = set()  # values of XLA_FLAGS this process has seen accepted


def _check_xla_flags() -> None:
    """ValueError when XLA rejects `XLA_FLAGS` (it would end this process)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if not flags.strip() or flags in _XLA_FLAGS_ACCEPTED:
        return
    import subprocess

    try:
        proc = subprocess.run(
            [sys.executable, "-c", _XLA_PROBE],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            timeout=300,
        )
    except (OSError, subprocess.SubprocessError):  # cannot probe: let JAX decide
        return
    if proc.returncode == 0:
        _XLA_FLAGS_ACCEPTED.add(flags)
        return
    said = [ln for ln in proc.stderr.splitlines() if "XLA_FLAGS" in ln]
    if not said and proc.returncode > 0:  # failed for another reason (JAX_PLATFORMS, …)
        return
    why = said[-1] if said else f"XLA ended with signal {-proc.returncode}"
    why = why.split("] ", 1)[-1]  # drop glog's "F1206 12:00:00 … file.cc:234] " prefix
    raise ValueError(
        f"XLA rejects the environment variable XLA_FLAGS={flags!r} ({_first_sentence(why)}); "
        "fix or unset it"
    )


def check_backend() -> None:
    """ValueError when `JAX_PLATFORMS` names a backend this machine lacks or XLA rejects
    `XLA_FLAGS` (tried in a child process)."""
    import jax

    _check_xla_flags()
    try:
        jax.devices()
    except (RuntimeError, AssertionError, ValueError) as err:
        platforms = os.environ.get("JAX_PLATFORMS") or jax.config.jax_platforms
        raise ValueError(
            f"JAX cannot start the backend JAX_PLATFORMS={platforms!r} on this machine "
            f"({_first_sentence(str(err)) or 'no backend'}); unset it or set JAX_PLATFORMS=cpu"
        ) from None


def check_plotting() -> None:
    """ValueError in one sentence when matplotlib rejects `MPLBACKEND` in its import."""
    try:
        import matplotlib  # noqa: F401
    except ValueError as err:
        value = os.environ.get("MPLBACKEND")
        if value is None or "backend" not in str(err):
            raise
        raise ValueError(
            f"matplotlib rejects the environment variable MPLBACKEND={value!r} (not a backend "
            "it knows); unset it or set MPLBACKEND=Agg"
        ) from None


check_environment()  # at import, before `import ntk_air` imports JAX
