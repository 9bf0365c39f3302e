"""The kernel limit of training by epochs: one epoch at a fixed target as one step of a kernel.

Training by epochs (`training.train` with `training.Epochs(B)`, `training.train_epochs` for several
seeds) refreshes the target ỹ(e) once per epoch and then takes ⌊n/B⌋ optimizer steps on
mini-batches. In the kernel limit an epoch at a fixed target is gradient flow for a time T
(`epoch_gradient_time`), u − ỹ ← e^{−HT}(u − ỹ): one step of η = 1 on the kernel I − e^{−HT}
(`epoch_problem`), so `distill.self_distill` runs the same rule objects once per epoch.

Reference: Dong et al. arXiv 1910.01255 (self-distillation against label noise); Jacot et al.
arXiv 1806.07572 and Lee et al. arXiv 1902.06720 (the kernel limit of wide networks).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np

from .._checks import check_int
from ..spectral._problem import LinearProblem, linear_problem

__all__ = ["epoch_filter", "epoch_problem", "epoch_gradient_time"]


def epoch_gradient_time(lr: float, n: int, batch_size: int, momentum: float = 0.0) -> float:
    """Gradient-flow time of one epoch of SGD, in the kernel limit's normalization.

    A step on the mean loss of a batch b moves the linearized outputs by
    −(lr/B) H[:, b](u_b − ỹ_b); over ⌊n/B⌋ batches of a random permutation this is, on average,
    −lr·⌊n/B⌋/n · H(u − ỹ): gradient flow du/dt = −H(u − ỹ) (H the NTK Gram matrix of the sum
    loss ½‖u − ỹ‖²) for a time T = lr_eff·⌊n/B⌋/n, with lr_eff = lr/(1 − momentum), heavy-ball's
    long-run step.

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


# ---------------------------------------------------------------------------------------------
# The kernel limit of an epoch
# ---------------------------------------------------------------------------------------------


def epoch_filter(eigenvalues, time, substeps=None):
    """λ'(λ) = 1 − φ(λ): one epoch at a fixed target as a single step of η = 1 on H' = λ'(H).

    φ(λ) = e^{−λT} (gradient flow for a time T, substeps=None) or (1 − λT/s)^s (s GD steps of
    size T/s): within an epoch the target is fixed, so u − ỹ ← φ(H)(u − ỹ), i.e.
    u ← u − (I − φ(H))(u − ỹ), a GD step with η = 1 on the kernel I − φ(H) (same eigenvectors).

    Args:
      eigenvalues: (n,) λ_i ≥ 0 of H.
      time: T > 0.
      substeps: None (flow) or s ≥ 1.

    Returns:
      (n,) λ'_i, in [0, 1) for the flow.

    Example:
      >>> epoch_filter(jnp.array([0.0, 1.0]), 2.0, substeps=1)
      Array([0., 2.], dtype=float64)
    """
    lam = jnp.asarray(eigenvalues)
    if substeps is None:
        return -jnp.expm1(-lam * time)
    return 1.0 - (1.0 - lam * time / substeps) ** substeps


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

    With the target ỹ(e) fixed during epoch e (refreshed once per epoch by the rule), the
    linearized network moves by u(e+1) = u(e) − (I − φ(H))(u(e) − ỹ(e)) on the training points
    and f_{e+1}(x) = f_e(x) − K(x, X) V diag((1 − φ(λ))/λ) Vᵀ(u(e) − ỹ(e)) elsewhere
    (`epoch_filter`; (1 − φ(λ))/λ → T as λ → 0). So `distill.self_distill(problem, rules,
    steps=E, eta=1.0)` runs any target rule with its `update` called once per epoch, k = the
    epoch, exactly as `training.train_epochs` does on the real network.

    Args:
      eig: the eigendecomposition of H = K(X, X) (`eigen.eigensystem`).
      y: (n, C) given labels ((n,) ±1 labels work too).
      y_clean: (n, C) ground truth.
      time: T, the gradient-flow time of one epoch (`epoch_gradient_time`).
      substeps: None (flow) or s GD steps of size T/s.
      u0: (n, C) initial outputs (default 0), as in `problem.linear_problem`.
      k_test_train: (n_test, n) K(X_test, X) of the original kernel (the epoch's test
        propagation is applied here), or None.
      f0_test: (n_test, C) initial test outputs (default 0).
      y_test_clean: (n_test, C) test ground truth.

    Returns:
      LinearProblem (its eigenvalues are λ'_i; its kernel is left implicit, V diag(λ') Vᵀ).

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
    lam = eig.eigenvalues
    lam_epoch = epoch_filter(lam, time, substeps)
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
