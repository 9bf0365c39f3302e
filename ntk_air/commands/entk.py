"""`ntk-air entk [DATA.npz]`: the empirical NTK of a network at checkpoints of its training."""

from __future__ import annotations

from pathlib import Path

from ..spectral._resources import DEFAULT_TIME_LIMIT
from ._common import (
    CliError,
    Timer,
    add_command,
    add_data_options,
    add_output_options,
    load_dataset,
    open_report,
    progress_bar,
    setup_dtype,
)
from ._config import build_config
from ._lists import comma_list

__all__ = ["add_parser", "run"]

# Network options (None in the parser: an option that does not apply to --arch is an error).
NETWORK = {"width": 512, "depth": 2, "channels": 16, "input_shape": None, "pool": "flatten",
           "activation": "relu", "b_std": 0.0}  # fmt: skip
NOT_FOR = {
    "mlp": ("channels", "input_shape", "pool"),
    "cnn": ("width", "activation"),
    "two-layer-relu": ("depth", "channels", "input_shape", "pool", "activation", "b_std"),
}


def add_parser(subparsers) -> None:
    p = add_command(
        subparsers,
        "entk",
        help="the empirical NTK during training: spectrum, label energy, distance, alignment",
        description="Trains a flax network (full batch, optax) and, at log-spaced checkpoints, "
        "computes its empirical NTK on the training set (and test × train): eigenvalues, the "
        "energy of clean labels / noise / noisy labels per eNTK mode, ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F, "
        "the kernel–target alignment, and the same for the infinite-width kernel (mlp: "
        "fc_kernel_fn; two-layer-relu: H∞; cnn: neural-tangents if installed). Writes entk.json "
        "and PNG figures into --out.",
        examples=(
            "ntk-air entk --dataset digits --n-train 1000 --out entk_out",
            "ntk-air entk --dataset digits --arch cnn --channels 16 --steps 500",
            "ntk-air entk --dataset digits-binary --arch two-layer-relu --width 4096",
            "ntk-air entk my_data.npz --depth 3 --optimizer adam --eta 1e-3 --at 0,10,100,1000",
        ),
    )
    add_output_options(p, "entk_out")
    g = p.add_argument_group("network")
    g.add_argument("--arch", default="mlp", choices=("mlp", "cnn", "two-layer-relu"))
    g.add_argument("--width", type=int, help="mlp / two-layer-relu hidden width (default 512)")
    g.add_argument("--depth", type=int, help="mlp hidden layers / cnn convolutions (default 2)")
    g.add_argument("--channels", type=int, help="cnn channels per convolution (default 16)")
    g.add_argument("--input-shape", help="cnn example shape, e.g. 8x8x1 (digits), 40x1 (mnist1d)")
    g.add_argument("--pool", choices=("flatten", "global"), help="cnn pooling (default flatten)")
    g.add_argument("--activation", choices=("relu", "erf"), help="mlp activation (default relu)")
    g.add_argument("--w-std", type=float, default=1.0, help="weight std; two-layer-relu: κ (1)")
    g.add_argument("--b-std", type=float, help="bias std (default 0)")
    g.add_argument("--init-seed", type=int, default=0, help="initialization seed (default 0)")
    g = p.add_argument_group("training and checkpoints")
    g.add_argument("--steps", type=int, default=1000, help="full-batch steps (default 1000)")
    g.add_argument("--checkpoints", type=int, default=12, help="log-spaced checkpoints (12)")
    g.add_argument(
        "--at",
        type=comma_list(int, "--at"),
        action="extend",
        metavar="STEP[,STEP…]",
        help="explicit checkpoint steps, comma-separated",
    )
    g.add_argument("--optimizer", default="sgd", choices=("sgd", "momentum", "adam"))
    g.add_argument("--eta", type=float, help="step size (sgd default: 1/λ_max(Θ_0))")
    g.add_argument(
        "--force", action="store_true", help="allow η ≥ 2/λ_max(Θ_0) instead of an error"
    )
    g.add_argument(
        "--time-limit",
        type=float,
        default=DEFAULT_TIME_LIMIT,
        metavar="SECONDS",
        help=f"refuse runs estimated to take longer (default {DEFAULT_TIME_LIMIT:.0f} s); the "
        "estimate is printed before training",
    )
    g = p.add_argument_group("kernel")
    g.add_argument(
        "--implementation",
        default="auto",
        choices=("auto", "jacobian", "ntvp", "structured"),
        help="eNTK implementation (default auto: chosen by estimated cost, printed)",
    )
    g.add_argument("--tile-size", type=int, help="eNTK rows per tile (default: memory budget)")
    g.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    g.add_argument("--no-limit", action="store_true", help="skip the infinite-width kernel")
    g.add_argument("--no-test", action="store_true", help="skip Θ_t(X_test, X)")
    g.add_argument("--save-kernels", action="store_true", help="also write entk_kernels.npz")
    add_data_options(p)
    p.set_defaults(func=run)


def _network_options(args) -> dict:
    """The network's options, checked (before any data is loaded)."""
    given = [k for k in NOT_FOR[args.arch] if getattr(args, k) is not None]
    if given:
        flags = ", ".join(f"--{k.replace('_', '-')}" for k in given)
        raise CliError(
            f"{flags} {'does' if len(given) == 1 else 'do'} not apply to --arch {args.arch}"
        )
    opts = {k: v if getattr(args, k) is None else getattr(args, k) for k, v in NETWORK.items()}
    if opts["input_shape"] is not None:
        try:
            opts["input_shape"] = tuple(int(s) for s in opts["input_shape"].lower().split("x"))
        except ValueError:
            raise CliError(f"--input-shape must be like 8x8x1, got {args.input_shape!r}") from None
    if args.init_seed < 0 or args.init_seed >= 2**32:
        raise CliError(f"--init-seed must be an integer in [0, 2^32), got {args.init_seed}")
    for name in ("width", "depth", "channels"):
        if opts[name] < (0 if name == "depth" else 1):
            raise CliError(f"--{name} must be ≥ {0 if name == 'depth' else 1}, got {opts[name]}")
    return opts


def _network(args, dataset, opts):
    from .. import studies

    _check_estimate(args, dataset, opts)
    return studies.entk_network(
        args.arch,
        dataset,
        **opts,
        w_std=args.w_std,
        seed=args.init_seed,
        implementation=args.implementation,
        tile_size=args.tile_size,
        dtype=args.dtype,
    )


def _check_estimate(args, dataset, opts, *, show: bool = True) -> None:
    """Refuse, with the estimate, a run above --time-limit or the memory available (before the
    network is built: a 200000-wide MLP's parameters alone exceed the memory)."""
    from ..spectral._resources import Budget, ResourceError, check_loop
    from ..studies._entk import entk_estimate

    if not args.time_limit > 0:
        raise CliError(f"--time-limit must be a positive number of seconds, got {args.time_limit}")
    shape = opts.get("input_shape")
    checkpoints = len(args.at) + 1 if args.at else args.checkpoints
    est = entk_estimate(
        args.arch,
        dataset,
        steps=args.steps,
        checkpoints=max(1, checkpoints),
        width=opts["width"],
        depth=opts["depth"],
        channels=opts["channels"],
        input_shape=shape,
        dtype=args.dtype,
        test=not args.no_test,
    )
    try:
        check_loop(est, Budget(seconds=args.time_limit))
    except ResourceError as err:
        raise CliError(
            str(err).replace("--force to run it anyway", "a larger --time-limit")
        ) from None
    if show:
        print(est.line(), flush=True)


def _optimizer(args):
    import optax

    if args.optimizer == "sgd":
        return None  # plain SGD with --eta (default 1/λ_max(Θ_0))
    if args.eta is None:
        raise CliError(f"--optimizer {args.optimizer} needs --eta (its learning rate)")
    if args.optimizer == "momentum":
        return optax.sgd(args.eta, momentum=0.9)
    return optax.adam(args.eta)


def run(args) -> int:
    from .. import report, studies

    setup_dtype(args)
    writer = open_report(args.out)
    opts = _network_options(args)

    def plan(data):  # generated data: planned before it is generated
        _check_estimate(args, data, opts, show=False)

    dataset = load_dataset(args, split_sizes=True, plan=plan)
    optimizer = _optimizer(args)
    timer = Timer()
    title = f"ntk-air entk: the empirical NTK during training ({dataset.name})"
    try:
        net = _network(args, dataset, opts)
        context = [
            f"- data: {dataset.name}, n = {len(dataset.x)} train, {len(dataset.x_test)} test",
            f"- network: {net.description['summary']}; infinite-width kernel: {net.limit_name}",
        ]
        writer.text("index.md", report.render_entk_index(None, title=title, context=context))
        config = build_config(
            studies.EntkConfig,
            {"checkpoints": "--at", "num_checkpoints": "--checkpoints"},
            steps=args.steps,
            checkpoints=args.at,
            num_checkpoints=args.checkpoints,
            eta=args.eta if optimizer is None else None,
            optimizer=optimizer,
            test=not args.no_test,
            force=args.force,
            dtype=args.dtype,
        )
        with progress_bar("ntk-air entk", not args.no_progress) as bar:
            study = studies.entk(
                dataset,
                net.apply_fn,
                net.params,
                config,
                ntk_fn=net.ntk_fn,
                limit_kernel_fn=None if args.no_limit else net.limit_kernel_fn,
                limit_name=net.limit_name,
                progress=bar,
            )
    except ValueError as err:  # bad values found below (η, checkpoints, memory budget, …)
        raise CliError(str(err)) from err
    timer.lap("study")
    training = {"optimizer": args.optimizer, "rule": "plain GD on the given labels"}
    s = report.write_entk(
        writer, study, network=net.description, training=training, kernels=args.save_kernels
    )
    context.append(
        f"- training: {s['training']['steps']} full-batch {args.optimizer} steps"
        + ("" if study.eta is None else f", η = {study.eta:.3g}")
        + f"; eNTK implementation: {study.plan['reason']}"
    )
    writer.text("index.md", report.render_entk_index(s, title=title, context=context))
    timer.lap("report")
    writer.json("timings.json", {"seconds": timer.seconds})
    writer.finish({"command": "entk"})
    last, lim = len(s["checkpoints"]) - 1, s["limit"]
    eta = "" if study.eta is None else f", η = {study.eta:.3g}"
    limit = (
        f"{lim['name']}: ‖Θ_t − Θ_∞‖/‖Θ_∞‖ {lim['distance'][0]:.3g} → {lim['distance'][last]:.3g}"
        if lim
        else ("skipped (--no-limit)" if args.no_limit else net.limit_name)
    )
    print(
        f"{dataset.name}: n = {s['dataset']['n']}, {net.description['summary']}, "
        f"{s['training']['steps']} {args.optimizer} steps{eta}\n"
        f"eNTK: {study.plan['reason']}\n"
        f"‖Θ_t − Θ_0‖/‖Θ_0‖ at t = {s['checkpoints'][last]}: {s['kernel_distance'][last]:.3g}; "
        f"A(Θ_t, ŷ): {s['alignment']['clean'][0]:.3g} → {s['alignment']['clean'][last]:.3g}\n"
        f"infinite-width kernel: {limit}\n"
        f"wrote {Path(args.out) / 'entk.json'}, index.md and {', '.join(s['figures'] + s['files'])}"
    )
    return 0
