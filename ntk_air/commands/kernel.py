"""`ntk-air kernel INPUT.npz --out OUT.npz`: infinite-width kernels of your inputs."""

from __future__ import annotations

import os
import stat

import numpy as np

from ._common import (
    CliError,
    add_command,
    add_kernel_options,
    add_time_options,
    build_kernel_fn,
    setup_dtype,
)

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
    p.add_argument(
        "--memory-budget",
        type=float,
        default=None,
        metavar="GB",
        help="memory the kernel may use, in GB (default: the memory available now); a kernel "
        "estimated above it is refused before anything is computed",
    )
    add_time_options(p)
    p.set_defaults(func=run)


def _array_headers(path: str) -> dict:
    """{name: (shape, dtype)} of the arrays in an .npz, read from the headers only (a member
    claiming more entries than memory holds is refused before it is decompressed)."""
    import zipfile

    out = {}
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = (
                        np.lib.format.read_array_header_1_0
                        if version == (1, 0)
                        else np.lib.format.read_array_header_2_0
                    )
                    shape, _, dtype = read(f)
                out[info.filename[: -len(".npy")]] = (shape, dtype)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError):
        return {}  # np.load names the problem below
    return out


def read_inputs(path: str):
    """x and optional x2 from an .npz, refusing pickles and naming what is wrong."""
    if not os.path.exists(path):
        raise CliError(f"input file not found: {path}")
    if os.path.isdir(path):
        raise CliError(f"input {path} is a folder, not an .npz file")
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or a device would block or never end
        raise CliError(f"input {path} is not a regular file (a pipe or a device); give a file")
    from ..resources import available_memory

    for name, (shape, dtype) in _array_headers(path).items():
        nbytes = int(np.prod(shape, dtype=np.float64)) * max(1, np.dtype(dtype).itemsize)
        if nbytes > available_memory() // 2:
            raise CliError(
                f"{path}: array {name!r} claims shape {shape} ({nbytes / 1e9:.3g} GB), more than "
                "half the memory available; nothing was read"
            )
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


def _check_estimate(args, x, x2, kernel_fn) -> None:
    """Refuse, with the estimate, a kernel that would not fit the memory budget or the time
    limit (before anything is computed: XLA's failed allocation can hang instead of failing)."""
    from ..resources import available_memory, estimate_kernel

    if np.ndim(x) < 2 or (x2 is not None and np.ndim(x2) < 2) or not len(x):
        return  # the kernel function names the problem
    gb = args.memory_budget
    if gb is not None and not (0 < gb < float("inf")):
        raise CliError(f"--memory-budget must be a positive number of GB, got {gb}")
    if not args.time_limit > 0:
        raise CliError(f"--time-limit must be a positive number of seconds, got {args.time_limit}")
    budget = available_memory() if gb is None else int(gb * 1e9)
    n2 = len(x) if x2 is None else len(x2)
    try:
        tile = kernel_fn.tile_for(x, x if x2 is None else x2)
    except (AttributeError, TypeError, ValueError):
        tile = args.tile_size
    est = estimate_kernel(len(x), max(n2, 1), args.dtype, tile=tile, depth=args.depth)
    what = f"the kernel of {len(x)} × {n2} rows"
    if est.memory_bytes > budget:
        raise CliError(
            f"{what} needs ~{est.memory_bytes / 1e9:.3g} GB (the kernels "
            f"{est.detail['kernels'] / 1e9:.3g} GB, their host copies and one tile) > the memory "
            f"budget {budget / 1e9:.3g} GB; nothing was computed (use fewer rows, --tile-size, or "
            "--memory-budget)"
        )
    if est.seconds > args.time_limit and not args.force:
        raise CliError(
            f"{what} is estimated to take ~{est.seconds:.3g} s (> --time-limit "
            f"{args.time_limit:g} s); nothing was computed (use fewer rows or --force)"
        )


def run(args) -> int:
    from ..report import OutputError, atomic_write, check_output_file

    dtype = setup_dtype(args)
    try:
        check_output_file(args.out)
    except OutputError as err:
        raise CliError(f"--out: {err}") from err
    if os.path.exists(args.out) and os.path.exists(args.input):
        if os.path.samefile(args.out, args.input):
            raise CliError(f"--out {args.out} is the input file; give another name")
    x, x2 = read_inputs(args.input)
    kernel_fn = build_kernel_fn(args)
    _check_estimate(args, x, x2, kernel_fn)
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
