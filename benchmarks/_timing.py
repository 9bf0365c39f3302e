"""The one timing protocol of every benchmark here: warm up (compile) once, then time.

Each call is blocked until its results are ready, so asynchronous dispatch on an accelerator
is counted. Runs under the pinned neural-tangents environment too (plain `jax` and stdlib).
"""

from __future__ import annotations

import statistics
import time
from typing import Any, NamedTuple

import jax


class Timing(NamedTuple):
    output: Any  # the last call's (ready) result
    warmup_s: float  # first call: compilation + one run
    times_s: list  # (repeats,) seconds of each timed call
    median_s: float  # median of times_s


def time_calls(fn, repeats: int) -> Timing:
    """Call `fn()` once to compile and warm up, then `repeats` more times, timing each."""
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn())
    warmup = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return Timing(out, warmup, times, statistics.median(times))


def _proc_status(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def measured(call) -> tuple[Any, float, int]:
    """(result, seconds, bytes the peak resident set grows by during `call()`): Linux, VmHWM reset
    through /proc/self/clear_refs after freeing the previous result and trimming malloc's free
    memory, then VmHWM − VmRSS (compilation counts unless a warm-up call came first)."""
    import ctypes
    import gc

    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    base = _proc_status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    t0 = time.perf_counter()
    out = call()
    seconds = time.perf_counter() - t0
    return out, seconds, _proc_status("VmHWM") - base
