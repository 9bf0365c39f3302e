"""The noisy-label study: self-distillation against early stopping on real classifiers, with
test accuracy over seeds and the kernel limit beside every row (docs/science/noisy_labels.md,
docs/guide/noisy_labels.md).

For each data set and noise setting, S seeds of one network train together with every method
(`training.train_epochs`, one compiled program); the kernel limit runs the same rule objects by
`distill.self_distill` on `epochs.epoch_problem`. Options live in `_noisy_config`, data in
`_noisy_data`, results in `_noisy_results`; this module runs the networks and the kernel limit.

Reference: Dong et al. arXiv 1910.01255.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..data import Dataset
from ..distillation._engines import self_distill
from ..dynamics._record import Record
from ..kernels._kernel_fn import fc_kernel_fn
from ..networks._epochs import epoch_gradient_time, epoch_problem
from ..networks._models import network as build_network
from ..networks._training import optimizer, train_epochs
from ..spectral._resources import DEFAULT_RATES, LoopEstimate

# Re-exported: the CLI, the report and the tests import the whole study from this module.
from ._noisy_config import (  # noqa: F401
    BUILTIN_DATASETS,
    DEFAULT_N_TRAIN,
    EARLY_STOPPING,
    PRESETS,
    SELF_DISTILLATION,
    NoisyLabelsConfig,
    default_lr,
    learning_rate,
    method_rules,
    noise_settings,
    train_size,
    warmup_epochs,
    with_preset,
)
from ._noisy_data import load_clean, noisy_split_labels, split_dataset  # noqa: F401
from ._noisy_results import (  # noqa: F401
    Curves,
    NoisyLabelsStudy,
    SettingResult,
    compare_setting,
    summarize_setting,
    t_interval,
    t_quantile_975,
)
from ._system import cnn_input_shape, kernel_system, network_size, report_progress


def _kernel_applies(c: NoisyLabelsConfig) -> str | None:
    """None if the kernel-limit companion applies, else why not."""
    if not c.kernel_limit:
        return "switched off"
    if c.arch != "mlp":
        return "the kernel limit is computed for the MLP only (arch cnn has no native NTK here)"
    if c.parameterization != "ntk":
        return "the standard parameterization has no finite kernel limit at a fixed learning rate"
    if c.optimizer != "sgd":
        return "Adam has no gradient-flow time per epoch to map onto the kernel limit"
    return None


def _hard_predictions(snapshot):
    """Record.fn of the kernel limit: argmax predictions on the training and evaluation points."""
    return {"train": jnp.argmax(snapshot.u, -1), "eval": jnp.argmax(snapshot.test, -1)}


def _curves_from_predictions(pred_eval, split, y_val_noisy, n_val, train_stats):
    """Accuracies from argmax predictions on [validation; test] rows: (M, S, E + 1) each."""
    val_pred, test_pred = pred_eval[..., :n_val], pred_eval[..., n_val:]
    yv = np.argmax(split.y_val_clean, 1)
    yvn = np.argmax(y_val_noisy, -1)[None, :, None, :]  # (1, S, 1, n_val)
    yt = np.argmax(split.y_test_clean, 1)
    return Curves(
        test_acc=(test_pred == yt).mean(-1),
        val_acc_clean=(val_pred == yv).mean(-1),
        val_acc_noisy=(val_pred == yvn).mean(-1),
        **train_stats,
    )


def _network_run(net, split, y_seeds, yv_seeds, rules, config, lr, keys):
    init_keys, order_keys = keys
    params = jax.vmap(net.init)(init_keys)
    name = "momentum" if config.optimizer == "sgd" and config.momentum else config.optimizer
    opt = optimizer(name, float(lr), float(config.momentum))
    x_eval = np.concatenate([split.x_val, split.x_test])
    run = train_epochs(
        net.apply_fn,
        params,
        split.x,
        y_seeds.astype(np.float32),
        split.y_clean.astype(np.float32),
        [r for _, r in rules],
        epochs=config.epochs,
        batch_size=config.batch_size,
        optimizer=opt,
        key=order_keys,
        loss=config.loss,
        x_eval=x_eval,
    )
    stats = {
        k: np.asarray(getattr(run, k), np.float64)
        for k in ("train_acc_noisy", "train_acc_clean", "dist_clean", "flipped_fit")
    }
    return _curves_from_predictions(
        np.asarray(run.eval_pred), split, yv_seeds, len(split.x_val), stats
    )


def _kernel_run(system, split, y_seeds, yv_seeds, corrupted, rules, config, time):
    n = split.x.shape[0]
    y_eval = np.concatenate([split.y_val_clean, split.y_test_clean])
    record = Record(every=1, fn=_hard_predictions)
    steps_rules, per_seed = [r for _, r in rules], []
    for y in y_seeds:
        problem = epoch_problem(
            system.eig,
            y,
            split.y_clean,
            time=time,
            k_test_train=system.ntk_test,
            y_test_clean=y_eval,
        )
        per_seed.append(
            self_distill(problem, steps_rules, steps=config.epochs, eta=1.0, record=record)
        )
    train_pred = np.stack([np.asarray(r.observed["train"]) for r in per_seed], 1)  # (M, S, E+1, n)
    eval_pred = np.stack([np.asarray(r.observed["eval"]) for r in per_seed], 1)
    dist = np.stack([np.asarray(r.dist_train) for r in per_seed], 1) / math.sqrt(n)
    yn = np.argmax(y_seeds, -1)[None, :, None, :]
    yc = np.argmax(split.y_clean, 1)
    flips = corrupted[None, :, None, :]
    n_flip = corrupted.sum(-1)[None, :, None]
    fitted = ((train_pred == yn) & flips).sum(-1)
    stats = {
        "train_acc_noisy": (train_pred == yn).mean(-1),
        "train_acc_clean": (train_pred == yc).mean(-1),
        "dist_clean": dist,
        "flipped_fit": np.where(n_flip > 0, fitted / np.maximum(n_flip, 1), np.nan),
    }
    return _curves_from_predictions(eval_pred, split, yv_seeds, len(split.x_val), stats)


def noisy_labels_estimate(splits, config: NoisyLabelsConfig):
    """The study's `LoopEstimate` from the sizes alone: per method and seed, E epochs of
    ≈ 6·n·F multiply-adds (F per row forward) and four copies of the parameters."""
    c, settings = config, len(noise_settings(config))
    runs = settings * len(method_rules(c)) * c.seeds  # early stopping reuses plain's run
    seconds, memory = 0.0, 0.0
    for split in splits:
        n, d = split.x.shape[0], int(np.prod(split.x.shape[1:]))
        classes = split.y_clean.shape[1]
        params, flops = network_size(
            c.arch, d, classes, widths=c.widths, channels=c.channels, input_shape=c.input_shape
        )
        steps = c.epochs * math.ceil(n / c.batch_size)
        seconds += runs * (
            c.epochs * 6.0 * n * flops * DEFAULT_RATES["flop_seconds"]
            + steps * DEFAULT_RATES["step_seconds"]
        )
        memory += runs * (4 * 4 * params + 8 * 8 * (c.epochs + 1))
    what = (
        f"noisy-labels: {len(splits)} data set(s) × {settings} setting(s) × "
        f"{len(c.methods)} methods × {c.seeds} seeds × {c.epochs} epochs"
    )
    return LoopEstimate(what, seconds, int(memory), {})


def noisy_labels(
    datasets, config: NoisyLabelsConfig | None = None, *, progress=None
) -> NoisyLabelsStudy:
    """Every method on every data set and noise setting, S seeds each (no files, no output).

    Args:
      datasets: a sequence of clean `data.Dataset`s (`load_clean`), each with a test set; their
        clean labels y_clean are used and corrupted here.
      config: `NoisyLabelsConfig`.
      progress: progress(stage, done, total), called after each data set's setup and setting.

    Returns:
      NoisyLabelsStudy; `summarize_setting` and `compare_setting` turn a setting into the
      report's rows and verdicts.

    Example (a minute or two on 2 CPU cores, so not run as a doctest):
      >>> cfg = NoisyLabelsConfig(noises=("pair",), rates=(0.4,), epochs=30)
      >>> study = noisy_labels([load_clean("digits", cfg)], cfg)  # doctest: +SKIP
      >>> rows = summarize_setting(study.settings[0], cfg.methods)  # doctest: +SKIP

    Reference: Dong et al. arXiv 1910.01255 (docs/science/noisy_labels.md).
    """
    c = NoisyLabelsConfig() if config is None else config
    settings = noise_settings(c)
    rules = method_rules(c)
    why_not = _kernel_applies(c)
    total = len(datasets) * (1 + len(settings))
    done = itertools.count(1)
    base = jax.random.key(c.seed)
    seed_keys = jax.vmap(lambda s: jax.random.fold_in(base, s))(np.arange(c.seeds))
    split_keys = jax.vmap(lambda k: jax.random.split(k, 2))(seed_keys)
    keys = (split_keys[:, 0], split_keys[:, 1])
    results, data_info, description, lrs = [], [], "", {}
    kernel_info: dict = {"applies": why_not is None, "reason": why_not}
    for dataset in datasets:
        split = split_dataset(dataset, c)
        data_info.append(split.info)
        d, n_classes = split.x.shape[1], split.y_clean.shape[1]
        net = build_network(
            c.arch,
            d,
            out_dim=n_classes,
            widths=c.widths,
            channels=c.channels,
            kernel_size=c.kernel_size,
            stride=c.stride,
            input_shape=cnn_input_shape(d, c.input_shape) if c.arch == "cnn" else None,
            w_std=c.w_std,
            b_std=c.b_std,
            parameterization=c.parameterization,
            seed=c.seed,
            kernel=False,  # the kernel limit runs in float64 below
        )
        description = net.description
        n_train = split.x.shape[0]
        lr = lrs[split.name] = learning_rate(c, n_train)
        system = time = None
        if why_not is None:
            kernel_fn = fc_kernel_fn(len(c.widths), "relu", c.w_std, c.b_std)
            eval_x = np.concatenate([split.x_val, split.x_test]).astype(np.float64)
            pool = Dataset(
                split.x.astype(np.float64),
                split.y_clean,
                split.y_clean,
                eval_x,
                np.concatenate([split.y_val_clean, split.y_test_clean]),
                split.name,
                {},
            )
            system = kernel_system(pool, kernel_fn)
            time = epoch_gradient_time(lr, n_train, c.batch_size, c.momentum)
            kernel_info.update(
                {
                    "kernel": f"fc_kernel_fn(depth={len(c.widths)}, 'relu', "
                    f"w_std={c.w_std:g}, b_std={c.b_std:g})",
                    "mapping": "one epoch = gradient flow for T = lr/(1 − momentum)·⌊n/B⌋/n "
                    "at the epoch's fixed target (epochs.epoch_problem), from u(0) = 0",
                    "loss": "squared error (the theory)"
                    + ("" if c.loss == "mse" else "; the networks use cross-entropy"),
                }
            )
            kernel_info.setdefault("lambda_max", {})[split.name] = float(system.eig.eigenvalues[0])
            kernel_info.setdefault("epoch_time", {})[split.name] = time
        report_progress(progress, f"{split.name}: split and kernel", next(done), total)
        for noise, rate in settings:
            draws = [noisy_split_labels(split, noise, rate, s, c.seed) for s in range(c.seeds)]
            y_seeds, yv_seeds, corrupted, corrupted_val = map(np.stack, zip(*draws, strict=True))
            network = _network_run(net, split, y_seeds, yv_seeds, rules, c, lr, keys)
            kernel = None
            if system is not None:
                kernel = _kernel_run(system, split, y_seeds, yv_seeds, corrupted, rules, c, time)
            results.append(
                SettingResult(
                    dataset=split.name,
                    noise=noise,
                    rate=float(rate),
                    methods=tuple(m for m, _ in rules),
                    network=network,
                    kernel=kernel,
                    n_corrupted=corrupted.sum(1),
                    n_corrupted_val=corrupted_val.sum(1),
                )
            )
            report_progress(progress, f"{split.name}: {noise} {rate:g}", next(done), total)
    return NoisyLabelsStudy(
        config=dataclasses.asdict(c),
        data=tuple(data_info),
        network=description,
        lr=lrs,
        kernel_limit=kernel_info,
        settings=tuple(results),
        warmup_epochs=warmup_epochs(c),
    )
