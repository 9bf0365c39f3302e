"""The kernel limit of training by epochs: one epoch at a fixed target as one step of a kernel.

Reference: Dong et al. arXiv 1910.01255; Lee et al. arXiv 1902.06720 (linearized networks).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from .._checks import check_int
from ..spectral._problem import LinearProblem, linear_problem


def epoch_gradient_time(lr: float, n: int, batch_size: int, momentum: float = 0.0) -> float:
    """Gradient-flow time of one epoch of SGD: T = lr/(1 − momentum) · ⌊n/B⌋/n.

    ⌊n/B⌋ steps on batch mean losses move u by −lr·⌊n/B⌋/n · H(u − ỹ) on average (H the Gram
    matrix of the sum loss); 1/(1 − momentum) is heavy-ball's long-run step.

    Args:
      lr: the SGD learning rate.
      n: training examples.
      batch_size: B.
      momentum: heavy-ball momentum in [0, 1).

    Returns:
      T, the gradient-flow time of one epoch.

    Example:
      >>> round(epoch_gradient_time(0.5, 1000, 50, momentum=0.9), 12)
      0.1
    """
    nb = n // batch_size
    return float(lr) / (1.0 - float(momentum)) * nb / n


def epoch_problem(
    eig,
    y,
    y_clean,
    *,
    time: float,
    substeps: int | None = None,
    u0=None,
    k_test_train=None,
    f0_test=None,
    y_test_clean=None,
) -> LinearProblem:
    """The kernel limit of training by epochs: a `LinearProblem` whose one step is one epoch.

    u(e+1) = u(e) − (I − φ(H))(u(e) − ỹ(e)) and f_{e+1}(x) = f_e(x) − K(x, X) V diag((1 −
    φ(λ))/λ) Vᵀ(u(e) − ỹ(e)) (the ratio → T as λ → 0), with φ(λ) = e^{−λT} (flow) or
    (1 − λT/s)^s (s GD steps of size T/s): a step of η = 1 on the eigenvalues λ' = 1 − φ(λ), so
    `self_distill(problem, rules, steps=E, eta=1.0)` calls each rule once per epoch.

    Args:
      eig: the eigendecomposition of H = K(X, X) (`eigen.eigensystem`).
      y: (n, C) given labels ((n,) ±1 labels work too).
      y_clean: (n, C) ground truth.
      time: T, the gradient-flow time of one epoch (`epoch_gradient_time`).
      substeps: None (flow) or s GD steps of size T/s.
      u0: (n, C) initial outputs (default 0), as in `problem.linear_problem`.
      k_test_train: (n_test, n) K(X_test, X) of the original kernel, or None.
      f0_test: (n_test, C) initial test outputs (default 0).
      y_test_clean: (n_test, C) test ground truth.

    Returns:
      LinearProblem with eigenvalues λ'_i.

    Example:
      >>> T = epoch_gradient_time(0.5, 40, 10, momentum=0.9)
      >>> p = epoch_problem(eig, y, y_clean, time=T)
      >>> run = distillation.self_distill(p, [distillation.r3(0.9)], steps=60, eta=1.0)
      >>> run.dist_train.shape                              # (rules, epochs + 1)
      (1, 61)
    """
    if not (isinstance(time, int | float | np.floating) and math.isfinite(time) and time > 0):
        raise ValueError(f"time must be a positive finite gradient-flow time, got {time!r}")
    if substeps is not None:
        check_int("substeps", substeps, minimum=1)
    lam = jnp.asarray(eig.eigenvalues)
    if substeps is None:
        lam_epoch = -jnp.expm1(-lam * time)
    else:
        lam_epoch = 1.0 - (1.0 - lam * time / substeps) ** substeps
    k_epoch = None
    if k_test_train is not None:
        safe = jnp.where(lam > 0, lam, 1.0)
        ratio = jnp.where(lam > 0, lam_epoch / safe, time)  # (1 − φ(λ))/λ, → T at λ = 0
        V = eig.eigenvectors
        k_epoch = (jnp.asarray(k_test_train, lam.dtype) @ V) * ratio @ V.T
    return linear_problem(
        eig._replace(eigenvalues=lam_epoch),
        y,
        y_clean,
        u0=u0,
        k_test_train=k_epoch,
        f0_test=f0_test,
        y_test_clean=y_test_clean,
    )
