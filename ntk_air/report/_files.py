"""Writing a report folder safely: a locked folder, a staging folder, a manifest written last.

`ReportWriter(root)` checks the folder (creating it if needed) and takes its lock
(`.ntk-air.lock`): a second run into the same folder is refused. Every file is written atomically
into a hidden staging folder (`.ntk-air-staging-<pid>`); `finish` moves the files into place,
removes the earlier run's stale files and writes `manifest.json` last; `abort` drops the staging
folder and what this run made, leaving the earlier run as it was.

Clean-up removes a stale file only when it is a plain relative report name (letters, digits,
`_ . -`, at most one folder level, never hidden, no `..`), the earlier manifest lists it, and the
file still has the SHA-256 that manifest recorded. Whatever a manifest claims, nothing else is
deleted. Files get the modes the umask gives (as `open` would), not 0600.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .._json import to_jsonable

MANIFEST = "manifest.json"
LOCK = ".ntk-air.lock"
_STAGING = ".ntk-air-staging-"
# A report file's name: one or two plain components, never hidden, never `..`.
_SAFE_REL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)?$")
# Names the report commands write (any folder level); an output option may not collide with them.
REPORT_NAMES = frozenset(
    (
        MANIFEST,
        "timings.json",
        "index.md",
        "summary.json",
        "air.json",
        "distill.json",
        "theorem.json",
        "entk.json",
        "kernel.json",
        "kernel.npz",
        "entk_kernels.npz",
        "noisy_labels.json",
        "noisy_labels_table.md",
    )
)
_OPEN: set = set()  # unfinished writers (their lock and staging folder are released by abort)


class OutputError(OSError):
    """An output path that cannot be used (a file where a folder should be, not writable, …)."""


def safe_file_name(text: str, *, fallback: str = "data") -> str:
    """`text` reduced to a file-name component: letters, digits, `_ . -` (others become `_`),
    never hidden, never empty, at most 64 characters — a name from a data file is never a path.

    >>> safe_file_name("/" + "../" * 3 + "X")
    'X'
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("._-")[:64]
    return name or fallback


def _json_text(obj) -> str:
    return json.dumps(to_jsonable(obj), indent=2) + "\n"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write) -> Path:
    """`write(file_object)` into a temporary file beside `path` (mode 0666 less the umask, as
    `open` gives), then renamed into place."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise OutputError(f"{str(path)!r} exists and is not a regular file; nothing was written")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
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
    """`path` when its folder exists (or can be made) and is writable and it is no folder."""
    path = Path(path)
    if not str(path).strip():
        raise OutputError("the output file is an empty name; give a file name")
    if path.is_dir():
        raise OutputError(f"output file {str(path)!r} is a folder")
    if path.exists() and not path.is_file():
        # renaming onto a device, pipe or socket would replace it (as root: /dev/null itself)
        raise OutputError(
            f"output file {str(path)!r} exists and is not a regular file (a device, pipe or "
            "socket); give a file name"
        )
    _check_writable_dir(path.parent if str(path.parent) else Path("."))
    return path


def _check_replaceable(path: Path) -> None:
    """Refuse a report file's place that holds a folder, a link or a device."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise OutputError(f"{str(path)!r} exists and is not a regular file; nothing was written")


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


_REPORT_SUFFIXES = frozenset((".json", ".png", ".md", ".npz"))  # what clean-up may ever remove


def _refuse_links(root: Path) -> None:
    """Refuse a folder holding symbolic links (top level or one folder down): a report file
    written through one would land outside the folder."""
    for p in [root, *(q for q in root.iterdir() if q.is_dir() and not q.is_symlink())]:
        for q in p.iterdir() if p.is_dir() else ():
            if q.is_symlink():
                raise OutputError(
                    f"the output folder holds a symbolic link, {str(q)!r}; ntk-air writes plain "
                    "files only: remove the link or give another --out"
                )


def _missing_folders(path: Path) -> list[Path]:
    """The folders on the way to `path` (itself included) that do not exist yet, deepest first."""
    missing = []
    while not (path.exists() or path.is_symlink()) and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    """Remove each of `folders` (deepest first) that is empty; leave any other as it is."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


def _lock(root: Path):
    """The folder's lock file, held (exclusively, without waiting) by this process."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: run unlocked
        return None
    try:
        fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666 & ~_umask())
    except OSError as err:  # a folder, a link or an unreadable file in the lock's place
        raise OutputError(
            f"{str(root / LOCK)!r} cannot be used as the folder's lock ({err.strerror}); remove "
            "it or give another --out"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # the lock file may have been removed (by `abort`) between our open and our lock
        held, now = os.fstat(fd), os.stat(root / LOCK, follow_symlinks=False)
        if (held.st_dev, held.st_ino) != (now.st_dev, now.st_ino):
            raise OSError("the lock file was replaced")
    except OSError:
        os.close(fd)
        raise OutputError(
            f"another ntk-air run is writing into {str(root)!r}; wait for it to finish or give "
            "another --out"
        ) from None
    return fd


class ReportWriter:
    """Files of one run of a report folder: staged, moved into place by `finish`, listed in its
    manifest (the lifecycle: the module docstring).

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
        # folders and the lock file this run makes: a refused or failed run removes them again
        self._created = _missing_folders(self.root)
        self._lock_fd, self._made_lock = None, False
        try:
            _check_writable_dir(self.root)
            _refuse_links(self.root)
            _check_replaceable(self.root / MANIFEST)  # refused before any work, not at the end
            self._made_lock = not os.path.lexists(self.root / LOCK)
            self._lock_fd = _lock(self.root)
        except BaseException:
            _remove_empty(self._created)
            raise
        self.staging = self.root / f"{_STAGING}{os.getpid()}"
        if self.staging.exists():  # left by an earlier process with our pid (killed hard)
            shutil.rmtree(self.staging, ignore_errors=True)
        self.written: list[str] = []
        self.done = False
        _OPEN.add(self)

    def reserved(self, path) -> bool:
        """Whether an output file at `path` would collide with a report file, the staging
        folder or the lock."""
        p, root = Path(path).resolve(), self.root.resolve()
        if root not in p.parents:
            return False
        rel = p.relative_to(root)
        return p.name in REPORT_NAMES or p.suffix == ".png" or rel.parts[0].startswith(".ntk-air")

    def path(self, rel) -> Path:
        """Where the file `rel` of this run is staged (its folder created)."""
        rel = str(Path(rel).as_posix())
        if not _SAFE_REL.match(rel):
            raise OutputError(f"{rel!r} is not a plain report file name")
        p = self.staging / rel
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
        return self.text(rel, _json_text(obj))

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

    def figures(self, prefix: str, drawn: dict) -> list[str]:
        """The figure of each `drawn` {file name: its Axes, or several}, written at prefix + name
        as by `figure`; returns the file names."""
        for name, axes in drawn.items():
            self.figure(f"{prefix}{name}", np.ravel(axes)[0].figure)
        return list(drawn)

    def _previous(self) -> dict[str, str | None]:
        """The earlier manifest's files that are plain report names: {name: sha256 or None}."""
        try:
            old = json.loads((self.root / MANIFEST).read_text())
        except (OSError, ValueError, RecursionError):  # unreadable, not JSON, nested too deep
            return {}
        if not isinstance(old, dict) or not isinstance(old.get("files"), list):
            return {}
        sums = old["sha256"] if isinstance(old.get("sha256"), dict) else {}
        return {
            f: sums.get(f) if isinstance(sums.get(f), str) else None
            for f in old["files"]
            if isinstance(f, str)
            and _SAFE_REL.match(f)
            and f != MANIFEST
            and Path(f).suffix in _REPORT_SUFFIXES
        }

    def finish(self, summary: dict) -> dict:
        """Move this run's files into place, remove the earlier run's stale ones, write the
        manifest."""
        previous = self._previous()
        root = self.root.resolve()
        manifest_path = self.root / MANIFEST
        for rel in (*self.written, MANIFEST):  # every place checked before anything moves
            _check_replaceable(self.root / rel)
        if manifest_path.is_file():
            manifest_path.unlink()  # from here until the new one: an incomplete folder
        sums = {}
        for rel in self.written:
            src, dst = self.staging / rel, self.root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            sums[rel] = _sha256(src)
            os.replace(src, dst)
        removed = []
        for rel, digest in previous.items():
            p = self.root / rel
            if rel in self.written or p.is_symlink() or not p.is_file():
                continue
            if root not in p.resolve().parents:
                continue
            if digest is None or _sha256(p) != digest:
                continue  # no checksum of ours, or changed since the toolkit wrote it: the user's
            p.unlink()
            removed.append(rel)
        manifest = {"complete": True, "files": list(self.written), "removed_stale": removed}
        manifest.update({"sha256": sums, **summary})
        atomic_write(manifest_path, lambda f: f.write(_json_text(manifest).encode()))
        self._close()
        return manifest

    def abort(self) -> None:
        """Drop this run's staged files, the folders and lock file it made; release the lock."""
        self._close(undo=True)

    def _close(self, undo: bool = False) -> None:
        if self.done:
            return
        self.done = True
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._lock_fd is not None:
            if undo and self._made_lock:  # unlinked while still held: see `_lock`
                with contextlib.suppress(OSError):
                    os.unlink(self.root / LOCK)
            os.close(self._lock_fd)
            self._lock_fd = None
        if undo:
            _remove_empty(self._created)
        _OPEN.discard(self)

    def __del__(self):  # a writer dropped unfinished releases its lock and staged files
        with contextlib.suppress(Exception):  # interpreter shutdown
            self._close(undo=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.abort()


def abort_open_writers() -> None:
    """`abort` every unfinished writer (the CLI's clean-up after a refusal or an interrupt)."""
    for w in list(_OPEN):
        w.abort()
