"""Configs built from the options in one place: the library checks, the CLI names the option.

Every study config validates itself on construction (types, ranges, finiteness, consistency) and
says what is wrong in one sentence naming its *parameter* (`steps must be an integer ≥ 1, got
0`). `build_config` constructs a config from the parsed options and turns that sentence into a
CLI message naming the *option* (`--steps must be an integer ≥ 1, got 0`): the field name is
mapped to the option that sets it (`--` + the name with dashes, unless the command's `options`
say otherwise, e.g. DistillConfig's `alphas` ← `--alpha`). No command repeats a config's check.
"""

from __future__ import annotations

import dataclasses
import re

from ._errors import CliError

__all__ = ["build_config", "option_message", "option_name"]


def option_name(field: str, options: dict | None = None) -> str:
    """The option that sets the config field `field` (`options` overrides the default)."""
    return (options or {}).get(field, "--" + field.replace("_", "-"))


def option_message(message: str, fields, options: dict | None = None) -> str:
    """`message` with a leading config parameter name (one of `fields`) replaced by its option."""
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)\b", message)
    if m and m.group(1) in fields:
        return option_name(m.group(1), options) + message[m.end() :]
    return message


def build_config(cls, options: dict | None = None, **fields):
    """`cls(**fields)`; a refusal becomes a `CliError` naming the option (one sentence).

    Args:
      cls: a config dataclass (`studies.AIRConfig`, …) whose `__post_init__` checks its fields.
      options: {field: "--option"} where the option is not `--field-name` (also the names
        the config's checks use for one element of a field, e.g. `beta` of `betas`).
      **fields: the config's fields, from the parsed options.
    """
    try:
        return cls(**fields)
    except (ValueError, TypeError) as err:
        names = {f.name for f in dataclasses.fields(cls)} | set(options or {})
        raise CliError(option_message(str(err), names, options)) from None
