"""The train kernel K + δI of every `ntk_air.predict` function: checked, decomposed once."""

from __future__ import annotations

import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_float_array, check_finite, resolve_dtype
from ..spectral._eigen import Eigensystem, NegativeEigenvalueWarning, eigensystem


class NotPositiveSemidefiniteError(ValueError):
    """A train kernel had an eigenvalue more negative than rounding explains."""


class KernelDiagnostics(NamedTuple):
    """Numerical facts about the regularized train kernel K + δI (a pytree of scalars)."""

    eigenvalue_max: jax.Array  # () λ_max(K + δI)
    eigenvalue_min: jax.Array  # () λ_min(K + δI) after clamping rounding negatives to 0
    condition_number: jax.Array  # () λ_max / λ_min (inf for a singular kernel)
    diag_reg_absolute: jax.Array  # () δ, the absolute regularizer added to the diagonal
    rounding_tol: jax.Array  # () eigenvalues in (−tol, 0) were rounding and set to 0
    null_dimension: jax.Array  # () int, eigenvalues |λ| ≤ tol (their modes are never fitted)


class _TrainKernel(NamedTuple):
    """The regularized train kernel and its decomposition (a pytree)."""

    eig: Eigensystem  # of K + δI, (n,) eigenvalues and (n, n) eigenvectors
    kernel: jax.Array  # (n, n) K, not regularized
    diagnostics: KernelDiagnostics


def solve_dtype(dtype=None) -> jnp.dtype:
    """float64 by default (x64 mode must be on); float32 only when asked for."""
    return resolve_dtype(jnp.float64 if dtype is None else dtype)


def positive_float(value, name: str) -> float:
    """`value` as a float, when finite and > 0 (learning rates, ridge shifts)."""
    v = float(value)
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def regularizer(diag_reg, diag_reg_absolute_scale: bool, mean_diagonal) -> float:
    """δ = diag_reg (absolute) or diag_reg · mean_diagonal() (tr(K)/n, relative)."""
    diag_reg = float(diag_reg)
    if not np.isfinite(diag_reg) or diag_reg < 0:
        raise ValueError(f"diag_reg must be a finite number ≥ 0, got {diag_reg!r}")
    if diag_reg_absolute_scale or diag_reg == 0:
        return diag_reg
    return diag_reg * mean_diagonal()


def _train_kernel(
    k, diag_reg=0.0, diag_reg_absolute_scale: bool = False, *, name="k_train_train", dtype=None
) -> _TrainKernel:
    """K + δI decomposed once; refused when K is not symmetric, or not PSD beyond rounding."""
    dtype = solve_dtype(dtype)
    k = as_float_array(k, name, dtype)
    if k.ndim != 2 or k.shape[0] != k.shape[1]:
        raise ValueError(
            f"{name} must be a square (n, n) matrix (trace_axes=(-1,): one block shared by the "
            f"output columns), got shape {tuple(k.shape)}"
        )
    check_finite(k, name)
    mean_diag = float(jnp.trace(k)) / k.shape[0]
    delta = regularizer(diag_reg, diag_reg_absolute_scale, lambda: mean_diag)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NegativeEigenvalueWarning)
            eig = eigensystem(k + delta * jnp.eye(k.shape[0], dtype=dtype))
    except ValueError as e:
        raise ValueError(f"{name}: {e}") from None
    lam = np.asarray(eig.eigenvalues)
    tol = float(eig.clamp_tol)
    most_negative = float(eig.most_negative)
    if most_negative < -tol:
        # λ(K + δ'I) = λ(K) + δ' − δ: the smallest δ' that makes K + δ'I PSD is δ − λ_min.
        fix = delta - most_negative
        relative = f"{fix / mean_diag:.3g}" if mean_diag > 0 else "(undefined: tr(K) ≤ 0)"
        raise NotPositiveSemidefiniteError(
            f"{name} + diag_reg is not positive semidefinite: its smallest eigenvalue is "
            f"{most_negative:.3g} (rounding tolerance {tol:.3g}); diag_reg ≥ {relative} "
            f"(relative to tr(K)/n = {mean_diag:.3g}) or diag_reg ≥ {fix:.3g} with "
            "diag_reg_absolute_scale=True makes it PSD"
        )
    lam_max, lam_min = float(lam[0]), float(lam[-1])
    cond = lam_max / lam_min if lam_min > 0 else np.inf
    floats = (jnp.asarray(v, dtype) for v in (lam_max, lam_min, cond, delta, tol))
    null_dimension = jnp.asarray(int(np.sum(np.abs(lam) <= tol)))
    return _TrainKernel(eig, k, KernelDiagnostics(*floats, null_dimension))
