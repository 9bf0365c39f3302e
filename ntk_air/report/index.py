"""index.md of a report folder: a results table first (headline numbers with what they mean),
then each section's files and figures."""

from __future__ import annotations

_INCOMPLETE_BANNER = (
    "> **incomplete**: this report is still being written (or its run was interrupted); the "
    "files below may be missing or from an earlier run. A complete report has `manifest.json`."
)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header, rows) -> list[str]:
    """Markdown lines of a table with the columns `header` and the cells of `rows`."""
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(map(_cell, row)) + " |" for row in rows]


def _file_lines(summary: dict, folder: str = "") -> list[str]:
    """Markdown lines linking a study's files and showing its figures (paths under `folder`)."""
    lines = [f"- file: [`{folder}{f}`]({folder}{f})" for f in summary.get("files", [])]
    for fig in summary.get("figures", []):
        lines += ["", f"![{fig}]({folder}{fig})"]
    return lines


def render_index(
    sections: dict, headlines: dict, *, title: str, context: list[str], complete: bool
) -> str:
    """Markdown of the index.

    Args:
      sections: {section name: its JSON summary (with `files`, `figures`)}.
      headlines: {section name: [(quantity, value, meaning), ...]}.
      title: the page title.
      context: lines about the data and kernel.
      complete: False adds the incomplete banner.
    """
    lines = [f"# {title}", ""]
    if not complete:
        lines += [_INCOMPLETE_BANNER, ""]
    lines += context + ["", "## Results", ""]
    rows = [(name, *row) for name, section in headlines.items() for row in section]
    lines += _table(("section", "quantity", "value", "what it means"), rows)
    lines += [
        "",
        "Every number above was computed by this run; each section's JSON has all of them.",
        "",
    ]
    for name, res in sections.items():
        lines += [f"## {name}", "", f"- data: [`{name}/{name}.json`]({name}/{name}.json)"]
        lines += _file_lines(res, f"{name}/") + [""]
    return "\n".join(lines)
