"""`ntk-air predict DATA.npz`: the infinite ensemble's predictions, variances and test error."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _common as common
from ._config import build_config

__all__ = ["add_parser", "run"]

COMMAND = common.CommandText(
    "predict",
    help="neural-tangents' predict: mean and variance of the infinite ensemble at any time",
    description="The mean (with --cov also the variance) of the infinite ensemble of wide "
    "networks trained on the MSE for time T (neural-tangents' units; 'inf' = end of training), "
    "by ntk_air.predict.gradient_descent_mse_ensemble; writes predict.json, predict.npz and, "
    "on one-dimensional inputs, predict_<get>.png (mean ± 2 sd) into --out.",
    examples="""
        ntk-air predict sine.npz --arch fc --depth 2 --w-std 1.5 --b-std 0.1 --cov
        ntk-air predict data.npz --arch fc --time 1,10,100,inf --get ntk --diag-reg 1e-4
    """,
)


def add_parser(subparsers) -> None:
    p = COMMAND.add_to(subparsers)
    common.add_output_options(p, "predict_out")
    p.add_argument(
        "--time",
        action="append",
        default=None,
        metavar="T",
        help="training times t ≥ 0, comma-separated (or repeated): 1,10,100,inf ('inf' = end "
        "of training; default inf)",
    )
    p.add_argument(
        "--get", default="nngp,ntk", help="kernels, comma-separated: nngp, ntk (default both)"
    )
    p.add_argument("--cov", action="store_true", help="also the variance of each prediction")
    p.add_argument(
        "--diag-reg",
        type=float,
        default=0.0,
        help="diagonal regularizer δ, relative to tr(K)/n (neural-tangents' default; 0)",
    )
    p.add_argument("--diag-reg-absolute", action="store_true", help="--diag-reg in absolute units")
    p.add_argument("--learning-rate", type=float, default=1.0, help="η: time runs as η t (1)")
    common.add_data_options(p)
    common.add_kernel_options(p)
    common.add_time_options(p)
    p.set_defaults(func=run)


def _times(texts) -> tuple[float, ...]:
    out = []
    items = [t.strip() for text in (texts or ["inf"]) for t in text.split(",")]
    for s in items:
        try:
            t = float(s)
        except ValueError:
            raise common.CliError(f"--time values must be numbers or 'inf', got {s!r}") from None
        if np.isnan(t) or t < 0:
            raise common.CliError(f"--time values must be ≥ 0 (or inf), got {s!r}")
        out.append(t)
    return tuple(out)


def run(args) -> int:
    from .. import report, studies

    times = _times(args.time)
    get = tuple(g.strip().lower() for g in args.get.split(",") if g.strip())
    bad = [g for g in get if g not in ("nngp", "ntk")]
    if not get or bad or len(set(get)) < len(get):
        raise common.CliError(f"--get must be nngp, ntk or nngp,ntk, got {args.get!r}")
    if not (np.isfinite(args.learning_rate) and args.learning_rate > 0):
        raise common.CliError(
            f"--learning-rate must be a positive number, got {args.learning_rate}"
        )
    if not (np.isfinite(args.diag_reg) and args.diag_reg >= 0):
        raise common.CliError(f"--diag-reg must be ≥ 0, got {args.diag_reg}")
    common.setup_dtype(args)
    budget = common.budget_from_args(args)
    config = build_config(
        studies.PredictConfig,
        {
            "times": "--time",
            "compute_cov": "--cov",
            "diag_reg_absolute_scale": "--diag-reg-absolute",
        },
        times=times,
        get=get,
        compute_cov=args.cov,
        diag_reg=args.diag_reg,
        diag_reg_absolute_scale=args.diag_reg_absolute,
        learning_rate=args.learning_rate,
    )

    def plan(data):  # memory and time, decided (or refused) before K is formed
        with common.cli_errors():
            return studies.predict_plan(data, config, budget)

    writer = common.open_report(args.out)
    dataset = common.load_dataset(args, plan=plan)  # generated data: planned before it is generated
    kernel_fn = common.build_kernel_fn(args)
    print(plan(dataset)[1].line(), flush=True)

    def refusal(err) -> str:
        message = str(err).replace("diag_reg_absolute_scale=True", "--diag-reg-absolute")
        return message.replace("diag_reg", "--diag-reg")

    with common.studying(args, "predict", refusal) as (bar, timer):
        study = studies.predict(dataset, kernel_fn, config, progress=bar)
    s = report.write_predict(writer, study, dataset)
    common.finish_report(writer, timer, "predict")
    lines = [f"{dataset.name}: n = {s['dataset']['n']}, n_test = {s['dataset']['n_test']}"]
    for g in get:
        mse = ", ".join(
            f"{'∞' if t is None else f'{t:g}'}: {m:.4g}"
            for t, m in zip(s["times"], np.asarray(s["test_mse"][g]), strict=True)
        )
        lines.append(f"{g}: κ = {s['condition_number'][g]:.3g}; test MSE by time {mse}")
    files = ["predict.json", "predict.npz", *s["figures"]]
    lines.append(f"wrote {', '.join(str(Path(args.out) / f) for f in files)}")
    print("\n".join(lines))
    return 0
