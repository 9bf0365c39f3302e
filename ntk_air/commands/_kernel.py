"""Kernel options of the CLI: architecture, hyperparameters, dtype, tiling and backend."""

from __future__ import annotations

import argparse

from ._config import option_message
from ._errors import CliError, cli_errors


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


_HYPERPARAMETERS = ("depth", "activation", "w_std", "b_std", "dtype", "tile_size")


def build_kernel_fn(args):
    """The `KernelFn` named by the options, with --tile-size and --dtype fixed in it."""
    backend = getattr(args, "backend", "native")
    # the hyperparameters every builder takes, fixed in the kernel function
    options = {k: getattr(args, k) for k in _HYPERPARAMETERS}

    def refusal(err) -> str:
        return option_message(str(err), options)

    if backend == "neural-tangents":
        from .. import nt_backend

        # NeuralTangentsUnavailable is an ImportError
        with cli_errors(refusal, (ValueError, ImportError)):
            return nt_backend.kernel_fn_from_spec(args.arch, **options)
    from ..kernels._kernel_fn import ARCHITECTURES, make_kernel_fn

    if args.arch not in ARCHITECTURES:  # an architecture spec: fc or cnn run natively
        from ..nt_backend.specs import native_kernel_fn_from_spec

        with cli_errors(refusal):
            return native_kernel_fn_from_spec(args.arch, **options)
    if args.arch == "two-layer-relu" and (
        args.w_std != 1.0 or args.b_std != 0.0 or args.depth != 1
    ):
        raise CliError(
            "--depth/--w-std/--b-std do not apply to --arch two-layer-relu (one hidden layer; "
            "H∞ is scale-free); use --arch fc"
        )
    with cli_errors(refusal):
        return make_kernel_fn(args.arch, **options)


def kernel_config(args) -> dict:
    """The kernel options as recorded in every JSON report."""
    return {k: getattr(args, k) for k in ("arch", "backend", *_HYPERPARAMETERS)}
