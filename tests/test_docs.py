"""The documentation site (mkdocs + mkdocstrings, `make docs`) builds with warnings as errors, and
every public name is documented: each name in the `__all__` of each public module (and of
`ntk_air` itself) has a docstring and appears in the rendered API pages, and every public module
and every notebook has a page. Every results file of `benchmarks/results/` is rendered on the
benchmarks page.

The repository is self-contained: no file refers to a path outside it (`../` above the root, a
`shared/` folder, a machine's absolute paths), and every reference to the science pages
(`docs/science/PAGE.md#ANCHOR`, in docstrings, messages, `--help` and reports) names a page and
a section that exist.

The site tests need the `docs` extra (`pip install -e ".[docs]"`, which `make test` installs);
without it they are skipped, saying so.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest


def _missing_docs_extra() -> str | None:
    for name in ("mkdocs", "mkdocstrings", "mkdocstrings_handlers", "material", "griffe"):
        if importlib.util.find_spec(name) is None:
            return f"{name} is missing: the docs extra is not installed (pip install -e '.[docs]')"
    return None


MISSING = _missing_docs_extra()
needs_docs = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")

ROOT = Path(__file__).resolve().parents[1]
API = ROOT / "docs" / "api"

# Public modules are ntk_air's modules and subpackages whose names do not start with "_", each
# documented on docs/api/<name>.md, plus the figure modules of `ntk_air.plots` (documented on the
# plots page). Left out, with the reason:
NOT_DOCUMENTED = {
    "__main__": "runs the CLI when imported",
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
    if MISSING:
        pytest.skip(MISSING)
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
    if MISSING:
        pytest.skip(MISSING)
    import griffe

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


def _alias_error():
    import griffe

    return griffe.AliasResolutionError


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
            except (KeyError, _alias_error()):
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


def test_benchmarks_page_renders_every_results_file(site):
    """Each benchmarks/results/*.json is read by a table of the benchmarks page (docs/hooks.py)."""
    page = (site / "benchmarks" / "index.html").read_text(encoding="utf-8")
    results = ROOT / "benchmarks" / "results"
    unrendered = []
    for path in sorted(results.rglob("*.json")):
        rel = path.relative_to(results).as_posix()
        if f"benchmarks/results/{rel}" not in page:  # each table names the files it read
            unrendered.append(rel)
    assert not unrendered, f"results files without a table on docs/benchmarks.md: {unrendered}"
    assert "<!-- benchmark" not in page, "a benchmark placeholder was left unrendered"


# ---- the repository refers only to itself -----------------------------------------------------

# Text files of the repository that code, docs and reports are made of (benchmark results are
# measurement records, which name the machine's paths on purpose).
SOURCES = [
    *sorted((ROOT / "ntk_air").rglob("*.py")),
    *sorted((ROOT / "tests").glob("*.py")),
    *sorted((ROOT / "benchmarks").glob("*.py")),
    *sorted((ROOT / "benchmarks").glob("*.sh")),
    *sorted((ROOT / "tools").rglob("*.py")),
    *sorted((ROOT / "notebooks").glob("*.py")),
    *sorted((ROOT / "notebooks").glob("*.ipynb")),
    *sorted((ROOT / "docs").rglob("*.md")),
    *sorted((ROOT / "docs").glob("*.py")),
    *[ROOT / n for n in ("README.md", "mkdocs.yml", "Makefile", "pyproject.toml", "conftest.py")],
]
SOURCES.remove(Path(__file__).resolve())  # this file spells out what it looks for
# A path outside the repository: the lead's shared notes, a user's or a machine's folders.
OUTSIDE = re.compile(r"SCIENCE\.md|(?<![\w.])shared/|/(?:work|home|Users|root|mnt)/[\w.]")
RELATIVE = re.compile(r"(?:\.\./)+[\w.-]*")
SCIENCE_REF = re.compile(r"docs/science/(\w+)\.md(?:#([\w-]+))?")


def _outside_references(path: Path, root: Path = ROOT) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found, where = [], path.relative_to(root)
    for n, line in enumerate(text.splitlines(), 1):
        for m in OUTSIDE.finditer(line):
            found.append(f"{where}:{n}: {m.group(0)!r} in {line.strip()[:120]!r}")
        for m in RELATIVE.finditer(line):
            if not (path.parent / m.group(0)).resolve().is_relative_to(root):
                found.append(f"{where}:{n}: {m.group(0)!r} leaves the repository")
    return found


def test_no_file_refers_to_a_path_outside_the_repository():
    assert len([p for p in SOURCES if p.is_file()]) > 50
    found = [ref for path in SOURCES if path.is_file() for ref in _outside_references(path)]
    assert not found, "references outside the repository:\n" + "\n".join(found)


def test_the_path_check_can_fail(tmp_path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    bad = root / "docs" / "page.md"
    bad.write_text(
        "../../shared/SCIENCE.md §2, ../ok.md, /work/main/x, /home/me/y, /proc/meminfo\n",
        encoding="utf-8",
    )
    found = _outside_references(bad, root)
    # SCIENCE.md, shared/, /work/, /home/ and the ../../ that leaves the root; not ../ok.md or /proc
    assert len(found) == 5, found


def _anchors_of(page: Path) -> set[str]:
    """Section ids of a markdown page: explicit `{#id}`, or the heading as toc slugifies it."""
    from markdown.extensions.toc import slugify

    ids = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            continue
        explicit = re.search(r"\{#([\w-]+)\}\s*$", line)
        title = re.sub(r"\{#[\w-]+\}\s*$", "", line.lstrip("#")).strip()
        ids.add(explicit.group(1) if explicit else slugify(title, "-"))
    return ids


def test_science_references_name_existing_sections():
    """Every `docs/science/PAGE.md#ANCHOR` in the repository's files names a page and section
    of the science pages (so a reference in a docstring or a report cannot rot)."""
    science = ROOT / "docs" / "science"
    anchors = {p.stem: _anchors_of(p) for p in science.glob("*.md")}
    broken, count = [], 0
    for path in SOURCES:
        if not path.is_file():
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for page, anchor in SCIENCE_REF.findall(line):
                count += 1
                if page not in anchors or (anchor and anchor not in anchors[page]):
                    broken.append(f"{path.relative_to(ROOT)}:{n}: docs/science/{page}.md#{anchor}")
    assert count >= 40, f"only {count} references to the science pages found"
    assert not broken, "references to missing science pages or sections:\n" + "\n".join(broken)
