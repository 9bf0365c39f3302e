"""What a run records, and the one scan loop that records it (diffrax `SaveAt`-style).

`Record` says which steps are recorded and what beyond the standard metrics (u(k), an observable
`fn(snapshot)` of your own); `scan_blocks` is the loop of the kernel-limit engines and networks.

    >>> rec = Record(every=10, fn=lambda s: jnp.mean(jnp.abs(s.u - s.target)))
    >>> rec.steps(25).tolist()
    [0, 10, 20, 25]
    >>> Record(at=(0, 1, 3, 10)).steps(20).tolist()        # explicit steps, e.g. log-spaced
    [0, 1, 3, 10]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .._checks import check_int


class Snapshot(NamedTuple):
    """The state a `Record.fn` sees at a recorded step (arrays are (n, C); C = 1 for ±1 labels)."""

    step: jax.Array  # () int, the step k
    u: jax.Array  # (n, C) training predictions u(k)
    target: jax.Array  # (n, C) the target ỹ(k) the next step trains on
    test: jax.Array | None  # (n_test, C) test predictions f_k(X_test); None without test data
    params: Any = None  # network parameters θ(k) (real networks only; None in the kernel limit)
    labels: jax.Array | None = None  # (n, C) the given labels y (real networks only)
    clean: jax.Array | None = None  # (n, C) the ground truth ŷ (real networks only)


@dataclasses.dataclass(frozen=True)
class Record:
    """Which steps a run records and what (static: part of the compiled program's key)."""

    every: int = 1  # record at k = 0, every, 2·every, …, and at the last step
    predictions: bool = False  # also keep u(k) at every recorded step
    fn: Callable[[Snapshot], Any] | None = None  # fn(snapshot) -> pytree, stacked in `observed`
    at: tuple[int, ...] | None = None  # or exactly these steps (stored sorted and unique)

    def __post_init__(self):
        check_int("record every", self.every, minimum=1)
        if self.fn is not None and not callable(self.fn):
            raise TypeError(f"Record.fn must be callable(snapshot) -> pytree, got {self.fn!r}")
        if self.at is not None:
            at = np.asarray(self.at)
            if at.ndim != 1 or at.size == 0:
                raise ValueError(f"Record(at=) must be a non-empty list of steps, got {self.at!r}")
            if at.dtype.kind == "f" and np.all(np.isfinite(at)) and np.all(at == np.round(at)):
                at = at.astype(np.int64)  # whole numbers, e.g. dynamics.log_spaced_steps
            steps = sorted({check_int("Record(at=) step", s, minimum=0) for s in at.tolist()})
            object.__setattr__(self, "at", tuple(steps))  # frozen: hashable, a static compile key

    def steps(self, steps: int) -> np.ndarray:
        """The recorded steps for a run of `steps` steps: (r,) int64."""
        check_int("steps", steps, minimum=0)
        if self.at is None:  # 0, every, 2·every, … ≤ steps, and steps itself
            return np.unique(np.append(np.arange(0, steps + 1, self.every), steps))
        if self.at[-1] > steps:
            raise ValueError(
                f"Record(at=) asks for step {self.at[-1]} but the run has {steps} steps; "
                "record at steps ≤ steps"
            )
        return np.asarray(self.at, dtype=np.int64)


def scan_blocks(advance, observe, state, *, steps: int, every: int, at=None):
    """Observe at step 0, after each block of `every` steps and after the remainder (or exactly at
    the steps `at`, then run on to `steps`).

    Args:
      advance: advance(state, r) -> state after r more steps (r a static int; with `at`, a traced
        int32 scalar).
      observe: observe(state) -> pytree of arrays.
      state: the initial state (a pytree).
      steps: total number of steps (a static int).
      every: steps per block (a static int).
      at: None, or the sorted, unique steps to record (as `Record.at`), each ≤ steps.

    Returns:
      (final state, observations stacked over the recorded steps: leading axis (r,)).
    """
    if at is not None:
        # One compiled segment body for every gap: the gaps are data of the scan.
        gaps = np.diff(np.asarray((0, *at), dtype=np.int64))

        def segment(s, r):
            s = advance(s, r)
            return s, observe(s)

        state, obs = lax.scan(segment, state, jnp.asarray(gaps, jnp.int32))
        if steps > at[-1]:
            state = advance(state, steps - at[-1])
        return state, obs
    n_blocks, rem = divmod(steps, every)
    obs0 = observe(state)

    def body(s, _):
        s = advance(s, every)
        return s, observe(s)

    state, obs = lax.scan(body, state, None, length=n_blocks)
    if rem:
        state = advance(state, rem)
        obs = jax.tree_util.tree_map(
            lambda a, b: jnp.concatenate([a, b[None]]), obs, observe(state)
        )
    obs = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b]), obs0, obs)
    return state, obs
