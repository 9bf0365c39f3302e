"""The noisy-label study's options: methods, noise settings, the config and its checks, presets."""

from __future__ import annotations

import dataclasses

from .._checks import check_bool, check_int, check_optional, check_real, check_sequence, param
from ..distillation._targets import plain_gd, r1, r2, r3
from ..networks._models import PARAMETERIZATIONS
from ..networks._training import LOSSES

SELF_DISTILLATION = ("r1", "r2", "r3-soft", "r3-hard")
EARLY_STOPPING = ("early-stop-clean", "early-stop-noisy")
METHODS = ("plain", *EARLY_STOPPING, *SELF_DISTILLATION)
TRAINED_METHODS = ("plain", *SELF_DISTILLATION)  # early stopping reuses plain's run
NOISES = ("flip", "pair")
SWEEP_RATES = {"flip": (0.0, 0.2, 0.4, 0.6), "pair": (0.0, 0.2, 0.4)}
BUILTIN_DATASETS = ("digits", "mnist1d", "clusters")
OPTIMIZERS = ("sgd", "adam")
ARCHS = ("mlp", "cnn")
DEFAULT_N_TRAIN = {"digits": 1000, "mnist1d": 4000, "clusters": 1000}
"""Training rows per built-in data set when n_train is None (MNIST-1D: its standard 4000)."""


@dataclasses.dataclass(frozen=True)
class NoisyLabelsConfig:
    """Options of the noisy-label study (each option's help says what it is; the defaults are
    the sweep of docs/guide/noisy_labels.md). w_std, b_std: init standard deviations.
    `with_preset` fills the options left at their defaults from a named preset (`PRESETS`).
    """

    noises: tuple = param(
        NOISES, "noise models: symmetric flips, or pair flips c → c + 1 mod C",
        option="--noise", item=str, choices=NOISES, metavar="NOISE",
    )  # fmt: skip
    rates: tuple | None = param(
        None, "flip rates in [0, 1)", option="--noise-rate", item=float, metavar="RATE",
        default_help="the sweep, flip 0/0.2/0.4/0.6 and pair 0/0.2/0.4",
    )  # fmt: skip
    methods: tuple = param(METHODS, "methods", item=str, choices=METHODS, metavar="METHOD")
    seeds: int = param(5, "seeds per setting (one seed gives no 95 % interval)")
    epochs: int = param(60, "epochs")
    batch_size: int = param(50, "mini-batch size")
    arch: str = param("mlp", "network", choices=ARCHS)
    widths: tuple = param((512,), "MLP hidden widths", type="ints")
    channels: tuple = param((32, 32), "CNN channels", type="ints")
    kernel_size: int = param(3, "CNN window")
    stride: int = param(1, "CNN stride")
    input_shape: tuple | None = param(
        None, "CNN example shape, e.g. 8x8x1 or 40x1", type="ints",
        default_help="8x8x1 for 64 inputs, dx1 otherwise",
    )  # fmt: skip
    parameterization: str = param(
        "ntk", "parameterization (ntk: the kernel limit applies)", option="--param",
        choices=PARAMETERIZATIONS,
    )  # fmt: skip
    w_std: float = 2.0**0.5
    b_std: float = 0.1
    optimizer: str = param("sgd", "optimizer", choices=OPTIMIZERS)
    lr: float | None = param(
        None, "learning rate",
        default_help="SGD ntk 4 per 1000 training rows within [2, 16], so digits 4 and mnist1d "
        "16; SGD standard 0.05; Adam 0.01 ntk / 1e-3 standard",
    )  # fmt: skip
    momentum: float = param(0.9, "SGD momentum")
    loss: str = param("mse", "squared error (the theory) or softmax cross-entropy", choices=LOSSES)
    r1_alpha: float = param(0.5, "R1's α")
    r3_alpha: float = param(0.9, "R3's α")
    warmup_epochs: int | None = param(
        None, "epochs on the given labels before the self-distillation rules act", type=int,
        default_help="half of --epochs",
    )  # fmt: skip
    n_train: int | None = param(
        None, "training rows", type=int,
        default_help="digits 1000, mnist1d 4000, clusters and .npz 1000",
    )  # fmt: skip
    n_val: int = param(300, "validation rows")
    n_test: int | None = param(450, "test rows", type=int)
    n_classes: int | None = param(None, "use classes 0..K−1 only", type=int)
    seed: int = param(0, "split seed and base of the run seeds")
    kernel_limit: bool = param(True, "skip the kernel limit", option="--no-kernel-limit", flag=True)
    scale_inputs: bool = param(False, "multiply every input by √d (unit-variance scale)", flag=True)

    def __post_init__(self):
        _check_config(self)


PRESETS = {
    "paper": {
        "widths": (256, 256),
        "channels": (64, 64, 64),
        "kernel_size": 5,
        "stride": 2,
        "parameterization": "standard",
        "optimizer": "adam",
        "lr": 0.01,
        "loss": "xent",
        "batch_size": 100,
        "epochs": 150,
        "scale_inputs": True,
    },
}
"""Named presets. 'paper': the MNIST-1D paper's training (Greydanus 2020, arXiv 2011.14439) on
wider networks and unit-variance inputs: clean MNIST-1D test accuracy CNN 0.94, MLP 0.68."""


def with_preset(config: NoisyLabelsConfig, name: str) -> NoisyLabelsConfig:
    """`config` with the preset's value for every option it left at its default."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    default = NoisyLabelsConfig()
    values = {k: v for k, v in PRESETS[name].items() if getattr(config, k) == getattr(default, k)}
    return dataclasses.replace(config, **values)


def default_lr(optimizer: str, parameterization: str, n_train: int | None = None) -> float:
    """SGD ntk: clip(4·n/1000, 2, 16), 2 without n (why: docs/guide/noisy_labels.md#network);
    SGD standard 0.05; Adam 0.01 ntk, 1e-3 standard."""
    if optimizer == "adam":
        return 0.01 if parameterization == "ntk" else 1e-3
    if parameterization != "ntk":
        return 0.05
    if n_train is None:
        return 2.0
    return float(min(max(4.0 * n_train / 1000, 2.0), 16.0))


def learning_rate(config: NoisyLabelsConfig, n_train: int) -> float:
    """The learning rate for a data set of n_train training rows: `config.lr`, else `default_lr`."""
    if config.lr is not None:
        return float(config.lr)
    return default_lr(config.optimizer, config.parameterization, n_train)


def _check_config(c: NoisyLabelsConfig) -> None:
    """One clear sentence per bad option (the CLI shows it as one line)."""
    for name in ("noises", "methods", "widths", "channels"):
        check_sequence(name, getattr(c, name))
    for name in ("rates", "input_shape"):
        check_optional(check_sequence, name, getattr(c, name))
    for noise in c.noises:
        if noise not in NOISES:
            raise ValueError(f"unknown noise model {noise!r}; choose from {NOISES}")
    for rate in () if c.rates is None else c.rates:
        check_real("rates", rate, minimum=0.0, maximum=1.0, open_max=True)
    unknown = [m for m in c.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    for name in ("seeds", "epochs", "batch_size", "n_val", "kernel_size", "stride"):
        check_int(name, getattr(c, name), minimum=1)
    check_optional(check_int, "warmup_epochs", c.warmup_epochs, minimum=0)
    if c.warmup_epochs is not None and c.warmup_epochs >= c.epochs:
        raise ValueError(
            f"warmup_epochs {c.warmup_epochs} must be < epochs {c.epochs}: the "
            "self-distillation rules would never act"
        )
    check_optional(check_int, "n_train", c.n_train, minimum=1)
    check_optional(check_int, "n_test", c.n_test, minimum=1)
    if c.n_train is not None and c.batch_size > c.n_train:
        raise ValueError(f"batch_size {c.batch_size} exceeds n_train {c.n_train}")
    check_optional(check_int, "n_classes", c.n_classes, minimum=2)
    for name, choices in (
        ("arch", ARCHS),
        ("parameterization", PARAMETERIZATIONS),
        ("optimizer", OPTIMIZERS),
        ("loss", LOSSES),
    ):
        if getattr(c, name) not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {getattr(c, name)!r}")
    check_optional(check_real, "lr", c.lr, minimum=0.0, open_min=True)
    check_real("momentum", c.momentum, minimum=0.0, maximum=1.0, open_max=True)
    for name in ("r1_alpha", "r3_alpha"):
        check_real(name, getattr(c, name), minimum=0.0, maximum=1.0, open_max=True)
    check_real("w_std", c.w_std, minimum=0.0, open_min=True)
    check_real("b_std", c.b_std, minimum=0.0)
    check_int("seed", c.seed, minimum=0, maximum=2**32 - 1)
    check_bool("kernel_limit", c.kernel_limit)
    check_bool("scale_inputs", c.scale_inputs)
    for name in ("widths", "channels"):
        for w in getattr(c, name):
            check_int(name, w, minimum=1)


def noise_settings(config: NoisyLabelsConfig) -> list[tuple[str, float]]:
    """(noise, rate) pairs in run order; a zero rate is the clean setting ('none', 0.0), once."""
    out: list[tuple[str, float]] = []
    for noise in config.noises:
        for rate in SWEEP_RATES[noise] if config.rates is None else config.rates:
            key = ("none", 0.0) if rate == 0 else (noise, float(rate))
            if key not in out:
                out.append(key)
    return out


def train_size(config: NoisyLabelsConfig, name: str) -> int:
    """Training rows for data set `name`: `config.n_train`, else `DEFAULT_N_TRAIN` (or 1000)."""
    return DEFAULT_N_TRAIN.get(name, 1000) if config.n_train is None else int(config.n_train)


def warmup_epochs(config: NoisyLabelsConfig) -> int:
    """W, the epochs before the rules act: `config.warmup_epochs`, or ⌊E/2⌋."""
    w = config.warmup_epochs
    return config.epochs // 2 if w is None else int(w)


def method_rules(config: NoisyLabelsConfig) -> list[tuple[str, object]]:
    """(method, target rule) for the methods that train (early stopping reuses plain's run)."""
    w = warmup_epochs(config)
    rules = {
        "plain": plain_gd(),
        "r1": r1(config.r1_alpha, start=w),
        "r2": r2(start=w),
        "r3-soft": r3(config.r3_alpha, hard=False, start=w),
        "r3-hard": r3(config.r3_alpha, hard=True, start=w),
    }
    wanted = set(config.methods)
    if wanted & set(EARLY_STOPPING):
        wanted.add("plain")
    return [(m, rules[m]) for m in TRAINED_METHODS if m in wanted]
