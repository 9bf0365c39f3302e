"""The ℓ2 theorem study: the kernel limit and two-layer networks of several widths on the
clusterable model with flipped labels, plus a harder case with i.i.d. and symmetric inits
(docs/science/theorem.md; `networks.claims` says what is checked).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import NamedTuple

import numpy as np

from .. import networks
from .._checks import check_bool, check_int, check_optional, check_real, check_sequence, param
from ..data import clusters
from ..data._dataset import MAX_SEED
from ..networks._theorem import _kernel_system
from ..spectral import DEFAULT_RATES, Budget, LoopEstimate, SolverChoice, check_loop, plan_solver
from ._system import data_summary, report_progress


@dataclasses.dataclass(frozen=True)
class TheoremConfig:
    """Options of the theorem study on `data.clusters(seed=seed)` (each option's help says what
    it is).

    harder_widths: the harder case's widths (None: `widths`; even, for its symmetric init).
    early_horizon: the short horizon of the `*_early` gaps.
    """

    widths: tuple = param(
        networks.DEFAULT_WIDTHS, "network widths m, comma-separated", item=int, metavar="M"
    )
    steps: int = param(networks.DEFAULT_STEPS, "full-batch GD steps per run (2e4 style accepted)")
    seed: int = param(
        networks.DEFAULT_SEED, f"data seed (the defaults were tuned on {networks.TUNING_SEED})"
    )
    alpha: float = param(0.9, "R3's α")
    kappa: float = param(1.0, "init scale κ")
    init_seed: int = param(0, "network init seed")
    record_every: int = param(10, "curve recording period")
    harder: bool = param(
        True, f"skip the harder case ({networks.HARDER_CASE}, i.i.d. and symmetric inits)",
        option="--no-harder", flag=True,
    )  # fmt: skip
    harder_widths: tuple | None = None
    network_dtype: str = param(
        "float32",
        "dtype of network training (the initial weights are drawn in float64 either way; the "
        "kernel limit is float64)",
        choices=("float32", "float64"),
    )
    early_horizon: int = networks.EARLY_HORIZON

    def __post_init__(self):
        widths = check_sequence("widths", self.widths)
        check_optional(check_sequence, "harder_widths", self.harder_widths)
        if any(isinstance(w, bool) or not isinstance(w, int | np.integer) or w < 2 for w in widths):
            raise ValueError(f"widths must be integers ≥ 2, got {list(widths)}")
        check_int("steps", self.steps, minimum=1)
        check_int("record_every", self.record_every, minimum=1)
        check_int("early_horizon", self.early_horizon, minimum=1)
        check_int("seed", self.seed, minimum=0, maximum=MAX_SEED)
        check_int("init_seed", self.init_seed, minimum=0, maximum=MAX_SEED)
        check_real("alpha", self.alpha, minimum=0.0, maximum=1.0, open_max=True)
        check_real("kappa", self.kappa, minimum=0.0, open_min=True)
        check_bool("harder", self.harder)
        if self.network_dtype not in ("float32", "float64"):
            raise ValueError(
                f"network_dtype must be float32 or float64, got {self.network_dtype!r}"
            )
        harder_widths = tuple(self.harder_widths or widths)
        if self.harder and any(w % 2 for w in harder_widths):
            raise ValueError(
                f"the harder case's symmetric init needs even widths, got {list(harder_widths)} "
                "(or turn the harder case off)"
            )


class HarderCase(NamedTuple):
    """Wider clusters and a flip rate near 1/2, with both initializations."""

    data: dict
    noise_norm: float
    iid: networks.TheoremCheck
    symmetric: networks.TheoremCheck
    claims_iid: dict
    claims_symmetric: dict


class TheoremStudy(NamedTuple):
    """The theorem check on the default case (i.i.d. init) and, optionally, the harder case."""

    config: TheoremConfig
    data: dict
    noise_norm: float  # ‖e‖ = ‖y − ŷ‖
    check: networks.TheoremCheck
    claims: dict
    harder: HarderCase | None
    solver: SolverChoice | None = None  # the kernel limit's spectral path (dense)
    loops: LoopEstimate | None = None  # the training loops' time and recording estimate


def theorem_plan(
    config: TheoremConfig = TheoremConfig(), budget: Budget | None = None
) -> tuple[SolverChoice, LoopEstimate]:
    """Memory and time of `theorem`, decided (or refused) before any work.

    Per GD step each network of width m trains two rules (≈ 6·n·m·d multiply-adds each) and
    each linearization (H₀, H∞, the kernel limit) takes 2n² per rule; the recordings hold
    (n + n_test) numbers per rule and record, plus the largest network's weights and activations.

    Args:
      config: `TheoremConfig`.
      budget: `resources.Budget` (memory, time limit, force).

    Returns:
      (SolverChoice, LoopEstimate).

    Raises:
      resources.ResourceError: the recordings cannot fit the memory budget, or the loops are
        estimated above budget.seconds (unless budget.force); nothing was run.

    Example:
      >>> theorem_plan(TheoremConfig(steps=10**9))  # doctest: +IGNORE_EXCEPTION_DETAIL
      Traceback (most recent call last):
      ...
      ResourceError: theorem: ... is estimated to take ~... (> the 60 min ...
    """
    c = config
    ds = clusters(seed=c.seed)
    n, n_test = ds.x.shape[0], ds.x_test.shape[0]
    d = int(np.prod(ds.x.shape[1:]))
    choice = plan_solver(
        n, budget=budget, dtype="float64", n_test=n_test, d=d, solvers=("dense",), what="theorem"
    )
    widths = [int(w) for w in c.widths]
    harder_widths = [int(w) for w in (c.harder_widths or widths)] if c.harder else []
    nets = widths + 2 * harder_widths  # the harder case: i.i.d. and symmetric inits
    limits = 2 if c.harder else 1
    flop, step = DEFAULT_RATES["flop_seconds"], DEFAULT_RATES["step_seconds"]
    linear = 2 * (2.0 * n * n * flop + step)  # one linearized run of two rules, per step
    net_s = sum(2 * (6.0 * n * m * d * flop + step) + 2 * linear for m in nets)
    seconds = c.steps * (net_s + limits * linear)
    rows = (n + n_test) * 8 * 2
    memory = limits * (c.steps + 1) * rows * 2
    memory += len(nets) * (c.steps // c.record_every + 1) * rows * 3
    # One network at a time: its weights with gradients and the two rules' copies (≈ 6·m·d) and
    # its n × m activations and activation patterns (≈ 4·n·m, also behind H(W(0))), float64.
    memory += max(8 * (6 * m * (d + 1) + 4 * (n + n_test) * m) for m in nets)
    loops = LoopEstimate(
        f"theorem: {c.steps} steps × {len(nets)} networks (widths {widths}"
        + (f", harder case {harder_widths} × 2 inits" if c.harder else "")
        + f") and {limits} kernel limit{'s' if limits > 1 else ''}",
        float(seconds),
        int(memory),
        {"networks": len(nets), "kernel_limits": limits},
    )
    return choice, check_loop(loops, budget)


def theorem(
    config: TheoremConfig = TheoremConfig(),
    *,
    progress=None,
    budget: Budget | None = None,
):
    """Run the theorem check (no files, no output).

    Args:
      config: `TheoremConfig`.
      progress: progress(stage, done, total).
      budget: `resources.Budget`, checked by `theorem_plan` before anything runs.

    Returns:
      TheoremStudy.

    Raises:
      resources.ResourceError: see `theorem_plan`.

    Example:
      >>> study = theorem(TheoremConfig(widths=(64,), steps=200, harder=False))
      >>> study.claims["self_distill_below_best_early_stop"]
      {'inf': True, '64': True}
    """
    c = config
    choice, loops = theorem_plan(c, budget)
    widths = tuple(int(w) for w in c.widths)
    harder_widths = tuple(int(w) for w in (c.harder_widths or widths))
    parts = 1 + len(widths) + (2 * len(harder_widths) + 1 if c.harder else 0)
    done = itertools.count(1)

    def step(stage, *_):
        report_progress(progress, stage, next(done), parts)

    common = dict(
        steps=c.steps,
        alpha=c.alpha,
        kappa=c.kappa,
        init_seed=c.init_seed,
        record_every=c.record_every,
        network_dtype=c.network_dtype,
        early_steps=c.early_horizon,
        progress=step,
    )
    ds = clusters(seed=c.seed)
    check = networks.check_theorem(ds, widths, **common)
    summary = {
        **data_summary(ds),
        "seed": c.seed,
        "tuning_seed": networks.TUNING_SEED,
        "note": "data you did not tune on: the defaults were chosen on data seed "
        f"{networks.TUNING_SEED}; this report uses data seed {c.seed}",
    }
    harder = None
    if c.harder:
        ds_h = clusters(seed=c.seed, **networks.HARDER_CASE)
        system = _kernel_system(ds_h)  # the same kernel limit for both inits: computed once
        iid = networks.check_theorem(ds_h, harder_widths, init="iid", system=system, **common)
        sym = networks.check_theorem(
            ds_h,
            harder_widths,
            init="symmetric",
            system=system,
            limit=iid.kernel_limit,
            **common,
        )
        harder = HarderCase(
            data={
                **networks.HARDER_CASE,
                "seed": c.seed,
                "clusters_disjoint": ds_h.info["clusters_disjoint"],
            },
            noise_norm=float(np.linalg.norm(ds_h.y - ds_h.y_clean)),
            iid=iid,
            symmetric=sym,
            claims_iid=networks.claims(iid),
            claims_symmetric=networks.claims(sym),
        )
    return TheoremStudy(
        config=c,
        data=summary,
        noise_norm=float(np.linalg.norm(ds.y - ds.y_clean)),
        check=check,
        claims=networks.claims(check),
        harder=harder,
        solver=choice,
        loops=loops,
    )
