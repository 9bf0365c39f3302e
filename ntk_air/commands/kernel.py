"""`ntk-air kernel INPUT.npz --out OUT.npz`: infinite-width kernels of your inputs."""

from __future__ import annotations

import os

import numpy as np

from ._common import CliError, add_kernel_options, build_kernel_fn, setup_dtype

__all__ = ["add_parser", "run", "read_inputs"]


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "kernel",
        help="compute NTK (and NNGP) of the inputs in an .npz",
        description="Reads arrays x (n,d) and optional x2 (n2,d) from INPUT.npz "
        "(allow_pickle=False) and writes ntk and, where defined, nngp "
        "— K(x, x2), or K(x, x) — to --out.",
    )
    p.add_argument("input", metavar="INPUT.npz")
    p.add_argument("--out", required=True, metavar="OUT.npz")
    add_kernel_options(p)
    p.set_defaults(func=run)


def read_inputs(path: str):
    """x and optional x2 from an .npz, refusing pickles and naming what is wrong."""
    if not os.path.exists(path):
        raise CliError(f"input file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f.files:
                raise CliError(f"{path} has no array 'x' (found: {', '.join(f.files) or 'none'})")
            x = f["x"]
            x2 = f["x2"] if "x2" in f.files else None
    except ValueError as err:
        # np.load raises ValueError for object arrays when pickles are refused.
        raise CliError(
            f"{path}: cannot load without pickle (object arrays are refused): {err}"
        ) from err
    except (OSError, EOFError) as err:
        raise CliError(f"{path} is not a readable .npz file: {err}") from err
    return x, x2


def run(args) -> int:
    dtype = setup_dtype(args)
    x, x2 = read_inputs(args.input)
    kernel_fn = build_kernel_fn(args)
    try:
        k = kernel_fn(x, x2, tile_size=args.tile_size, dtype=dtype)
    except (ValueError, TypeError) as err:
        raise CliError(str(err)) from err
    out = {"ntk": np.asarray(k.ntk)}
    if k.nngp is not None:
        out["nngp"] = np.asarray(k.nngp)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    with open(args.out, "wb") as fh:  # keep the exact name (np.savez would append .npz)
        np.savez(fh, **out)
    shape = "×".join(map(str, out["ntk"].shape))
    print(f"wrote {args.out}: {', '.join(out)} ({shape}, {dtype}, arch={args.arch})")
    return 0
