"""Writing a report folder safely: atomic files, a manifest written last, no stale leftovers.

Every file is written to a temporary file in the same folder and renamed into place, so an
interrupt or a full disk never leaves a truncated file where a complete one was. The folder's
`manifest.json` is written last: it lists the files of this run, so a folder without it (or with
an index that says "incomplete") is a run that did not finish. Files that an earlier run listed
in its manifest and this run did not write are removed (they would be stale); files the toolkit
did not write are never touched.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import numpy as np

from .._json import to_jsonable

__all__ = ["ReportWriter", "OutputError", "check_output_file", "atomic_write"]

MANIFEST = "manifest.json"


class OutputError(OSError):
    """An output path that cannot be used (a file where a folder should be, not writable, …)."""


def atomic_write(path, write) -> Path:
    """`write(file_object)` into a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise OutputError(f"{str(path)!r} exists and is not a regular file; nothing was written")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _check_writable_dir(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise OutputError(f"output folder {str(path)!r} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create output folder {str(path)!r}: {err.strerror}") from err
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-probe.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"output folder {str(path)!r} is not writable: {err.strerror}") from err


def check_output_file(path) -> Path:
    """An output file path that can be written: its folder exists or can be made and is
    writable, and the path is not a folder. Checked before any work starts."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"output file {str(path)!r} is a folder")
    if path.exists() and not path.is_file():
        # A device, a pipe or a socket: renaming a finished file onto it would replace it (as
        # root, /dev/full or /dev/null itself), and writing into it loses the output.
        raise OutputError(
            f"output file {str(path)!r} exists and is not a regular file (a device, pipe or "
            "socket); give a file name"
        )
    _check_writable_dir(path.parent if str(path.parent) else Path("."))
    return path


class ReportWriter:
    """Files of one run of a report folder, written atomically and listed in its manifest.

    Example:
      >>> w = ReportWriter(tmp_path / "out")
      >>> w.json("air.json", {"eta": 0.5})
      'air.json'
      >>> w.finish({"command": "air"})["files"]
      ['air.json']
    """

    def __init__(self, root):
        if not str(root).strip():
            raise OutputError(
                "the output folder is an empty name; give a folder (e.g. --out results)"
            )
        self.root = Path(root)
        _check_writable_dir(self.root)
        self.previous = self._previous_files()
        self.written: list[str] = []
        manifest = self.root / MANIFEST
        if manifest.exists():
            # This run is not complete until it writes its own manifest.
            manifest.unlink()

    def _previous_files(self) -> list[str]:
        try:
            return list(json.loads((self.root / MANIFEST).read_text())["files"])
        except (OSError, ValueError, KeyError, TypeError):
            return []

    def path(self, rel) -> Path:
        p = self.root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def _record(self, rel) -> str:
        rel = str(Path(rel).as_posix())
        if rel not in self.written:
            self.written.append(rel)
        return rel

    def bytes(self, rel, data: bytes) -> str:
        atomic_write(self.path(rel), lambda f: f.write(data))
        return self._record(rel)

    def text(self, rel, text: str) -> str:
        return self.bytes(rel, text.encode())

    def json(self, rel, obj) -> str:
        return self.text(rel, json.dumps(to_jsonable(obj), indent=2) + "\n")

    def npz(self, rel, **arrays) -> str:
        atomic_write(
            self.path(rel), lambda f: np.savez(f, **{k: np.asarray(v) for k, v in arrays.items()})
        )
        return self._record(rel)

    def figure(self, rel, fig, *, dpi: int = 110) -> str:
        """Tight layout, PNG at `dpi`, written atomically."""
        fig.tight_layout()
        atomic_write(self.path(rel), lambda f: fig.savefig(f, dpi=dpi, format="png"))
        return self._record(rel)

    def plot(self, rel, draw, *grid, figsize) -> str:
        """A new figure of `grid` axes (rows, columns), drawn by draw(axes) and written at `rel`
        as by `figure`; returns the file's name (for the report's index)."""
        from ..plots import new_figure

        fig, axes = new_figure(*grid, figsize=figsize)
        draw(axes)
        return Path(self.figure(rel, fig)).name

    def stale(self) -> list[str]:
        """Files listed by the previous run's manifest that this run did not write."""
        return [f for f in self.previous if f not in self.written and f != MANIFEST]

    def finish(self, summary: dict) -> dict:
        """Remove the previous run's stale files, then write the manifest (last)."""
        removed = []
        for rel in self.stale():
            p = (self.root / rel).resolve()
            if self.root.resolve() in p.parents and p.is_file():
                p.unlink()
                removed.append(rel)
        manifest = {"complete": True, "files": list(self.written), "removed_stale": removed}
        manifest.update(summary)
        atomic_write(
            self.root / MANIFEST,
            lambda f: f.write((json.dumps(to_jsonable(manifest), indent=2) + "\n").encode()),
        )
        return manifest
