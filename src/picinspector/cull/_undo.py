"""Writing a run's files with an undo journal, and reverting a run byte for byte.

Before any file is touched, the journal (JSON Lines) is written and flushed to disk: a header line,
then one line per file with its SHA-256 before and after, its size, mode and modification time, and
what is needed to rebuild the old bytes: all of them for a sidecar, and for a photo that got an
embedded packet only the bytes that differ (the old span between the common prefix and the common
suffix of old and new; the pixels are untouched, so this is the metadata). Files are then replaced
atomically (a temporary file in the same folder, renamed over the old one).

`undo` reverts a journal: a file that still holds what the run wrote gets its old bytes, mode and
modification time back (or is removed if the run created it); one that is already as before is left;
one that changed since is reported and left alone (``force`` restores a sidecar anyway). Every
restored file is checked against the recorded SHA-256.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from .._version import __version__

__all__ = ["JOURNAL_FORMAT", "UndoResult", "apply_changes", "free_journal_path", "undo"]

#: The journal's format tag (its header's ``picinspector_undo`` value).
JOURNAL_FORMAT = 1


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _diff(old: bytes, new: bytes) -> tuple[int, int, bytes]:
    """(common prefix length, common suffix length, the old bytes between them)."""
    limit = min(len(old), len(new))
    p = 0
    step = 1 << 16
    while p < limit:  # compare in chunks, then bytes
        q = min(limit, p + step)
        if old[p:q] == new[p:q]:
            p = q
            continue
        while old[p] == new[p]:
            p += 1
        break
    s = 0
    limit -= p
    while s < limit:
        q = min(limit, s + step)
        if old[len(old) - q:len(old) - s] == new[len(new) - q:len(new) - s]:
            s = q
            continue
        while old[len(old) - 1 - s] == new[len(new) - 1 - s]:
            s += 1
        break
    return p, s, old[p:len(old) - s]


def free_journal_path(stem: str) -> str:
    """``STEM.undo.jsonl``, or ``STEM.undo.2.jsonl``, ... : the first name not taken (earlier runs'
    journals stay, so runs can be reverted newest first)."""
    path = f"{stem}.undo.jsonl"
    n = 2
    while os.path.lexists(path):
        path = f"{stem}.undo.{n}.jsonl"
        n += 1
    return path


def _atomic_write(path: str, data: bytes, mode: int | None) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.picinspector-{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def apply_changes(changes: Sequence[Any], journal: str, *, command: str | None = None) -> list[tuple[Any, str | None]]:
    """Write ``changes`` (`Change` objects with bytes to write), journalled in ``journal`` first.

    Returns
    -------
    list of (Change, error or None)
        Per change written or attempted. The journal lists every file before the first is written.

    Raises
    ------
    OSError
        The journal cannot be written (then no file has been touched), or it exists already.
    """
    todo = [c for c in changes if c.changes]
    entries = []
    for c in todo:
        real = os.path.realpath(c.path)
        entry: dict[str, Any] = {"path": os.path.abspath(real), "kind": c.kind, "photo": c.photo,
                                 "after": {"sha256": _sha(c.after), "size": len(c.after)}}
        if c.before is None:
            entry["before"] = None
        else:
            st = os.stat(real)
            before = {"sha256": _sha(c.before), "size": len(c.before), "mode": st.st_mode & 0o7777,
                      "mtime_ns": st.st_mtime_ns}
            if c.kind == "embed":
                p, s, middle = _diff(c.before, c.after)
                before.update(prefix=p, suffix=s, middle=_b64(middle))
            else:
                before["data"] = _b64(c.before)
            entry["before"] = before
        entries.append(entry)
    header = {"picinspector_undo": JOURNAL_FORMAT, "version": __version__,
              "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command, "files": len(entries)}
    with open(journal, "x", encoding="utf-8") as fh:  # never over an earlier run's journal
        for obj in (header, *entries):
            fh.write(json.dumps(obj, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    results = []
    for c, entry in zip(todo, entries):
        try:
            mode = entry["before"]["mode"] if entry["before"] else None
            _atomic_write(entry["path"], c.after, mode)
            results.append((c, None))
        except OSError as exc:
            results.append((c, f"{exc.strerror or exc}"))
    return results


@dataclass
class UndoResult:
    """What `undo` did, file by file."""

    restored: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)   # already as before the run
    conflicts: list[str] = field(default_factory=list)   # "path: why" (left alone)


def _read_journal(journal: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    with open(journal, encoding="utf-8") as fh:
        lines = [line for line in fh.read().splitlines() if line.strip()]
    try:
        header = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("picinspector_undo") != JOURNAL_FORMAT:
        raise ValueError(f"{journal} is not a PicInspector undo file")
    entries = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError(f"{journal} line {number} is damaged") from None
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str) or "after" not in entry:
            raise ValueError(f"{journal} line {number} is not an undo entry")
        entries.append(entry)
    return header, entries


def _rebuild(entry: dict[str, Any], current: bytes) -> bytes:
    before = entry["before"]
    if "data" in before:
        return base64.b64decode(before["data"])
    p, s = int(before["prefix"]), int(before["suffix"])
    return current[:p] + base64.b64decode(before["middle"]) + current[len(current) - s:]


def undo(journal: str | os.PathLike[str], *, force: bool = False, dry_run: bool = False) -> UndoResult:
    """Revert the files a run wrote, as its journal lists them (newest change first).

    Parameters
    ----------
    journal : str or path-like
        The undo file the run wrote.
    force : bool
        Restore sidecars that changed since the run too (their old bytes are in the journal). A photo
        with an embedded packet that changed since cannot be rebuilt and is always left alone.
    dry_run : bool
        Report what would be done; write nothing.

    Raises
    ------
    ValueError
        The file is not an undo journal.
    """
    _, entries = _read_journal(os.fspath(journal))
    result = UndoResult()
    for entry in reversed(entries):
        path, before, after = entry["path"], entry["before"], entry["after"]
        try:
            with open(path, "rb") as fh:
                current: bytes | None = fh.read()
        except FileNotFoundError:
            current = None
        now = None if current is None else _sha(current)
        if (before is None and current is None) or (before is not None and now == before["sha256"]):
            result.unchanged.append(path)
            continue
        if now != after["sha256"]:
            if not (force and before is not None and "data" in before) and not (force and before is None):
                why = "removed since the run" if current is None else "changed since the run"
                result.conflicts.append(f"{path}: {why}; left alone" + ("" if force else " (--force restores a sidecar)"))
                continue
        if before is None:
            if not dry_run:
                os.remove(path)
            result.removed.append(path)
            continue
        old = _rebuild(entry, current if current is not None else b"")
        if _sha(old) != before["sha256"]:
            result.conflicts.append(f"{path}: the old bytes could not be rebuilt exactly; left alone")
            continue
        if not dry_run:
            _atomic_write(path, old, before.get("mode"))
            if before.get("mtime_ns") is not None:
                os.utime(path, ns=(time.time_ns(), int(before["mtime_ns"])))
        result.restored.append(path)
    return result


def journal_files(journal: str) -> Iterable[str]:
    """The paths a journal lists (for messages)."""
    return [e["path"] for e in _read_journal(journal)[1]]
