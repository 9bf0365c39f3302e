"""The README's Python examples run as written (on a small clusterable data set)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = [
    b for b in re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S) if "..." not in b
]


def test_readme_has_python_examples():
    assert len(BLOCKS) >= 3


def test_readme_python_examples_run(tmp_path, monkeypatch, x64):
    monkeypatch.chdir(tmp_path)
    from ntk_air import data

    namespace = {"ds": data.clusters(n_per_cluster=10, n_test_per_cluster=5)}
    for block in BLOCKS:
        code = block.replace("data.clusters(seed=0)", "data.clusters(n_per_cluster=10, seed=0)")
        try:
            exec(compile(code, str(README), "exec"), namespace)  # noqa: S102
        except Exception as err:  # pragma: no cover - the message says which block failed
            pytest.fail(f"README example failed: {type(err).__name__}: {err}\n{block}")
    assert (tmp_path / "my_report" / "manifest.json").exists()
