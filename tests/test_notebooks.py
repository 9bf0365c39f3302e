"""The notebooks in notebooks/ run top to bottom, headless, at their ci size, and each
jupytext pair (`NAME.py` percent format, the source of truth, and `NAME.ipynb`, what users open)
holds the same cells.

Execution uses nbclient with a kernel spec written here whose argv is *this* interpreter
(`sys.executable -m ipykernel_launcher`), so the notebooks import the ntk_air installed in the
environment that runs the tests, whatever kernels the machine has registered. The kernel gets
`NTK_AIR_NOTEBOOK_SIZE=ci` (each notebook's least work that still runs every cell and draws
every figure; users get `small` by default) and `NTK_AIR_NOTEBOOK_HEADLESS=1` (the notebooks
then draw static figures instead of ipywidgets controls) and runs in a temporary directory.
MPLBACKEND (Agg, set by conftest.py for this process) is removed from the kernel's environment,
so ipykernel selects its inline backend as it does for a user, and `plt.show()` in a notebook
yields a PNG output.

After editing a notebook's `.py`, refresh its `.ipynb` with `jupytext --sync notebooks/*.py`.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = (
    "01_air_tour",
    "02_l2_theorem",
    "03_kernels_on_accelerators",
    "04_your_own_data",
    "05_extending",
)
NOTEBOOKS = sorted({p.stem for p in NOTEBOOK_DIR.glob("[0-9][0-9]_*.py")} | set(EXPECTED))
KERNEL_NAME = "ntk_air_test_python"
CELL_TIMEOUT_S = 600  # per cell; a hung cell fails the test instead of hanging CI
# Each notebook targets < 2 min on 2 CPU cores at the small size (less at ci); the budget leaves
# room for a loaded CI machine (tests run two at a time with -n 2) without letting a notebook
# silently grow.
NOTEBOOK_BUDGET_S = 300


def _cells(nb):
    """(cell_type, source) of every cell, trailing whitespace ignored."""
    return [(c.cell_type, c.source.rstrip()) for c in nb.cells]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_pair_in_sync(name):
    """NAME.py and NAME.ipynb exist, hold the same cells, are paired, and carry no outputs."""
    py_path, ipynb_path = NOTEBOOK_DIR / f"{name}.py", NOTEBOOK_DIR / f"{name}.ipynb"
    assert py_path.is_file(), f"missing {py_path}"
    assert ipynb_path.is_file(), f"missing {ipynb_path}: run `jupytext --sync {py_path}`"
    from_py = jupytext.read(py_path)
    from_ipynb = nbformat.read(ipynb_path, as_version=4)
    nbformat.validate(from_ipynb)
    a, b = _cells(from_py), _cells(from_ipynb)
    assert len(a) == len(b), (
        f"{name}: {len(a)} cells in .py but {len(b)} in .ipynb; run `jupytext --sync {py_path}`"
    )
    for i, (ca, cb) in enumerate(zip(a, b, strict=True)):
        assert ca == cb, f"{name}: cell {i} differs between .py and .ipynb; run `jupytext --sync`"
    for nb, kind in ((from_py, "py"), (from_ipynb, "ipynb")):
        formats = nb.metadata.get("jupytext", {}).get("formats", "")
        assert set(formats.split(",")) == {"ipynb", "py:percent"}, (
            f"{name}.{kind}: jupytext formats {formats!r}, expected 'ipynb,py:percent'"
        )
    for i, cell in enumerate(from_ipynb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"{name}.ipynb cell {i} has outputs: strip them"
            assert cell.execution_count is None, f"{name}.ipynb cell {i} has an execution count"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_conventions(name):
    """Markdown title; first code cell enables x64 before anything else and reads the size."""
    nb = jupytext.read(NOTEBOOK_DIR / f"{name}.py")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code cells"
    first = code[0]
    assert "NTK_AIR_NOTEBOOK_SIZE" in first, f"{name}: the first code cell must read the size"
    x64 = first.find('jax.config.update("jax_enable_x64", True)')
    assert x64 >= 0, f"{name}: the first code cell must enable x64"
    assert "ntk_air" not in first[:x64], f"{name}: enable x64 before importing ntk_air"
    assert nb.cells[0].cell_type == "markdown", f"{name}: start with a markdown title"
    assert any(c.cell_type == "markdown" and "float64" in c.source for c in nb.cells), (
        f"{name}: a markdown cell must say why x64/float64 is on"
    )
    # Notebooks are users of the study layer, like the CLI: never the CLI's internals, and no
    # results read back from JSON files.
    source = "\n".join(code)
    for forbidden in ("ntk_air.commands", "from ntk_air import commands", "json.load"):
        assert forbidden not in source, f"{name}: uses {forbidden!r}; call ntk_air.studies instead"


@pytest.fixture(scope="session")
def kernel_spec_manager(tmp_path_factory):
    """A kernel spec that launches ipykernel with the interpreter running the tests."""
    root = tmp_path_factory.mktemp("kernels")
    spec_dir = root / KERNEL_NAME
    spec_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"ntk_air tests ({sys.executable})",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    return KernelSpecManager(kernel_dirs=[str(root)])


def _outputs(nb):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def _png_count(outputs) -> int:
    return sum(
        1
        for o in outputs
        if o.get("output_type") in ("display_data", "execute_result")
        and "image/png" in o.get("data", {})
    )


def _execute(name, kernel_spec_manager, cwd, monkeypatch, *, headless: bool, until=None):
    """Execute NAME.ipynb at the ci size; returns (executed notebook, seconds). `until`: a
    text; the notebook stops after the first code cell that contains it."""
    ipynb_path = NOTEBOOK_DIR / f"{name}.ipynb"
    assert ipynb_path.is_file(), f"missing {ipynb_path}"
    nb = nbformat.read(ipynb_path, as_version=4)
    if until is not None:
        last = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and until in c.source]
        assert last, f"{name}: no code cell contains {until!r}"
        nb.cells = nb.cells[: last[0] + 1]
    monkeypatch.setenv("NTK_AIR_NOTEBOOK_SIZE", "ci")
    monkeypatch.setenv("NTK_AIR_NOTEBOOK_HEADLESS", "1" if headless else "0")
    monkeypatch.setenv("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # share a GPU with the tests
    # Show every DeprecationWarning in the outputs (checked below: none may come from ntk_air).
    monkeypatch.setenv("PYTHONWARNINGS", "default::DeprecationWarning")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel picks matplotlib's inline backend
    km = KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_spec_manager)
    client = NotebookClient(
        nb,
        km=km,
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,
        resources={"metadata": {"path": str(cwd)}},
    )
    t0 = time.perf_counter()
    try:
        client.execute()  # raises CellExecutionError, naming the cell, on any error
    finally:
        if km.has_kernel:  # nbclient leaves a kernel manager it did not create running
            km.shutdown_kernel(now=True)
    seconds = time.perf_counter() - t0
    errors = [o for o in _outputs(nb) if o.output_type == "error"]
    assert not errors, f"{name}: error outputs {errors}"
    deprecated = [
        o.get("text", "")
        for o in _outputs(nb)
        if o.output_type == "stream" and "DeprecationWarning" in o.get("text", "")
    ]
    ours = [t for t in deprecated if "ntk_air" in t]
    assert not ours, f"{name} uses deprecated ntk_air API: {ours}"
    return nb, seconds


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, kernel_spec_manager, tmp_path, monkeypatch, record_property):
    """Run NAME.ipynb headless at the ci size: no error, figures displayed, within budget."""
    nb, seconds = _execute(name, kernel_spec_manager, tmp_path, monkeypatch, headless=True)
    record_property("notebook_seconds", round(seconds, 2))
    print(f"{name}: executed in {seconds:.1f} s")
    assert _png_count(_outputs(nb)) > 0, f"{name}: no figure was displayed"
    assert seconds < NOTEBOOK_BUDGET_S, f"{name} took {seconds:.0f} s (budget {NOTEBOOK_BUDGET_S})"
    assert not list(tmp_path.iterdir()), (
        f"{name} left files in its working directory: {sorted(p.name for p in tmp_path.iterdir())}"
    )


@pytest.mark.slow
def test_air_tour_widgets_path(kernel_spec_manager, tmp_path, monkeypatch):
    """With a live front end assumed (HEADLESS=0) the AIR tour builds ipywidgets controls whose
    first drawing is a figure, and nothing errors (the notebook up to that cell: the headless
    run above executes all of it)."""
    nb, _ = _execute(
        "01_air_tour",
        kernel_spec_manager,
        tmp_path,
        monkeypatch,
        headless=False,
        until="widgets.interact(",
    )
    widget_views = [
        o for o in _outputs(nb) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    assert widget_views, "01_air_tour displayed no widget with HEADLESS=0"
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    models = state.get("state", {}).values()
    outputs = [o for m in models for o in m.get("state", {}).get("outputs", [])]
    assert _png_count(outputs) > 0, "the interactive explorer drew no figure"
