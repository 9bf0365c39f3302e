"""The ℓ2 theorem checked on real networks and in the kernel limit (docs/science/theorem.md).

Reference: Dong et al. arXiv 1910.01255; Li, Soltanolkotabi, Oymak arXiv 1903.11680;
Arora et al. arXiv 1901.08584 (Thm 4.1); Lee et al. arXiv 1902.06720.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_int
from ..distillation._engines import self_distill
from ..distillation._targets import plain_gd, r3
from ..dynamics._early_stopping import u_curve
from ..dynamics._linearized import resolve_step_size
from ..dynamics._record import Record
from ..kernels._kernel_fn import two_layer_relu
from ..spectral._eigen import Eigensystem, eigensystem
from ..spectral._problem import linear_problem
from ._models import network
from ._training import train

DEFAULT_WIDTHS = (256, 1024, 4096)
"""Network widths of the default check."""
DEFAULT_STEPS = 20_000  # docs/science/theorem.md#measured
"""Full-batch GD steps of the default check."""
TUNING_SEED = 0
"""The data seed the defaults (α, steps, widths, harder case) were chosen on."""
DEFAULT_SEED = 1
"""The data seed `ntk-air theorem` reports on: data the defaults were not tuned on."""
HARDER_CASE = {"eps0": 0.5, "noise_rate": 0.4}
"""`data.clusters` options of the harder case: wider clusters, 40 % flips (ρ close to 1/2)."""
EARLY_HORIZON = 10
"""Steps: the fixed short horizon of the `*_early` gaps."""


_GAPS = ("linearization_gap", "kernel_limit_gap")  # WidthCheck's gap fields, per rule


class KernelLimitCheck(NamedTuple):
    """The kernel limit (H∞ from u(0) = 0): plain GD, its best early stop, hard-target R3."""

    plain_final_dist: float  # ‖u(K) − ŷ‖₂ of plain GD after the last step K
    best_early_stop_dist: float  # min_k ‖u(k) − ŷ‖₂ of plain GD over every step (closed form)
    best_early_stop_step: int  # its argmin k
    self_distill_final_dist: float  # ‖u(K) − ŷ‖₂ of hard-target R3
    self_distill_margin: float  # min_i ŷ_i u_i of R3 at K
    self_distill_accuracy_train: float  # 0-1 accuracy of sign(u) against ŷ
    self_distill_accuracy_test: float  # on the test points (NaN without)
    plain_accuracy_test: float  # plain GD's test accuracy at K (NaN without)
    steps_all: np.ndarray  # (r,) recorded steps 0, r, 2r, …, K
    plain_curve: np.ndarray  # (r,) plain GD's ‖u(k) − ŷ‖₂
    self_distill_curve: np.ndarray  # (r,) R3's ‖u(k) − ŷ‖₂
    eta: float  # η = 1/λ_max(H∞) unless given
    alpha: float  # R3's α
    lambda_max: float  # λ_max(H∞)
    lambda_min: float  # λ_min(H∞)


class WidthCheck(NamedTuple):
    """A real network of width m, plain and hard-target R3 from one init, against its limits."""

    width: int  # m
    plain_final_dist: float
    best_early_stop_dist: float  # over every step of the real run
    best_early_stop_step: int
    self_distill_final_dist: float
    self_distill_margin: float
    self_distill_accuracy_train: float
    self_distill_accuracy_test: float
    plain_accuracy_test: float
    plain_weight_change: float  # ‖W(K) − W(0)‖_F of plain GD
    self_distill_weight_change: float
    initial_output_norm: float  # ‖f(W0, X)‖₂ (0 for the symmetric init)
    ntk_init_rel_dist_to_inf: float  # ‖H(W0) − H∞‖_F / ‖H∞‖_F
    linearization_gap_plain: float  # max over recorded k of ‖u_net(k) − u_lin(k)‖ (H(W0))
    linearization_gap_self_distill: float
    kernel_limit_gap_plain: float  # max over recorded k of ‖u_net(k) − u_∞(k)‖ (H∞, same u(0))
    kernel_limit_gap_self_distill: float
    linearized_self_distill_final_dist: float  # R3's final distance under H(W0)
    arora_max_rel_error: float  # max_k |‖y − u(k)‖ − Arora's formula| / formula(0)
    early_horizon_step: int  # the first record at or after min(EARLY_HORIZON, K)
    linearization_gap_plain_early: float  # the gaps over k ≤ early_horizon_step
    linearization_gap_self_distill_early: float
    kernel_limit_gap_plain_early: float
    kernel_limit_gap_self_distill_early: float
    arora_max_rel_error_early: float
    steps: np.ndarray  # (r,) recorded steps
    steps_all: np.ndarray  # (K + 1,) every step
    plain_curve: np.ndarray  # (K + 1,) ‖u(k) − ŷ‖₂ at every step
    self_distill_curve: np.ndarray  # (K + 1,)
    linearization_gap_curve: np.ndarray  # (2, r) plain and R3
    kernel_limit_gap_curve: np.ndarray  # (2, r)
    arora_formula: np.ndarray  # (r,) Arora's ‖y − u(k)‖₂
    network_residual: np.ndarray  # (r,) the network's ‖y − u(k)‖₂


class TheoremCheck(NamedTuple):
    """The kernel limit and every width, on one data set, step budget and α."""

    kernel_limit: KernelLimitCheck
    networks: tuple  # (WidthCheck, …) in the order of the widths
    init: str  # "iid" or "symmetric"


def _arora_residual(eigenvalues, eigenvectors, y, u0, eta, steps):
    """‖y − u(k)‖₂ = sqrt(Σ_i (1 − ηλ_i)^{2k} (v_iᵀ(y − u(0)))²) (Arora et al. arXiv 1901.08584)."""
    lam = np.asarray(eigenvalues, np.float64)
    c = np.asarray(eigenvectors, np.float64).T @ (
        np.asarray(y, np.float64) - np.asarray(u0, np.float64)
    )
    k = np.asarray(steps, np.float64)[:, None]
    return np.sqrt(np.sum(np.abs(1.0 - eta * lam)[None] ** (2 * k) * c[None] ** 2, axis=1))


def _rules(alpha):
    return [plain_gd(), r3(alpha, hard=True)]


def _final_numbers(run) -> dict:
    """The final distances, R3's margin and the accuracies of a [plain GD, R3] run."""
    return {
        "plain_final_dist": float(run.dist_train[0, -1]),
        "self_distill_final_dist": float(run.dist_train[1, -1]),
        "self_distill_margin": float(run.margin_train[1]),
        "self_distill_accuracy_train": float(run.accuracy_train[1]),
        "self_distill_accuracy_test": float(run.accuracy_test[1]),
        "plain_accuracy_test": float(run.accuracy_test[0]),
    }


def _kernel_system(dataset, dtype=None):
    H = two_layer_relu(dataset.x, dtype=dtype)
    k_test = (
        two_layer_relu(dataset.x_test, dataset.x, dtype=H.dtype) if len(dataset.x_test) else None
    )
    return H, k_test, eigensystem(H)


def kernel_limit(
    dataset,
    *,
    steps: int,
    alpha: float = 0.9,
    eta=None,
    record_every: int = 1,
    dtype=None,
    system=None,
) -> KernelLimitCheck:
    """Kernel limit (H∞, u(0) = 0): plain GD, its best early stop (closed form), hard-target R3.

    Args:
      dataset: a `data.Dataset` with unit-norm rows and ±1 labels.
      steps: GD steps.
      alpha: R3's α.
      eta: step (default 1/λ_max(H∞)).
      record_every: recording period of the curves.
      dtype: of H∞ (default: the inputs').
      system: (H, K_test_train, Eigensystem) to reuse, as `_kernel_system` makes it.

    Returns:
      KernelLimitCheck.
    """
    H, k_test, eig = _kernel_system(dataset, dtype) if system is None else system
    eta = resolve_step_size(eig, eta)
    problem = linear_problem(
        eig,
        dataset.y,
        dataset.y_clean,
        k_test_train=k_test,
        y_test_clean=dataset.y_test_clean if k_test is not None else None,
        kernel=H,
    )
    run = self_distill(problem, _rules(alpha), steps=steps, eta=eta, record=Record(record_every))
    uc = u_curve(problem, steps=np.arange(steps + 1), eta=eta)
    return KernelLimitCheck(
        best_early_stop_dist=float(uc.best_dist),
        best_early_stop_step=int(uc.best_step),
        **_final_numbers(run),
        steps_all=np.asarray(run.steps),
        plain_curve=np.asarray(run.dist_train[0]),
        self_distill_curve=np.asarray(run.dist_train[1]),
        eta=float(eta),
        alpha=float(alpha),
        lambda_max=float(eig.eigenvalues[0]),
        lambda_min=float(eig.eigenvalues[-1]),
    )


def network_check(
    dataset,
    width: int,
    *,
    steps: int,
    eta: float,
    H_inf,
    eig_inf: Eigensystem,
    alpha: float = 0.9,
    kappa: float = 1.0,
    init: str = "iid",
    seed: int = 0,
    record_every: int = 10,
    dtype="float32",
    early_steps: int = EARLY_HORIZON,
) -> WidthCheck:
    """A real network of width m trained plainly and with hard-target R3, from the same init.

    Compared with the same runs under H(W0) and H∞ from its u(0) = f(W0), and with Arora's
    residual formula: max gaps over the recorded steps, and (`*_early`) over k ≤ the first record
    at or after min(early_steps, steps).

    Args:
      dataset: the data.
      width: m.
      steps: GD steps.
      eta: the step (η = 1/λ_max(H∞) in the check).
      H_inf: H∞ of the training inputs.
      eig_inf: its decomposition.
      alpha: R3's α.
      kappa: init scale κ.
      init: "iid" (the theorem's) or "symmetric" (f(W0) = 0).
      seed: init seed.
      record_every: recording period.
      dtype: the network's dtype (weights drawn in float64, then cast).
      early_steps: the short horizon.

    Returns:
      WidthCheck.
    """
    from ..empirical import two_layer_ntk

    x_net = jnp.asarray(dataset.x, dtype)
    net = network("two-layer-relu", dataset.x, widths=(width,), w_std=kappa, init=init, seed=seed)
    params = {k: jnp.asarray(v, dtype) for k, v in net.params.items()}
    # the Partial's bound readout, cast with the weights
    apply_fn = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), net.apply_fn)
    has_test = len(dataset.x_test) > 0
    run = train(
        apply_fn,
        params,
        x_net,
        dataset.y,
        dataset.y_clean,
        _rules(alpha),
        steps=steps,
        eta=eta,
        record=Record(record_every, predictions=True),
        x_test=jnp.asarray(dataset.x_test, dtype) if has_test else None,
        y_test_clean=dataset.y_test_clean if has_test else None,
    )
    kdt = H_inf.dtype
    u0 = np.asarray(apply_fn(params, x_net), np.float64)
    H0 = two_layer_ntk(params, jnp.asarray(dataset.x, kdt), dtype=kdt)
    record = Record(record_every, predictions=True)

    def linearized(H, eig):
        problem = linear_problem(eig, dataset.y, dataset.y_clean, u0=u0, kernel=H)
        return self_distill(
            problem, _rules(alpha), steps=steps, eta=eta, engine="scan", record=record
        )

    lin = linearized(H0, eigensystem(H0))
    inf = linearized(H_inf, eig_inf)
    u_net = np.asarray(run.u_path, np.float64)  # (2, r, n)
    gap_lin = np.linalg.norm(u_net - np.asarray(lin.u_path), axis=2)  # (2, r)
    gap_inf = np.linalg.norm(u_net - np.asarray(inf.u_path), axis=2)
    rec = np.asarray(run.steps)
    arora = _arora_residual(eig_inf.eigenvalues, eig_inf.eigenvectors, dataset.y, u0, eta, rec)
    residual = np.linalg.norm(np.asarray(dataset.y)[None] - u_net[0], axis=1)
    arora_err = np.abs(residual - arora) / max(arora[0], 1e-300)
    k_early = int(rec[np.searchsorted(rec, min(early_steps, steps))])
    early = rec <= k_early
    d_all = np.asarray(run.dist_train_all)
    best = int(np.argmin(d_all[0]))
    H_inf_np = np.asarray(H_inf)
    return WidthCheck(
        width=int(width),
        best_early_stop_dist=float(d_all[0, best]),
        best_early_stop_step=best,
        **_final_numbers(run),
        plain_weight_change=float(run.weight_change[0, -1]),
        self_distill_weight_change=float(run.weight_change[1, -1]),
        initial_output_norm=float(np.linalg.norm(u0)),
        ntk_init_rel_dist_to_inf=float(
            np.linalg.norm(np.asarray(H0) - H_inf_np) / np.linalg.norm(H_inf_np)
        ),
        **{
            f"{name}_{rule}{suffix}": float(gap[i, steps_in].max())
            for name, gap in zip(_GAPS, (gap_lin, gap_inf), strict=True)
            for i, rule in enumerate(("plain", "self_distill"))
            for suffix, steps_in in (("", slice(None)), ("_early", early))
        },
        linearized_self_distill_final_dist=float(lin.dist_train[1, -1]),
        arora_max_rel_error=float(arora_err.max()),
        early_horizon_step=k_early,
        arora_max_rel_error_early=float(arora_err[early].max()),
        steps=rec,
        steps_all=np.arange(steps + 1),
        plain_curve=d_all[0],
        self_distill_curve=d_all[1],
        linearization_gap_curve=gap_lin,
        kernel_limit_gap_curve=gap_inf,
        arora_formula=arora,
        network_residual=residual,
    )


def check_theorem(
    dataset,
    widths=DEFAULT_WIDTHS,
    *,
    steps: int = DEFAULT_STEPS,
    alpha: float = 0.9,
    kappa: float = 1.0,
    init: str = "iid",
    init_seed: int = 0,
    record_every: int = 10,
    network_dtype="float32",
    early_steps: int = EARLY_HORIZON,
    limit: KernelLimitCheck | None = None,
    system=None,
    progress: Callable[[str, int, int], None] | None = None,
) -> TheoremCheck:
    """The kernel limit and each width (η = 1/λ_max(H∞), init seed `init_seed`): a `TheoremCheck`.

    steps, alpha, kappa, init, record_every and early_steps are as in `network_check`, init_seed
    its seed.

    Args:
      dataset: clusterable data (`data.clusters`).
      widths: network widths m ≥ 2.
      network_dtype: the networks' dtype (the kernel limit follows the data's dtype).
      limit: a KernelLimitCheck to reuse (must match steps and α).
      system: (H∞, K(X_test, X), Eigensystem) to reuse.
      progress: progress(stage, done, total), called after each part.

    Returns:
      TheoremCheck(kernel_limit, networks, init).

    Example:
      >>> check = check_theorem(data.clusters(seed=1), widths=(64,), steps=200)
      >>> check.kernel_limit.self_distill_final_dist < check.kernel_limit.best_early_stop_dist
      True
    """
    widths = tuple(check_int("width", w, minimum=2) for w in widths)
    check_int("steps", steps, minimum=1)
    system = _kernel_system(dataset) if system is None else system
    H, _, eig = system
    total = len(widths) + 1
    if limit is None:
        limit = kernel_limit(dataset, steps=steps, alpha=alpha, record_every=1, system=system)
    elif (int(limit.steps_all[-1]), limit.alpha) != (steps, float(alpha)):
        raise ValueError(
            f"the kernel limit given was computed for steps={int(limit.steps_all[-1])}, "
            f"alpha={limit.alpha}; this check has steps={steps}, alpha={alpha}"
        )
    if progress is not None:
        progress("kernel limit", 1, total)
    options = dict(steps=steps, eta=limit.eta, H_inf=H, eig_inf=eig, alpha=alpha, kappa=kappa)
    options.update(init=init, seed=init_seed, record_every=record_every, early_steps=early_steps)
    networks = []
    for i, m in enumerate(widths):
        networks.append(network_check(dataset, m, dtype=network_dtype, **options))
        if progress is not None:
            progress(f"width {m} ({init} init)", i + 2, total)
    return TheoremCheck(kernel_limit=limit, networks=tuple(networks), init=init)


def _decreasing(values) -> bool | None:
    """Strictly decreasing; None (not checked) with fewer than two widths."""
    if len(values) < 2:
        return None
    return bool(np.all(np.diff(np.asarray(values, dtype=float)) < 0))


def claims(check: TheoremCheck) -> dict:
    """The statements a theorem report checks, each a bool computed from the numbers (None where
    a trend over widths cannot be checked: a single width)."""
    limit = check.kernel_limit
    nets = sorted(check.networks, key=lambda w: w.width)
    beats = {"inf": bool(limit.self_distill_final_dist < limit.best_early_stop_dist)}
    beats.update(
        {str(w.width): bool(w.self_distill_final_dist < w.best_early_stop_dist) for w in nets}
    )
    fields = ["linearization_gap_self_distill", "linearization_gap_plain", "kernel_limit_gap_plain"]
    fields += [f"{gap}_{rule}_early" for gap in _GAPS for rule in ("plain", "self_distill")]
    return {
        "self_distill_below_best_early_stop": beats,
        "self_distill_below_best_early_stop_everywhere": all(beats.values()),
        "self_distill_gap_to_kernel_limit_decreases_with_width": _decreasing(
            [abs(w.self_distill_final_dist - limit.self_distill_final_dist) for w in nets]
        ),
        **{f"{f}_decreases_with_width": _decreasing([getattr(w, f) for w in nets]) for f in fields},
    }


def numbers_and_curves(result) -> tuple[dict, dict]:
    """A check's numbers (for tables) and curves (for figures), keyed "inf" / "<width>"."""
    items = [("inf", result.kernel_limit)] + [(str(w.width), w) for w in result.networks]
    numbers, curves = {}, {}
    for key, res in items:
        d = res._asdict()
        d.pop("width", None)
        numbers[key] = {k: v for k, v in d.items() if not np.ndim(v)}
        curves[key] = {k: v for k, v in d.items() if np.ndim(v)}
    return numbers, curves
