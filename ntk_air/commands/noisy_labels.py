"""`ntk-air noisy-labels [DATA.npz]`: self-distillation against early stopping on real classifiers
trained on noisy labels, over seeds, with the kernel limit beside every row."""

from __future__ import annotations

from pathlib import Path

from . import _common as common
from ._config import add_config_options, config_from_args, option_map, option_message

__all__ = ["add_parser", "run"]

COMMAND = common.CommandText(
    "noisy-labels",
    help="self-distillation (R1, R2, R3 soft/hard) against early stopping on real "
    "classifiers trained on noisy labels: test accuracy over seeds, with the kernel limit",
    description="Trains an MLP or CNN by mini-batch SGD/Adam on labels corrupted by symmetric "
    "or pair flips, with each method's target rule refreshed once per epoch, several seeds "
    "at once; writes noisy_labels.json, figures, a table and index.md into --out.",
    examples="""
        ntk-air noisy-labels --out noisy_out
        ntk-air noisy-labels --dataset digits --noise pair --noise-rate 0.4 --seeds 5
        ntk-air noisy-labels --arch cnn --loss xent --optimizer adam --no-kernel-limit
        ntk-air noisy-labels features.npz --noise flip --noise-rate 0.4 --n-train 2000
    """,
)


def add_parser(subparsers) -> None:
    from ..studies._noisy_labels import BUILTIN_DATASETS, PRESETS, NoisyLabelsConfig

    p = COMMAND.add_to(subparsers)
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
        "--preset",
        choices=tuple(PRESETS),
        default=None,
        help="fill the options left at their defaults: 'paper' = the MNIST-1D paper's networks and "
        "training (MLP 100-100 or a strided CNN, Adam 0.01, batch 100, 150 epochs, cross-entropy)",
    )
    add_config_options(p, NoisyLabelsConfig)
    common.add_output_options(p, "noisy_labels_out")
    common.add_time_options(p)
    p.set_defaults(func=run)


def _refusal(err) -> str:
    """A refusal of the study, naming the option."""
    from ..studies._noisy_labels import NoisyLabelsConfig

    options = option_map(NoisyLabelsConfig)
    return option_message(str(err), options, options)


def build_config(args):
    """The study's config from the options (one-line CliError for a bad one)."""
    from ..studies._noisy_labels import NoisyLabelsConfig, with_preset

    config = config_from_args(NoisyLabelsConfig, args)
    with common.cli_errors(_refusal, (ValueError, TypeError)):
        return config if args.preset is None else with_preset(config, args.preset)


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
    budget = common.budget_from_args(args)
    if args.data is not None and args.dataset is not None:
        raise common.CliError(
            f"give DATA.npz or --dataset, not both (got {args.data} and --dataset)"
        )
    names = (args.dataset or "digits,mnist1d").split(",")
    unknown = [n for n in names if n not in BUILTIN_DATASETS]
    if args.data is None and (unknown or not names):
        raise common.CliError(
            f"--dataset: unknown dataset {unknown[0]!r}; choose from "
            f"{', '.join(BUILTIN_DATASETS)} (comma-separated)"
        )
    if args.data is not None and not Path(args.data).exists():
        raise common.CliError(f"data file not found: {args.data}")
    jax.config.update("jax_enable_x64", True)  # the kernel limit in float64; networks are float32

    def too_long(err) -> str:
        return str(err).replace("fewer steps", "fewer epochs, seeds or methods")

    timer = common.Timer()
    with common.cli_errors(_refusal, (ValueError, KeyError, TypeError)):
        datasets, splits = [], []
        for name in [None] if args.data else names:  # each one split (or refused) in turn
            datasets.append(load_clean(name, config, args.data))
            splits.append(split_dataset(datasets[-1], config))
        with common.cli_errors(too_long, ResourceError):  # before any network is built
            print(check_loop(noisy_labels_estimate(splits, config), budget).line(), flush=True)
        writer = common.open_report(args.out)
        with common.progress_bar("ntk-air noisy-labels", not args.no_progress) as bar:
            study = studies.noisy_labels(datasets, config, progress=bar)
    timer.lap("study")
    summary = report.write_noisy_labels(writer, study)
    common.finish_report(writer, timer, "noisy-labels")
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
