"""`ntk-air learning-curve [DATA.npz]`: predicted (eigenlearning) against measured test error of
kernel ridge regression, for n points drawn from the data set's rows."""

from __future__ import annotations

from pathlib import Path

from ._common import (
    CliError,
    Timer,
    add_command,
    add_data_options,
    add_kernel_options,
    add_output_options,
    add_time_options,
    build_kernel_fn,
    kernel_config,
    load_dataset,
    open_report,
    progress_bar,
    setup_dtype,
    whole_number,
)
from ._data import DATA_DEFAULTS, SPLIT_SIZED

__all__ = ["add_parser", "run"]


def _number_list(text: str, name: str, kind=float) -> tuple:
    try:
        values = tuple(kind(float(v)) if kind is int else float(v) for v in text.split(",") if v)
    except ValueError:
        raise CliError(f"{name} must be a comma-separated list of numbers, got {text!r}") from None
    if kind is int and any(float(v) != int(float(v)) for v in text.split(",") if v):
        raise CliError(f"{name} must be whole numbers, got {text!r}")
    if not values:
        raise CliError(f"{name} is empty")
    return values


def add_parser(subparsers) -> None:
    p = add_command(
        subparsers,
        "learning-curve",
        help="predicted (eigenlearning) vs measured test error of kernel ridge regression",
        description="The rows of the data are the population (uniform measure). From the "
        "spectrum of its kernel (eigenvalues of K/N, label coefficients) eigenlearning predicts "
        "κ, the learnability of every mode, E₀ and the test/train MSE of kernel ridge regression "
        "with n points and ridge δ; the command measures them on seeded draws of n points "
        "(tested on all N) and writes learning_curve.json, learning_curve.md and PNG figures.",
        examples=(
            "ntk-air learning-curve --n 10,30,100,300,1000 --ridge 0,1e-3 --draws 20",
            "ntk-air learning-curve --labels noisy --noise-rate 0.3",
            "ntk-air learning-curve my_rows.npz --normalize --arch fc --depth 3",
            "ntk-air learning-curve --solver topk --rank 200 --n 100,1000",
        ),
    )
    add_output_options(p, "learning_curve_out")
    g = p.add_argument_group("learning curve")
    g.add_argument("--n", default="10,30,100,300,1000", help="training-set sizes (comma list)")
    g.add_argument("--ridge", default="0,1e-3", help="ridges δ ≥ 0, K + δI (comma list)")
    g.add_argument(
        "--draws",
        type=whole_number,
        default=20,
        help="seeded draws per n, ≥ 2 (a 95 %% interval needs two; default 20; 1e3 style)",
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
        help="draw i.i.d. rows with replacement (default: n distinct rows, the sampling the "
        "theory describes for a finite population; ridgeless fits repeated rows at their mean)",
    )
    g.add_argument("--solver", default="dense", choices=("dense", "topk"), help="spectral path")
    g.add_argument("--rank", type=int, default=None, help="top-k modes (--solver topk; 100)")
    add_data_options(p)
    add_kernel_options(p)
    add_time_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from .. import report, studies

    if args.rank is not None and args.solver != "topk":
        raise CliError("--rank applies to --solver topk only")
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
        )
    except ValueError as err:
        raise CliError(str(err).replace("noise_variance", "--noise-variance")) from err
    setup_dtype(args)
    writer = open_report(args.out)
    if args.data is None and args.dataset is None:
        args.dataset = "digits"  # 1797 rows: a population large enough for n = 1000
    if not args.time_limit > 0:
        raise CliError(f"--time-limit must be a positive number of seconds, got {args.time_limit}")

    def plan(data):
        return _check_estimate(args, config, data)

    if args.data is None and args.n_train is None and args.dataset in SPLIT_SIZED:
        dataset = _whole(args)  # every example in the population, none held back for a test split
    else:  # generated data: planned before it is generated
        dataset = load_dataset(args, split_sizes=True, plan=plan)
    print(plan(dataset).line(), flush=True)
    kernel_fn = build_kernel_fn(args)
    timer = Timer()
    with progress_bar("ntk-air learning-curve", not args.no_progress) as bar:
        try:
            study = studies.learning_curve_study(dataset, kernel_fn, config, progress=bar)
        except ValueError as err:
            raise CliError(str(err)) from err
    timer.lap("study")
    s = report.write_learning_curve(writer, study, kernel=kernel_config(args))
    timer.lap("report")
    writer.json("timings.json", {"seconds": timer.seconds})
    writer.finish({"command": "learning-curve"})
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


# Fixed cost of one draw's kernel ridge regression per ridge or time (slicing K, a solve, the
# predictions on the population, Python), measured on the 2-core CPU at N = 1797.
_DRAW_SECONDS = 5e-3


def _check_estimate(args, config, dataset):
    """Refuse, with the estimate, a learning curve above --time-limit or the memory budget:
    the population's spectrum (dense: `resources.estimate_dense` of N; top-k: its estimate) and
    D draws per n, each a solve per ridge δ and time t (n³/3 + 2Nn·C multiply-adds and a fixed
    cost), holding the draws' indices and per-draw results."""
    import numpy as np

    from ..spectral._resources import (
        DEFAULT_RATES,
        Budget,
        LoopEstimate,
        ResourceError,
        check_loop,
        estimate_dense,
        estimate_topk,
    )

    N = int(np.shape(dataset.x)[0])
    y_shape = np.shape(dataset.y)
    cols = 1 if len(y_shape) == 1 else int(y_shape[1])
    fits = len(config.ridge) + len(config.times)
    if config.solver == "dense":
        spectral = estimate_dense(max(N, 1))
    else:
        spectral = estimate_topk(max(N, 1), min(config.rank, max(N, 1)))
    draws, flop = int(config.draws), DEFAULT_RATES["flop_seconds"]
    per_draw = sum(
        fits * ((n**3 / 3 + 2.0 * N * n * cols) * flop + _DRAW_SECONDS) for n in config.n
    )
    seconds = spectral.seconds + draws * per_draw
    held = draws * (max(config.n) + len(config.n) * (fits * (3 + config.modes)))
    est = LoopEstimate(
        f"learning-curve: population N = {N}, {draws} draws × {len(config.n)} sizes × {fits} "
        "ridges/times",
        seconds,
        int(spectral.memory_bytes + 8 * held),
        {"spectral_seconds": spectral.seconds},
    )
    try:
        return check_loop(
            est,
            Budget(seconds=args.time_limit, force=args.force),
            remedy=(
                "Use fewer --draws, sizes --n or ridges, a larger --time-limit, or --force to "
                "run it anyway",
                "Use fewer --draws or sizes --n, or fewer rows (--n-train)",
            ),
        )
    except ResourceError as err:
        raise CliError(str(err)) from None


def _whole(args):
    """The built-in data set with every example in the population (no test split)."""
    from .. import data as data_mod

    if args.n_test is not None:
        raise CliError("--n-test does not apply: the learning curve tests on the whole population")
    kwargs = {
        "seed": DATA_DEFAULTS["seed"] if args.seed is None else args.seed,
        "noise": args.noise or DATA_DEFAULTS["noise"],
    }
    if args.noise_rate is not None:
        kwargs["noise_rate"] = args.noise_rate
    try:
        return data_mod.load(args.dataset, n_train=None, n_test=0, **kwargs)
    except (ValueError, TypeError) as err:
        raise CliError(str(err)) from err
