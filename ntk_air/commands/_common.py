"""Options and plumbing shared by the CLI subcommands (data, kernel, dtype, JSON output)."""

from __future__ import annotations

import argparse
import json
import math
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "add_data_options",
    "add_kernel_options",
    "load_dataset",
    "build_kernel_fn",
    "kernel_config",
    "KernelSystem",
    "kernel_system",
    "setup_dtype",
    "write_json",
    "to_jsonable",
    "CliError",
]


class CliError(Exception):
    """A user-facing error: printed as one line by `ntk-air`, exit status 2."""


def add_data_options(p: argparse.ArgumentParser, *, positional: bool = True) -> None:
    """DATA.npz (optional positional) or a built-in data set, and the label-noise model."""
    from ..data import DATASETS
    from ..noise import NOISE_MODELS

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
        default="clusters",
        choices=DATASETS,
        help="built-in data set when no DATA.npz is given (default: clusters, the theorem's model)",
    )
    g.add_argument(
        "--noise",
        default="flip",
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
    g.add_argument("--seed", type=int, default=0, help="data seed (default 0)")
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
        help="two-layer-relu (the theorem's H∞, default) or fc (deep fully connected, "
        "neural-tangents conventions); with --backend neural-tangents also a spec string, "
        "e.g. 'cnn:channels=8,depth=2,shape=8x8x1'",
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
        help="kernel engine (default native; neural-tangents needs the optional install)",
    )


def setup_dtype(args) -> str:
    """Turn JAX x64 on for float64 (must happen before any array is created)."""
    import jax

    if getattr(args, "dtype", "float64") == "float64":
        jax.config.update("jax_enable_x64", True)
    return getattr(args, "dtype", "float64")


def load_dataset(args):
    """The Dataset named by the options: DATA.npz if given, else the built-in --dataset."""
    from .. import data as data_mod

    path = getattr(args, "data", None)
    if path is not None:
        if not os.path.exists(path):
            raise CliError(f"data file not found: {path}")
        try:
            ds = data_mod.from_npz(path, normalize=getattr(args, "normalize", False))
        except (ValueError, KeyError, TypeError) as err:
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
        return ds
    kwargs = {"seed": args.seed, "noise": args.noise}
    if args.noise_rate is not None:
        kwargs["noise_rate"] = args.noise_rate
    try:
        return data_mod.load(args.dataset, **kwargs)
    except ValueError as err:
        raise CliError(str(err)) from err


def build_kernel_fn(args):
    """kernel_fn(x1, x2=None, *, tile_size=None, dtype=None) -> Kernel from the options."""
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
            )
        except (ValueError, ImportError) as err:  # NeuralTangentsUnavailable is an ImportError
            raise CliError(str(err)) from err
    from ..kernels import ARCHITECTURES, make_kernel_fn

    if args.arch not in ARCHITECTURES:
        raise CliError(
            f"--arch must be one of {', '.join(ARCHITECTURES)} for the native backend, got "
            f"{args.arch!r} (architecture specs need --backend neural-tangents)"
        )
    if args.arch == "two-layer-relu" and (
        args.w_std != 1.0 or args.b_std != 0.0 or args.depth != 1
    ):
        raise CliError(
            "--depth/--w-std/--b-std do not apply to --arch two-layer-relu (one hidden layer; "
            "H∞ is scale-free); "
            "use --arch fc"
        )
    try:
        return make_kernel_fn(
            args.arch,
            depth=args.depth,
            activation=args.activation,
            w_std=args.w_std,
            b_std=args.b_std,
        )
    except ValueError as err:
        raise CliError(str(err)) from err


class KernelSystem(NamedTuple):
    """A data set's kernels and their one eigendecomposition, shared by every report section."""

    ntk: object  # (n, n) K(X, X) of the training inputs
    ntk_test: object  # (n_test, n) K(X_test, X), or None without test points
    eig: object  # ntk_air.eigen.Eigensystem of ntk


def kernel_system(dataset, kernel_fn, *, dtype="float64", tile_size=None) -> KernelSystem:
    """K(X, X), K(X_test, X) and the eigendecomposition of K(X, X), computed once."""
    from ..eigen import eigensystem

    ntk = kernel_fn(dataset.x, tile_size=tile_size, dtype=dtype).ntk
    ntk_test = None
    if len(dataset.x_test):
        ntk_test = kernel_fn(dataset.x_test, dataset.x, tile_size=tile_size, dtype=dtype).ntk
    return KernelSystem(ntk, ntk_test, eigensystem(ntk, dtype=dtype))


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


def to_jsonable(obj):
    """numpy/JAX arrays and scalars → lists and floats; non-finite floats → strings."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "_asdict"):
        return to_jsonable(obj._asdict())
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__array__") and not isinstance(obj, str | bytes):
        arr = np.asarray(obj)
        if arr.ndim == 0:
            return to_jsonable(arr.item())
        return [to_jsonable(v) for v in arr.tolist()]
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return "inf" if obj > 0 else ("-inf" if obj < 0 else "nan")
    return obj


def write_json(path, obj) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_jsonable(obj), indent=2) + "\n")
    return path
