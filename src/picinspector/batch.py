"""Batch analysis: expand inputs, analyse (optionally in parallel), write JSONL/CSV row by row, resume.

A batch run writes one row per input image into an output file whose extension picks the format
(see `WRITERS`). Every row is flushed as soon as it is written, so a run that is killed loses at
most the row it was writing; running the same command again *resumes*: the half-written last line
is cut off, images already in the file are skipped, and only the rest is analysed.

Paths are stored exactly as the input expansion produced them (what the user typed, or the folder
joined with the file name), and compared with ``os.path.abspath`` (and ``normcase``), so a rerun from
another working directory, or with absolute instead of relative paths, still recognises them.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import os
import re
import signal
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Sequence

from ._process import LibraryOutput, StopSignals, Stopped, die_with_parent, spawn_window
from ._text import csv_escape, csv_unescape, json_line, printable, spreadsheet_safe
from .errors import OutOfMemory
from .report import SCORE_NAMES, error_row

__all__ = [
    "BatchSummary", "RunCounts", "CSV_COLUMNS", "CsvWriter", "JsonlWriter", "OutputLocked", "WRITERS", "done_paths",
    "iter_inputs", "iter_rows", "run_batch", "spreadsheet_safe", "writer_for",
]

_GLOB_CHARS = frozenset("*?[")
# Bytes that survive a round trip through text mode even in file names that are not valid UTF-8.
_ENCODING = {"encoding": "utf-8", "errors": "surrogateescape"}


# --------------------------------------------------------------------------------------------------
# Inputs


def _key(path: str) -> str:
    """The comparison key of a path: absolute, normalised, case-folded where the OS is."""
    return os.path.normcase(os.path.abspath(path))


def still_to_do(paths: Iterable[str], done: set[str], summary: Any, key: Callable[[str], str] = _key) -> list[str]:
    """The inputs a resumed run still has to analyse, in order: each path once (by ``key``), those
    whose key is in ``done`` counted in ``summary.skipped``, every distinct one in ``summary.total``."""
    todo: list[str] = []
    seen: set[str] = set()
    for path in paths:
        k = key(path)
        if k in seen:
            continue
        seen.add(k)
        summary.total += 1
        if k in done:
            summary.skipped += 1
        else:
            todo.append(path)
    return todo


def _is_image_name(name: str) -> bool:
    from .io import SUPPORTED_EXTENSIONS

    return os.path.splitext(name)[1].lower() in SUPPORTED_EXTENSIONS


def _walk(folder: str) -> Iterator[str]:
    """Supported images under ``folder``, recursively, sorted, skipping hidden files and folders.

    A folder that cannot be listed is yielded itself, so that it becomes an error row naming it
    instead of silently contributing nothing.
    """
    unreadable: list[str] = []
    for root, dirs, files in os.walk(folder, onerror=lambda err: unreadable.append(err.filename)):
        while unreadable:
            yield unreadable.pop(0)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and _is_image_name(name):
                yield os.path.join(root, name)
    yield from unreadable


def _has_magic(part: str) -> bool:
    return bool(_GLOB_CHARS & set(part))


def _scandir(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder or os.curdir) as entries:
            return sorted(entries, key=lambda e: e.name)
    except OSError:
        return []


def _is_real_dir(entry: os.DirEntry) -> bool:
    """A folder that is not a symbolic link: what ``**`` and the folder walk descend into."""
    try:
        return entry.is_dir(follow_symlinks=False)
    except OSError:
        return False


def _is_linked_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_symlink() and entry.is_dir()
    except OSError:
        return False


def _glob(pattern: str) -> Iterator[str]:
    """``glob.glob(pattern, recursive=True)`` as the folder walk sees the tree: ``**`` (zero or more
    folders) and wildcards never match or enter a symbolic link to a folder, so a link loop
    (``a/up -> ..``) cannot repeat anything; hidden names match only a part that starts with ".";
    literal parts follow links, as a folder named on the command line is followed."""
    drive, rest = os.path.splitdrive(pattern)
    seps = "/\\" if os.sep == "\\" else "/"
    root = drive + (rest[0] if rest[:1] and rest[0] in seps else "")
    parts = [p for p in re.split(f"[{re.escape(seps)}]+", rest) if p]
    if not parts:
        return

    def join(folder: str, name: str) -> str:
        return os.path.join(folder, name) if folder else name

    def match(folder: str, index: int) -> Iterator[str]:
        part = parts[index]
        last = index == len(parts) - 1
        if part == "**":
            if last:  # "dir/**": every file and folder below, as glob gives them
                yield from walk_all(folder)
                return
            yield from match(folder, index + 1)
            for entry in _scandir(folder):
                if not entry.name.startswith(".") and _is_real_dir(entry):
                    yield from match(join(folder, entry.name), index)
            return
        if not _has_magic(part):
            path = join(folder, part)
            if last:
                if os.path.lexists(path):
                    yield path
            elif os.path.isdir(path):
                yield from match(path, index + 1)
            return
        hidden_ok = part.startswith(".")
        for entry in _scandir(folder):
            if entry.name.startswith(".") and not hidden_ok:
                continue
            if not fnmatch.fnmatchcase(os.path.normcase(entry.name), os.path.normcase(part)):
                continue
            if _is_linked_dir(entry):  # as the folder walk: a link to a folder is not entered
                continue
            if last:
                yield join(folder, entry.name)
            elif _is_real_dir(entry):
                yield from match(join(folder, entry.name), index + 1)

    def walk_all(folder: str) -> Iterator[str]:
        if folder:
            yield folder if folder.endswith(tuple(seps)) else os.path.join(folder, "")
        for entry in _scandir(folder):
            if entry.name.startswith(".") or _is_linked_dir(entry):
                continue
            path = join(folder, entry.name)
            if _is_real_dir(entry):
                yield from walk_all(path)
            else:
                yield path

    yield from match(root, 0)


def iter_inputs(args: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Expand command-line arguments into the list of image paths to analyse.

    Parameters
    ----------
    args : iterable of str or path-like
        Files, folders and glob patterns, in the order given.

    Returns
    -------
    list of str
        Paths, without duplicates (compared on their absolute form), in first-seen order.

    Notes
    -----
    - A folder is searched recursively for files whose extension (case-insensitive) is in
      ``picinspector.io.SUPPORTED_EXTENSIONS``, sorted by name, skipping hidden files and folders
      (names starting with ".") and not descending into symbolic links to folders (so a link loop
      cannot repeat a photo).
    - A pattern containing ``*``, ``?`` or ``[`` that is not itself an existing path is expanded
      like ``glob.glob(recursive=True)`` (for shells that do not expand it), but walking the tree as
      the folder search does: ``**`` and wildcards do not descend into symbolic links to folders.
      Matching folders are searched as above, and matching files are kept when their extension is
      supported, so ``"shoot/**"`` selects the images in ``shoot`` the way the folder ``shoot``
      does. A pattern that matches nothing contributes nothing.
    - An explicitly named file is kept whatever its extension (the loader decides), and so is a
      literal path that does not exist: it becomes a ``not_found`` error row, so the user sees it.
      A folder that cannot be listed is kept the same way (an ``unreadable`` row).

    References
    ----------
    Python documentation, ``glob`` -- Unix style pathname pattern expansion; ``os.walk``.
    """
    out: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = _key(path)
        if key not in seen:
            seen.add(key)
            out.append(path)

    for arg in args:
        arg = os.fspath(arg)
        if not isinstance(arg, str):
            raise ValueError(f"input paths must be text, got {arg!r}")
        if arg == "":
            raise ValueError("an input path is empty")
        if os.path.isdir(arg):
            for path in _walk(arg):
                add(path)
        elif os.path.lexists(arg) or not (_GLOB_CHARS & set(arg)):
            add(arg)
        else:
            for match in sorted(set(_glob(arg))):
                if os.path.isdir(match):
                    for path in _walk(match):
                        add(path)
                elif _is_image_name(match):
                    add(match)
    return out


# --------------------------------------------------------------------------------------------------
# Writers

#: CSV columns, in order. ``findings`` joins the finding kinds with ";". Error rows fill ``path``,
#: ``error_kind`` and ``error_message`` only.
CSV_COLUMNS = (
    "path", "width", "height", "format", *SCORE_NAMES, "scene", "scene_confidence", "findings",
    "feedback", "engine", "version", "error_kind", "error_message",
)


class JsonlWriter:
    """JSON Lines: one ``Report.to_dict()`` object, or error row, per line, valid UTF-8.

    Control characters, C1 controls and the undecodable bytes of a file name (lone surrogates,
    PEP 383) are written as ``\\uXXXX`` escapes (`picinspector._text.json_line`), so ``json.loads``
    and ``os.fsencode`` give back the exact name.
    """

    header: str | None = None

    @staticmethod
    def format_row(row: dict[str, Any]) -> str:
        """One line of text (no newline) for a result row."""
        return json_line(row)

    @staticmethod
    def parse_line(line: str) -> tuple[str, bool]:
        """``(path, is_error)`` of a line this writer wrote; ValueError if it is not one."""
        row = json.loads(line)
        if not isinstance(row, dict) or not isinstance(row.get("path"), str):
            raise ValueError("not an object with a 'path'")
        return row["path"], "error" in row


def _one_line(value: Any) -> str:
    """A CSV cell: '' for None, numbers as they are; text with line breaks as spaces (the feedback
    paragraph), then `picinspector._text.csv_escape` (one line, valid UTF-8, no formula)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return str(value)
    return csv_escape(value.replace("\r\n", " ").replace("\n", " ").replace("\r", " "))


class CsvWriter:
    """CSV with the fixed columns `CSV_COLUMNS`, one image per line, valid UTF-8.

    The ``path`` cell is `picinspector._text.csv_escape` of the name: exact percent escapes for
    control characters, undecodable bytes and a ``%`` before two hex digits, and a leading
    apostrophe against spreadsheet formulas; `parse_line` undoes both, so resume matches any name.
    In the other text cells (feedback paragraphs, messages) line breaks become spaces first. Every
    row is exactly one line, so a half-written last row can be cut off on resume.
    """

    header: str | None = ",".join(CSV_COLUMNS)

    @staticmethod
    def format_row(row: dict[str, Any]) -> str:
        err = row.get("error")
        if err is not None:
            cells = {"path": row.get("path"), "error_kind": err.get("kind"), "error_message": err.get("message")}
        else:
            scene = row.get("scene") or {}
            conf = scene.get("confidence")
            cells = {
                "path": row.get("path"), "width": row.get("width"), "height": row.get("height"),
                "format": row.get("format"),
                **{k: row["scores"].get(k) for k in SCORE_NAMES},
                "scene": scene.get("label"),
                "scene_confidence": None if conf is None else round(float(conf), 3),
                "findings": ";".join(f["kind"] for f in row.get("findings", [])),
                "feedback": row.get("feedback"), "engine": row.get("engine"), "version": row.get("version"),
            }
        buf = io.StringIO()
        path = cells.pop("path")
        csv.writer(buf, lineterminator="").writerow(
            ["" if path is None else csv_escape(str(path)), *(_one_line(cells.get(c)) for c in CSV_COLUMNS[1:])])
        return buf.getvalue()

    @staticmethod
    def parse_line(line: str) -> tuple[str, bool]:
        cells = next(csv.reader([line]))
        if len(cells) != len(CSV_COLUMNS) or not cells[0]:
            raise ValueError(f"expected {len(CSV_COLUMNS)} cells starting with a path, got {len(cells)}")
        return csv_unescape(cells[0]), cells[CSV_COLUMNS.index("error_kind")] != ""


#: Output writers by (lower-case) file extension.
WRITERS: dict[str, type] = {".jsonl": JsonlWriter, ".csv": CsvWriter}


def writer_for(output: str | os.PathLike[str]) -> type:
    """The writer class for an output path, chosen by its extension (case-insensitive).

    Parameters
    ----------
    output : str or path-like

    Returns
    -------
    type
        `JsonlWriter` or `CsvWriter` (see `WRITERS`).

    Raises
    ------
    ValueError
        The extension is not in `WRITERS` (``.json`` is refused on purpose: rows are JSON *lines*).
    """
    ext = os.path.splitext(os.fspath(output))[1].lower()
    if ext not in WRITERS:
        raise ValueError(
            f"cannot write {os.fspath(output)!r}: unknown output extension {ext or '(none)'!r}; "
            f"use one of {', '.join(sorted(WRITERS))}"
        )
    return WRITERS[ext]


# --------------------------------------------------------------------------------------------------
# Resume


@dataclass(frozen=True)
class _Line:
    text: str
    path: str
    is_error: bool


def _read_output(output: str, writer: type) -> list[_Line]:
    """Rows already in ``output`` (none if it is missing or empty), after cutting a half-written tail.

    Raises ValueError, without touching the file, when a complete line is not a row this writer
    wrote (so a wrong ``-o`` never damages an unrelated file).
    """
    if os.path.isdir(output):
        raise ValueError(f"output {output!r} is a folder")
    try:
        with open(output, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        return []
    cut = data.rfind(b"\n") + 1  # end of the last complete line; 0 if there is none
    lines = data[:cut].decode(**_ENCODING).split("\n")[:-1]
    body = lines
    if writer.header is not None and lines:
        if lines[0].rstrip("\r") != writer.header:
            raise ValueError(f"{output!r} exists but is not a PicInspector CSV (its header differs); "
                             "choose another output file")
        body = lines[1:]
    rows = []
    for number, line in enumerate(body, start=2 if writer.header else 1):
        line = line.rstrip("\r")
        if not line:
            continue
        try:
            path, is_error = writer.parse_line(line)
        except (ValueError, csv.Error) as exc:
            raise ValueError(f"{output!r} line {number} is not a PicInspector row ({exc}); "
                             "refusing to append to it: choose another output file") from exc
        rows.append(_Line(line, path, is_error))
    if cut < len(data):  # the run that wrote it was killed mid-line: drop the partial line
        with open(output, "r+b") as fh:
            fh.truncate(cut)
    return rows


def _rewrite(output: str, writer: type, lines: Sequence[_Line]) -> None:
    """Replace ``output`` atomically with the header (if any) and ``lines``."""
    tmp = f"{output}.tmp-{os.getpid()}"
    with open(tmp, "w", newline="", **_ENCODING) as fh:
        if writer.header is not None:
            fh.write(writer.header + "\n")
        for line in lines:
            fh.write(line.text + "\n")
    os.replace(tmp, output)


def done_paths(output: str | os.PathLike[str], *, include_errors: bool = True) -> set[str]:
    """Paths already present in an output file, as they are stored there.

    Parameters
    ----------
    output : str or path-like
        A ``.jsonl`` or ``.csv`` file written by `run_batch`; a missing file has no paths.
    include_errors : bool
        Count error rows as done (the default, as a plain resume does).

    Returns
    -------
    set of str

    Raises
    ------
    ValueError
        The extension is unknown, or the file holds lines that are not PicInspector rows (the
        file is then left untouched).

    Notes
    -----
    If the file ends with a half-written line (the run was killed while writing it), that line is
    removed from the file first, so appending to it leaves neither garbage nor duplicates. Compare
    the result with your inputs on ``os.path.abspath``, as `run_batch` does.
    """
    output = os.fspath(output)
    rows = _read_output(output, writer_for(output))
    return {r.path for r in rows if include_errors or not r.is_error}


# --------------------------------------------------------------------------------------------------
# Output lock


class OutputLocked(RuntimeError):
    """Another run is writing the same output file; the message names it (pid, host, start time)."""


def _lock_fd(fd: int) -> None:
    """An exclusive, non-blocking lock on an open file; OSError when another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _holder(path: str) -> str:
    """Who holds a lock file, in words, from what it wrote there."""
    import time

    for _ in range(10):  # the holder writes its details just after locking: give it a moment
        try:
            with open(path, encoding="utf-8") as fh:
                info = json.loads(fh.read() or "null")
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict):
            return (f"pid {info.get('pid')} on {info.get('host')!s}, started {info.get('started')!s}"
                    + (f": {info['command']}" if info.get("command") else ""))
        time.sleep(0.05)
    return "details unavailable"


class _OutputLock:
    """An exclusive lock on ``<output>.lock`` for a whole run (``fcntl.flock``; ``msvcrt`` on Windows).

    The lock file holds the holder's pid, host, start time and command line (JSON), so that a second
    run can say who is writing. The kernel releases the lock when its holder exits, killed or not;
    the file is deleted at the end of the run, and a file left by a killed run is simply reused.
    """

    def __init__(self, output: str):
        self.output = output
        self.path = output + ".lock"
        self._fd: int | None = None

    def __enter__(self) -> "_OutputLock":
        import datetime
        import socket
        import sys

        for _ in range(50):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                _lock_fd(fd)
            except OSError:
                os.close(fd)
                raise OutputLocked(
                    f"{self.output} is being written by another picinspector run ({_holder(self.path)}); wait "
                    f"for it to end, or write to another file (if no such run exists, delete {self.path})"
                ) from None
            try:  # a run that was finishing may have deleted the file we opened: lock the new one
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except OSError:
                same = False
            if same:
                break
            os.close(fd)
        else:  # pragma: no cover - 50 lost races in a row
            raise OutputLocked(f"could not lock {self.path}")
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                "command": " ".join(sys.argv)}
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json_line(info).encode("utf-8"))
        self._fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            try:
                os.unlink(self.path)  # while still holding the lock (see __enter__)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None


# --------------------------------------------------------------------------------------------------
# Analysis

#: What a worker process holds: its Inspector, why it could not build one, its output capture.
_WORKER: dict[str, Any] = {"inspector": None, "error": None, "capture": None}


def _init_worker(options: dict[str, Any], parent_pid: int | None = None, capture: bool = False) -> None:
    """Process-pool initializer: one `Inspector` per worker. Ctrl-C and SIGHUP are the parent's to
    handle; the worker ends with its parent (`picinspector._process.die_with_parent`). A failure is
    kept and reported by `_ping`, so that the parent can say why the workers could not start."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if parent_pid is not None:
        die_with_parent(parent_pid)
    try:
        import cv2

        cv2.setNumThreads(1)  # parallelism comes from the workers; avoid oversubscribing the cores
        os.environ.setdefault("OMP_NUM_THREADS", "1")  # likewise for a deep engine's torch, read when it is imported
        from .pipeline import Inspector

        _WORKER["capture"] = LibraryOutput() if capture else None
        _WORKER["inspector"] = Inspector(**{"threads": 1, **options})
    except Exception as exc:  # noqa: BLE001 - reported to the parent by _ping
        _WORKER["error"] = f"{type(exc).__name__}: {exc}"


def _analyse_one(path: str, inspector: Any = None, capture: Any = None) -> dict[str, Any]:
    """The result row for one path: ``Report.to_dict()`` or, for any failure, an error row.

    With ``capture`` (a `LibraryOutput`; in a worker, the worker's own), what libraries printed
    while the image was analysed is kept under ``"_notes"``, and appended to an error's message.
    """
    if inspector is None:
        inspector, capture = _WORKER["inspector"], _WORKER["capture"]
        if inspector is None:
            return error_row(path, RuntimeError(_WORKER["error"] or "the worker process has no inspector"))
    notes: list[str] = []
    try:
        if capture is None:
            row = inspector.analyze(path).to_dict()
        else:
            with capture() as notes:
                row = inspector.analyze(path).to_dict()
    except Exception as exc:  # noqa: BLE001 - one bad image becomes an error row; the batch goes on
        if isinstance(exc, MemoryError):  # e.g. in an engine: typed like the loader's own
            exc = OutOfMemory(f"not enough memory to analyse this image ({type(exc).__name__})", path)
        row = error_row(path, exc)
        if notes:
            row["error"]["message"] += f" (library output: {'; '.join(notes[:3])})"
    else:
        row["path"] = path  # as the user's expansion gave it, whatever the loader normalised
    if notes:
        row["_notes"] = notes
    return row


def _crash_row(path: str) -> dict[str, Any]:
    return {"path": path, "error": {
        "kind": "internal_error",
        "message": "a worker process died while analysing this file alone (out of memory, or a crash in a "
                   "decoder); rerun with --retry-errors to try it again",
    }}


def _ping() -> str | None:
    """Run in a fresh worker: None when it is ready, else why it could not build its inspector."""
    return _WORKER["error"]


def iter_rows(paths: Sequence[str], *, jobs: int = 1, inspector_options: Any = None, stop: Any = None,
              notes: Callable[[str, list[str]], None] | None = None, worker_stderr: int | None = None
              ) -> Iterator[dict[str, Any]]:
    """Analyse ``paths`` and iterate over one row per path (a report dict or an error row).

    Parameters
    ----------
    paths : sequence of str
    jobs : int
        1 analyses in this process, in order. More uses that many worker processes (spawned, each
        with its own `Inspector`), keeps at most ``2 * jobs`` images in flight, and yields rows in
        the order they finish.
    inspector_options : dict or Inspector, optional
        Keyword arguments for `picinspector.Inspector`, or an inspector already built (used as it
        is with ``jobs=1``; worker processes build its twin from ``inspector.options``).
    stop : threading.Event, optional
        When it is set, no further image is started; the images in progress finish and are yielded,
        then the iteration ends (what a first Ctrl-C does, see `picinspector._process.StopSignals`).
    notes : callable, optional
        ``notes(path, lines)``. When given, what C libraries print on standard error and Python
        warnings while an image is analysed are captured instead of reaching the terminal, passed
        here, and appended to the message of an error row.
    worker_stderr : int, optional
        A file descriptor that worker processes get as their standard error (with ``notes``: a log;
        default: the null device), for what they print outside an image (e.g. while starting).

    Returns
    -------
    iterator of dict
        ``Report.to_dict()`` with ``path`` as given, or ``error_row(path, error)``. Any exception
        while analysing one image (typed or not) becomes an error row; if a worker process dies, the
        images it was working on are run again one at a time in a fresh pool, and the one that kills
        a worker on its own gets an ``internal_error`` row.
        Close the iterator (``contextlib.closing``) if you stop early: the workers are then stopped
        at once (their images in progress are dropped). Worker processes end with this process
        even when it is killed.

    Raises
    ------
    ValueError
        ``jobs < 1`` or invalid inspector options: raised by this call, before any image is read.
    RuntimeError
        While iterating: the worker processes could not start (the message says why).
    """
    from .pipeline import Inspector, check_options

    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    parallel = jobs > 1 and len(paths) > 1
    if isinstance(inspector_options, Inspector):  # an inspector already built: workers build its twin
        inspector, options = inspector_options, dict(inspector_options.options)
    else:
        options = dict(inspector_options or {})
        if parallel:  # the workers build the inspectors; here the options are only checked (no model loads)
            check_options(**options)
        else:
            inspector = Inspector(**options)  # validates the options now, with a clear error
    capture = notes is not None
    if not parallel:
        rows = _local_rows(paths, inspector, stop, LibraryOutput() if capture else None)
    else:
        rows = _pool_rows(list(paths), jobs, options, stop,
                          {"capture": capture, "stderr_fd": worker_stderr} if capture else {})
    return _with_notes(rows, notes)


def _with_notes(rows: Iterator[dict[str, Any]], notes: Callable | None) -> Iterator[dict[str, Any]]:
    with closing(rows):
        for row in rows:
            lines = row.pop("_notes", None)
            if lines and notes is not None:
                notes(row.get("path"), lines)
            yield row


def _local_rows(paths: Sequence[str], inspector: Any, stop: Any, capture: Any) -> Iterator[dict[str, Any]]:
    for path in paths:
        if stop is not None and stop.is_set():
            return
        yield _analyse_one(path, inspector, capture)


def _new_pool(jobs: int, options: dict[str, Any], capture: bool = False,
              stderr_fd: int | None = None) -> ProcessPoolExecutor:
    """A pool whose workers are all started now, with ``capture`` with their standard error on
    ``stderr_fd`` (default: the null device) (`picinspector._process.spawn_window`)."""
    import multiprocessing

    null = None
    if capture and stderr_fd is None:
        stderr_fd = null = os.open(os.devnull, os.O_WRONLY)
    try:
        with spawn_window(stderr_fd if capture else None):
            # spawn: OpenCV's and BLAS's thread pools do not survive fork() reliably. Built in the
            # window: its queues start multiprocessing's resource tracker, which inherits it too.
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                       initializer=_init_worker, initargs=(options, os.getpid(), capture))
            launch = getattr(pool, "_launch_processes", None)  # CPython 3.9+: start them all, here
            if callable(launch):
                launch()
    finally:
        if null is not None:
            os.close(null)
    return pool


def _stop_pool(pool: Any, now: bool) -> None:
    """Shut a pool down: waiting for its idle workers to exit, or (``now``) terminating them first,
    so that no worker outlives the call and no interpreter exit waits on an image in progress."""
    if not now:
        pool.shutdown(wait=True)
        return
    import time

    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        try:
            process.terminate()
        except (OSError, ValueError, AttributeError):
            pass
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + 5.0
    for process in processes:
        try:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(1.0)
        except (OSError, ValueError, AssertionError):
            pass


def _start_pool(jobs: int, options: dict[str, Any], stop: Any = None, **spawn: Any) -> ProcessPoolExecutor:
    """A worker pool that has proved it can start (so a later failure is blamed on an image).

    Workers that die while starting because the run is being stopped (a Ctrl-C reaches the whole
    process group, and a worker ignores SIGINT only once started) stop the run: `Stopped`."""
    pool = _new_pool(jobs, options, **spawn)
    try:
        error = pool.submit(_ping).result()
    except BrokenProcessPool as exc:
        _stop_pool(pool, now=True)
        if stop is not None and stop.is_set():
            raise Stopped(signal.SIGINT) from None
        raise RuntimeError("the worker processes could not start (they died while starting); "
                           "rerun with -j 1") from exc
    except BaseException:  # e.g. stopped by a signal while the workers start
        _stop_pool(pool, now=True)
        raise
    if isinstance(error, str):
        _stop_pool(pool, now=True)
        raise RuntimeError(f"the worker processes could not start: {error}")
    return pool


def _pool_rows(paths: Sequence[str], jobs: int, options: dict[str, Any], stop: Any = None,
               spawn: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Rows from a worker pool, at most ``2 * jobs`` images in flight.

    When a worker dies, the pool is broken and every image in flight fails with it. Those images are
    *suspects*: each is run again alone in a fresh pool, and only one that kills a worker on its own
    gets an ``internal_error`` row; the others get their normal rows. When ``stop`` is set, images
    not yet started are cancelled and the ones in progress are waited for.
    """
    pending = iter(paths)
    unsent: list[str] = []  # submission refused because the pool had just broken: never ran
    suspects: deque[str] = deque()
    isolated: str | None = None  # the suspect now running alone
    in_flight: dict[Future, str] = {}
    pool = _start_pool(jobs, options, stop, **(spawn or {}))
    clean = False
    try:
        while True:
            broken = False
            stopping = stop is not None and stop.is_set()
            if stopping:
                for future in [f for f in in_flight if f.cancel()]:
                    del in_flight[future]  # queued, never started: left for the next run
            while not stopping and isolated is None and not (suspects and in_flight):
                if suspects:
                    path, alone = suspects.popleft(), True
                elif len(in_flight) < 2 * jobs:
                    path, alone = (unsent.pop() if unsent else next(pending, None)), False
                    if path is None:
                        break
                else:
                    break
                try:
                    in_flight[pool.submit(_analyse_one, path)] = path
                except BrokenProcessPool:
                    (suspects.appendleft if alone else unsent.append)(path)
                    broken = True
                    break
                if alone:
                    isolated = path
            if not in_flight and (stopping or not broken):
                clean = True
                return
            if in_flight:
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in finished:
                    path = in_flight.pop(future)
                    try:
                        row = future.result()
                    except BrokenProcessPool:
                        broken = True
                        in_flight[future] = path  # dealt with below, with the rest of the pool
                        continue
                    except Exception as exc:  # noqa: BLE001 - e.g. a result that could not be pickled
                        row = error_row(path, exc)
                    if path == isolated:
                        isolated = None
                    yield row
            if broken:
                if stop is not None and stop.is_set():
                    return  # stopping anyway: the images in flight are left for the next run
                for path in in_flight.values():
                    if path == isolated:
                        yield _crash_row(path)
                    else:
                        suspects.append(path)
                in_flight.clear()
                isolated = None
                _stop_pool(pool, now=True)
                pool = _start_pool(jobs, options, stop, **(spawn or {}))
    finally:
        _stop_pool(pool, now=not clean)


# --------------------------------------------------------------------------------------------------
# Batch runs


@dataclass
class RunCounts:
    """The counts every run into an output file reports (the local batch's and Ray's summaries).

    ``total`` counts the unique inputs (plus retried error paths that were not among them);
    ``analysed + skipped + failed == total`` unless the run was ``interrupted``.
    """

    total: int = 0
    analysed: int = 0
    skipped: int = 0
    failed: int = 0
    output: str = ""
    interrupted: bool = False

    def line(self) -> str:
        """The one-line account the commands print: ``N analysed, M already done, K failed -> OUTPUT``."""
        return (f"{self.analysed} analysed, {self.skipped} already done, {self.failed} failed -> "
                f"{printable(self.output)}")


@dataclass
class BatchSummary(RunCounts):
    """What a `run_batch` call did (the `RunCounts`, and more).

    ``signal`` is the signal that stopped an interrupted run (SIGINT, SIGTERM or SIGHUP); ``log`` the
    file holding what libraries printed while analysing (None when they printed nothing), with
    ``notes`` lines.
    """

    signal: int | None = None
    log: str | None = None
    notes: int = 0


def progress_bar(enabled: bool, total: int, file: Any = None):
    """A Rich progress bar on stderr (count, images/s, time left), or on ``file``; a silent one when
    not ``enabled``."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                               TimeRemainingColumn)
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("-- img/s" if speed is None else f"{speed:.1f} img/s", style="progress.data.speed")

    console = Console(stderr=True) if file is None else Console(file=file)
    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), RateColumn(), TimeRemainingColumn(),
                        console=console, disable=not enabled)
    return progress


class _RunLog:
    """``<output>.log``: what libraries printed while each image was analysed, one line per message
    (``path: message``, both with control characters escaped), and what the worker processes printed
    outside an image. Created for the run and deleted at its end if nothing was written to it."""

    def __init__(self, output: str):
        self.path = output + ".log"
        self.fd: int | None = None
        self.count = 0
        self._existed = False
        self._start = 0

    def __enter__(self) -> "_RunLog":
        self._existed = os.path.exists(self.path)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._start = os.fstat(self.fd).st_size
        return self

    def write(self, path: str | None, notes: list[str]) -> None:
        text = "".join(f"{printable(path)}: {printable(note)}\n" for note in notes)
        os.write(self.fd, text.encode("utf-8", "backslashreplace"))
        self.count += len(notes)

    def __exit__(self, *exc: Any) -> None:
        size = os.fstat(self.fd).st_size
        os.close(self.fd)
        if size == self._start and not self._existed:
            try:
                os.unlink(self.path)
            except OSError:
                pass

    @property
    def written(self) -> bool:
        return os.path.exists(self.path) and os.path.getsize(self.path) > self._start


def terminal_stream():
    """A text stream on a duplicate of file descriptor 2, for the progress bar: it keeps showing on
    the terminal while descriptor 2 itself is captured around an image."""
    import sys

    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    try:
        return os.fdopen(os.dup(2), "w", encoding=encoding, errors="backslashreplace", buffering=1)
    except OSError:  # pragma: no cover - no descriptor 2
        return open(os.devnull, "w")


def run_batch(paths: Sequence[str], output: str | os.PathLike[str], *, jobs: int = 1,
              inspector_options: dict[str, Any] | None = None, retry_errors: bool = False,
              progress: bool = True) -> BatchSummary:
    """Analyse ``paths`` into ``output``, one flushed row per image, resuming a previous run.

    Parameters
    ----------
    paths : sequence of str
        Image paths (e.g. from `iter_inputs`); duplicates (same absolute path) are analysed once.
    output : str or path-like
        ``.jsonl`` or ``.csv`` (see `WRITERS`). Created if missing (with its folder); otherwise
        appended to after cutting a half-written last line; paths already in it are skipped.
    jobs : int
        Worker processes (see `iter_rows`).
    inspector_options : dict, optional
        Keyword arguments for `picinspector.Inspector` (engine, feedback, native_detail, ...).
    retry_errors : bool
        First rewrite ``output`` without its error rows, then analyse those paths again (also
        the ones that are not among ``paths``).
    progress : bool
        Show a progress bar (bar, count, rate, ETA) on stderr.

    Returns
    -------
    BatchSummary
        Counts; ``interrupted`` is True when a signal stopped the run (``signal`` says which). Every
        row finished before the interruption is in the file, and running the same call again resumes.

    Raises
    ------
    ValueError
        Unknown output extension, ``jobs < 1``, invalid inspector options, or an existing output
        that is not a PicInspector file (it is left untouched).
    OutputLocked
        Another run is writing ``output`` (the message names its pid, host and start time).

    Notes
    -----
    - **Lock.** The run holds an exclusive lock on ``<output>.lock`` from start to end, so two runs
      can never interleave rows in one file.
    - **Signals** (in the main thread): a first Ctrl-C stops after the images in progress (their
      rows are written); a second Ctrl-C, SIGTERM or SIGHUP stops at once, terminating the workers.
    - **Library output.** What C decoders and Pillow print while an image is analysed goes to
      ``<output>.log`` (and into the message of an error row), not to the terminal.
    """
    output = os.fspath(output)
    writer = writer_for(output)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    if os.path.isdir(output):
        raise ValueError(f"output {output!r} is a folder")
    parent = os.path.dirname(output)
    if parent:
        os.makedirs(parent, exist_ok=True)
    summary = BatchSummary(output=output)
    terminal = terminal_stream()
    bar = task = None

    def on_first_stop() -> None:
        message = "stopping after the images in progress (Ctrl-C again to stop now)"
        if bar is not None and task is not None and progress:
            bar.update(task, description=message)
        else:
            terminal.write(message + "\n")

    with closing(terminal), StopSignals(on_first_stop) as signals, _OutputLock(output), _RunLog(output) as log:
        existing = _read_output(output, writer)
        retry = [r.path for r in existing if r.is_error] if retry_errors else []
        if retry:
            existing = [r for r in existing if not r.is_error]
            paths = [*paths, *retry]
        done = {_key(r.path) for r in existing}

        todo = still_to_do(paths, done, summary)

        rows = iter_rows(todo, jobs=jobs, inspector_options=inspector_options, stop=signals.requested,
                         notes=log.write, worker_stderr=log.fd)  # validates before writing
        if retry:
            _rewrite(output, writer, existing)  # the file without its error rows; they are redone below
        fresh = not os.path.exists(output) or os.path.getsize(output) == 0
        with open(output, "a", newline="", **_ENCODING) as fh, \
                progress_bar(progress and bool(todo), len(todo), file=terminal) as bar:
            if fresh and writer.header is not None:
                fh.write(writer.header + "\n")
                fh.flush()
            task = bar.add_task("analysing", total=len(todo))
            try:
                with closing(rows):
                    for row in rows:
                        try:
                            line = writer.format_row(row)
                        except (ValueError, TypeError, KeyError, AttributeError) as exc:
                            row = error_row(row.get("path"), exc)
                            line = writer.format_row(row)
                        fh.write(line + "\n")
                        fh.flush()
                        if "error" in row:
                            summary.failed += 1
                            bar.update(task, description=f"analysing ({summary.failed} failed)")
                        else:
                            summary.analysed += 1
                        bar.advance(task)
            except KeyboardInterrupt as exc:
                summary.interrupted = True
                summary.signal = getattr(exc, "signum", signal.SIGINT)
        if signals.requested.is_set() and summary.analysed + summary.failed < len(todo):
            summary.interrupted = True
            summary.signal = summary.signal or signals.signum
        summary.notes = log.count
        written = log.written
    summary.log = log.path if written else None
    return summary
