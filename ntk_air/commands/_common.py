"""Options and plumbing shared by the CLI subcommands: data, kernel, dtype, progress, output."""

from __future__ import annotations

import argparse
import os
import time
import warnings

__all__ = [
    "CliError",
    "add_data_options",
    "add_kernel_options",
    "add_output_options",
    "load_dataset",
    "build_kernel_fn",
    "kernel_config",
    "setup_dtype",
    "progress_bar",
    "open_report",
    "Timer",
    "add_command",
    "add_solver_options",
    "add_time_options",
    "budget_from_args",
    "whole_number",
]


class CliError(Exception):
    """A user-facing error: printed as one line by `ntk-air`, exit status 2."""


def add_command(subparsers, name: str, *, help: str, description: str, examples):
    """A subcommand whose `--help` ends with example command lines."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog="examples:\n" + "\n".join(f"  {e}" for e in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


# Defaults of the built-in data options; None in the parser, so that a data file given together
# with any of them is an error instead of a silent no-op.
DATA_DEFAULTS = {"dataset": "clusters", "noise": "flip", "seed": 0}


def add_data_options(p: argparse.ArgumentParser, *, positional: bool = True) -> None:
    """DATA.npz (optional positional) or a built-in data set, the label-noise model, and the
    subsample sizes."""
    from ..data import DATASETS, NOISE_MODELS

    g = p.add_argument_group("data")
    if positional:
        g.add_argument(
            "data",
            nargs="?",
            default=None,
            metavar="DATA.npz",
            help="your own data: x (n,d), y (noisy labels), optional y_clean, x_test, y_test "
            "(loaded with allow_pickle=False); default: the built-in --dataset",
        )
    g.add_argument(
        "--dataset",
        default=None,
        choices=DATASETS,
        help="built-in data set when no DATA.npz is given (default: clusters, the theorem's model)",
    )
    g.add_argument(
        "--noise",
        default=None,
        choices=NOISE_MODELS,
        help="label-noise model for built-in data (default: flip)",
    )
    g.add_argument(
        "--noise-rate",
        type=float,
        default=None,
        help="flip fraction ρ in [0,1) or Gaussian σ "
        "(default: the data set's own, 0.25 for clusters)",
    )
    g.add_argument("--seed", type=int, default=None, help="data seed (default 0)")
    g.add_argument(
        "--n-train",
        type=int,
        default=None,
        metavar="N",
        help="use a stratified, seeded subsample of N training points (default: all)",
    )
    g.add_argument(
        "--n-test",
        type=int,
        default=None,
        metavar="N",
        help="use a stratified, seeded subsample of N test points (default: all)",
    )
    g.add_argument(
        "--normalize",
        action="store_true",
        help="unit-normalize the rows of DATA.npz (otherwise non-unit rows are an error for "
        "--arch two-layer-relu, whose theory assumes ‖x‖ = 1)",
    )


def add_kernel_options(p: argparse.ArgumentParser) -> None:
    """Architecture, its hyperparameters, dtype, tiling and backend."""
    g = p.add_argument_group("kernel")
    g.add_argument(
        "--arch",
        default="two-layer-relu",
        help="two-layer-relu (the theorem's H∞, default), fc (deep fully connected, "
        "neural-tangents conventions) or an architecture spec, computed natively: "
        "'cnn:depth=3,pool=global,shape=8x8x1', 'cnn:depth=3,pool=flatten,w_std=1.5,"
        "b_std=0.1,shape=8x8x1', 'cnn:depth=2,residual=true,norm=layer,pool=avg2,shape=8x8x1', "
        "'cnn:depth=2,padding=circular,shape=40x1' (options: depth, act=relu|erf|gelu|abs|"
        "identity, w_std, b_std, kernel, padding=same|valid|circular, pool=global|flatten|avgK, "
        "residual=true|false, norm=none|layer, shape=HxWxC); 'attention:...' needs "
        "--backend neural-tangents",
    )
    g.add_argument("--depth", type=int, default=1, help="fc: number of hidden layers (default 1)")
    g.add_argument("--activation", default="relu", choices=("relu", "erf"))
    g.add_argument("--w-std", type=float, default=1.0, help="fc: weight std W_std (default 1)")
    g.add_argument("--b-std", type=float, default=0.0, help="fc: bias std b_std (default 0)")
    g.add_argument(
        "--dtype", default="float64", choices=("float32", "float64"), help="(default float64)"
    )
    g.add_argument(
        "--tile-size",
        type=int,
        default=None,
        help="rows per tile (default: untiled for the native kernels, "
        "tiled by memory budget for --backend neural-tangents)",
    )
    g.add_argument(
        "--backend",
        default="native",
        choices=("native", "neural-tangents"),
        help="kernel engine: native (default; fc and cnn specs included) or neural-tangents "
        "(the reference implementation; needs the optional install; attention specs)",
    )


def whole_number(text: str) -> int:
    """An argparse type for counts that may be written 20000 or 2e4 (a whole number ≥ 0)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not (value >= 0 and value == int(value)) or value > 1e18:
        raise argparse.ArgumentTypeError(f"expected a whole number ≥ 0, got {text!r}")
    return int(value)


def add_solver_options(
    p: argparse.ArgumentParser, solvers=("dense", "topk"), why: str | None = None
) -> None:
    """--solver, --rank, --memory-budget: the spectral path and the memory it may use (`why`:
    the reason a command has only some paths, for its help)."""
    g = p.add_argument_group("solver")
    g.add_argument(
        "--solver",
        default="auto",
        choices=("auto", *solvers),
        help="spectral path: dense (K and all its eigenvectors), topk (matrix-free top-k "
        "eigenpairs, never forming K) or auto (default: dense when it fits --memory-budget)"
        if "topk" in solvers
        else "spectral path: dense, or auto (default; checked against --memory-budget)"
        + ("" if why is None else f"; {why}"),
    )
    if "topk" in solvers:
        g.add_argument(
            "--rank",
            type=int,
            default=None,
            metavar="K",
            help="eigenpairs of the top-k solver (default min(100, n))",
        )
    g.add_argument(
        "--memory-budget",
        type=float,
        default=None,
        metavar="GB",
        help="memory the run may use, in GB (default: the memory available now); a path "
        "estimated above it is refused before anything is allocated",
    )


def add_time_options(p: argparse.ArgumentParser) -> None:
    """--time-limit and --force: long loops estimated above the limit are refused."""
    from ..resources import DEFAULT_TIME_LIMIT

    p.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT,
        metavar="SECONDS",
        help=f"refuse runs estimated to take longer (default {DEFAULT_TIME_LIMIT:.0f} s) "
        "unless --force",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="run even when the time estimate exceeds --time-limit",
    )


def budget_from_args(args):
    """The `resources.Budget` of the options (solver, rank, memory budget, time limit, force)."""
    from ..resources import Budget

    gb = getattr(args, "memory_budget", None)
    if gb is not None and not (gb > 0 and gb < float("inf")):
        raise CliError(f"--memory-budget must be a positive number of GB, got {gb}")
    rank = getattr(args, "rank", None)
    if rank is not None and getattr(args, "solver", "auto") == "dense":
        raise CliError("--rank applies to the top-k solver only (drop it or use --solver topk)")
    if rank is not None and rank < 1:
        raise CliError(f"--rank must be ≥ 1, got {rank}")
    limit = getattr(args, "time_limit", None)
    if limit is not None and not limit > 0:
        raise CliError(f"--time-limit must be a positive number of seconds, got {limit}")
    return Budget(
        solver=getattr(args, "solver", "auto"),
        rank=rank,
        memory_bytes=None if gb is None else int(gb * 1e9),
        seconds=float(limit) if limit is not None else Budget().seconds,
        force=bool(getattr(args, "force", False)),
    )


def add_output_options(p: argparse.ArgumentParser, default: str) -> None:
    p.add_argument("--out", default=default, help=f"output folder (default {default})")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def setup_dtype(args) -> str:
    """Turn JAX x64 on for float64 (must happen before any array is created)."""
    import jax

    if getattr(args, "dtype", "float64") == "float64":
        jax.config.update("jax_enable_x64", True)
    return getattr(args, "dtype", "float64")


# Built-in data sets whose loader draws its own train/test split of any size (up to all the
# examples): `load_dataset(args, split_sizes=True)` hands them --n-train/--n-test.
SPLIT_SIZED = ("digits", "digits-binary", "mnist1d", "mnist1d-binary")


def load_dataset(args, *, split_sizes: bool = False):
    """The Dataset named by the options: DATA.npz if given, else the built-in --dataset; then
    the stratified subsample of --n-train / --n-test. With `split_sizes=True`, the built-in
    loaders of `SPLIT_SIZED` draw a split of exactly those sizes instead (so --n-train may exceed
    their default split, e.g. 1000 digits)."""
    from .. import data as data_mod

    sizes = {k: getattr(args, k, None) for k in ("n_train", "n_test")}
    path = getattr(args, "data", None)
    if path is not None:
        given = [
            f"--{k.replace('_', '-')}"
            for k in (*DATA_DEFAULTS, "noise_rate")
            if getattr(args, k, None) is not None
        ]
        if given:
            raise CliError(
                f"{', '.join(given)} appl{'ies' if len(given) == 1 else 'y'} to the built-in data "
                f"only, not to the data file {path} (drop {'it' if len(given) == 1 else 'them'})"
            )
        if not os.path.exists(path):
            raise CliError(f"data file not found: {path}")
        try:
            ds = data_mod.from_npz(path, normalize=getattr(args, "normalize", False))
        except (ValueError, KeyError, TypeError, OSError) as err:
            raise CliError(f"cannot read {path}: {err}") from err
        dev = ds.info.get("max_norm_deviation", 0.0)
        if dev and dev > 1e-6:
            if getattr(args, "arch", None) == "two-layer-relu":
                raise CliError(
                    f"{path}: rows of x are not unit norm (max |‖x‖ − 1| = {dev:.3g}); the "
                    "two-layer theory assumes ‖x‖ = 1: pass --normalize to normalize them"
                )
            warnings.warn(
                f"{path}: rows of x are not unit norm (max |‖x‖ − 1| = {dev:.3g})", stacklevel=2
            )
        seed = 0
    else:
        if getattr(args, "normalize", False):
            raise CliError("--normalize applies to a data file only (built-in data are unit-norm)")
        name = args.dataset or DATA_DEFAULTS["dataset"]
        seed = DATA_DEFAULTS["seed"] if args.seed is None else args.seed
        kwargs = {"seed": seed, "noise": args.noise or DATA_DEFAULTS["noise"]}
        if args.noise_rate is not None:
            kwargs["noise_rate"] = args.noise_rate
        if split_sizes and name in SPLIT_SIZED:
            for key in ("n_train", "n_test"):
                if sizes[key] is not None:
                    kwargs[key] = sizes.pop(key)  # the loader's own split: nothing to subsample
        try:
            ds = data_mod.load(name, **kwargs)
        except (ValueError, TypeError) as err:
            raise CliError(str(err)) from err
    n_train, n_test = sizes.get("n_train"), sizes.get("n_test")
    if n_train is not None or n_test is not None:
        try:
            ds = data_mod.subsample(ds, n_train, n_test, seed=seed)
        except ValueError as err:
            raise CliError(f"--n-train/--n-test: {err}") from err
    return ds


def build_kernel_fn(args):
    """The `KernelFn` named by the options, with --tile-size and --dtype fixed in it."""
    backend = getattr(args, "backend", "native")
    if backend == "neural-tangents":
        from .. import nt_backend

        try:
            return nt_backend.kernel_fn_from_spec(
                args.arch,
                depth=args.depth,
                activation=args.activation,
                w_std=args.w_std,
                b_std=args.b_std,
                tile_size=args.tile_size,
                dtype=args.dtype,
            )
        except (ValueError, ImportError) as err:  # NeuralTangentsUnavailable is an ImportError
            raise CliError(str(err)) from err
    from ..kernels import ARCHITECTURES, make_kernel_fn

    if args.arch not in ARCHITECTURES:  # an architecture spec: fc or cnn run natively
        from ..nt_backend.specs import native_kernel_fn_from_spec

        try:
            return native_kernel_fn_from_spec(
                args.arch,
                depth=args.depth,
                activation=args.activation,
                w_std=args.w_std,
                b_std=args.b_std,
                tile_size=args.tile_size,
                dtype=args.dtype,
            )
        except ValueError as err:
            raise CliError(str(err)) from err
    if args.arch == "two-layer-relu" and (
        args.w_std != 1.0 or args.b_std != 0.0 or args.depth != 1
    ):
        raise CliError(
            "--depth/--w-std/--b-std do not apply to --arch two-layer-relu (one hidden layer; "
            "H∞ is scale-free); use --arch fc"
        )
    try:
        return make_kernel_fn(
            args.arch,
            depth=args.depth,
            activation=args.activation,
            w_std=args.w_std,
            b_std=args.b_std,
            tile_size=args.tile_size,
            dtype=args.dtype,
        )
    except ValueError as err:
        raise CliError(str(err)) from err


def kernel_config(args) -> dict:
    """The kernel options as recorded in every JSON report."""
    return {
        "arch": args.arch,
        "backend": args.backend,
        "depth": args.depth,
        "activation": args.activation,
        "w_std": args.w_std,
        "b_std": args.b_std,
        "dtype": args.dtype,
        "tile_size": args.tile_size,
    }


class progress_bar:
    """A tqdm bar driven by a study's progress(stage, done, total) callback (a context manager)."""

    def __init__(self, desc: str, enabled: bool):
        self.desc, self.enabled, self.bar = desc, enabled, None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=self.desc, unit="stage")
        self.bar.set_postfix_str(stage)
        self.bar.update(done - self.bar.n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def open_report(path):
    """A `report.ReportWriter` on the output folder, checked before any work starts."""
    from ..report import OutputError, ReportWriter

    try:
        return ReportWriter(path)
    except OutputError as err:
        raise CliError(str(err)) from err


class Timer:
    """Wall-clock seconds per stage, for timings.json (never inside the results JSON)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = now - self._t
        self._t = now
