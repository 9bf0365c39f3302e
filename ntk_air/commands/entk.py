"""`ntk-air entk [DATA.npz]`: the empirical NTK of a network at checkpoints of its training."""

from __future__ import annotations

from pathlib import Path

from .. import networks, studies
from . import _common as common
from ._config import add_config_options, config_from_args, option_message
from ._lists import int_tuple

__all__ = ["add_parser", "run"]

COMMAND = common.CommandText(
    "entk",
    help="the empirical NTK during training: spectrum, label energy, distance, alignment",
    description="Trains a flax network (full batch) and, at log-spaced checkpoints, computes "
    "its empirical NTK: eigenvalues, label energy per mode, ‖Θ_t − Θ_0‖_F / ‖Θ_0‖_F and the "
    "kernel–target alignment, beside the infinite-width kernel. Writes entk.json and PNG "
    "figures into --out.",
    examples="""
        ntk-air entk --dataset digits --n-train 1000 --out entk_out
        ntk-air entk --dataset digits --arch cnn --channels 16 --steps 500
        ntk-air entk --dataset digits-binary --arch two-layer-relu --width 4096
        ntk-air entk my_data.npz --depth 3 --optimizer adam --eta 1e-3 --at 0,10,100,1000
    """,
)


def add_parser(subparsers) -> None:
    p = COMMAND.add_to(subparsers)
    common.add_output_options(p, "entk_out")
    g = p.add_argument_group("network")
    g.add_argument("--arch", default="mlp", choices=("mlp", "cnn", "two-layer-relu"))
    g.add_argument("--width", type=int, help="mlp / two-layer-relu hidden width (default 512)")
    g.add_argument("--depth", type=int, help="mlp hidden layers / cnn convolutions (default 2)")
    g.add_argument("--channels", type=int, help="cnn channels per convolution (default 16)")
    g.add_argument(
        "--input-shape",
        type=int_tuple("--input-shape"),
        help="cnn example shape, e.g. 8x8x1 (digits), 40x1 (mnist1d)",
    )
    g.add_argument("--pool", choices=("flatten", "global"), help="cnn pooling (default flatten)")
    g.add_argument("--activation", choices=("relu", "erf"), help="mlp activation (default relu)")
    g.add_argument("--w-std", type=float, default=1.0, help="weight std; two-layer-relu: κ (1)")
    g.add_argument("--b-std", type=float, help="bias std (default 0)")
    g.add_argument("--init-seed", type=int, default=0, help="initialization seed (default 0)")
    g = p.add_argument_group("training and checkpoints")
    add_config_options(g, studies.EntkConfig, skip=("test",))
    g.add_argument("--optimizer", default="sgd", choices=networks.OPTIMIZERS)
    common.add_time_options(g, force=False)
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
    add_config_options(g, studies.EntkConfig, only=("test",))
    g.add_argument("--save-kernels", action="store_true", help="also write entk_kernels.npz")
    common.add_data_options(p)
    p.set_defaults(func=run)


_NETWORK = ("width", "depth", "channels", "input_shape", "pool", "activation", "b_std")


def _refusal(err) -> str:
    """A refusal of the network's options, naming the option."""
    options = {"seed": "--init-seed", "arch": "--arch"}
    return option_message(str(err), {"seed", "arch", *_NETWORK}, options)


def _network(args, dataset, config):
    _check_estimate(args, dataset, config)
    with common.cli_errors(_refusal):
        return studies.entk_network(
            args.arch,
            dataset,
            **{k: getattr(args, k) for k in _NETWORK},
            w_std=args.w_std,
            seed=args.init_seed,
            implementation=args.implementation,
            tile_size=args.tile_size,
            dtype=args.dtype,
        )


def _check_estimate(args, dataset, config, *, show: bool = True) -> None:
    """Refuse, with the estimate, a run above --time-limit or the memory available (before the
    network is built: a 200000-wide MLP's parameters alone exceed the memory)."""
    from ..spectral._resources import ResourceError, check_loop
    from ..studies._entk import entk_estimate

    with common.cli_errors(_refusal):  # checked before the estimate, which assumes them
        opts = studies.network_options(args.arch, **{k: getattr(args, k) for k in _NETWORK})
    at = config.checkpoints
    checkpoints = len(at) + 1 if at is not None and len(at) else config.num_checkpoints
    est = entk_estimate(
        args.arch,
        dataset,
        steps=config.steps,
        checkpoints=max(1, checkpoints),
        **{k: opts[k] for k in ("width", "depth", "channels", "input_shape")},
        dtype=args.dtype,
        test=config.test,
    )

    def refusal(err) -> str:
        return str(err).replace("--force to run it anyway", "a larger --time-limit")

    with common.cli_errors(refusal, ResourceError):
        check_loop(est, common.budget_from_args(args)._replace(force=False))  # --force is η's here
    if show:
        print(est.line(), flush=True)


def run(args) -> int:
    from .. import report

    common.setup_dtype(args)
    writer = common.open_report(args.out)
    eta = getattr(args, "eta", None)  # SGD's step size, or the optax optimizer's rate
    if args.optimizer != "sgd" and eta is None:
        raise common.CliError(f"--optimizer {args.optimizer} needs --eta (its learning rate)")
    optimizer = None if args.optimizer == "sgd" else networks.optimizer(args.optimizer, eta)
    config = config_from_args(
        studies.EntkConfig,
        args,
        eta=eta if optimizer is None else None,
        optimizer=optimizer,
        dtype=args.dtype,
    )
    dataset = common.load_dataset(  # generated data: planned before it is generated
        args, split_sizes=True, plan=lambda data: _check_estimate(args, data, config, show=False)
    )
    title = f"ntk-air entk: the empirical NTK during training ({dataset.name})"
    with common.studying(args, "entk") as (bar, timer):  # η, checkpoints, memory budget, …
        net = _network(args, dataset, config)
        context = [
            f"- data: {dataset.name}, n = {len(dataset.x)} train, {len(dataset.x_test)} test",
            f"- network: {net.description['summary']}; infinite-width kernel: {net.limit_name}",
        ]
        writer.text("index.md", report.render_entk_index(None, title=title, context=context))
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
    common.finish_report(writer, timer, "entk")
    files = ", ".join(s["figures"] + s["files"])
    print(
        report.entk_console_lines(
            s,
            summary=net.description["summary"],
            optimizer=args.optimizer,
            limit="skipped (--no-limit)" if args.no_limit else net.limit_name,
        )
        + f"\nwrote {Path(args.out) / 'entk.json'}, index.md and {files}"
    )
    return 0
