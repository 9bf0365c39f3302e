"""The kernel during training: the empirical NTK of a network at checkpoints of its training.

At each checkpoint of one compiled `training.train` run, Θ_t = J(θ_t) J(θ_t)ᵀ is measured as the
infinite-width kernel is: its spectrum and label energies per mode, ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F and
the kernel–target alignment; beside them Θ_∞ where the architecture has one
(docs/science/kernels.md#entk-during-training, docs/guide/entk.md).

Reference: Jacot et al. arXiv 1806.07572; Fort et al. arXiv 2010.15110 (the kernel during
training); Cristianini et al. 2001 (kernel–target alignment); Dong et al. arXiv 1910.01255 (AIR).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import (
    check_bool,
    check_dataset,
    check_int,
    check_optional,
    check_real,
    param,
    resolve_dtype,
)
from ..distillation._targets import accuracy, plain_gd
from ..dynamics._linearized import check_step_size, log_spaced_steps
from ..dynamics._record import Record
from ..empirical import EmpiricalNTKFn, MemoryBudgetError, empirical_ntk_fn
from ..networks import _models as models
from ..networks._training import train
from ..spectral._eigen import eigensystem
from ..spectral._label_spectrum import AIRSpectra, air_spectra
from ..spectral._resources import DEFAULT_RATES, LoopEstimate
from ._system import data_summary, network_size, report_progress, sizes


@dataclasses.dataclass(frozen=True)
class EntkConfig:
    """Options of the kernel-during-training study (each option's help says what it is).

    checkpoints: explicit steps in [0, steps] (0 always added), else `num_checkpoints`
    log-spaced ones. optimizer: an `optax.GradientTransformation` instead of SGD with `eta`.
    rule: a target rule of `ntk_air.distillation` (None: plain GD). dtype: float32/float64
    (None: the inputs' canonical dtype). max_kernel_bytes: the most bytes of kernels held over
    all checkpoints; a larger run is refused before any work.
    """

    steps: int = param(1000, "full-batch steps")
    checkpoints: Any = param(
        None, "explicit checkpoint steps, comma-separated", option="--at", item=int, metavar="STEP"
    )
    num_checkpoints: int = param(12, "log-spaced checkpoints", option="--checkpoints")
    eta: float | None = param(None, "step size", default_help="sgd: 1/λ_max(Θ_0)")
    optimizer: Any = None
    rule: Any = None
    test: bool = param(True, "skip Θ_t(X_test, X)", option="--no-test", flag=True)
    force: bool = param(False, "allow η ≥ 2/λ_max(Θ_0) instead of an error", flag=True)
    dtype: Any = None
    max_kernel_bytes: int = 4 * 1024**3

    def __post_init__(self):
        check_int("steps", self.steps, minimum=1)
        check_int("max_kernel_bytes", self.max_kernel_bytes, minimum=1)
        check_int("num_checkpoints", self.num_checkpoints, minimum=2)
        if self.eta is not None and self.optimizer is not None:
            raise ValueError(
                "give eta (plain SGD with that step size) or optimizer (any optax "
                "transformation), not both"
            )
        check_optional(check_real, "eta", self.eta, minimum=0, open_min=True)
        check_bool("test", self.test)
        check_bool("force", self.force)
        if self.checkpoints is not None:
            points = np.asarray(self.checkpoints)
            if points.dtype.kind not in "iuf":
                raise ValueError(f"checkpoints must be whole steps, got {self.checkpoints!r}")
            _checkpoint_steps(self.steps, points, self.num_checkpoints)


class LabelAlignment(NamedTuple):
    """Kernel–target alignment A(Θ, z) of clean labels, noise and noisy labels."""

    clean: jax.Array  # () or (T,) A(Θ, ŷ)
    noise: jax.Array  # () or (T,) A(Θ, e), e = y − ŷ (NaN when there is no noise)
    noisy: jax.Array  # () or (T,) A(Θ, y)


class TrainingCurves(NamedTuple):
    """The network's fit at the checkpoints."""

    loss: np.ndarray  # (T,) ½‖u(t) − ỹ(t)‖² on the training set (ỹ = y for plain GD)
    dist_clean: np.ndarray  # (T,) ‖u(t) − ŷ‖₂ (Frobenius for one-hot labels)
    dist_test: np.ndarray  # (T,) ‖f_t(X_test) − ŷ_test‖₂ (NaN without test points)
    accuracy_clean: np.ndarray  # (T,) 0-1 accuracy of u(t) against ŷ
    accuracy_noisy: np.ndarray  # (T,) 0-1 accuracy of u(t) against the given labels y
    accuracy_test: np.ndarray  # (T,) test accuracy against ŷ_test (NaN without test points)
    weight_change: np.ndarray  # (T,) ‖θ(t) − θ(0)‖_F


class KernelLimit(NamedTuple):
    """The architecture's infinite-width kernel Θ_∞, measured as the eNTK is."""

    name: str  # which kernel, e.g. "fc_kernel_fn(depth=2, relu, w_std=1, b_std=0)"
    ntk: np.ndarray  # (n, n) Θ_∞(X, X)
    ntk_test: np.ndarray | None  # (n_test, n) Θ_∞(X_test, X), or None
    eigenvalues: jax.Array  # (n,) descending
    spectra: AIRSpectra  # label energies per Θ_∞ mode
    alignment: LabelAlignment  # () each
    distance: np.ndarray  # (T,) ‖Θ_t − Θ_∞‖_F / ‖Θ_∞‖_F
    distance_test: np.ndarray | None  # (T,) the same on X_test × X, or None


class EntkStudy(NamedTuple):
    """The empirical NTK at the checkpoints of one training run (a pytree of arrays)."""

    data: dict  # name, sizes and scalar metadata of the data set
    steps: np.ndarray  # (T,) checkpoint steps, starting at 0
    eta: float | None  # the SGD step size (None with a custom optimizer)
    plan: dict  # the eNTK plan: implementation, tile size, reason (as `EntkPlan`)
    ntk: np.ndarray  # (T, n, n) Θ_t(X, X)
    ntk_test: np.ndarray | None  # (T, n_test, n) Θ_t(X_test, X), or None
    eigenvalues: jax.Array  # (T, n) eigenvalues of Θ_t, descending
    most_negative: jax.Array  # (T,) most negative eigenvalue of Θ_t before clamping
    spectra: AIRSpectra  # label energies per eNTK mode, leaves with a leading (T,) axis
    alignment: LabelAlignment  # (T,) each
    kernel_distance: np.ndarray  # (T,) ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F
    kernel_distance_test: np.ndarray | None  # (T,) on X_test × X, or None
    curves: TrainingCurves  # the network's fit at the checkpoints
    limit: KernelLimit | None  # the infinite-width kernel's figures, or None
    params: Any  # θ_t at the checkpoints: the parameter pytree, leaves (T, ...)


def kernel_target_alignment(theta, z):
    """Kernel–target alignment A(Θ, z) = ⟨Θ, zzᵀ⟩_F / (‖Θ‖_F ‖zzᵀ‖_F).

    For a label vector z (n,) this is zᵀΘz / (‖Θ‖_F ‖z‖²). For one-hot labels Z (n, C) it is the
    trace form tr(ZᵀΘZ) / (‖Θ‖_F ‖ZᵀZ‖_F) (the same definition: ⟨Θ, ZZᵀ⟩_F = tr(ZᵀΘZ) and
    ‖ZZᵀ‖_F = ‖ZᵀZ‖_F). In [−1, 1] for symmetric Θ; 1 when Θ ∝ zzᵀ. NaN for z = 0.

    Args:
      theta: (n, n) kernel matrix.
      z: (n,) or (n, C) labels.

    Returns:
      () the alignment.

    Example:
      >>> z = jnp.array([1.0, -1.0, 1.0])
      >>> float(kernel_target_alignment(jnp.outer(z, z), z))
      1.0

    Reference: Cristianini, Shawe-Taylor, Elisseeff, Kandola, NeurIPS 2001.
    """
    theta = jnp.asarray(theta)
    z = jnp.asarray(z, theta.dtype)
    zz = z[:, None] if z.ndim == 1 else z
    gram = zz.T @ zz
    return jnp.trace(zz.T @ theta @ zz) / (jnp.linalg.norm(theta) * jnp.linalg.norm(gram))


def _checkpoint_steps(steps: int, checkpoints=None, num: int = 12) -> np.ndarray:
    """(T,) sorted unique int64 checkpoints in [0, steps], 0 first: given ones, or log-spaced."""
    if checkpoints is None:
        at = log_spaced_steps(steps, num)
    else:
        at = np.asarray(checkpoints)
        if at.ndim != 1 or at.size == 0:
            raise ValueError(f"checkpoints must be a non-empty list of steps, got {checkpoints!r}")
        whole = np.all(np.isfinite(at)) and np.all(at == np.round(at))
        if not whole or at.min() < 0 or at.max() > steps:
            raise ValueError(
                f"checkpoints must be whole steps in [0, {steps}] (the run's steps), got "
                f"{at.tolist()}"
            )
    return np.unique(np.concatenate([[0], np.asarray(at, dtype=np.int64)]))


def _measure(theta, y, y_clean):
    eig = eigensystem(theta)
    spectra = air_spectra(eig, y_clean, y)
    alignment = LabelAlignment(
        clean=kernel_target_alignment(theta, y_clean),
        noise=kernel_target_alignment(theta, y - y_clean),
        noisy=kernel_target_alignment(theta, y),
    )
    return eig, spectra, alignment


def _stack(trees):
    return jax.tree_util.tree_map(lambda *a: np.stack([np.asarray(x) for x in a]), *trees)


def entk(
    dataset,
    apply_fn,
    params,
    config: EntkConfig = EntkConfig(),
    *,
    ntk_fn: EmpiricalNTKFn | None = None,
    limit_kernel_fn=None,
    limit_name: str = "infinite-width kernel",
    progress=None,
) -> EntkStudy:
    """Train a network and measure its empirical NTK at checkpoints (no files, no output).

    Θ_t(x, x') = Σ_p ∂f(θ_t, x)/∂p · ∂f(θ_t, x')/∂p (k outputs: the mean of the k diagonal
    blocks); training is full-batch SGD θ ← θ − η Jᵀ(u − ỹ), η = 1/λ_max(Θ_0) unless given.

    Args:
      dataset: `data.Dataset` (y noisy, y_clean the ground truth; ±1 vectors or one-hot).
      apply_fn: f(params, x) → (n,), (n, 1) for ±1 labels, or (n, C) for C classes.
      params: θ_0, the initial parameters (pytree).
      config: `EntkConfig`.
      ntk_fn: an `empirical.empirical_ntk_fn` (default: of `apply_fn`, implementation 'auto').
      limit_kernel_fn: the architecture's infinite-width `KernelFn`, or None (no limit figures).
      limit_name: how the report names that kernel.
      progress: progress(stage, done, total) after each stage.

    Returns:
      EntkStudy.

    Example:
      >>> small = ntk_air.data.digits(n_train=30, n_test=10)
      >>> apply_fn, params = networks.mlp_network((32,), small.x, out_dim=10)
      >>> config = studies.EntkConfig(steps=20, num_checkpoints=4)
      >>> study = studies.entk(small, apply_fn, params, config)
      >>> study.steps.tolist(), study.ntk.shape
      ([0, 1, 4, 20], (4, 30, 30))
      >>> float(study.kernel_distance[0]), bool(study.kernel_distance[-1] > 0)
      (0.0, True)

    Reference: Jacot et al. arXiv 1806.07572; Fort et al. arXiv 2010.15110.
    """
    check_dataset(dataset)
    c = config
    dt = resolve_dtype(c.dtype, like=np.asarray(dataset.x))
    x, y, y_clean = (jnp.asarray(a, dt) for a in (dataset.x, dataset.y, dataset.y_clean))
    has_test = bool(c.test and len(dataset.x_test))
    x_test = jnp.asarray(dataset.x_test, dt) if has_test else None
    y_test = jnp.asarray(dataset.y_test_clean, dt) if has_test else None
    steps = _checkpoint_steps(c.steps, c.checkpoints, c.num_checkpoints)
    n, n_test = int(x.shape[0]), int(x_test.shape[0]) if has_test else 0
    entries = len(steps) * (n * n + n_test * n) + 3 * n * n  # + Θ_∞, V, one Θ_t in flight
    entries += (limit_kernel_fn is not None) * (n * n + n_test * n)
    need = entries * np.dtype(dt).itemsize
    if need > c.max_kernel_bytes:
        raise MemoryBudgetError(
            f"the kernels at {len(steps)} checkpoints for n = {n} (and n_test = {n_test}) need "
            f"about {need / 1e9:.3g} GB > max_kernel_bytes = {c.max_kernel_bytes / 1e9:.3g} GB; "
            "use fewer checkpoints, fewer training points, test=False, or raise max_kernel_bytes"
        )
    ntk_fn = empirical_ntk_fn(apply_fn, implementation="auto") if ntk_fn is None else ntk_fn
    params = jax.tree_util.tree_map(lambda p: jnp.asarray(p, dt), params)
    total = len(steps) + 2 + (limit_kernel_fn is not None)
    done = itertools.count(1)

    def kernels(p):
        theta = ntk_fn(p, x)
        return theta, (ntk_fn(p, x_test, x) if has_test else None)

    def stage(name):
        report_progress(progress, name, next(done), total)

    # Θ_0 first: it fixes the default step size, and is the reference of the kernel distance.
    plan = ntk_fn.plan(params, x)
    theta0, theta0_test = kernels(params)
    measured = [(theta0, theta0_test, *_measure(theta0, y, y_clean))]
    stage("eNTK at step 0")
    if limit_kernel_fn is not None:
        limit_ntk = np.asarray(limit_kernel_fn(x).ntk, dt)
        limit_test = None if x_test is None else np.asarray(limit_kernel_fn(x_test, x).ntk, dt)
        limit_eig, limit_spectra, limit_alignment = _measure(jnp.asarray(limit_ntk), y, y_clean)
        stage("infinite-width kernel")
    eta = None
    if c.optimizer is None:
        eta = check_step_size(float(measured[0][2].eigenvalues[0]), c.eta, force=c.force)
    run = _train(apply_fn, params, x, y, y_clean, x_test, y_test, c, eta, steps)
    stage("training")

    # Host copies: indexing them per checkpoint compiles nothing.
    params_t = jax.tree_util.tree_map(np.asarray, run.observed["params"])
    for i in range(1, len(steps)):
        theta, theta_test = kernels(jax.tree_util.tree_map(lambda a, i=i: a[i], params_t))
        measured.append((theta, theta_test, *_measure(theta, y, y_clean)))
        stage(f"eNTK at step {int(steps[i])}")
    thetas, thetas_test, eigs, spectras, aligns = zip(*measured, strict=True)

    ntk = np.stack([np.asarray(t) for t in thetas])
    ntk_test = np.stack([np.asarray(t) for t in thetas_test]) if has_test else None

    def distance(a, b):
        """‖a − b‖_F / ‖b‖_F over b's axes (a may have a leading checkpoint axis); None for None."""
        if a is None:
            return None
        a, b = jnp.asarray(a), jnp.asarray(b)
        axes = tuple(range(a.ndim - b.ndim, a.ndim))
        return np.asarray(jnp.sqrt(jnp.sum((a - b) ** 2, axis=axes)) / jnp.linalg.norm(b))

    limit = None
    if limit_kernel_fn is not None:
        limit = KernelLimit(
            name=limit_name,
            ntk=limit_ntk,
            ntk_test=limit_test,
            eigenvalues=limit_eig.eigenvalues,
            spectra=limit_spectra,
            alignment=limit_alignment,
            distance=distance(ntk, limit_ntk),
            distance_test=distance(ntk_test, limit_test),
        )
    obs = run.observed
    nan = np.full(len(steps), np.nan)
    curves = TrainingCurves(
        loss=np.asarray(obs["loss"]),
        dist_clean=np.asarray(run.dist_train),
        dist_test=np.asarray(run.dist_test) if has_test else nan,
        accuracy_clean=np.asarray(obs["accuracy_clean"]),
        accuracy_noisy=np.asarray(obs["accuracy_noisy"]),
        accuracy_test=np.asarray(obs["accuracy_test"]) if has_test else nan,
        weight_change=np.asarray(run.weight_change),
    )
    return EntkStudy(
        data=data_summary(dataset),
        steps=steps,
        eta=eta,
        plan=plan._asdict(),
        ntk=ntk,
        ntk_test=ntk_test,
        eigenvalues=np.stack([np.asarray(e.eigenvalues) for e in eigs]),
        most_negative=np.asarray([float(e.most_negative) for e in eigs]),
        spectra=_stack(spectras),
        alignment=_stack(aligns),
        kernel_distance=distance(ntk, ntk[0]),
        kernel_distance_test=distance(ntk_test, ntk_test[0]) if has_test else None,
        curves=curves,
        limit=limit,
        params=params_t,
    )


def _train(apply_fn, params, x, y, y_clean, x_test, y_test, c, eta, steps):
    """One compiled training run that records θ_t and the fit at the checkpoints."""
    as_cols = (lambda a: a[:, None]) if y.ndim == 1 else (lambda a: a)
    y_c, y_clean_c = as_cols(y), as_cols(y_clean)
    y_test_c = None if y_test is None else as_cols(y_test)

    def observe(s):
        out = {
            "params": s.params,
            "loss": 0.5 * jnp.sum((s.u - s.target) ** 2),
            "accuracy_clean": accuracy(s.u, y_clean_c),
            "accuracy_noisy": accuracy(s.u, y_c),
        }
        if s.test is not None:
            out["accuracy_test"] = accuracy(s.test, y_test_c)
        return out

    return train(
        apply_fn,
        params,
        x,
        y,
        y_clean,
        plain_gd() if c.rule is None else c.rule,
        steps=c.steps,
        eta=eta,
        optimizer=c.optimizer,
        record=Record(at=tuple(int(s) for s in steps), fn=observe),
        x_test=x_test,
        y_test_clean=y_test,
        dtype=x.dtype,
    )


NETWORK_DEFAULTS = {"width": 512, "depth": 2, "channels": 16, "input_shape": None,
                    "pool": "flatten", "activation": "relu", "b_std": 0.0}  # fmt: skip
"""The network options of `entk_network` and their defaults."""
_NOT_FOR = {  # the architectures of `entk_network` and the options they do not take
    "mlp": ("channels", "input_shape", "pool"),
    "cnn": ("width", "activation"),
    "two-layer-relu": ("depth", "channels", "input_shape", "pool", "activation", "b_std"),
}


def network_options(arch: str, **given) -> dict:
    """The network options of an `entk_network` of `arch`: those given checked, the rest defaults.

    Raises:
      ValueError: an option that does not apply to `arch`, or out of range (named).

    Example:
      >>> studies.network_options("cnn", channels=8)["channels"]
      8
    """
    if arch not in _NOT_FOR:
        raise ValueError(f"arch must be one of {tuple(_NOT_FOR)}, got {arch!r}")
    unknown = sorted(set(given) - set(NETWORK_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown network option {unknown[0]!r} (known: {tuple(NETWORK_DEFAULTS)})")
    for name in _NOT_FOR[arch]:
        if given.get(name) is not None:
            raise ValueError(f"{name} does not apply to arch {arch!r}, got {given[name]!r}")
    opts = {k: v if given.get(k) is None else given[k] for k, v in NETWORK_DEFAULTS.items()}
    check_int("depth", opts["depth"], minimum=1 if arch == "cnn" else 0)
    check_int("width", opts["width"], minimum=1)
    check_int("channels", opts["channels"], minimum=1)
    return opts


_INPUT_SHAPES = {"digits": (8, 8, 1), "mnist1d": (40, 1)}  # data set name prefix → CNN shape


class EntkNetwork(NamedTuple):
    """A network to train, its eNTK function and its infinite-width kernel (if any)."""

    apply_fn: Any  # f(params, x) → (n,), (n, 1) or (n, C)
    params: Any  # θ_0 (pytree)
    ntk_fn: EmpiricalNTKFn  # the eNTK as a function of the parameters
    limit_kernel_fn: Any  # the infinite-width KernelFn, or None
    limit_name: str  # its name, or why there is none
    description: dict  # the architecture's options, for reports (with a one-line "summary")


def entk_estimate(
    arch: str,
    dataset,
    *,
    steps: int,
    checkpoints: int,
    width: int = 512,
    depth: int = 2,
    channels: int = 16,
    input_shape=None,
    dtype="float32",
    test: bool = True,
):
    """The `LoopEstimate` of an `entk` run from the sizes alone (P parameters, F forward
    multiply-adds per row, C outputs, T checkpoints): time ≈ steps·6nF + T·(3(n + n_t)CF +
    2n(n + n_t)CP) multiply-adds, memory ≈ itemsize·(P·(4 + T) + T·n·(n + n_t))."""
    n, n_test, c = sizes(dataset)
    n_test, d = n_test if test else 0, int(np.prod(np.shape(dataset.x)[1:]))
    hidden = max(depth, 1)
    params, flops = network_size(
        arch, d, c, widths=(width,) * hidden, channels=(channels,) * hidden, input_shape=input_shape
    )
    rates = DEFAULT_RATES
    train_s = steps * (6.0 * n * flops * rates["flop_seconds"] + rates["step_seconds"])
    kernel_flops = 3.0 * (n + n_test) * c * flops + 2.0 * n * (n + n_test) * c * params
    kernel_s = checkpoints * kernel_flops * rates["flop_seconds"]
    memory = np.dtype(dtype or "float32").itemsize * (
        params * (4 + checkpoints) + checkpoints * n * (n + n_test)
    )
    what = f"entk: {steps} steps of a {arch} with {params:.3g} parameters on {n} rows"
    detail = {"parameters": params, "training_seconds": train_s, "kernel_seconds": kernel_s}
    return LoopEstimate(what, train_s + kernel_s, int(memory), detail)


def entk_network(
    arch: str,
    dataset,
    *,
    width: int | None = None,
    depth: int | None = None,
    channels: int | None = None,
    input_shape=None,
    pool: str | None = None,
    activation: str | None = None,
    w_std: float = 1.0,
    b_std: float | None = None,
    seed: int = 0,
    implementation: str = "auto",
    tile_size: int | None = None,
    memory_budget: int | None = None,
    dtype=None,
) -> EntkNetwork:
    """A network for `entk` by name, matched to its infinite-width kernel.

    "mlp" (NTK parameterization; Θ_∞ = `kernels.fc_kernel_fn`), "cnn" (Θ_∞ from neural-tangents'
    `cnn` spec when installed) or "two-layer-relu" (the theorem's net, ±1 labels; Θ_∞ = H∞), with
    C = 1 output for ±1 labels, else one per class. Options left None take `NETWORK_DEFAULTS`.

    Args:
      arch: 'mlp', 'cnn' or 'two-layer-relu'.
      dataset: the `data.Dataset` it is trained on (input size, label format, name).
      width: hidden width of "mlp" and "two-layer-relu".
      depth: hidden layers of "mlp", convolutions of "cnn".
      channels: channels per convolution ("cnn").
      input_shape: "cnn" example shape (*spatial, channels); None: known for digits, mnist1d.
      pool: "cnn" pooling, 'flatten' or 'global'.
      activation: "mlp" activation, 'relu' or 'erf'.
      w_std: weight standard deviation (κ for "two-layer-relu").
      b_std: bias standard deviation.
      seed: initialization seed.
      implementation: eNTK implementation (`empirical.IMPLEMENTATIONS`).
      tile_size: eNTK rows per tile (None: from the memory budget).
      memory_budget: eNTK bytes per call (None: the default).
      dtype: dtype of the parameters and the limit kernel (None: the inputs' canonical dtype).

    Returns:
      EntkNetwork.

    Example:
      >>> net = studies.entk_network("mlp", ntk_air.data.digits(n_train=50, n_test=10), width=64)
      >>> net.limit_name, net.ntk_fn.plan(net.params, jnp.ones((5, 64))).implementation
      ('fc_kernel_fn(depth=2, relu, w_std=1, b_std=0)', 'structured')
    """
    opts = network_options(
        arch, width=width, depth=depth, channels=channels, input_shape=input_shape, pool=pool,
        activation=activation, b_std=b_std,
    )  # fmt: skip
    width, depth, channels, pool = opts["width"], opts["depth"], opts["channels"], opts["pool"]
    activation, b_std, input_shape = opts["activation"], opts["b_std"], opts["input_shape"]
    check_int("seed", seed, minimum=0, maximum=2**32 - 1)
    x = jnp.asarray(dataset.x, resolve_dtype(dtype, like=np.asarray(dataset.x)))
    one_hot = np.ndim(dataset.y) == 2
    out_dim = int(np.shape(dataset.y)[1]) if one_hot else 1
    if arch == "two-layer-relu" and one_hot:
        raise ValueError(
            "arch 'two-layer-relu' (the theorem's network) has one output: it needs ±1 labels, "
            f"got one-hot labels of {out_dim} classes (use a binary data set, e.g. "
            "digits-binary, or arch 'mlp')"
        )
    common = {"w_std": w_std, "b_std": b_std, "seed": seed}
    if arch == "mlp":
        net = models.network(
            "mlp", x, widths=(width,) * depth, out_dim=out_dim, activation=activation, **common
        )
        text = f"mlp {depth} × {width} {activation}"
        opts = {"width": width, "depth": depth, "activation": activation}
    elif arch == "two-layer-relu":
        net = models.network("two-layer-relu", x, widths=(width,), w_std=w_std, seed=seed)
        text = f"two-layer ReLU, width {width}, κ = {w_std:g}"
        opts = {"width": width}
    else:
        shape = _cnn_input_shape(input_shape, dataset)
        net = models.network(
            "cnn",
            x,
            channels=(channels,) * depth,
            input_shape=shape,
            out_dim=out_dim,
            pool=pool,
            **common,
        )
        text = f"cnn {depth} × {channels} channels on {'x'.join(map(str, shape))}, {pool}"
        opts = {"channels": channels, "depth": depth, "input_shape": shape, "pool": pool}
    module = None if arch == "cnn" else net.module  # the structured eNTK rules: MLP, two-layer
    ntk_fn = empirical_ntk_fn(
        net.apply_fn,
        implementation=implementation,
        model=module,
        tile_size=tile_size,
        memory_budget=memory_budget,
    )
    name = net.kernel_name if arch != "two-layer-relu" else "H∞ = two_layer_relu_kernel_fn()"
    summary_opts = {"arch": arch, "w_std": w_std, "b_std": b_std, "seed": seed, "out_dim": out_dim}
    description = {**summary_opts, **opts, "summary": text, "limit": name}
    return EntkNetwork(net.apply_fn, net.params, ntk_fn, net.kernel_fn, name, description)


def _cnn_input_shape(input_shape, dataset):
    if input_shape is not None:
        return tuple(int(s) for s in input_shape)
    for prefix, shape in _INPUT_SHAPES.items():
        if str(dataset.name).startswith(prefix):
            return shape
    raise ValueError(
        f"arch 'cnn' needs input_shape for data set {dataset.name!r} (one example's "
        "(*spatial, channels), e.g. (8, 8, 1)); it is known only for digits and mnist1d"
    )
