"""The ℓ2 theorem, checked: self-distillation with hard targets vs plain GD and early stopping.

On the clusterable model with flipped labels (SCIENCE.md §5; `ntk_air.data.clusters`) the study
compares, for the kernel limit ("inf": H∞ from u(0) = 0) and for real two-layer networks of
several widths m (trained by full-batch GD with `ntk_air.training.train`):

* plain GD at the last step (it memorizes the flips and ends near ‖e‖ = ‖y − ŷ‖),
* the best early stop min_k ‖u(k) − ŷ‖₂ of plain GD,
* self-distillation with hard targets (R3, ỹ(k+1) = α ỹ(k) + (1 − α) sign(u(k+1)), ỹ(0) = y):
  its final ‖u − ŷ‖₂, margin min_i ŷ_i u_i and 0-1 accuracy,

plus how close each real network stays to (a) its linearization (H(W0), same u(0)) and (b) the
kernel-limit dynamics (H∞, same u(0)), the distance ‖H(W0) − H∞‖_F/‖H∞‖_F, and Arora et al.'s
residual formula ‖y − u(k)‖² = Σ_i (1 − ηλ_i)^{2k} (v_iᵀ(y − u(0)))² (eigenpairs of H∞) against
the network's actual residual. η = 1/λ_max(H∞) throughout.

The gaps are reported twice: as the maximum over the whole run, and over a fixed short horizon
k ≤ `EARLY_HORIZON`. Lazy-training bounds (Lee et al. 2019) are O(1/√m) at a fixed horizon; over
thousands of steps plain GD goes on to fit the flipped labels along small-eigenvalue modes, W
moves far from W(0), and the whole-run gap of plain GD need not shrink over the widths studied.

A harder case (wider clusters, flip rate near 1/2) is run with both the theorem's i.i.d.
initialization and a symmetric one (f(W0) = 0), where width and initialization start to matter.

Reference: Dong et al. arXiv 1910.01255; Li, Soltanolkotabi, Oymak arXiv 1903.11680;
Arora et al. arXiv 1901.08584 (Thm 4.1); Lee et al. arXiv 1902.06720.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

from .distill import plain_gd, r3, self_distill, stack_rules
from .dynamics import resolve_step_size, u_curve
from .eigen import eigensystem
from .kernels import two_layer_relu
from .training import train, two_layer_network

__all__ = [
    "kernel_limit_check",
    "finite_width_check",
    "theorem_check",
    "arora_residual",
    "split_numbers_and_curves",
    "DEFAULT_WIDTHS",
    "DEFAULT_STEPS",
    "DEFAULT_SEED",
    "EARLY_HORIZON",
    "TUNING_SEED",
    "HARDER_CASE",
]

DEFAULT_WIDTHS = (256, 1024, 4096)
DEFAULT_STEPS = 2000
TUNING_SEED = 0  # the data seed the defaults (α, steps, widths, harder case) were chosen on
DEFAULT_SEED = 1  # the data seed `ntk-air theorem` reports on: data the defaults were not tuned on
HARDER_CASE = {"eps0": 0.5, "noise_rate": 0.4}  # wider clusters, 40 % flips (ρ close to 1/2)
EARLY_HORIZON = 10  # steps: the fixed short horizon of the `*_early` gaps


def arora_residual(eigenvalues, eigenvectors, y, u0, eta, steps):
    """‖y − u(k)‖₂ = sqrt(Σ_i (1 − ηλ_i)^{2k} (v_iᵀ(y − u(0)))²) at the given steps (linear model).

    Args:
      eigenvalues: (n,) λ_i of H. eigenvectors: (n, n) columns v_i. y, u0: (n,). eta: step size.
      steps: (T,) non-negative integers.

    Returns:
      (T,) residual norms.

    Reference: Arora, Du, Hu, Li, Wang, arXiv 1901.08584, Thm 4.1 (u(0) ≈ 0 there).
    """
    lam = np.asarray(eigenvalues, np.float64)
    c = np.asarray(eigenvectors, np.float64).T @ (
        np.asarray(y, np.float64) - np.asarray(u0, np.float64)
    )
    k = np.asarray(steps, np.float64)[:, None]
    return np.sqrt(np.sum(np.abs(1.0 - eta * lam)[None] ** (2 * k) * c[None] ** 2, axis=1))


def _rules(alpha):
    return stack_rules([plain_gd(), r3(alpha, hard=True)])


def kernel_limit_check(
    dataset, *, steps: int, alpha: float = 0.9, eta=None, record_every: int = 1, dtype=None
) -> dict:
    """Kernel limit (H∞, u(0) = 0): plain GD, its best early stop (closed form), hard-target R3.

    Returns a dict of numbers plus the distance curves `plain_curve`, `self_distill_curve` at
    the steps `steps_all` = 0, r, 2r, …, steps (r = record_every; every step by default), and
    the H∞ system under `_eig`, `_H`, `_eta`. The numbers do not depend on r: the best early
    stop is taken over every step (closed form) and the final distances at k = steps.
    """
    H = two_layer_relu(dataset.x, dtype=dtype)
    eig = eigensystem(H, dtype=H.dtype)
    eta = resolve_step_size(eig, eta)
    k_test = (
        two_layer_relu(dataset.x_test, dataset.x, dtype=H.dtype) if len(dataset.x_test) else None
    )
    y_test = dataset.y_test_clean if k_test is not None else None
    run = self_distill(
        H,
        dataset.y,
        dataset.y_clean,
        _rules(alpha),
        steps=steps,
        eta=eta,
        eig=eig,
        record_every=record_every,
        k_test=k_test,
        y_test_clean=y_test,
    )
    uc = u_curve(eig, dataset.y, dataset.y_clean, np.arange(steps + 1), eta=eta)
    return {
        "plain_final_dist": float(run.dist_train[0, -1]),
        "best_early_stop_dist": float(uc.best_dist),
        "best_early_stop_step": int(uc.best_step),
        "self_distill_final_dist": float(run.dist_train[1, -1]),
        "self_distill_margin": float(run.margin_train[1]),
        "self_distill_accuracy_train": float(run.accuracy_train[1]),
        "self_distill_accuracy_test": float(run.accuracy_test[1]),
        "plain_accuracy_test": float(run.accuracy_test[0]),
        "steps_all": np.asarray(run.steps),
        "plain_curve": np.asarray(run.dist_train[0]),
        "self_distill_curve": np.asarray(run.dist_train[1]),
        "_eig": eig,
        "_H": H,
        "_eta": eta,
        "_alpha": float(alpha),
    }


def finite_width_check(
    dataset,
    width: int,
    *,
    steps: int,
    eta: float,
    H_inf,
    eig_inf,
    alpha: float = 0.9,
    kappa: float = 1.0,
    init: str = "iid",
    seed: int = 0,
    record_every: int = 10,
    dtype="float32",
    early_steps: int = EARLY_HORIZON,
) -> dict:
    """A real network of width m trained plainly and with hard-target R3, from the same init.

    Also: the same two runs for its linearization (H(W0)) and for the kernel limit (H∞), both
    from the network's own u(0) = f(W0), and Arora's residual formula for plain GD. Gaps are
    the maximum over the recorded steps of the whole run, and (`*_early`) over the recorded
    steps k ≤ `early_horizon_step`, the first record at or after min(early_steps, steps).
    """
    from .empirical import two_layer_ntk

    x = jnp.asarray(dataset.x, dtype)
    apply_fn, params = two_layer_network(width, x, kappa=kappa, seed=seed, init=init)
    has_test = len(dataset.x_test) > 0
    t0 = time.perf_counter()
    run = train(
        apply_fn,
        params,
        x,
        dataset.y,
        dataset.y_clean,
        _rules(alpha),
        steps=steps,
        eta=eta,
        record_every=record_every,
        record_predictions=True,
        x_test=jnp.asarray(dataset.x_test, dtype) if has_test else None,
        y_test_clean=dataset.y_test_clean if has_test else None,
    )
    jax.block_until_ready(run)
    seconds = time.perf_counter() - t0
    kdt = H_inf.dtype
    u0 = np.asarray(apply_fn(params, x), np.float64)
    H0 = two_layer_ntk(params, jnp.asarray(dataset.x, kdt), dtype=kdt)
    common = dict(
        steps=steps,
        eta=eta,
        record_every=record_every,
        u0=u0,
        engine="scan",
        record_predictions=True,
    )
    lin = self_distill(H0, dataset.y, dataset.y_clean, _rules(alpha), **common)
    inf = self_distill(H_inf, dataset.y, dataset.y_clean, _rules(alpha), eig=eig_inf, **common)
    u_net = np.asarray(run.u_path, np.float64)  # (2, r, n)
    gap_lin = np.linalg.norm(u_net - np.asarray(lin.u_path), axis=2)  # (2, r)
    gap_inf = np.linalg.norm(u_net - np.asarray(inf.u_path), axis=2)
    rec = np.asarray(run.steps)
    arora = arora_residual(eig_inf.eigenvalues, eig_inf.eigenvectors, dataset.y, u0, eta, rec)
    residual = np.linalg.norm(np.asarray(dataset.y)[None] - u_net[0], axis=1)
    arora_err = np.abs(residual - arora) / max(arora[0], 1e-300)
    k_early = int(rec[np.searchsorted(rec, min(early_steps, steps))])
    early = rec <= k_early
    d_all = np.asarray(run.dist_train_all)
    best = int(np.argmin(d_all[0]))
    return {
        "plain_final_dist": float(run.dist_train[0, -1]),
        "best_early_stop_dist": float(d_all[0, best]),
        "best_early_stop_step": best,
        "self_distill_final_dist": float(run.dist_train[1, -1]),
        "self_distill_margin": float(run.margin_train[1]),
        "self_distill_accuracy_train": float(run.accuracy_train[1]),
        "self_distill_accuracy_test": float(run.accuracy_test[1]),
        "plain_accuracy_test": float(run.accuracy_test[0]),
        "plain_weight_change": float(run.weight_change[0, -1]),
        "self_distill_weight_change": float(run.weight_change[1, -1]),
        "initial_output_norm": float(np.linalg.norm(u0)),
        "ntk_init_rel_dist_to_inf": float(
            np.linalg.norm(np.asarray(H0) - np.asarray(H_inf)) / np.linalg.norm(np.asarray(H_inf))
        ),
        "linearization_gap_plain": float(gap_lin[0].max()),
        "linearization_gap_self_distill": float(gap_lin[1].max()),
        "kernel_limit_gap_plain": float(gap_inf[0].max()),
        "kernel_limit_gap_self_distill": float(gap_inf[1].max()),
        "linearized_self_distill_final_dist": float(lin.dist_train[1, -1]),
        "arora_max_rel_error": float(arora_err.max()),
        "early_horizon_step": k_early,
        "linearization_gap_plain_early": float(gap_lin[0, early].max()),
        "linearization_gap_self_distill_early": float(gap_lin[1, early].max()),
        "kernel_limit_gap_plain_early": float(gap_inf[0, early].max()),
        "kernel_limit_gap_self_distill_early": float(gap_inf[1, early].max()),
        "arora_max_rel_error_early": float(arora_err[early].max()),
        "train_seconds": seconds,
        "steps": rec,
        "steps_all": np.arange(steps + 1),
        "plain_curve": d_all[0],
        "self_distill_curve": d_all[1],
        "linearization_gap_curve": gap_lin,
        "kernel_limit_gap_curve": gap_inf,
        "arora_formula": arora,
        "network_residual": residual,
    }


_CURVES = (
    "steps",
    "steps_all",
    "plain_curve",
    "self_distill_curve",
    "linearization_gap_curve",
    "kernel_limit_gap_curve",
    "arora_formula",
    "network_residual",
)


def theorem_check(
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
    progress: bool = True,
    early_steps: int = EARLY_HORIZON,
    kernel_limit: dict | None = None,
) -> dict:
    """Kernel limit and each width: {"inf": {...}, "256": {...}, ...} (numbers and curves).

    η = 1/λ_max(H∞) for every run. Widths are trained from init seed `init_seed`. The kernel
    limit (curves at every step) is returned whole under `_kernel_limit`; pass it back as
    `kernel_limit` to study another initialization on the same data, steps and α without
    recomputing it.
    """
    from tqdm.auto import tqdm

    if kernel_limit is None:
        kdt = "float64" if jax.config.jax_enable_x64 else "float32"
        kernel_limit = kernel_limit_check(dataset, steps=steps, alpha=alpha, dtype=kdt)
    elif (int(kernel_limit["steps_all"][-1]), kernel_limit["_alpha"]) != (steps, float(alpha)):
        raise ValueError(
            f"kernel_limit was computed for steps={int(kernel_limit['steps_all'][-1])}, "
            f"alpha={kernel_limit['_alpha']}; this check has steps={steps}, alpha={alpha}"
        )
    eig, H, eta = kernel_limit["_eig"], kernel_limit["_H"], kernel_limit["_eta"]
    inf = {k: v for k, v in kernel_limit.items() if not k.startswith("_")}
    out = {"inf": inf}
    for m in tqdm(
        list(widths), desc=f"theorem widths ({init} init)", disable=not progress, unit="width"
    ):
        out[str(int(m))] = finite_width_check(
            dataset,
            int(m),
            steps=steps,
            eta=eta,
            H_inf=H,
            eig_inf=eig,
            alpha=alpha,
            kappa=kappa,
            init=init,
            seed=init_seed,
            record_every=record_every,
            dtype=network_dtype,
            early_steps=early_steps,
        )
    out["_kernel_limit"] = kernel_limit
    out["_eta"] = eta
    out["_lambda_max"] = float(eig.eigenvalues[0])
    out["_lambda_min"] = float(eig.eigenvalues[-1])
    return out


def split_numbers_and_curves(result: dict):
    """Separate numbers (for the JSON table) from curves (for figures and the JSON `curves`)."""
    numbers, curves = {}, {}
    for key, res in result.items():
        if key.startswith("_"):
            continue
        numbers[key] = {k: v for k, v in res.items() if k not in _CURVES}
        curves[key] = {k: v for k, v in res.items() if k in _CURVES}
    return numbers, curves
