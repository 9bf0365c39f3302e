"""Data options of the CLI: DATA.npz or a built-in data set, label noise, and the sizes."""

from __future__ import annotations

import argparse
import os

from ._errors import CliError
from ._rows import (
    DEFAULT_ROWS,
    DIGITS_ROWS,
    SPLIT_SIZED,
    _larger_split,
    _stand_in,
    refuse_beyond_digits,
)

__all__ = ["DATA_DEFAULTS", "SPLIT_SIZED", "DEFAULT_ROWS", "add_data_options", "load_dataset"]

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
        help="use a stratified, seeded subsample of N training points (default: all); above "
        "a built-in data set's default rows, clusters and mnist1d generate N rows and digits "
        "splits more of its 1797 examples",
    )
    g.add_argument(
        "--n-test",
        type=int,
        default=None,
        metavar="N",
        help="use a stratified, seeded subsample of N test points (default: all)",
    )
    g.add_argument(
        "--task",
        default=None,
        choices=("classification", "regression"),
        help="force the task (default: inferred from the labels: ±1 or one-hot ground truth is "
        "classification, any other real targets regression)",
    )
    g.add_argument(
        "--normalize",
        action="store_true",
        help="unit-normalize the rows of DATA.npz (otherwise non-unit rows are an error for "
        "--arch two-layer-relu, whose theory assumes ‖x‖ = 1)",
    )


# The loaders' parameters (and the names their checks use) → the options that set them.
_DATA_OPTIONS = {
    "noise rate": "--noise-rate",
    "noise sigma": "--noise-rate",
    "noise_rate": "--noise-rate",
    "n_train": "--n-train",
    "n_test": "--n-test",
    "seed": "--seed",
}


def _data_error(err) -> CliError:
    """A loader's refusal as a CLI message naming the option."""
    message = str(err)
    for name, option in _DATA_OPTIONS.items():
        if message.startswith(name + " "):
            return CliError(option + message[len(name) :])
    return CliError(message)


def load_dataset(args, *, split_sizes: bool = False, plan=None):
    """The Dataset named by the options: DATA.npz if given, else the built-in --dataset; then
    the stratified subsample of --n-train / --n-test. With `split_sizes=True`, the built-in
    loaders of `SPLIT_SIZED` draw a split of exactly those sizes instead (so --n-train may exceed
    their default split, e.g. 1000 digits).

    `plan(dataset)`: the command's estimate (raises CliError to refuse). Built-in data asked for
    more rows than its default are planned on a stand-in of the asked shapes (`_stand_in`)
    before any row is generated; the caller plans the loaded data set itself."""
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
        except data_mod.DataFileError as err:  # one sentence naming the file and the array
            raise CliError(str(err)) from err
        except (ValueError, KeyError, TypeError, OSError) as err:
            raise CliError(f"cannot read {path}: {err}") from err
        dev = ds.info.get("max_norm_deviation", 0.0)  # only H∞ assumes ‖x‖ = 1 (fc, cnn: any)
        if dev and dev > 1e-6 and getattr(args, "arch", None) == "two-layer-relu":
            raise CliError(
                f"{path}: rows of x are not unit norm (max |‖x‖ − 1| = {dev:.3g}); the "
                "two-layer theory assumes ‖x‖ = 1: pass --normalize to normalize them"
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
        train0, test0 = DEFAULT_ROWS.get(name.replace("-binary", ""), (None, None))
        more = train0 is not None and (
            (sizes["n_train"] or 0) > train0 or (sizes["n_test"] or 0) > test0
        )
        asked = (sizes["n_train"] or 0) + (sizes["n_test"] or 0)
        if name.startswith("digits") and asked > DIGITS_ROWS:  # the size before any estimate
            refuse_beyond_digits(sizes["n_train"], sizes["n_test"])
        if plan is not None and more:  # the estimate before a row is generated
            try:
                stand_in = _stand_in(name, kwargs, sizes["n_train"], sizes["n_test"])
            except (ValueError, TypeError) as err:
                raise _data_error(err) from err
            plan(stand_in)
        if split_sizes and name in SPLIT_SIZED:
            for key in ("n_train", "n_test"):
                if sizes[key] is not None:
                    kwargs[key] = sizes.pop(key)  # the loader's own split: nothing to subsample
        else:  # sizes beyond the default data set: generate (or split) as many rows as asked
            kwargs.update(_larger_split(name, sizes))
        try:
            ds = data_mod.load(name, **kwargs)
        except (ValueError, TypeError) as err:
            raise _data_error(err) from err
    task = getattr(args, "task", None)
    if task is not None:
        try:
            ds = data_mod.with_task(ds, task)
        except ValueError as err:
            raise CliError(f"--task {task}: {err}") from err
    if path is not None or task is not None:
        how = "forced by --task" if task else "inferred from the labels; --task forces it"
        print(f"task: {data_mod.dataset_task(ds)} ({how})", flush=True)
    n_train, n_test = sizes.get("n_train"), sizes.get("n_test")
    if n_train is not None or n_test is not None:
        try:
            ds = data_mod.subsample(ds, n_train, n_test, seed=seed)
        except ValueError as err:
            raise CliError(f"--n-train/--n-test: {err}") from err
    return ds
