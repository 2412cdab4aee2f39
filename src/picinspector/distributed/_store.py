"""Where a distributed run commits its rows: a folder of Parquet parts, or a JSON-lines file.

Both are written by the driver only, as rows come back from the cluster, so the output needs no
storage shared with the workers, and both survive a SIGKILL at any instant:

- **Parquet folder.** Each commit is one new part ``part-<run>-<n>.parquet``, written to a hidden
  temporary name, flushed to disk, then renamed (an atomic step on POSIX filesystems). A part is
  therefore either wholly there or not there; a temporary left by a killed run is deleted by the
  next run. Resume reads the ``path`` and ``error`` columns of the parts.
- **JSON lines.** Rows are appended and flushed in the `picinspector.batch.JsonlWriter` format,
  and resume is `picinspector.batch.done_paths` (which also cuts a half-written last line).

Either store holds the local batch's exclusive lock on ``<output>.lock`` (`picinspector.batch`) while a
run writes into it, so that a second run on the same output, local or on Ray, stops with a message that
names the holder instead of writing duplicates.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from typing import Any, Sequence

from ..batch import OutputLocked
from ._schema import SCHEMA_KEY, schema, table_to_rows

__all__ = ["JsonlStore", "OutputLocked", "ParquetStore", "open_store", "read_results"]

_PART = re.compile(r"^part-[0-9A-Za-z_-]+\.parquet$")
_TMP_PREFIX = ".tmp-"


def _take_lock(output: str):
    """The local batch's lock on ``<output>.lock`` (entered); `OutputLocked` names its holder."""
    from ..batch import _OutputLock

    lock = _OutputLock(output)
    lock.__enter__()
    return lock


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ParquetStore:
    """A folder of Parquet parts with the result schema (see the module docstring).

    Parameters
    ----------
    folder : str
        Created if missing. An existing folder may hold only parts, their temporaries and the lock
        (and hidden files such as ``.DS_Store``); anything else means it is not a results folder,
        and it is refused untouched.
    """

    format = "parquet"

    def __init__(self, folder: str) -> None:
        self.output = folder
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise ValueError(f"{folder} is a file; a Ray run writes a folder of Parquet parts (or a .jsonl file)")
        if os.path.isdir(folder):
            foreign = sorted(n for n in os.listdir(folder) if not n.startswith(".") and not _PART.match(n))
            if foreign:
                shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
                raise ValueError(f"{folder} holds files that are not PicInspector result parts ({shown}); "
                                 "choose another output folder")
        os.makedirs(folder, exist_ok=True)
        self._lock = _take_lock(folder.rstrip(os.sep) or folder)
        for name in os.listdir(folder):  # a killed run's unfinished part: never committed, so never counted
            if name.startswith(_TMP_PREFIX):
                os.remove(os.path.join(folder, name))
        self._run = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
        self._count = 0

    def parts(self) -> list[str]:
        """The committed parts, sorted by name (so by run, then by order of commit)."""
        return sorted(os.path.join(self.output, n) for n in os.listdir(self.output) if _PART.match(n))

    def _read(self, part: str, columns: Sequence[str] | None = None):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            file = pq.ParquetFile(part)
            meta = file.schema_arrow.metadata or {}
            if SCHEMA_KEY not in meta:
                raise ValueError("not a PicInspector result part (no picinspector schema metadata)")
            return file.read(columns=list(columns) if columns else None)
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise ValueError(f"{part}: cannot read this part ({exc}); move it out of {self.output} "
                             "and rerun") from None

    def existing(self) -> list[tuple[str, bool]]:
        """``(path, is_error)`` of every committed row."""
        out = []
        for part in self.parts():
            table = self._read(part, ["path", "error"])
            errors = table.column("error").is_null().to_pylist()
            out.extend(zip(table.column("path").to_pylist(), (not ok for ok in errors)))
        return out

    def drop_errors(self) -> list[str]:
        """Remove the error rows (for a retry) and return their paths.

        Each part that holds error rows is replaced, atomically, by a copy without them (or removed
        when nothing else is in it), so a kill during this step leaves every row once or the error
        row still there, never a duplicate.
        """
        import pyarrow.compute as pc

        paths: list[str] = []
        for part in self.parts():
            table = self._read(part)
            failed = table.column("error").is_valid()
            if not pc.any(failed).as_py():
                continue
            paths.extend(table.filter(failed).column("path").to_pylist())
            kept = table.filter(pc.invert(failed))
            if kept.num_rows:
                self._write(kept, part)
            else:
                os.remove(part)
        _fsync_dir(self.output)
        return paths

    def _write(self, table, final: str) -> None:
        import pyarrow.parquet as pq

        tmp = os.path.join(self.output, f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet")
        with open(tmp, "wb") as fh:
            pq.write_table(table, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)

    def commit(self, table) -> None:
        """Write ``table`` (with `schema()`) as one new part, atomically."""
        if table.num_rows == 0:
            return
        self._count += 1
        self._write(table, os.path.join(self.output, f"part-{self._run}-{self._count:06d}.parquet"))
        _fsync_dir(self.output)

    def close(self) -> None:
        self._lock.__exit__(None, None, None)


class JsonlStore:
    """A JSON-lines file in the local batch's format (`picinspector.batch.JsonlWriter`)."""

    format = "jsonl"

    def __init__(self, path: str) -> None:
        from ..batch import done_paths

        self.output = path
        if os.path.isdir(path):
            raise ValueError(f"output {path!r} is a folder")
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._lock = _take_lock(path)
        try:
            self._fh = open(path, "a", encoding="utf-8", errors="surrogateescape", newline="")  # noqa: SIM115
            done_paths(path)  # validates the file, and cuts a half-written last line
        except (OSError, ValueError):
            self._lock.__exit__(None, None, None)
            raise

    def _lines(self) -> list[str]:
        with open(self.output, encoding="utf-8", errors="surrogateescape", newline="") as fh:
            return [line.rstrip("\r\n") for line in fh if line.strip()]

    def existing(self) -> list[tuple[str, bool]]:
        from ..batch import JsonlWriter

        return [JsonlWriter.parse_line(line) for line in self._lines()]

    def drop_errors(self) -> list[str]:
        """Rewrite the file (atomically) without its error rows; return their paths."""
        from ..batch import JsonlWriter

        kept, paths = [], []
        for line in self._lines():
            path, is_error = JsonlWriter.parse_line(line)
            (paths.append(path) if is_error else kept.append(line))
        if paths:
            tmp = f"{self.output}.tmp-{os.getpid()}"
            with open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as fh:
                fh.writelines(line + "\n" for line in kept)
                fh.flush()
                os.fsync(fh.fileno())
            self._fh.close()
            os.replace(tmp, self.output)  # the lock is on <output>.lock, so it stays held
            self._fh = open(self.output, "a", encoding="utf-8", errors="surrogateescape", newline="")  # noqa: SIM115
        return paths

    def commit(self, lines: Sequence[str]) -> None:
        """Append result lines (each a `JsonlWriter.format_row` text) and flush them to disk."""
        if not lines:
            return
        self._fh.write("".join(line + "\n" for line in lines))
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()
        self._lock.__exit__(None, None, None)


def open_store(output: str | os.PathLike[str]):
    """`JsonlStore` for a ``.jsonl`` path, else `ParquetStore` (a folder)."""
    output = os.fspath(output)
    suffix = os.path.splitext(output)[1].lower()
    if suffix == ".jsonl":
        return JsonlStore(output)
    if suffix in (".csv", ".json", ".parquet", ".pq"):
        raise ValueError(f"cannot write {output!r} with --ray: give a folder (Parquet parts are written into it) "
                         "or a .jsonl file")
    return ParquetStore(output)


def read_results(output: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every row of a distributed run's output, as the dicts the local batch writes as JSON lines.

    Parameters
    ----------
    output : str or path-like
        A results folder (Parquet parts) or a ``.jsonl`` file.

    Returns
    -------
    list of dict
        In commit order (not input order: rows come back as the workers finish them).
    """
    output = os.fspath(output)
    if os.path.splitext(output)[1].lower() == ".jsonl":
        with open(output, encoding="utf-8", errors="surrogateescape") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    if not os.path.isdir(output):
        raise ValueError(f"{output} is not a results folder")
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for name in sorted(n for n in os.listdir(output) if _PART.match(n)):
        table = pq.read_table(os.path.join(output, name), schema=schema())
        rows.extend(table_to_rows(table))
    return rows
