"""Griffe extension for the ntk_air site: read the package's `Example:` docstring sections as
Google-style `Examples:` sections, so their `>>>` lines render as code (griffe only recognizes
the plural; the package writes the singular, as many Google-style codebases do)."""

from __future__ import annotations

import re

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.MULTILINE)


class ExampleSections(griffe.Extension):
    def on_object(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
