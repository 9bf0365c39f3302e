"""MkDocs hooks of the ntk_air site (mkdocs.yml `hooks:`).

* The home page opens with the README's opening (everything before its "## Command line").
* Each notebook `notebooks/NN_name.py` (jupytext percent format, the source of truth) becomes the
  page `notebooks/NN_name.md`: markdown cells as they are, code cells as Python blocks. Nothing
  is executed at build time: the test suite executes the notebooks (tests/test_notebooks.py),
  and the build stays fast and offline.
* The command-line page lists `ntk-air COMMAND --help` of every command.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
README_END = "## Command line"


def readme_opening() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    head = text.split(f"\n{README_END}\n", 1)[0]
    return head.rstrip() + "\n"


def notebook_markdown(path: Path) -> str:
    """A jupytext percent notebook as a markdown page (no outputs)."""
    import jupytext

    nb = jupytext.read(path)
    parts = []
    for cell in nb.cells:
        source = cell.source.strip("\n")
        if not source:
            continue
        if cell.cell_type == "markdown":
            parts.append(source)
        else:
            parts.append(f"```python\n{source}\n```")
    note = (
        f'!!! note "Run it"\n'
        f"    This page is the source of `notebooks/{path.stem}.ipynb`, without outputs. Open the\n"
        f"    notebook in Jupyter to run it (`NTK_AIR_NOTEBOOK_SIZE=small` runs in under two\n"
        f"    minutes on a laptop CPU; see `notebooks/README.md`)."
    )
    title, rest = parts[0], parts[1:]  # the first cell is the markdown title
    return "\n\n".join([title, note, *rest]) + "\n"


def cli_help() -> str:
    from ntk_air.cli import COMMANDS, build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    blocks = []
    for name in COMMANDS:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            sub.choices[name].print_help()
        blocks.append(f"### `ntk-air {name}`\n\n```text\n{out.getvalue().rstrip()}\n```")
    return "\n\n".join(blocks) + "\n"


def on_files(files, config):
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py")):
        files.append(
            File.generated(config, f"notebooks/{path.stem}.md", content=notebook_markdown(path))
        )
    return files


def on_page_markdown(markdown, page, config, files):
    if page.file.src_uri == "index.md":
        return markdown.replace("<!-- README opening -->", readme_opening())
    if page.file.src_uri == "api/cli.md":
        return markdown.replace("<!-- ntk-air help -->", cli_help())
    return markdown
