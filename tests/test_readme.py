"""Every code block of the README and of the docs site (docs/**/*.md) runs as written.

A page's blocks run in order in one fresh folder, its Python blocks in one namespace: a ```python
block is executed, a ```bash block is a list of `ntk-air ...` commands, each run as
`python -m ntk_air ...` (anything else in a bash block must be marked). A block that must not
run here (it installs packages, runs for minutes, or needs the optional neural-tangents
install) is preceded by the line `<!-- not-run: REASON -->`, and the reason is required.
Blocks in other languages (```text, ```yaml) are output or configuration, not code.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
CODE = {"python", "bash"}
NOT_RUN = re.compile(r"^\s*<!-- not-run:(.*?)-->\s*$")  # a line of its own
FENCE = re.compile(r"^```(\w*)\s*$")


class Block(NamedTuple):
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    not_run: str | None  # the reason, when marked


def blocks(path: Path) -> list[Block]:
    """The fenced blocks of a markdown file, with the not-run reason on the line above."""
    lines = path.read_text(encoding="utf-8").split("\n")
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        above = lines[i - 1] if i else ""
        marker = NOT_RUN.match(above)
        reason = marker.group(1).strip() if marker else None
        out.append(Block(path, i + 1, m.group(1), "\n".join(lines[i + 1 : j]) + "\n", reason))
        i = j + 1
    return out


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


RUNNABLE = {p: [b for b in blocks(p) if b.lang in CODE and b.not_run is None] for p in PAGES}


def test_readme_is_a_landing_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 160, "README.md: at most 160 lines (details go to docs/)"
    assert "make docs" in text and "make run" in text and "make test" in text
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images, "README.md shows what the report shows with one figure"
    for image in images:
        path = ROOT / image
        assert path.is_file(), f"README.md: missing image {image}"
        assert path.stat().st_size < 200_000, f"{image}: keep it under 200 KB"
    assert sum(b.lang == "python" for b in RUNNABLE[README]) >= 3, "three runnable examples"


def test_code_blocks_have_a_language_and_not_run_markers_a_reason():
    """Every fence names its language; each not-run marker gives a reason and precedes code."""
    problems = []
    for path in PAGES:
        text = path.read_text(encoding="utf-8")
        for b in blocks(path):
            if not b.lang:
                problems.append(f"{_name(path)}:{b.line}: a code fence without a language")
            if b.not_run is not None and (b.lang not in CODE or len(b.not_run.split()) < 3):
                problems.append(f"{_name(path)}:{b.line}: not-run needs a reason of a few words")
        marked = sum(bool(NOT_RUN.match(line)) for line in text.splitlines())
        attached = sum(b.not_run is not None for b in blocks(path))
        if marked != attached:
            problems.append(f"{_name(path)}: a not-run marker not directly above a code block")
    assert not problems, "\n".join(problems)


def test_bash_blocks_are_ntk_air_commands():
    """Runnable bash blocks hold only `ntk-air` commands (others must be marked not-run)."""
    problems = []
    for path, bs in RUNNABLE.items():
        for b in bs:
            if b.lang != "bash":
                continue
            for line in _commands(b.code):
                if not line.startswith("ntk-air "):
                    problems.append(f"{_name(path)}:{b.line}: {line!r} is not an ntk-air command")
    assert not problems, "\n".join(problems)


def _commands(code: str) -> list[str]:
    joined = code.replace("\\\n", " ")
    lines = (line.split(" #", 1)[0].strip() for line in joined.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _run_bash(block: Block, cwd: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for line in _commands(block.code):
        argv = [sys.executable, "-m", "ntk_air", *shlex.split(line)[1:]]
        done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            pytest.fail(
                f"{_name(block.path)}:{block.line}: `{line}` exited {done.returncode}:\n"
                f"{done.stderr[-3000:]}"
            )


@pytest.mark.parametrize(
    "path", [p for p in PAGES if RUNNABLE[p]], ids=[_name(p) for p in PAGES if RUNNABLE[p]]
)
def test_code_blocks_run(path, tmp_path, monkeypatch, x64):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for block in RUNNABLE[path]:
        if block.lang == "bash":
            _run_bash(block, tmp_path)
            continue
        try:
            code = compile(block.code, f"{_name(path)}:{block.line}", "exec")
            exec(code, namespace)  # noqa: S102
        except Exception as err:  # pragma: no cover - the message says which block failed
            pytest.fail(f"{_name(path)}:{block.line}: {type(err).__name__}: {err}\n{block.code}")


def test_blocks_reads_markers_and_languages(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "text `<!-- not-run: inline, not a marker -->`\n\n"
        "<!-- not-run: needs the optional install -->\n```bash\nntk-air air\n```\n\n"
        "```python\nx = 1\n```\n\n<!-- not-run: -->\n```python\ny = 2\n```\n```text\nout\n```\n",
        encoding="utf-8",
    )
    got = [(b.lang, b.not_run, b.code) for b in blocks(page)]
    assert got == [
        ("bash", "needs the optional install", "ntk-air air\n"),
        ("python", None, "x = 1\n"),
        ("python", "", "y = 2\n"),  # a marker without a reason: the test above refuses it
        ("text", None, "out\n"),
    ]
    assert _commands("ntk-air a \\\n  --b 1  # note\n# comment\n") == ["ntk-air a    --b 1"]
