"""Configs and their options in one place: the library checks, the CLI names the option.

A study config checks itself and names its *parameter* (`steps must be an integer ≥ 1, got 0`);
its CLI fields are declared with `_checks.param(default, help, …)`. `add_config_options` derives
their options, and `config_from_args` builds the config, its refusal naming the *option*
(`--steps must be an integer ≥ 1, got 0`).
"""

from __future__ import annotations

import argparse
import dataclasses
import re

from ._errors import CliError
from ._lists import comma_list, int_tuple


def integer(text: str) -> int:
    """An argparse type for integers written 20000 or 2e4 (the config checks the range)."""
    try:
        value = float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value != value or abs(value) > 1e18 or value != int(value):
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
    return int(value)


def option_map(cls, **aliases) -> dict:
    """{field: option} of the config's CLI fields, plus `aliases` (e.g. alpha="--alpha" for
    one element of `alphas`)."""
    options = {
        f.name: f.metadata.get("option", option_name(f.name))
        for f in dataclasses.fields(cls)
        if "help" in f.metadata
    }
    return {**options, **aliases}


def option_name(field: str, options: dict | None = None) -> str:
    """The option that sets the config field `field` (`options` overrides the default)."""
    return (options or {}).get(field, "--" + field.replace("_", "-"))


def option_message(message: str, fields, options: dict | None = None) -> str:
    """`message` with a leading config parameter name (one of `fields`) replaced by its option."""
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\b", message)
    if m and m.group(1) in fields:
        return option_name(m.group(1), options) + message[m.end() :]
    return message


def _shown(value) -> str:
    """A default as the user would type it."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_config_options(p, cls, *, skip=(), only=None) -> None:
    """One option per CLI field of the config `cls` (`_checks.param`; `only` those named, none
    of `skip`) into `p`, a parser or an argument group."""
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta or f.name in skip or (only is not None and f.name not in only):
            continue
        option = meta.get("option", option_name(f.name))
        default = meta.get("default_help", None if f.default is None else _shown(f.default))
        shown = "" if meta.get("flag") or default is None else f" (default {default})"
        text = meta["help"] + shown
        kw = dict(dest=f.name, default=argparse.SUPPRESS, help=text.replace("%", "%%"))
        if meta.get("flag"):
            kw.update(action="store_const", const=not f.default)
        elif "item" in meta:
            kind, choices = meta["item"], meta.get("choices")
            kw.update(type=comma_list(kind, option, choices), action="extend")
            m = meta.get("metavar", f.name.upper())
            kw["metavar"] = f"{m}[,{m}…]"
        else:
            kind = meta.get("type")
            if kind is None:  # the default's type; an optional number (None) is a float
                kind = {int: integer, str: str}.get(type(f.default), float)
            kw["type"] = {int: integer, "ints": int_tuple(option)}.get(kind, kind)
            for key in ("choices", "metavar"):
                if key in meta:
                    kw[key] = meta[key]
        p.add_argument(option, **kw)


def config_from_args(cls, args, *, aliases: dict | None = None, **fields):
    """`cls` from the parsed options of its CLI fields and `fields`; a refusal names the option
    (`aliases` as in `option_map`)."""
    options = option_map(cls, **(aliases or {}))
    given = {
        name: tuple(v) if isinstance(v, list) else v
        for name in option_map(cls)
        if (v := getattr(args, name, argparse.SUPPRESS)) is not argparse.SUPPRESS
    }
    return build_config(cls, options, **{**given, **fields})


def build_config(cls, options: dict | None = None, **fields):
    """`cls(**fields)`; a refusal becomes a `CliError` naming the option (`options`: {field:
    "--option"} where it is not `--field-name`, or the name of one element, e.g. `beta`)."""
    try:
        return cls(**fields)
    except (ValueError, TypeError) as err:
        names = {f.name for f in dataclasses.fields(cls)} | set(options or {})
        raise CliError(option_message(str(err), names, options)) from None
