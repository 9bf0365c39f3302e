"""`ntk-air noisy-labels [DATA.npz]`: self-distillation against early stopping on real classifiers
trained on noisy labels, over seeds, with the kernel limit beside every row."""

from __future__ import annotations

from pathlib import Path

from ._common import (
    CliError,
    Timer,
    add_command,
    add_output_options,
    add_time_options,
    budget_from_args,
    open_report,
    progress_bar,
)
from ._config import build_config as _build
from ._config import option_message

__all__ = ["add_parser", "run"]


def _ints(text: str, name: str) -> tuple:
    try:
        values = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
    except ValueError:
        raise CliError(f"{name} must be comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise CliError(f"{name} must be positive integers, got {text!r}")
    return values


def add_parser(subparsers) -> None:
    from ..studies._noisy_labels import BUILTIN_DATASETS, METHODS, PRESETS, NoisyLabelsConfig

    d = NoisyLabelsConfig()
    p = add_command(
        subparsers,
        "noisy-labels",
        help="self-distillation (R1, R2, R3 soft/hard) against early stopping on real "
        "classifiers trained on noisy labels: test accuracy over seeds, with the kernel limit",
        description="Trains an MLP or CNN by mini-batch SGD/Adam on labels corrupted by symmetric "
        "or pair flips, with each method's target rule refreshed once per epoch, several seeds "
        "at once; writes noisy_labels.json, figures, a table and index.md into --out.",
        examples=(
            "ntk-air noisy-labels --out noisy_out",
            "ntk-air noisy-labels --dataset digits --noise pair --noise-rate 0.4 --seeds 5",
            "ntk-air noisy-labels --arch cnn --loss xent --optimizer adam --no-kernel-limit",
            "ntk-air noisy-labels features.npz --noise flip --noise-rate 0.4 --n-train 2000",
        ),
    )
    p.add_argument(
        "data",
        nargs="?",
        default=None,
        metavar="DATA.npz",
        help="your own data "
        "(x, y or y_clean, x_test, y_test; see ntk_air.data.from_npz): its clean labels "
        "are corrupted here; default: the built-in --dataset",
    )
    p.add_argument(
        "--dataset",
        default=None,
        help=f"comma list of {', '.join(BUILTIN_DATASETS)} (default digits,mnist1d)",
    )
    p.add_argument(
        "--noise",
        choices=("flip", "pair"),
        default=None,
        help="symmetric flips or pair flips c → c + 1 mod C (default: both)",
    )
    p.add_argument(
        "--noise-rate",
        type=float,
        default=None,
        help="one flip rate in [0, 1) (default: the sweep, flip 0/0.2/0.4/0.6 and pair 0/0.2/0.4)",
    )
    p.add_argument(
        "--methods", default=",".join(METHODS), help="comma list of " + ", ".join(METHODS)
    )
    p.add_argument(
        "--seeds", type=int, default=d.seeds, help=f"seeds per setting (default {d.seeds})"
    )
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"(default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default {d.batch_size})")
    p.add_argument("--arch", choices=("mlp", "cnn"), default=d.arch, help="(default mlp)")
    p.add_argument("--widths", default=",".join(map(str, d.widths)), help="MLP hidden widths")
    p.add_argument("--channels", default=",".join(map(str, d.channels)), help="CNN channels")
    p.add_argument("--kernel-size", type=int, default=d.kernel_size, help="CNN window (default 3)")
    p.add_argument("--stride", type=int, default=d.stride, help="CNN stride (default 1)")
    p.add_argument(
        "--scale-inputs",
        action="store_true",
        help="multiply every input by √d (unit-variance scale)",
    )
    p.add_argument(
        "--preset",
        choices=tuple(PRESETS),
        default=None,
        help="fill the options left at their defaults: 'paper' = the MNIST-1D paper's networks and "
        "training (MLP 100-100 or a strided CNN, Adam 0.01, batch 100, 150 epochs, cross-entropy)",
    )
    p.add_argument(
        "--input-shape",
        default=None,
        help="CNN example shape, e.g. 8x8x1 or 40x1 (default: 8x8x1 for 64 inputs, dx1 otherwise)",
    )
    p.add_argument(
        "--param",
        choices=("ntk", "standard"),
        default=d.parameterization,
        help="parameterization (default ntk: the kernel limit applies)",
    )
    p.add_argument(
        "--loss",
        choices=("mse", "xent"),
        default=d.loss,
        help="squared error (the theory, default) or softmax cross-entropy",
    )
    p.add_argument("--optimizer", choices=("sgd", "adam"), default=d.optimizer)
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: SGD ntk 4 per 1000 training rows within [2, 16], so digits "
        "4 and mnist1d 16; SGD standard 0.05; Adam 0.01 ntk / 1e-3 standard)",
    )
    p.add_argument("--momentum", type=float, default=d.momentum, help="SGD momentum (default 0.9)")
    p.add_argument("--r1-alpha", type=float, default=d.r1_alpha, help="R1's α (default 0.5)")
    p.add_argument("--r3-alpha", type=float, default=d.r3_alpha, help="R3's α (default 0.9)")
    p.add_argument(
        "--warmup-epochs",
        type=int,
        default=d.warmup_epochs,
        help="epochs on the given labels before the self-distillation rules act "
        "(default: half of --epochs)",
    )
    p.add_argument(
        "--n-train",
        type=int,
        default=d.n_train,
        help="training rows (default: digits 1000, mnist1d 4000, clusters and .npz 1000)",
    )
    p.add_argument("--n-val", type=int, default=d.n_val, help=f"(default {d.n_val})")
    p.add_argument("--n-test", type=int, default=d.n_test, help=f"(default {d.n_test})")
    p.add_argument("--n-classes", type=int, default=None, help="use classes 0..K−1 only")
    p.add_argument("--seed", type=int, default=0, help="split seed and base of the run seeds")
    p.add_argument("--no-kernel-limit", action="store_true", help="skip the kernel limit")
    add_output_options(p, "noisy_labels_out")
    add_time_options(p)
    p.set_defaults(func=run)


# Options whose config field is named differently.
NOISY_OPTIONS = {
    "noises": "--noise",
    "rates": "--noise-rate",
    "parameterization": "--param",
    "kernel_limit": "--no-kernel-limit",
}


def _option_message(err) -> str:
    """A refusal of the study, naming the option that sets the config field it names."""
    import dataclasses

    from ..studies._noisy_labels import NoisyLabelsConfig

    fields = {f.name for f in dataclasses.fields(NoisyLabelsConfig)} | set(NOISY_OPTIONS)
    return option_message(str(err), fields, NOISY_OPTIONS)


def build_config(args):
    """The study's config from the options (one-line CliError for a bad one)."""
    from ..studies._noisy_labels import NoisyLabelsConfig, with_preset

    try:
        config = _build(
            NoisyLabelsConfig,
            NOISY_OPTIONS,
            noises=("flip", "pair") if args.noise is None else (args.noise,),
            rates=None if args.noise_rate is None else (args.noise_rate,),
            methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
            seeds=args.seeds,
            epochs=args.epochs,
            batch_size=args.batch_size,
            arch=args.arch,
            widths=_ints(args.widths, "--widths"),
            channels=_ints(args.channels, "--channels"),
            kernel_size=args.kernel_size,
            stride=args.stride,
            scale_inputs=args.scale_inputs,
            input_shape=None
            if args.input_shape is None
            else _ints(args.input_shape, "--input-shape"),
            parameterization=args.param,
            optimizer=args.optimizer,
            lr=args.lr,
            momentum=args.momentum,
            loss=args.loss,
            r1_alpha=args.r1_alpha,
            r3_alpha=args.r3_alpha,
            warmup_epochs=args.warmup_epochs,
            n_train=args.n_train,
            n_val=args.n_val,
            n_test=args.n_test,
            n_classes=args.n_classes,
            seed=args.seed,
            kernel_limit=not args.no_kernel_limit,
        )
        return config if args.preset is None else with_preset(config, args.preset)
    except (ValueError, TypeError) as err:
        raise CliError(str(err)) from err


def run(args) -> int:
    import jax

    from .. import report, studies
    from ..spectral._resources import ResourceError, check_loop
    from ..studies._noisy_labels import (
        BUILTIN_DATASETS,
        load_clean,
        noisy_labels_estimate,
        split_dataset,
    )

    config = build_config(args)
    budget = budget_from_args(args)
    if args.data is not None and args.dataset is not None:
        raise CliError(f"give DATA.npz or --dataset, not both (got {args.data} and --dataset)")
    names = (args.dataset or "digits,mnist1d").split(",")
    unknown = [n for n in names if n not in BUILTIN_DATASETS]
    if args.data is None and (unknown or not names):
        raise CliError(
            f"--dataset: unknown dataset {unknown[0]!r}; choose from "
            f"{', '.join(BUILTIN_DATASETS)} (comma-separated)"
        )
    if args.data is not None and not Path(args.data).exists():
        raise CliError(f"data file not found: {args.data}")
    jax.config.update("jax_enable_x64", True)  # the kernel limit in float64; networks are float32
    timer = Timer()
    try:
        datasets, splits = [], []
        for name in [None] if args.data else names:  # each one split (or refused) in turn
            datasets.append(load_clean(name, config, args.data))
            splits.append(split_dataset(datasets[-1], config))
        try:  # time and memory of the whole run, before any network is built
            print(check_loop(noisy_labels_estimate(splits, config), budget).line(), flush=True)
        except ResourceError as err:
            raise CliError(
                str(err).replace("fewer steps", "fewer epochs, seeds or methods")
            ) from None
        writer = open_report(args.out)
        with progress_bar("ntk-air noisy-labels", not args.no_progress) as bar:
            study = studies.noisy_labels(datasets, config, progress=bar)
    except (ValueError, KeyError, TypeError) as err:
        raise CliError(_option_message(err)) from err
    timer.lap("study")
    summary = report.write_noisy_labels(writer, study)
    timer.lap("report")
    writer.json("timings.json", {"seconds": timer.seconds})
    writer.finish({"command": "noisy-labels"})
    for h in summary["headlines"]:
        v = h["best_sd_vs_early-stop-clean"] or h["best_sd_vs_early-stop-noisy"]
        where = f"{h['dataset']} {h['noise']} {h['rate']:g}"
        if v is None:
            print(f"  {where}: no self-distillation / early-stopping pair among --methods")
            continue
        d = v["difference"]
        print(
            f"  {where}: best SD {h['best_sd_method']} last − early stop = {d['mean']:+.3f} "
            f"[{d['lo']:+.3f}, {d['hi']:+.3f}] ({v['verdict']})"
        )
    print(f"written to {Path(args.out) / 'index.md'} ({timer.seconds['study']:.0f} s)")
    return 0
