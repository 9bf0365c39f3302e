"""`ntk-air kernel INPUT.npz --out OUT.npz`: infinite-width kernels of your inputs."""

from __future__ import annotations

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
    from ..data import DataFileError, read_npz_arrays

    try:  # the one archive reader: file type, archive, header, dtype and size checks
        arrays = read_npz_arrays(path, keys=("x", "x2"), required=("x",))
    except FileNotFoundError:
        raise CliError(f"input file not found: {path}") from None
    except DataFileError as err:
        raise CliError(str(err)) from None
    x, x2 = arrays["x"], arrays.get("x2")
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
