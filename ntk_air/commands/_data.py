"""Data options of the CLI: DATA.npz or a built-in data set, label noise, and the sizes."""

from __future__ import annotations

import argparse
import os

from ._errors import CliError, cli_errors
from ._rows import (
    DEFAULT_ROWS,
    DIGITS_ROWS,
    SPLIT_SIZED,
    _larger_split,
    _stand_in,
    refuse_beyond_digits,
)

# Defaults of the built-in data options (None in the parser: given with a data file, an error).
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


def _data_error(err) -> str:
    """A loader's refusal as a CLI message naming the option."""
    message = str(err)
    for name, option in _DATA_OPTIONS.items():
        if message.startswith(name + " "):
            return option + message[len(name) :]
    return message


def builtin_options(args) -> dict:
    """The loader's seed, noise and noise rate of the built-in data set the options name."""
    seed = DATA_DEFAULTS["seed"] if args.seed is None else args.seed
    kwargs = {"seed": seed, "noise": args.noise or DATA_DEFAULTS["noise"]}
    if args.noise_rate is not None:
        kwargs["noise_rate"] = args.noise_rate
    return kwargs


def load_dataset(args, *, split_sizes: bool = False, plan=None):
    """The Dataset of the options: DATA.npz or the built-in --dataset, subsampled to --n-train /
    --n-test (`split_sizes`: the loaders of `SPLIT_SIZED` draw a split of those sizes).

    `plan(dataset)` (raising CliError to refuse) sees a stand-in of the asked shapes before more
    rows than the default are generated; the caller plans the loaded data set itself."""
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
        kwargs = builtin_options(args)
        seed = kwargs["seed"]
        train0, test0 = DEFAULT_ROWS.get(name.replace("-binary", ""), (None, None))
        more = train0 is not None and (
            (sizes["n_train"] or 0) > train0 or (sizes["n_test"] or 0) > test0
        )
        asked = (sizes["n_train"] or 0) + (sizes["n_test"] or 0)
        if name.startswith("digits") and asked > DIGITS_ROWS:  # the size before any estimate
            refuse_beyond_digits(sizes["n_train"], sizes["n_test"])
        if plan is not None and more:  # the estimate before a row is generated
            with cli_errors(_data_error, (ValueError, TypeError)):
                stand_in = _stand_in(name, kwargs, sizes["n_train"], sizes["n_test"])
            plan(stand_in)
        if split_sizes and name in SPLIT_SIZED:
            for key in ("n_train", "n_test"):
                if sizes[key] is not None:
                    kwargs[key] = sizes.pop(key)  # the loader's own split: nothing to subsample
        else:  # sizes beyond the default data set: generate (or split) as many rows as asked
            kwargs.update(_larger_split(name, sizes))
        with cli_errors(_data_error, (ValueError, TypeError)):
            ds = data_mod.load(name, **kwargs)
    task = getattr(args, "task", None)
    if task is not None:
        with cli_errors(lambda err: f"--task {task}: {err}"):
            ds = data_mod.with_task(ds, task)
    if path is not None or task is not None:
        how = "forced by --task" if task else "inferred from the labels; --task forces it"
        print(f"task: {data_mod.dataset_task(ds)} ({how})", flush=True)
    n_train, n_test = sizes.get("n_train"), sizes.get("n_test")
    if n_train is not None or n_test is not None:
        with cli_errors(lambda err: f"--n-train/--n-test: {err}"):
            ds = data_mod.subsample(ds, n_train, n_test, seed=seed)
    return ds
