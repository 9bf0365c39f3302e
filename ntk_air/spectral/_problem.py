"""The training problem, validated once: `LinearProblem` (the kernel limit), `NetworkProblem`
(a finite network), and the checks of their labels."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_float_array, check_finite, check_rank, is_concrete, resolve_dtype
from ._eigen import Eigensystem

TASKS = ("classification", "regression")
"""The two tasks a problem can be: class labels (±1 / one-hot) or real-valued targets."""


def _is_class_labels(arr: np.ndarray) -> bool:
    """±1 entries for a vector, one-hot rows (C ≥ 2 columns) for a matrix."""
    if arr.ndim == 1:
        return arr.size > 0 and bool(np.all(np.abs(arr) == 1))
    if arr.ndim != 2 or arr.shape[1] < 2 or arr.shape[0] == 0:
        return False
    return bool(np.all((arr == 0) | (arr == 1)) and np.all(arr.sum(axis=-1) == 1))


def infer_task(labels) -> str:
    """The task of labels: classification for ±1 vectors or one-hot rows (or traced labels),
    else regression.

    Example:
      >>> infer_task(np.array([1.0, -1.0])), infer_task(np.array([0.3, -1.2]))
      ('classification', 'regression')
    """
    if labels is None or not is_concrete(labels):
        return "classification"
    return "classification" if _is_class_labels(np.asarray(labels)) else "regression"


def check_task(task, labels=None, name: str = "y_clean") -> str:
    """`task` (None: `infer_task(labels)`) checked against the labels: classification needs ±1
    vectors or one-hot rows (ValueError naming `name` otherwise); regression takes any targets.

    Example:
      >>> check_task(None, np.array([0.5, 2.0]))
      'regression'
    """
    if task is None:
        return infer_task(labels)
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if task == "classification":
        check_class_labels(labels, name)
    return task


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LinearProblem:
    """What u(k+1) = u(k) − ηH(u(k) − ỹ(k)), f_{k+1}(x) = f_k(x) − ηK(x, X)(u(k) − ỹ(k)) needs
    (a pytree; labels as (n, C) columns, `binary`: the user gave (n,) vectors). Build with
    `linear_problem`."""

    eig: Eigensystem  # H = V diag(λ) Vᵀ, (m,) and (n, m): m = n, or a reduction of H (m < n)
    y: jax.Array  # (n, C) given (possibly noisy) labels
    y_clean: jax.Array | None  # (n, C) ground truth ŷ, or None
    u0: jax.Array  # (n, C) initial outputs u(0) on the training points
    kv_test: jax.Array | None  # (n_test, m) K(X_test, X) V, or None without test points
    f0_test: jax.Array | None  # (n_test, C) initial outputs on the test points
    y_test_clean: jax.Array | None  # (n_test, C) test ground truth, or None
    kernel: jax.Array | None = None  # (n, n) H itself when the caller has it (dense-scan engines)
    binary: bool = dataclasses.field(default=False, metadata={"static": True})
    task: str = dataclasses.field(default="classification", metadata={"static": True})

    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def dtype(self):
        return self.eig.eigenvalues.dtype

    @property
    def regression(self) -> bool:
        """True for real-valued targets (accuracy and margin have no meaning, MSE has)."""
        return self.task == "regression"

    @property
    def has_test(self) -> bool:
        return self.kv_test is not None

    def apply_kernel(self, z):
        """H z for (n, C) z: the stored kernel if given, else V (λ ⊙ Vᵀ z)."""
        if self.kernel is not None:
            return self.kernel @ z
        V = self.eig.eigenvectors
        return V @ (self.eig.eigenvalues[:, None] * (V.T @ z))

    def to_user(self, a):
        """An internal (..., C) array in the user's label shape ((...,) for ±1 vectors)."""
        return _from_columns(a, self.binary)


def _as_columns(a, binary: bool):
    """(n,) → (n, 1) for ±1 labels; (n, C) and None unchanged."""
    if a is None:
        return None
    return a[..., None] if binary else a


def _from_columns(a, binary: bool):
    """Inverse of `_as_columns` (None passes through)."""
    if a is None:
        return None
    return a[..., 0] if binary else a


def _test_matrix(a, name: str, dtype, cols: int, shape: str):
    """a as a finite float matrix of `dtype` with `cols` columns (ValueError naming `shape`)."""
    a = as_float_array(a, name, dtype)
    check_rank(a, name, 2)
    if a.shape[1] != cols:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(a.shape)}")
    check_finite(a, name)
    return a


def check_labels(z, name: str, n: int, dtype, *, shape=None):
    """z as a finite float array of `dtype` with shape (n,) or (n, C) (or exactly `shape`)."""
    z = as_float_array(z, name, dtype)
    if shape is not None:
        if tuple(z.shape) != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(z.shape)}")
    elif z.ndim not in (1, 2) or z.shape[0] != n:
        raise ValueError(
            f"{name} must have shape ({n},) or ({n}, C) with n = {n} (the kernel's size), got "
            f"{tuple(z.shape)}"
        )
    check_finite(z, name)
    return z


def check_class_labels(z, name: str) -> None:
    """±1 entries for (n,) labels, one-hot rows for (n, C) labels (concrete values only)."""
    if z is None or not is_concrete(z):
        return
    arr = np.asarray(z)
    if arr.ndim == 1:
        if not np.all(np.abs(arr) == 1):
            values = np.unique(arr)[:5]
            raise ValueError(
                f"{name} must be ±1 for binary labels (task 'classification'); found values "
                f"{values} (real-valued targets are task 'regression')"
            )
        return
    one_hot = np.all((arr == 0) | (arr == 1), axis=-1) & (arr.sum(axis=-1) == 1)
    if not one_hot.all():
        bad = int(np.argmax(~one_hot))
        raise ValueError(f"{name} must be one-hot rows for class labels; row {bad} is {arr[bad]}")


def linear_problem(
    eig: Eigensystem,
    y,
    y_clean=None,
    *,
    u0=None,
    k_test_train=None,
    f0_test=None,
    y_test_clean=None,
    kernel=None,
    kv_test=None,
    task: str | None = None,
) -> LinearProblem:
    """Validate and assemble a `LinearProblem` (the only place these checks live).

    Args:
      eig: the decomposition of H = K(X, X), n × n; its dtype is the problem's.
      y: (n,) ±1 / real labels or (n, C) one-hot / soft class labels / real targets.
      y_clean: ground truth ŷ, same shape, or None.
      u0: (n[, C]) initial outputs u(0) (default 0).
      k_test_train: (n_test, n) K(X_test, X), or None.
      f0_test: (n_test[, C]) initial test outputs (default 0; required when u0 ≠ 0).
      y_test_clean: (n_test[, C]) test ground truth (needs k_test_train).
      kernel: (n, n) H itself, if at hand (the dense-scan engines then use it).
      kv_test: (n_test, m) K(X_test, X) V already projected, instead of k_test_train (the
        matrix-free path computes it through a kernel operator, never holding K(X_test, X)).
      task: "classification" (y_clean, and y_test_clean, must be ±1 or one-hot rows) or
        "regression" (any real targets); None infers it from y_clean (else y) by `infer_task`.

    Returns:
      LinearProblem.

    Example:
      >>> problem = linear_problem(eig, y, y_clean, k_test_train=K_test_train,
      ...                          y_test_clean=y_test_clean)       # eig = eigensystem(H)
      >>> problem.y.shape, problem.kv_test.shape, problem.binary   # labels as (n, C) columns
      ((40, 1), (12, 40), True)
    """
    if not isinstance(eig, Eigensystem):
        raise TypeError(
            "eig must be a spectral.Eigensystem (e.g. spectral.eigensystem(K)) or a "
            f"LinearProblem, got {type(eig).__name__}"
        )
    dtype = eig.eigenvalues.dtype
    n = eig.eigenvectors.shape[0]
    if kv_test is not None:
        if k_test_train is not None:
            raise ValueError("give k_test_train = K(X_test, X) or its projection kv_test, not both")
        m = eig.eigenvalues.shape[0]
        kv_test = _test_matrix(kv_test, "kv_test", dtype, m, f"(n_test, {m})")
    y = check_labels(y, "y", n, dtype)
    binary = y.ndim == 1
    # The ground truth decides the task; without it the labels do (not checked when the caller
    # says "classification": noisy labels may be real-valued, e.g. under Gaussian noise).
    if y_clean is not None:
        y_clean = check_labels(y_clean, "y_clean", n, dtype, shape=y.shape)
        task = check_task(task, y_clean)
    else:
        task = infer_task(y) if task is None else check_task(task)
    u0 = jnp.zeros_like(y) if u0 is None else check_labels(u0, "u0", n, dtype, shape=y.shape)
    if kernel is not None:
        kernel = as_float_array(kernel, "kernel", dtype)
        if kernel.shape != (n, n):
            raise ValueError(f"kernel must have shape ({n}, {n}), got {tuple(kernel.shape)}")
        check_finite(kernel, "kernel")
    f0 = yt = None
    if k_test_train is None and kv_test is None:
        if f0_test is not None or y_test_clean is not None:
            raise ValueError(
                "f0_test / y_test_clean were given without k_test_train = K(X_test, X) (the test "
                "points' kernel)"
            )
    else:
        if kv_test is None:
            k = _test_matrix(
                k_test_train, "k_test_train", dtype, n, f"(n_test, {n}) = K(X_test, X)"
            )
            kv_test = _project(k, eig.eigenvectors)
        n_test = kv_test.shape[0]
        test_shape = (n_test,) + y.shape[1:]
        if f0_test is None:
            if is_concrete(u0) and bool(jnp.any(u0 != 0)):
                raise ValueError(
                    "u0 (the network's initial outputs on the training points) was given but "
                    "f0_test was not: pass the initial outputs on the test points too (zeros if "
                    "you mean it)"
                )
            f0 = jnp.zeros(test_shape, dtype)
        else:
            f0 = check_labels(f0_test, "f0_test", n_test, dtype, shape=test_shape)
        if y_test_clean is not None:
            yt = check_labels(y_test_clean, "y_test_clean", n_test, dtype, shape=test_shape)
            if task == "classification" and y_clean is not None:
                check_class_labels(yt, "y_test_clean")
    return LinearProblem(
        eig=eig,
        y=_as_columns(y, binary),
        y_clean=_as_columns(y_clean, binary),
        u0=_as_columns(u0, binary),
        kv_test=kv_test,
        f0_test=_as_columns(f0, binary),
        y_test_clean=_as_columns(yt, binary),
        kernel=kernel,
        binary=binary,
        task=task,
    )


@jax.jit
def _project(k_test_train, V):
    return k_test_train @ V


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NetworkProblem:
    """A finite network's training problem: inputs and labels, validated once (a pytree)."""

    x: jax.Array  # (n, ...) training inputs
    y: jax.Array  # (n, C) given labels
    y_clean: jax.Array  # (n, C) ground truth ŷ
    x_test: jax.Array | None  # (n_test, ...) test inputs
    y_test_clean: jax.Array | None  # (n_test, C) test ground truth
    binary: bool = dataclasses.field(default=False, metadata={"static": True})

    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def dtype(self):
        return self.x.dtype

    def to_user(self, a):
        """An internal (..., C) array in the user's label shape ((...,) for ±1 vectors)."""
        return _from_columns(a, self.binary)


def network_problem(x, y, y_clean, *, x_test=None, y_test_clean=None, dtype=None) -> NetworkProblem:
    """Validate and assemble a `NetworkProblem` (dtype: explicit, else x's float dtype).

    Args:
      x: (n, ...) training inputs.
      y: (n,) ±1 / real or (n, C) labels.
      y_clean: ŷ, ±1 or one-hot rows, same shape.
      x_test: (n_test, ...) or None.
      y_test_clean: its ŷ.
      dtype: float32 or float64 for the whole run; default follows x.
    """
    dtype = resolve_dtype(dtype, like=x if hasattr(x, "dtype") else np.asarray(x))
    x = as_float_array(x, "x", dtype)
    if x.ndim < 2:
        raise ValueError(f"x must be (n, ...) examples, got shape {tuple(x.shape)}")
    check_finite(x, "x")
    n = x.shape[0]
    y = check_labels(y, "y", n, dtype)
    binary = y.ndim == 1
    y_clean = check_labels(y_clean, "y_clean", n, dtype, shape=y.shape)
    check_class_labels(y_clean, "y_clean")
    if x_test is None:
        if y_test_clean is not None:
            raise ValueError("y_test_clean given without x_test")
        yt = None
    else:
        if y_test_clean is None:
            raise ValueError("x_test given without y_test_clean (the test ground truth)")
        x_test = as_float_array(x_test, "x_test", dtype)
        check_finite(x_test, "x_test")
        if x_test.shape[1:] != x.shape[1:]:
            raise ValueError(
                f"x_test has examples of shape {tuple(x_test.shape[1:])}, x has "
                f"{tuple(x.shape[1:])}"
            )
        yt = check_labels(
            y_test_clean,
            "y_test_clean",
            x_test.shape[0],
            dtype,
            shape=(x_test.shape[0],) + y.shape[1:],
        )
    return NetworkProblem(
        x=x,
        y=_as_columns(y, binary),
        y_clean=_as_columns(y_clean, binary),
        x_test=x_test,
        y_test_clean=_as_columns(yt, binary),
        binary=binary,
    )
