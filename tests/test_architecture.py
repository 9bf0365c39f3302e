"""The layering of ARCHITECTURE.md, read from the source: no module imports from a layer above it
(lazy imports inside functions count too), and `import ntk_air` stays light."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ntk_air"

# Layer of every module, by dotted name below `ntk_air` (a package name covers its modules).
LAYERS = {
    "core": (
        "_checks",
        "_env",
        "_json",
        "_tiling",
        "checked",
        "kernels",
        "empirical",
        "spectral",
        "data",
        "networks._models",  # flax networks: the models the empirical NTK differentiates
        "nt_backend",
    ),
    "science": ("dynamics", "distillation", "networks", "predict", "learning_curves"),
    "studies": ("studies",),
    "report": ("report", "plots"),
    "cli": ("cli", "commands", "__main__"),
}
ORDER = ("core", "science", "studies", "report", "cli")


def _layer(module: str) -> str | None:
    """'kernels' → 'core'; 'studies.air' → 'studies'; None for the package itself."""
    if module in ("", "__init__"):
        return None
    best = None  # the longest name that covers the module: "networks._models" before "networks"
    for layer, names in LAYERS.items():
        for name in names:
            if (module == name or module.startswith(name + ".")) and (
                best is None or len(name) > len(best[1])
            ):
                best = (layer, name)
    if best:
        return best[0]
    raise AssertionError(
        f"ntk_air.{module} has no layer: add it to LAYERS in tests/test_architecture.py"
    )


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        yield ".".join(parts), path, is_package


def _resolve(target: str) -> str:
    """The module a dotted target names: `kernels.Kernel` → `kernels`, `__version__` → ''."""
    parts = target.split(".") if target else []
    while parts:
        stem = PACKAGE.joinpath(*parts)
        if stem.with_suffix(".py").exists() or (stem / "__init__.py").exists():
            break
        parts.pop()
    return ".".join(parts)


def _imports(module: str, path: Path, is_package: bool):
    """(imported ntk_air module, line) for every import in the file, at any depth."""
    package = module.split(".") if is_package else module.split(".")[:-1]
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("ntk_air."):
                    yield alias.name[len("ntk_air.") :], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("ntk_air"):
                target = node.module[len("ntk_air") :].lstrip(".")
            else:
                continue
            if node.module is None or target == "":
                # `from . import x, y`: each name is a module of the package
                for alias in node.names:
                    yield ".".join(filter(None, [target, alias.name])), node.lineno
            else:
                yield target, node.lineno


def test_no_module_imports_from_a_layer_above_it():
    upward = []
    for module, path, is_package in _modules():
        own = _layer(module)
        if own is None:
            continue  # ntk_air/__init__.py re-exports every layer (lazily for the heavy ones)
        for target, line in _imports(module, path, is_package):
            theirs = _layer(_resolve(target))
            if theirs is not None and ORDER.index(theirs) > ORDER.index(own):
                upward.append(
                    f"ntk_air/{path.relative_to(PACKAGE)}:{line} ({own}) imports "
                    f"ntk_air.{target} ({theirs})"
                )
    assert not upward, "imports that climb the layers:\n" + "\n".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path):
    """Positive control: a core module importing a study is caught."""
    fake = tmp_path / "kernels.py"
    fake.write_text("from .studies import air\n\ndef f():\n    from ntk_air.report import x\n")
    found = [(t, _layer(_resolve(t))) for t, _ in _imports("kernels", fake, False)]
    assert found == [("studies", "studies"), ("report", "report")]


def test_every_module_has_a_layer():
    for module, _, _ in _modules():
        _layer(module)


HEAVY = ("flax", "optax", "matplotlib", "sklearn", "tqdm")


@pytest.fixture(scope="module")
def loaded_by_import():
    """The HEAVY modules in sys.modules after `import ntk_air` in one fresh interpreter."""
    code = f"import sys, ntk_air; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


@pytest.mark.parametrize("heavy", HEAVY)
def test_import_ntk_air_stays_light(heavy, loaded_by_import):
    """`import ntk_air` loads JAX and numpy, not flax/optax/matplotlib (loaded when used)."""
    assert heavy not in loaded_by_import
