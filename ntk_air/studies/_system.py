"""What every study of one data set shares: its kernels and their one eigendecomposition."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..data import dataset_task
from ..spectral._eigen import Eigensystem, eigensystem
from ..spectral._matfree import deflated_krylov, ritz_reduction
from ..spectral._operators import kernel_diagonal, kernel_operator
from ..spectral._problem import LinearProblem, linear_problem
from ..spectral._resources import Budget, SolverChoice, plan_solver
from ..spectral._topk import topk_eigensystem

DEFAULT_KRYLOV_STEPS = 16
"""Passes of `matfree.deflated_krylov` of (y, ŷ) behind the top-k reduction."""


class KernelSystem(NamedTuple):
    """A data set's kernels and their one `Eigensystem` (dense, or the top-k Rayleigh–Ritz
    reduction with `eig.rest` set), shared by every study of it."""

    ntk: jax.Array | None  # (n, n) K(X, X); None on the top-k path
    ntk_test: jax.Array | None  # (n_test, n) K(X_test, X); None without test points or top-k
    eig: Eigensystem  # dense: (n,), (n, n); top-k: (m,), (n, m) and eig.rest
    kv_test: jax.Array | None = None  # (n_test, m) K(X_test, X) V on the top-k path
    coarse: KernelSystem | None = None  # top-k: the reduction on fewer blocks (error estimate)
    solver: SolverChoice | None = None  # the plan it was built by (None: dense, unplanned)
    krylov_steps: int = 0  # top-k: Krylov blocks of (y, ŷ) behind the reduction (passes)

    def problem(self, dataset, *, kernel: bool = False) -> LinearProblem:
        """The data set's `LinearProblem` on this system (kernel=True: with K, if at hand)."""
        test = len(dataset.x_test) > 0
        return linear_problem(
            self.eig,
            dataset.y,
            dataset.y_clean,
            k_test_train=self.ntk_test if self.kv_test is None else None,
            kv_test=self.kv_test,
            y_test_clean=dataset.y_test_clean if test else None,
            kernel=self.ntk if kernel else None,
            task=dataset_task(dataset),
        )


def kernel_system(
    dataset, kernel_fn, plan: SolverChoice | None = None, *, krylov_steps=DEFAULT_KRYLOV_STEPS
) -> KernelSystem:
    """K(X, X), K(X_test, X) and the eigendecomposition of K(X, X), computed once — or, when the
    plan says top-k, the reduction of K to its top eigenvectors and the labels' Krylov space.

    Args:
      dataset: a `data.Dataset`.
      kernel_fn: a `KernelFn` (its `.ntk`); the top-k path needs a tiled one (`block_fn`).
      plan: a `resources.SolverChoice` (`air_plan`, `distill_plan`); None: dense, unplanned.
      krylov_steps: top-k only: passes of `matfree.deflated_krylov` of (y, ŷ).

    Returns:
      KernelSystem.

    Example:
      >>> kernel_fn = ntk_air.kernels.two_layer_relu_kernel_fn()
      >>> system = kernel_system(ntk_air.data.clusters(), kernel_fn)
      >>> system.ntk.shape
      (160, 160)
    """
    if not callable(kernel_fn):
        raise TypeError(
            "kernel_fn must be a kernel function kernel_fn(x1, x2=None) -> Kernel (e.g. "
            f"ntk_air.kernels.two_layer_relu_kernel_fn()), got {type(kernel_fn).__name__}"
        )
    if plan is not None and plan.solver == "topk":
        return _topk_system(dataset, kernel_fn, plan, krylov_steps)
    ntk = kernel_fn(dataset.x).ntk
    ntk_test = kernel_fn(dataset.x_test, dataset.x).ntk if len(dataset.x_test) else None
    return KernelSystem(ntk=ntk, ntk_test=ntk_test, eig=eigensystem(ntk), solver=plan)


def require_tiled(kernel_fn) -> None:
    """Refuse a kernel function without `block_fn` (the top-k path evaluates K tile by tile)."""
    if not callable(getattr(kernel_fn, "block_fn", None)):
        raise ValueError(
            "the top-k solver needs a tiled kernel function (kernels.from_pairwise, "
            "fc_kernel_fn, two_layer_relu_kernel_fn, nt_backend); use the dense solver"
        )


def _coarse_steps(top, krylov, block: int) -> int | None:
    """The most Krylov blocks s' < s whose reduction has ≥ 2·block fewer columns than the full."""
    full = top.eigenvalues.shape[0] + int(krylov.basis.shape[1])
    for steps in range(int(krylov.steps) - 1, 0, -1):
        if ritz_reduction(top, krylov, steps).eigenvalues.shape[0] <= full - 2 * block:
            return steps
    return None


def _topk_system(dataset, kernel_fn, plan: SolverChoice, krylov_steps: int) -> KernelSystem:
    """Top-k pairs, the reductions on all and on fewer Krylov blocks, K(X_test, X)·V in one pass."""
    require_tiled(kernel_fn)
    y = np.asarray(dataset.y)
    start = np.concatenate(
        [-y.reshape(len(y), -1), np.asarray(dataset.y_clean).reshape(len(y), -1)], axis=1
    )
    op = kernel_operator(kernel_fn, dataset.x)
    top = topk_eigensystem(op, plan.rank)
    krylov = deflated_krylov(
        op, top, start.astype(np.dtype(top.eigenvectors.dtype)), max(1, krylov_steps)
    )
    trace = float(jnp.sum(kernel_diagonal(kernel_fn, dataset.x)))
    eig = ritz_reduction(top, krylov, trace=trace)
    coarse_steps = _coarse_steps(top, krylov, start.shape[1])
    coarse = (
        None if coarse_steps is None else ritz_reduction(top, krylov, coarse_steps, trace=trace)
    )
    kv = kv_coarse = None
    if len(dataset.x_test):
        test_op = kernel_operator(kernel_fn, dataset.x_test, dataset.x)
        vectors = [eig.eigenvectors] + ([] if coarse is None else [coarse.eigenvectors])
        both = test_op.apply(jnp.concatenate(vectors, axis=1))
        m = eig.eigenvalues.shape[0]
        kv, kv_coarse = both[:, :m], (None if coarse is None else both[:, m:])
    coarse_system = None
    if coarse is not None:
        coarse_system = KernelSystem(None, None, coarse, kv_coarse, None, plan, coarse_steps)
    return KernelSystem(None, None, eig, kv, coarse_system, plan, int(krylov.steps))


def data_summary(dataset) -> dict:
    """Name, sizes and the scalar metadata of a data set (no index arrays), for reports."""
    info = {
        k: v
        for k, v in dataset.info.items()
        if v is None or isinstance(v, bool | int | float | str | np.generic)
    }
    return {
        "name": dataset.name,
        "n": int(dataset.x.shape[0]),
        "d": int(np.prod(dataset.x.shape[1:])),
        "n_test": int(dataset.x_test.shape[0]),
        "label_shape": list(np.shape(dataset.y)),
        "one_hot": bool(np.ndim(dataset.y) == 2),
        **info,
    }


def sizes(dataset) -> tuple[int, int, int]:
    """(n, n_test, label columns C) of a data set, from its shapes alone."""
    y_shape = np.shape(dataset.y)
    cols = 1 if len(y_shape) == 1 else int(y_shape[1])
    return int(np.shape(dataset.x)[0]), int(np.shape(dataset.x_test)[0]), cols


def plan_spectrum(dataset, budget: Budget, dtype, what: str) -> SolverChoice:
    """`resources.plan_solver` for a study of the data set's labels, (y, ŷ) riding along."""
    x = np.asarray(dataset.x)
    n, n_test, cols = sizes(dataset)
    dtype = str(np.dtype(dtype or x.dtype))
    d = int(np.prod(x.shape[1:]))
    return plan_solver(
        n, budget=budget, dtype=dtype, n_test=n_test, n_labels=2 * cols, d=d, what=what
    )


def cnn_input_shape(d: int, input_shape=None) -> tuple:
    """A CNN's example shape (*spatial, channels): the given one, else 8×8×1 for 64 inputs, d×1."""
    if input_shape is not None:
        return tuple(input_shape)
    return (8, 8, 1) if d == 64 else (d, 1)


def network_size(arch, d, out, *, widths=(), channels=(), input_shape=None):
    """(parameters, forward multiply-adds per row) of an MLP, a 3×3 CNN or the two-layer ReLU."""
    if arch == "two-layer-relu":
        return (float(d * widths[0] + widths[0] * out),) * 2
    if arch == "cnn":
        shape = cnn_input_shape(d, input_shape)
        spatial, layers = float(np.prod(shape[:-1])), (shape[-1], *channels)
        conv = 9.0 * sum(a * b for a, b in zip(layers[:-1], layers[1:], strict=True))
        head = spatial * layers[-1] * out
        return conv + head, spatial * conv + head
    layers = (d, *widths, out)
    size = float(sum(a * b + b for a, b in zip(layers[:-1], layers[1:], strict=True)))
    return size, size


def report_progress(progress, stage: str, done: int, total: int) -> None:
    """Call the study's callback `progress(stage, done, total)`, if any."""
    if progress is not None:
        progress(stage, done, total)
