"""Options with several values in one argument, `--alpha 0.8,0.9` (repeatable), so that a data
file after them is never taken for a value (as `nargs='+'` would). `join_space_lists` still
accepts `--alpha 0.8 0.9`: it joins the following tokens of the option's kind into one list.
"""

from __future__ import annotations

import argparse


def comma_list(kind, name: str, choices=None):
    """An argparse type: 'a,b,c' → [kind(a), kind(b), kind(c)] (each in `choices` if given)."""

    def parse(text: str) -> list:
        items = [t.strip() for t in text.split(",")]
        if not text.strip() or any(not t for t in items):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        out = []
        for t in items:
            try:
                v = kind(t)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{name}: expected {kind.__name__} values, got {t!r}"
                ) from None
            if choices is not None and v not in choices:
                raise argparse.ArgumentTypeError(
                    f"{name}: invalid choice {t!r} (choose from {', '.join(choices)})"
                )
            out.append(v)
        return out

    return parse


def int_tuple(name: str):
    """An argparse type: '8x8x1' or '256,256' → (8, 8, 1) or (256, 256), positive integers."""

    def parse(text: str) -> tuple:
        try:
            values = tuple(int(v) for v in text.replace("x", ",").split(",") if v.strip())
        except ValueError:
            values = ()
        if not values or min(values) < 1:
            raise argparse.ArgumentTypeError(
                f"{name} must be positive integers like 8x8x1 or 256,256, got {text!r}"
            )
        return values

    return parse


def _is_number(kind):
    def check(token: str) -> bool:
        try:
            [kind(t) for t in token.split(",")]
        except ValueError:
            return False
        return True

    return check


def _rule_names(token: str) -> bool:
    from ..distillation._targets import RULE_NAMES

    return all(t in RULE_NAMES for t in token.split(","))


# command → {option: predicate of one of its values}
LIST_OPTIONS = {
    "distill": {
        "--rule": _rule_names,
        "--alpha": _is_number(float),
        "--beta": _is_number(float),
        "--xi": _is_number(float),
    },
    "entk": {"--at": _is_number(int)},
    "theorem": {"--widths": _is_number(int)},
    "predict": {"--time": _is_number(float)},
}


def join_space_lists(argv: list[str]) -> list[str]:
    """argv with `--opt v1 v2 …` (values of the option's kind) joined to `--opt v1,v2,…`."""
    command = next((a for a in argv if not a.startswith("-")), None)  # `ntk-air` takes no value
    spec = LIST_OPTIONS.get(command)
    if not spec:
        return list(argv)
    out, i = [], 0
    while i < len(argv):
        token = argv[i]
        out.append(token)
        i += 1
        is_value = spec.get(token)
        if is_value is None or i >= len(argv):
            continue
        values = [argv[i]]  # the option's own value, whatever it is (argparse checks it)
        i += 1
        while i < len(argv) and not argv[i].startswith("--") and is_value(argv[i]):
            values.append(argv[i])
            i += 1
        out.append(",".join(values))
    return out
