"""Benchmark: a grid of linear self-distillation rules in closed form vs one eigendecomposition.

Claim (issue 4): 32 rule/hyperparameter settings × 10⁴ GD steps at n = 2048, for the linear
(soft, constant-α) rules, cost no more than one eigendecomposition of the same kernel — every
rule is a per-mode 4×4 linear recursion in the eigenbasis, advanced by exact matrix powers
(`ntk_air.distillation.self_distill`, engine "closed-form"). Timed in the same run, after a warm-up
(compilation), with `block_until_ready`, median of repeats:

* eigh: `eigensystem(H)`;
* grid: the 32 settings × `--steps` steps (records every `--record-every`), one vmapped call;
* naive stepping: the same grid stepped in the original basis (u ← u − ηH(u − ỹ): one
  (n × n)(n × 32) product per step, engine "scan"), timed over `--naive-steps` steps and
  extrapolated linearly to `--steps` (it is linear in the steps);
* rounds: 32 round-based settings (ridge c × ξ) × `--rounds` rounds in closed form, against
  the naive way — rebuild the predictor each round: solve (H + cI) a = y_t per setting and
  round (timed on `--naive-solves` solves and extrapolated to 32 × rounds).

    python benchmarks/bench_distill.py --out benchmarks/results/distill.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys

import jax
import numpy as np
from _timing import time_calls


def _time(fn, repeats):
    """(median_s, times_s, warmup_s) of `fn` under the shared protocol."""
    t = time_calls(fn, repeats)
    return t.median_s, t.times_s, t.warmup_s


def _grid(D):
    """32 linear settings: R1, R1-lag, R3 (soft) and bootstrapping, 8 values each."""
    alphas = np.linspace(0.1, 0.95, 8)
    rules = [D.r1(a) for a in alphas] + [D.r1_lag(a) for a in alphas]
    rules += [D.r3(a, hard=False) for a in alphas] + [D.bootstrap(1 - a) for a in alphas]
    return D.stack_rules(rules)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2048, help="training points (default 2048)")
    p.add_argument("--d", type=int, default=32, help="input dimension (default 32)")
    p.add_argument("--steps", type=int, default=10_000, help="GD steps per setting (default 10⁴)")
    p.add_argument("--record-every", type=int, default=100, help="recording period (default 100)")
    p.add_argument(
        "--naive-steps",
        type=int,
        default=100,
        help="steps actually timed for the naive stepping (default 100)",
    )
    p.add_argument("--rounds", type=int, default=10, help="rounds of the round-based grid")
    p.add_argument("--naive-solves", type=int, default=4, help="solves timed for the naive rounds")
    p.add_argument("--dtype", default="float64", choices=("float32", "float64"))
    p.add_argument("--repeats", type=int, default=3, help="timed repeats after warm-up (default 3)")
    p.add_argument("--out", default="benchmarks/results/distill.json")
    args = p.parse_args(argv)
    jax.config.update("jax_enable_x64", args.dtype == "float64")

    from ntk_air import distillation as R
    from ntk_air.distillation import _engines as D
    from ntk_air.kernels import two_layer_relu
    from ntk_air.spectral import eigensystem

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y_clean = np.sign(x[:, 0] + 1e-12)
    y = np.where(rng.random(args.n) < 0.2, -y_clean, y_clean)
    H = jax.block_until_ready(two_layer_relu(x, dtype=args.dtype))
    rules = _grid(D)
    g = int(np.asarray(rules.alpha).shape[0])

    print(f"eigensystem of a {args.n}×{args.n} {args.dtype} kernel …", flush=True)
    t_eigh, eigh_runs, _ = _time(lambda: eigensystem(H, dtype=args.dtype), args.repeats)
    eig = eigensystem(H, dtype=args.dtype)
    eta = 1.0 / float(eig.eigenvalues[0])

    def grid_closed(steps=args.steps, record_every=args.record_every):
        run = D.self_distill(
            H,
            y,
            y_clean,
            rules,
            steps=steps,
            eta=eta,
            eig=eig,
            record_every=record_every,
            engine="closed-form",
        )
        return run.dist_train, run.u_final

    print(f"{g} settings × {args.steps} steps in closed form …", flush=True)
    t_grid, grid_runs, grid_warm = _time(grid_closed, args.repeats)

    def grid_naive():
        run = D.self_distill(
            H,
            y,
            y_clean,
            rules,
            steps=args.naive_steps,
            eta=eta,
            record_every=args.naive_steps,
            engine="scan",
        )
        return run.dist_train, run.u_final

    print(f"naive stepping, {args.naive_steps} steps (extrapolated to {args.steps}) …", flush=True)
    t_naive_part, naive_runs, _ = _time(grid_naive, args.repeats)
    t_naive = t_naive_part * args.steps / args.naive_steps
    # Sanity: the closed form and the stepped recursion agree on the timed horizon.
    cf = grid_closed(args.naive_steps, args.naive_steps)[1]
    agree = float(np.max(np.abs(np.asarray(cf) - np.asarray(grid_naive()[1]))))

    cs = float(np.trace(np.asarray(H))) / args.n * np.array([0.01, 0.03, 0.1, 0.3])
    xis = np.linspace(0.5, 2.0, 8)
    round_rules = R.stack_rounds([R.xi_distill(xi, ridge=c) for c in cs for xi in xis])
    g_rounds = len(cs) * len(xis)

    def rounds_closed():
        problem = D.problem_from_kernel(H, y, y_clean, eig=eig)
        run = R.distill_rounds(problem, round_rules, rounds=args.rounds, eta=eta)
        return run.dist_train, run.u_final

    print(f"{g_rounds} round settings × {args.rounds} rounds in closed form …", flush=True)
    t_rounds, rounds_runs, _ = _time(rounds_closed, args.repeats)

    Hn = np.asarray(H)
    solve = jax.jit(lambda A, b: jax.numpy.linalg.solve(A, b))

    def naive_solves():
        out = None
        for i in range(args.naive_solves):
            c = cs[i % len(cs)]
            out = solve(Hn + c * np.eye(args.n), y)  # one round of one setting
        return out

    print(
        f"naive rounds: {args.naive_solves} solves "
        f"(extrapolated to {g_rounds * (args.rounds + 1)}) …",
        flush=True,
    )
    t_solves, solve_runs, _ = _time(naive_solves, args.repeats)
    t_naive_rounds = t_solves / args.naive_solves * g_rounds * (args.rounds + 1)

    result = {
        "benchmark": "distill",
        "claim": "32 linear rule settings × 10^4 steps (n=2048) in closed form cost ≤ one "
        "eigendecomposition; speedups over stepping and over rebuilding per round",
        "n": args.n,
        "d": args.d,
        "dtype": args.dtype,
        "settings": g,
        "steps": args.steps,
        "record_every": args.record_every,
        "repeats": args.repeats,
        "eigh_seconds": t_eigh,
        "eigh_runs": eigh_runs,
        "grid_closed_form_seconds": t_grid,
        "grid_runs": grid_runs,
        "grid_compile_and_first_run_seconds": grid_warm,
        "grid_over_eigh": t_grid / t_eigh,
        "claim_holds": bool(t_grid <= t_eigh),
        "naive_stepping_seconds_measured": t_naive_part,
        "naive_steps_measured": args.naive_steps,
        "naive_stepping_seconds_extrapolated": t_naive,
        "speedup_over_naive_stepping": t_naive / t_grid,
        "speedup_over_naive_stepping_including_eigh": t_naive / (t_grid + t_eigh),
        "closed_form_vs_stepped_max_abs_diff": agree,
        "round_settings": g_rounds,
        "rounds": args.rounds,
        "rounds_closed_form_seconds": t_rounds,
        "rounds_runs": rounds_runs,
        "naive_rounds_solves_measured": args.naive_solves,
        "naive_rounds_seconds_per_solve": t_solves / args.naive_solves,
        "naive_rounds_seconds_extrapolated": t_naive_rounds,
        "speedup_over_rebuilding_per_round": t_naive_rounds / t_rounds,
        "speedup_over_rebuilding_per_round_including_eigh": t_naive_rounds / (t_rounds + t_eigh),
        "device": str(jax.devices()[0]),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "numpy": np.__version__,
        "cpu_count": os.cpu_count(),
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if not k.endswith("_runs")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
