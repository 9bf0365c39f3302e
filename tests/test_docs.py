"""The documentation site (mkdocs + mkdocstrings, `make docs`) builds with warnings as errors, and
every public name is documented: each name in the `__all__` of each public module (and of
`ntk_air` itself) has a docstring and appears in the rendered API pages, and every public module
and every notebook has a page.

Needs the `docs` extra (`pip install -e ".[docs]"`, which `make test` installs); without it the
tests are skipped, saying so.
"""

from __future__ import annotations

import html
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

for _name in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers.python", "material", "griffe"):
    pytest.importorskip(
        _name,
        reason=f"{_name} is missing: the docs extra is not installed (pip install -e '.[docs]')",
    )

import griffe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"

# Public modules are ntk_air's modules and subpackages whose names do not start with "_", each
# documented on docs/api/<name>.md, plus the figure modules of `ntk_air.plots` (documented on the
# plots page). Left out, with the reason:
NOT_DOCUMENTED = {
    "__main__": "runs the CLI when imported",
    "noise": "deprecated shim of ntk_air.data.noise (warns on import)",
    "commands": "the CLI's internals: documented through `ntk_air.cli` and `ntk-air --help`",
}
EXTRA_MODULES = {
    "ntk_air.plots.air": "plots",
    "ntk_air.plots.distill": "plots",
    "ntk_air.plots.entk": "plots",
    "ntk_air.plots.kernels": "plots",
    "ntk_air.plots.learning_curve": "plots",
    "ntk_air.plots.theorem": "plots",
}


def _top_level_modules() -> list[str]:
    names = set()
    for p in (ROOT / "ntk_air").iterdir():
        if p.name.startswith("_") or p.name in NOT_DOCUMENTED or p.name == "py.typed":
            continue
        if p.suffix == ".py":
            names.add(p.stem)
        elif p.is_dir() and (p / "__init__.py").is_file():
            names.add(p.name)
    names -= set(NOT_DOCUMENTED)
    return sorted(names)


def _public_modules() -> dict[str, str]:
    """{module path: its page name}."""
    modules = {f"ntk_air.{name}": name for name in _top_level_modules()}
    modules.update(EXTRA_MODULES)
    return modules


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once with `mkdocs build --strict`; returns its folder."""
    out = tmp_path_factory.mktemp("site")
    env = dict(os.environ, PYTHONPATH=str(ROOT), NO_MKDOCS_2_WARNING="1")
    env.pop("MPLBACKEND", None)
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = (done.stdout + done.stderr)[-6000:]
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{log}"
    return out


@pytest.fixture(scope="module")
def package():
    """ntk_air as griffe reads it (static: the docstrings mkdocstrings renders)."""
    return griffe.load("ntk_air", search_paths=[str(ROOT)], resolve_aliases=False)


def _anchors(page_html: str) -> set[str]:
    return {html.unescape(a) for a in re.findall(r'\bid="(ntk_air\.[^"]+)"', page_html)}


def _page(site, name) -> str:
    path = site / "api" / name / "index.html"
    assert path.is_file(), f"no page for {name}: add docs/api/{name}.md and list it in mkdocs.yml"
    return path.read_text(encoding="utf-8")


def _definition(obj) -> str | None:
    """Where a runtime object is defined, as a dotted path (None for plain values)."""
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and module.startswith("ntk_air"):
        return f"{module}.{qualname}"
    return None


def _foreign(value) -> bool:
    """An object of another library re-exported for convenience (documented by its library)."""
    module = getattr(value, "__module__", None)
    return isinstance(module, str) and not module.startswith("ntk_air")


def _griffe_object(package, path: str):
    obj = package
    for part in path.split(".")[1:]:
        obj = obj.get_member(part) if not obj.is_alias else obj.final_target.get_member(part)
    return obj.final_target if obj.is_alias else obj


def test_build_strict(site):
    """The build had no warning (a broken reference or a bad docstring section fails it)."""
    assert (site / "index.html").is_file()


def test_every_public_module_has_a_page():
    missing = [m for m, page in _public_modules().items() if not (API / f"{page}.md").is_file()]
    assert not missing, (
        f"public modules without an API page: {missing}; add docs/api/<name>.md with "
        "`::: ntk_air.<name>` and list it in mkdocs.yml's nav (or, if it is not public, add it "
        "to NOT_DOCUMENTED in tests/test_docs.py with the reason)"
    )
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    unlisted = [p.name for p in API.glob("*.md") if f"api/{p.name}" not in nav]
    assert not unlisted, f"API pages missing from mkdocs.yml's nav: {unlisted}"


def test_every_notebook_has_a_page(site):
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for nb in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py")):
        assert f"notebooks/{nb.stem}.md" in nav, f"{nb.name} is missing from mkdocs.yml's nav"
        page = site / "notebooks" / nb.stem / "index.html"
        assert page.is_file(), f"no page rendered for {nb.name}"
        text = page.read_text(encoding="utf-8")
        assert 'class="highlight"' in text and "NTK_AIR_NOTEBOOK_SIZE" in text, (
            f"{nb.name}: its code is not on the page"
        )


def _all_names(module_path: str) -> list[str]:
    module = importlib.import_module(module_path)
    names = getattr(module, "__all__", None)
    assert names is not None, f"{module_path} has no __all__"
    return list(names)


def test_public_names_have_docstrings(package):
    """Every name in a public module's __all__ has a docstring (a constant: a string literal
    right after its assignment, as griffe reads it)."""
    undocumented = []
    for module_path in _public_modules():
        for name in _all_names(module_path):
            value = getattr(importlib.import_module(module_path), name)
            if isinstance(value, type(sys)) or _foreign(value):
                continue  # a module (its own page or section), or another library's object
            try:
                obj = _griffe_object(package, f"{module_path}.{name}")
            except (KeyError, griffe.AliasResolutionError):
                undocumented.append(f"{module_path}.{name} (griffe cannot find it)")
                continue
            if obj.docstring is None or not obj.docstring.value.strip():
                undocumented.append(f"{module_path}.{name}")
    assert not undocumented, f"public names without a docstring: {undocumented}"


def test_public_names_appear_in_the_api_pages(site):
    """Each name of each public module's __all__ is rendered on its module's page (under the
    module's path, or under the path where it is defined), and each name of ntk_air's own
    __all__ on the page of a public module that exports it."""
    modules = _public_modules()
    anchors = {page: _anchors(_page(site, page)) for page in set(modules.values())}
    everywhere = set().union(*anchors.values())
    missing = []
    for module_path, page in modules.items():
        module = importlib.import_module(module_path)
        for name in _all_names(module_path):
            value = getattr(module, name)
            if _foreign(value):
                continue
            if isinstance(value, type(sys)):
                if value.__name__ not in modules and value.__name__ not in everywhere:
                    missing.append(f"{module_path}.{name} (module without a page or section)")
                continue
            candidates = {f"{module_path}.{name}", _definition(value)}
            if not candidates & anchors[page]:
                missing.append(f"{module_path}.{name} (page {page})")

    import ntk_air

    for name in ntk_air.__all__:
        value = getattr(ntk_air, name)
        if isinstance(value, type(sys)):
            if value.__name__ not in modules:
                missing.append(f"ntk_air.{name} (module without a page)")
            continue
        homes = [
            f"{m}.{name}"
            for m in modules
            if name in _all_names(m) and getattr(importlib.import_module(m), name) is value
        ]
        if not homes:
            missing.append(f"ntk_air.{name} (no public module exports it)")
        elif not (set(homes) | {_definition(value)}) & everywhere:
            missing.append(f"ntk_air.{name} (not rendered as any of {homes})")
    assert not missing, f"public names missing from the API pages: {missing}"
