"""`ntk-air kernel INPUT.npz --out OUT.npz`: infinite-width kernels of your inputs."""

from __future__ import annotations

import numpy as np

from . import _common as common

__all__ = ["add_parser", "run", "read_inputs"]

COMMAND = common.CommandText(
    "kernel",
    help="compute NTK (and NNGP) of the inputs in an .npz",
    description="Reads arrays x (n,d) and optional x2 (n2,d) from INPUT.npz "
    "(allow_pickle=False) and writes ntk and, where defined, nngp "
    "— K(x, x2), or K(x, x) — to --out (written atomically).",
    examples="""
        ntk-air kernel inputs.npz --out kernel.npz
        ntk-air kernel inputs.npz --out fc.npz --arch fc --depth 3 --w-std 1.5 --b-std 0.1
    """,
)


def add_parser(subparsers) -> None:
    p = COMMAND.add_to(subparsers)
    p.add_argument("input", metavar="INPUT.npz")
    p.add_argument("--out", required=True, metavar="OUT.npz")
    common.add_kernel_options(p)
    p.add_argument(
        "--memory-budget",
        type=float,
        default=None,
        metavar="GB",
        help="memory the kernel may use, in GB (default: the memory available now); a kernel "
        "estimated above it is refused before anything is computed",
    )
    common.add_time_options(p)
    p.set_defaults(func=run)


def read_inputs(path: str):
    """x and optional x2 from an .npz, refusing pickles and naming what is wrong."""
    from ..data import DataFileError, read_npz_arrays

    try:  # the one archive reader: file type, archive, header, dtype and size checks
        arrays = read_npz_arrays(path, keys=("x", "x2"), required=("x",))
    except FileNotFoundError:
        raise common.CliError(f"input file not found: {path}") from None
    except DataFileError as err:
        raise common.CliError(str(err)) from None
    return arrays["x"], arrays.get("x2")


def _check_estimate(args, x, x2, kernel_fn) -> None:
    """Refuse, with the estimate, a kernel that would not fit the memory budget or the time
    limit (before anything is computed: XLA's failed allocation can hang instead of failing)."""
    from ..spectral._resources import available_memory, estimate_kernel

    if np.ndim(x) < 2 or (x2 is not None and np.ndim(x2) < 2) or not len(x):
        return  # the kernel function names the problem
    limits = common.budget_from_args(args)  # --memory-budget and --time-limit checked
    budget = available_memory() if limits.memory_bytes is None else limits.memory_bytes
    n2 = len(x) if x2 is None else len(x2)
    try:
        tile = kernel_fn.tile_for(x, x if x2 is None else x2)
    except (AttributeError, TypeError, ValueError):
        tile = args.tile_size
    est = estimate_kernel(len(x), max(n2, 1), args.dtype, tile=tile, depth=args.depth)
    what = f"the kernel of {len(x)} × {n2} rows"
    if est.memory_bytes > budget:
        raise common.CliError(
            f"{what} needs ~{est.memory_bytes / 1e9:.3g} GB (the kernels "
            f"{est.detail['kernels'] / 1e9:.3g} GB, their host copies and one tile) > the memory "
            f"budget {budget / 1e9:.3g} GB; nothing was computed (use fewer rows, --tile-size, or "
            "--memory-budget)"
        )
    if est.seconds > limits.seconds and not limits.force:
        raise common.CliError(
            f"{what} is estimated to take ~{est.seconds:.3g} s (> --time-limit "
            f"{args.time_limit:g} s); nothing was computed (use fewer rows or --force)"
        )


def run(args) -> int:
    from ..report import OutputError, atomic_write, check_output_file

    dtype = common.setup_dtype(args)
    with common.cli_errors(lambda err: f"--out: {err}", OutputError):
        check_output_file(args.out)
    if common.same_file(args.out, args.input):
        raise common.CliError(f"--out {args.out} is the input file; give another name")
    x, x2 = read_inputs(args.input)
    kernel_fn = common.build_kernel_fn(args)
    _check_estimate(args, x, x2, kernel_fn)
    with common.cli_errors(errors=(ValueError, TypeError)):
        k = kernel_fn(x, x2)
    out = {"ntk": np.asarray(k.ntk)}
    if k.nngp is not None:
        out["nngp"] = np.asarray(k.nngp)
    for name, arr in out.items():
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise common.CliError(
                f"the {name} kernel has {int((~np.isfinite(arr)).sum())} non-finite entries "
                f"(first at {tuple(int(i) for i in bad)}); nothing written — a deep network may "
                "overflow: lower --depth or --w-std"
            )
    atomic_write(args.out, lambda fh: np.savez(fh, **out))  # the exact name, no ".npz" added
    shape = "×".join(map(str, out["ntk"].shape))
    print(f"wrote {args.out}: {', '.join(out)} ({shape}, {dtype}, arch={args.arch})")
    return 0
