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
