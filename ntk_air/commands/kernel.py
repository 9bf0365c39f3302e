"""`ntk-air kernel INPUT.npz --out OUT.npz`: infinite-width kernels of your inputs."""

from __future__ import annotations

import os

import numpy as np

from ._common import CliError, add_command, add_kernel_options, build_kernel_fn, setup_dtype

__all__ = ["add_parser", "run", "read_inputs"]


def add_parser(subparsers) -> None:
    p = add_command(
        subparsers,
        "kernel",
        help="compute NTK (and NNGP) of the inputs in an .npz",
        description="Reads arrays x (n,d) and optional x2 (n2,d) from INPUT.npz "
        "(allow_pickle=False) and writes ntk and, where defined, nngp "
        "— K(x, x2), or K(x, x) — to --out (written atomically).",
        examples=(
            "ntk-air kernel inputs.npz --out kernel.npz",
            "ntk-air kernel inputs.npz --out fc.npz --arch fc --depth 3 --w-std 1.5 --b-std 0.1",
        ),
    )
    p.add_argument("input", metavar="INPUT.npz")
    p.add_argument("--out", required=True, metavar="OUT.npz")
    add_kernel_options(p)
    p.set_defaults(func=run)


def read_inputs(path: str):
    """x and optional x2 from an .npz, refusing pickles and naming what is wrong."""
    if not os.path.exists(path):
        raise CliError(f"input file not found: {path}")
    if os.path.isdir(path):
        raise CliError(f"input {path} is a folder, not an .npz file")
    try:
        with np.load(path, allow_pickle=False) as f:
            if not hasattr(f, "files"):
                raise CliError(f"{path} holds a single array, not an .npz archive with 'x'")
            if "x" not in f.files:
                raise CliError(f"{path} has no array 'x' (found: {', '.join(f.files) or 'none'})")
            unknown = sorted(set(f.files) - {"x", "x2"})
            if unknown:
                raise CliError(f"{path} has unknown array(s) {unknown}; the known keys are x, x2")
            x = f["x"]
            x2 = f["x2"] if "x2" in f.files else None
    except ValueError as err:
        # np.load raises ValueError for object arrays when pickles are refused.
        raise CliError(
            f"{path}: cannot load without pickle (object arrays are refused): {err}"
        ) from err
    except (OSError, EOFError) as err:
        raise CliError(f"{path} is not a readable .npz file: {err}") from err
    except Exception as err:  # a corrupt archive raises zipfile's or zlib's own errors
        if isinstance(err, CliError):
            raise
        raise CliError(f"{path} is not a readable .npz file ({type(err).__name__}: {err})") from err
    return x, x2


def run(args) -> int:
    from ..report import OutputError, atomic_write, check_output_file

    dtype = setup_dtype(args)
    try:
        check_output_file(args.out)
    except OutputError as err:
        raise CliError(f"--out: {err}") from err
    x, x2 = read_inputs(args.input)
    kernel_fn = build_kernel_fn(args)
    try:
        k = kernel_fn(x, x2)
    except (ValueError, TypeError) as err:
        raise CliError(str(err)) from err
    out = {"ntk": np.asarray(k.ntk)}
    if k.nngp is not None:
        out["nngp"] = np.asarray(k.nngp)
    for name, arr in out.items():
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise CliError(
                f"the {name} kernel has {int((~np.isfinite(arr)).sum())} non-finite entries "
                f"(first at {tuple(int(i) for i in bad)}); nothing written — a deep network may "
                "overflow: lower --depth or --w-std"
            )
    atomic_write(args.out, lambda fh: np.savez(fh, **out))  # the exact name, no ".npz" added
    shape = "×".join(map(str, out["ntk"].shape))
    print(f"wrote {args.out}: {', '.join(out)} ({shape}, {dtype}, arch={args.arch})")
    return 0
