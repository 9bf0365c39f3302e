"""`ntk-air learning-curve [DATA.npz]`: predicted (eigenlearning) against measured test error of
kernel ridge regression, for n points drawn from the data set's rows."""

from __future__ import annotations

from pathlib import Path

from . import _common as common
from ._data import builtin_options
from ._rows import SPLIT_SIZED

__all__ = ["add_parser", "run"]


def _number_list(text: str, name: str, kind=float) -> tuple:
    try:
        values = tuple(kind(float(v)) if kind is int else float(v) for v in text.split(",") if v)
    except ValueError:
        raise common.CliError(
            f"{name} must be a comma-separated list of numbers, got {text!r}"
        ) from None
    if kind is int and any(float(v) != int(float(v)) for v in text.split(",") if v):
        raise common.CliError(f"{name} must be whole numbers, got {text!r}")
    if not values:
        raise common.CliError(f"{name} is empty")
    return values


COMMAND = common.CommandText(
    "learning-curve",
    help="predicted (eigenlearning) vs measured test error of kernel ridge regression",
    description="The rows of the data are the population. From the spectrum of its kernel, "
    "eigenlearning predicts the test/train MSE of kernel ridge regression with n points and "
    "ridge δ; the command measures them on seeded draws of n points and writes "
    "learning_curve.json, learning_curve.md and PNG figures.",
    examples="""
        ntk-air learning-curve --n 10,30,100,300,1000 --ridge 0,1e-3 --draws 20
        ntk-air learning-curve --labels noisy --noise-rate 0.3
        ntk-air learning-curve my_rows.npz --normalize --arch fc --depth 3
        ntk-air learning-curve --solver topk --rank 200 --n 100,1000
    """,
)


def add_parser(subparsers) -> None:
    p = COMMAND.add_to(subparsers)
    common.add_output_options(p, "learning_curve_out")
    g = p.add_argument_group("learning curve")
    g.add_argument("--n", default="10,30,100,300,1000", help="training-set sizes (comma list)")
    g.add_argument("--ridge", default="0,1e-3", help="ridges δ ≥ 0, K + δI (comma list)")
    g.add_argument(
        "--draws",
        type=common.whole_number,
        default=20,
        help="seeded draws per n (one gives no 95 %% interval; default 20; 1e3 style)",
    )
    g.add_argument("--draw-seed", type=int, default=0, help="seed of the draws (default 0)")
    g.add_argument(
        "--labels",
        default="clean",
        choices=("clean", "noisy"),
        help="train on the ground truth (default; plus --noise-variance Gaussian noise) or on "
        "the data set's noisy labels (the theorem's noise model does not cover them)",
    )
    g.add_argument(
        "--noise-variance",
        type=float,
        default=0.0,
        help="σ² of Gaussian noise added to the training labels, independent of x (--labels "
        "clean; default 0)",
    )
    g.add_argument("--modes", type=int, default=20, help="modes whose learnability is measured")
    g.add_argument(
        "--times", default="", help="gradient-flow times t to measure too (comma list, dense)"
    )
    g.add_argument(
        "--replace",
        action="store_true",
        help="draw i.i.d. rows with replacement (default: n distinct rows)",
    )
    g.add_argument("--solver", default="dense", choices=("dense", "topk"), help="spectral path")
    g.add_argument("--rank", type=int, default=None, help="top-k modes (--solver topk; 100)")
    g.add_argument(
        "--tile-dtype",
        default="float64",
        choices=("float32", "float64"),
        help="kernel tiles of the top-k spectrum (--solver topk); float32: ~2.5x faster passes, "
        "float64 arithmetic, eigensolver to relative residual 1e-4",
    )
    common.add_data_options(p)
    common.add_kernel_options(p)
    common.add_time_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import report, studies
    from ..spectral._resources import ResourceError

    if args.rank is not None and args.solver != "topk":
        raise common.CliError("--rank applies to --solver topk only")
    try:
        config = studies.LearningCurveConfig(
            n=_number_list(args.n, "--n", int),
            ridge=_number_list(args.ridge, "--ridge"),
            draws=args.draws,
            seed=args.draw_seed,
            labels=args.labels,
            noise_variance=args.noise_variance,
            modes=args.modes,
            times=_number_list(args.times, "--times") if args.times else (),
            solver=args.solver,
            rank=100 if args.rank is None else args.rank,
            replace=args.replace,
            tile_dtype=args.tile_dtype,
        )
    except ValueError as err:
        message = str(err).replace("noise_variance", "--noise-variance")
        message = message.replace("tile_dtype='float32'", "--tile-dtype float32")
        raise common.CliError(message.replace("solver='topk'", "--solver topk")) from err
    common.setup_dtype(args)
    writer = common.open_report(args.out)
    if args.data is None and args.dataset is None:
        args.dataset = "digits"  # 1797 rows: a population large enough for n = 1000
    budget = common.budget_from_args(args)

    def plan(data):  # time and memory of the whole curve, before the spectrum or a draw
        with common.cli_errors(errors=ResourceError):
            return studies.learning_curve_plan(data, config, budget)

    if args.data is None and args.n_train is None and args.dataset in SPLIT_SIZED:
        dataset = _whole(args)  # every example in the population, none held back for a test split
    else:  # generated data: planned before it is generated
        dataset = common.load_dataset(args, split_sizes=True, plan=plan)
    print(plan(dataset).line(), flush=True)
    kernel_fn = common.build_kernel_fn(args)
    with common.studying(args, "learning-curve") as (bar, timer):
        study = studies.learning_curve_study(dataset, kernel_fn, config, progress=bar)
    s = report.write_learning_curve(writer, study, kernel=common.kernel_config(args))
    common.finish_report(writer, timer, "learning-curve")
    print(f"{dataset.name}: population N = {s['population_size']}, σ² = {s['noise_variance']:.3g}")
    for r in s["rows"]:
        t = r["test_mse_measured"]
        print(
            f"n = {r['n']:>6}, δ = {r['ridge']:<8g} test MSE predicted "
            f"{r['test_mse_predicted']:.4g}"
            f", measured {t['mean']:.4g} [{t['lo']:.4g}, {t['hi']:.4g}] "
            f"({100 * r['relative_error']:+.1f} %)"
        )
    off = s["off_by_more_than_10_percent"]
    print(f"{len(off)} case(s) off by more than 10 % (listed in learning_curve.md)")
    print(f"wrote {Path(args.out) / 'learning_curve.json'} and {', '.join(s['figures'])}")
    return 0


def _whole(args):
    """The built-in data set with every example in the population (no test split)."""
    from .. import data as data_mod

    if args.n_test is not None:
        raise common.CliError(
            "--n-test does not apply: the learning curve tests on the whole population"
        )
    with common.cli_errors(errors=(ValueError, TypeError)):
        return data_mod.load(args.dataset, n_train=None, n_test=0, **builtin_options(args))
