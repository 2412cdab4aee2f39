"""Reading results files (`analyze -o` JSONL or CSV) back into result rows for a report."""

from __future__ import annotations

import csv
import json
import os
from typing import Any, Callable

from ..batch import CSV_COLUMNS, spreadsheet_safe
from . import SCORE_NAMES

_ENCODING = {"encoding": "utf-8", "errors": "surrogateescape"}


def _key(path: str) -> str:
    return os.path.normcase(os.path.abspath(path))


def _jsonl_rows(path: str) -> list[dict[str, Any]]:
    with open(path, "r", newline="", **_ENCODING) as fh:
        text = fh.read()
    lines = text.split("\n")
    if lines and not text.endswith("\n"):
        lines = lines[:-1]  # a half-written last line (the run was killed while writing it)
    rows = []
    for number, line in enumerate(lines, start=1):
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} line {number} is not JSON ({exc.msg}); is it an `analyze -o` file?") from None
        if not isinstance(row, dict) or not isinstance(row.get("path"), (str, type(None))):
            raise ValueError(f"{path} line {number} is not a PicInspector result row")
        if "error" not in row and not isinstance(row.get("scores"), dict):
            raise ValueError(f"{path} line {number} has neither 'scores' nor 'error'; is it an `analyze -o` file?")
        rows.append(row)
    return rows


def _unescape(cell: str) -> str:
    """Undo `spreadsheet_safe` on a CSV cell."""
    return cell[1:] if cell.startswith("'") and spreadsheet_safe(cell[1:]) != cell[1:] else cell


def _number(cell: str) -> float | None:
    try:
        return float(cell) if cell != "" else None
    except ValueError:
        return None


def _csv_rows(path: str) -> list[dict[str, Any]]:
    with open(path, "r", newline="", **_ENCODING) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return []
        if tuple(header) != CSV_COLUMNS:
            raise ValueError(f"{path} is not a PicInspector CSV (its header differs from `analyze -o x.csv`)")
        rows = []
        for number, cells in enumerate(reader, start=2):
            if not cells:
                continue
            if len(cells) != len(CSV_COLUMNS):
                continue  # a half-written last row
            c = {k: _unescape(v) for k, v in zip(CSV_COLUMNS, cells)}
            if c["error_kind"]:
                rows.append({"path": c["path"], "error": {"kind": c["error_kind"], "message": c["error_message"]}})
                continue
            rows.append({
                "path": c["path"],
                "width": int(_number(c["width"]) or 0), "height": int(_number(c["height"]) or 0),
                "format": c["format"], "exif": {},
                "scores": {k: _number(c[k]) for k in SCORE_NAMES},
                "scene": {"label": c["scene"], "probabilities": {}, "method": None,
                          "confidence": _number(c["scene_confidence"])},
                # the CSV keeps only the finding kinds; severities and suggestions are in the JSONL
                "findings": [{"kind": k, "severity": None, "message": k.replace("_", " "), "suggestion": None}
                             for k in c["findings"].split(";") if k],
                "feedback": c["feedback"], "measures": {}, "engine": c["engine"], "version": c["version"],
            })
    return rows


#: Results readers by (lower-case) extension.
READERS: dict[str, Callable[[str], list[dict[str, Any]]]] = {".jsonl": _jsonl_rows, ".csv": _csv_rows}


def is_results_file(path: str) -> bool:
    """True for an existing file whose extension is one of `READERS` (``.jsonl``, ``.csv``)."""
    return os.path.splitext(path)[1].lower() in READERS and os.path.isfile(path)


def read_results(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Result rows of an `analyze -o` file, one per photo (the last row wins for a repeated path).

    Parameters
    ----------
    path : str or path-like
        A ``.jsonl`` (full rows) or ``.csv`` file (scores, scene label, finding kinds and feedback:
        no measures, probabilities, severities or suggestions).

    Returns
    -------
    list of dict
        In file order; ``Report.to_dict()`` shapes or error rows ``{"path", "error"}``.

    Raises
    ------
    ValueError
        Unknown extension, or a file that is not a PicInspector results file (naming the line).
    OSError
        The file cannot be read.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in READERS:
        raise ValueError(f"cannot read results from {path!r}: use a .jsonl or .csv file from `analyze -o`")
    rows = READERS[ext](path)
    last: dict[str, int] = {}
    for i, row in enumerate(rows):
        last[_key(row["path"]) if row.get("path") else f"#{i}"] = i
    keep = set(last.values())
    return [row for i, row in enumerate(rows) if i in keep]
