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
import glob
import io
import json
import os
import signal
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from .report import SCORE_NAMES, error_row

__all__ = [
    "BatchSummary", "CSV_COLUMNS", "CsvWriter", "JsonlWriter", "WRITERS", "done_paths", "iter_inputs",
    "iter_rows", "run_batch", "spreadsheet_safe", "writer_for",
]

_GLOB_CHARS = frozenset("*?[")
# Bytes that survive a round trip through text mode even in file names that are not valid UTF-8.
_ENCODING = {"encoding": "utf-8", "errors": "surrogateescape"}


# --------------------------------------------------------------------------------------------------
# Inputs


def _key(path: str) -> str:
    """The comparison key of a path: absolute, normalised, case-folded where the OS is."""
    return os.path.normcase(os.path.abspath(path))


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
      (names starting with ".").
    - A pattern containing ``*``, ``?`` or ``[`` that is not itself an existing path is expanded with
      ``glob.glob(recursive=True)`` (for shells that do not expand it): matching folders are searched
      as above, and matching files are kept when their extension is supported, so ``"shoot/**"``
      selects the images in ``shoot`` the way the folder ``shoot`` does. A pattern that matches
      nothing contributes nothing.
    - An explicitly named file is kept whatever its extension (the loader decides), and so is a
      literal path that does not exist: it becomes a ``not_found`` error row, so the user sees it.
      A folder that cannot be listed is kept the same way (an ``unreadable`` row).

    References
    ----------
    Python documentation, ``glob`` -- Unix style pathname pattern expansion.
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
            for match in sorted(glob.glob(arg, recursive=True)):
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
    """JSON Lines: one ``Report.to_dict()`` object, or error row, per line (UTF-8)."""

    header: str | None = None

    @staticmethod
    def format_row(row: dict[str, Any]) -> str:
        """One line of text (no newline) for a result row."""
        return json.dumps(row, ensure_ascii=False, allow_nan=False)

    @staticmethod
    def parse_line(line: str) -> tuple[str, bool]:
        """``(path, is_error)`` of a line this writer wrote; ValueError if it is not one."""
        row = json.loads(line)
        if not isinstance(row, dict) or not isinstance(row.get("path"), str):
            raise ValueError("not an object with a 'path'")
        return row["path"], "error" in row


#: First characters that make a spreadsheet read a cell as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that no spreadsheet runs as a formula: text starting with ``= + - @``, a tab or a
    carriage return gets a leading apostrophe (OWASP's advice against CSV injection). Numbers and
    None pass unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _unescape(cell: str) -> str:
    """The inverse of `spreadsheet_safe` for a cell read back (resume compares paths)."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def _one_line(value: Any) -> str:
    """A CSV cell: text without line breaks (so each row is exactly one line) and safe to open in a
    spreadsheet (`spreadsheet_safe`); numbers as they are; '' for None."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return str(value)
    return spreadsheet_safe(value.replace("\r\n", " ").replace("\n", " ").replace("\r", " "))


class CsvWriter:
    """CSV with the fixed columns `CSV_COLUMNS`, one image per line.

    Line breaks inside a text cell (feedback paragraphs, messages) are replaced by spaces, so that
    every row is exactly one line and a half-written last row can be cut off on resume.
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
        csv.writer(buf, lineterminator="").writerow([_one_line(cells.get(c)) for c in CSV_COLUMNS])
        return buf.getvalue()

    @staticmethod
    def parse_line(line: str) -> tuple[str, bool]:
        cells = next(csv.reader([line]))
        if len(cells) != len(CSV_COLUMNS) or not cells[0]:
            raise ValueError(f"expected {len(CSV_COLUMNS)} cells starting with a path, got {len(cells)}")
        return _unescape(cells[0]), cells[CSV_COLUMNS.index("error_kind")] != ""


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
# Analysis

_WORKER_INSPECTOR: Any = None


def _init_worker(options: dict[str, Any]) -> None:
    """Process-pool initializer: one `Inspector` per worker; Ctrl-C is handled by the parent only."""
    global _WORKER_INSPECTOR
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import cv2

    cv2.setNumThreads(1)  # parallelism comes from the workers; avoid oversubscribing the cores
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # likewise for a deep engine's torch, read when it is imported
    from .pipeline import Inspector

    _WORKER_INSPECTOR = Inspector(**{"threads": 1, **options})


def _analyse_one(path: str, inspector: Any = None) -> dict[str, Any]:
    """The result row for one path: ``Report.to_dict()`` or, for any failure, an error row."""
    inspector = inspector if inspector is not None else _WORKER_INSPECTOR
    try:
        row = inspector.analyze(path).to_dict()
    except Exception as exc:  # noqa: BLE001 - one bad image becomes an error row; the batch goes on
        return error_row(path, exc)
    row["path"] = path  # as the user's expansion gave it, whatever the loader normalised
    return row


def _crash_row(path: str) -> dict[str, Any]:
    return {"path": path, "error": {
        "kind": "internal_error",
        "message": "a worker process died while analysing this file alone (out of memory, or a crash in a "
                   "decoder); rerun with --retry-errors to try it again",
    }}


def _ping() -> bool:
    return True


def iter_rows(paths: Sequence[str], *, jobs: int = 1, inspector_options: Any = None
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

    Returns
    -------
    iterator of dict
        ``Report.to_dict()`` with ``path`` as given, or ``error_row(path, error)``. Any exception
        while analysing one image (typed or not) becomes an error row; if a worker process dies, the
        images it was working on are run again one at a time in a fresh pool, and the one that kills
        a worker on its own gets an ``internal_error`` row.
        Close the iterator (``contextlib.closing``) if you stop early, to stop the workers.

    Raises
    ------
    ValueError
        ``jobs < 1`` or invalid inspector options: raised by this call, before any image is read.
    RuntimeError
        While iterating: the worker processes could not start.
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
    if not parallel:
        return (_analyse_one(path, inspector) for path in paths)
    return _pool_rows(list(paths), jobs, options)


def _new_pool(jobs: int, options: dict[str, Any]) -> ProcessPoolExecutor:
    import multiprocessing

    # spawn: OpenCV's and BLAS's thread pools do not survive fork() reliably.
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(options,))


def _start_pool(jobs: int, options: dict[str, Any]) -> ProcessPoolExecutor:
    """A worker pool that has proved it can start (so a later failure is blamed on an image)."""
    pool = _new_pool(jobs, options)
    try:
        pool.submit(_ping).result()
    except BrokenProcessPool as exc:
        pool.shutdown(wait=False, cancel_futures=True)
        raise RuntimeError("the worker processes could not start (see the error above); "
                           "rerun with -j 1") from exc
    return pool


def _pool_rows(paths: Sequence[str], jobs: int, options: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Rows from a worker pool, at most ``2 * jobs`` images in flight.

    When a worker dies, the pool is broken and every image in flight fails with it. Those images are
    *suspects*: each is run again alone in a fresh pool, and only one that kills a worker on its own
    gets an ``internal_error`` row; the others get their normal rows.
    """
    pending = iter(paths)
    unsent: list[str] = []  # submission refused because the pool had just broken: never ran
    suspects: deque[str] = deque()
    isolated: str | None = None  # the suspect now running alone
    in_flight: dict[Future, str] = {}
    pool = _start_pool(jobs, options)
    try:
        while True:
            broken = False
            while isolated is None and not (suspects and in_flight):
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
            if not in_flight and not broken:
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
                for path in in_flight.values():
                    if path == isolated:
                        yield _crash_row(path)
                    else:
                        suspects.append(path)
                in_flight.clear()
                isolated = None
                pool.shutdown(wait=False, cancel_futures=True)
                pool = _start_pool(jobs, options)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


# --------------------------------------------------------------------------------------------------
# Batch runs


@dataclass
class BatchSummary:
    """What a `run_batch` call did.

    ``total`` counts the unique inputs (plus retried error paths that were not among them);
    ``analysed + skipped + failed == total`` unless the run was interrupted.
    """

    total: int = 0
    analysed: int = 0
    skipped: int = 0
    failed: int = 0
    output: str = ""
    interrupted: bool = False


def progress_bar(enabled: bool, total: int):
    """A Rich progress bar on stderr (count, images/s, time left); a silent one when not ``enabled``."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn,
                               TimeRemainingColumn)
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("-- img/s" if speed is None else f"{speed:.1f} img/s", style="progress.data.speed")

    progress = Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                        MofNCompleteColumn(), RateColumn(), TimeRemainingColumn(),
                        console=Console(stderr=True), disable=not enabled)
    return progress


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
        Counts; ``interrupted`` is True when Ctrl-C stopped the run. Every row finished before the
        interruption is in the file, and running the same call again resumes.

    Raises
    ------
    ValueError
        Unknown output extension, ``jobs < 1``, invalid inspector options, or an existing output
        that is not a PicInspector file (it is left untouched).
    """
    output = os.fspath(output)
    writer = writer_for(output)
    existing = _read_output(output, writer)
    retry = [r.path for r in existing if r.is_error] if retry_errors else []
    if retry:
        existing = [r for r in existing if not r.is_error]
        paths = [*paths, *retry]
    done = {_key(r.path) for r in existing}

    todo: list[str] = []
    seen: set[str] = set()
    summary = BatchSummary(output=output)
    for path in paths:
        key = _key(path)
        if key in seen:
            continue
        seen.add(key)
        summary.total += 1
        if key in done:
            summary.skipped += 1
        else:
            todo.append(path)

    rows = iter_rows(todo, jobs=jobs, inspector_options=inspector_options)  # validates before writing
    if retry:
        _rewrite(output, writer, existing)  # the file without its error rows; they are redone below
    parent = os.path.dirname(output)
    if parent:
        os.makedirs(parent, exist_ok=True)
    fresh = not os.path.exists(output) or os.path.getsize(output) == 0
    with open(output, "a", newline="", **_ENCODING) as fh, progress_bar(progress, len(todo)) as bar:
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
        except KeyboardInterrupt:
            summary.interrupted = True
    return summary
