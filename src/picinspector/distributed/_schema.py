"""The Arrow (Parquet) schema of result rows, and exact conversions between rows and tables.

A result row is ``Report.to_dict()`` (with ``path`` as the input gave it) or an error row
``{"path", "error": {"kind", "message"}}``, exactly what the local batch writes as JSON lines. In
Parquet the parts that have a fixed shape are typed columns, so that they can be queried without
parsing (``scores.quality``, ``scene.label``, ``findings[*].kind``, ``error.kind``); the parts whose
keys vary from photo to photo or engine to engine (EXIF, the measures) are JSON text::

    path       string, never null
    width      int64
    height     int64
    format     string
    exif       string                JSON object, as in the JSON lines
    scores     struct<quality, brightness, colorfulness, contrast, noisiness, sharpness: double>
    scene      struct<label: string, probabilities: struct<animal, cityscape, human, indoor,
                      landscape, night, plant, still_life, others: double>,
                      method: string, confidence: double>
    findings   list<struct<kind, severity, message, suggestion: string>>
    feedback   string
    measures   string                JSON object, as in the JSON lines
    engine     string
    version    string
    error      struct<kind: string, message: string>    null unless the photo failed
    extra      string                JSON object of any other top-level keys; null when none

An error row has ``path`` and ``error`` and nulls elsewhere. `rows_to_table` and `table_to_rows`
are exact inverses on rows of this shape (tests check it), so reading the Parquet back gives the
same dicts as the JSON lines of a local run.
"""

from __future__ import annotations

import functools
import json
from typing import Any, Iterable, Sequence

from ..report import SCORE_NAMES, error_row
from ..scene import SCENES

__all__ = ["SCHEMA_KEY", "SCHEMA_VERSION", "SchemaMismatch", "fit_row", "rows_to_table", "schema", "table_to_rows"]

#: Parquet key-value metadata that marks a PicInspector result file, and its schema version.
SCHEMA_KEY = b"picinspector"
SCHEMA_VERSION = b"results/1"

_FINDING_KEYS = ("kind", "severity", "message", "suggestion")
_SCENE_KEYS = ("label", "probabilities", "method", "confidence")
_ERROR_KEYS = ("kind", "message")
#: Report keys in `Report.to_dict` order; the JSON-text ones are stored as text.
_REPORT_KEYS = ("path", "width", "height", "format", "exif", "scores", "scene", "findings", "feedback",
                "measures", "engine", "version")
_JSON_KEYS = ("exif", "measures")


@functools.lru_cache(maxsize=None)
def schema():
    """The `pyarrow.Schema` of result tables (see the module docstring)."""
    import pyarrow as pa

    text = pa.string()
    return pa.schema([
        pa.field("path", text, nullable=False),
        pa.field("width", pa.int64()),
        pa.field("height", pa.int64()),
        pa.field("format", text),
        pa.field("exif", text),
        pa.field("scores", pa.struct([(name, pa.float64()) for name in SCORE_NAMES])),
        pa.field("scene", pa.struct([
            ("label", text),
            ("probabilities", pa.struct([(name, pa.float64()) for name in SCENES])),
            ("method", text),
            ("confidence", pa.float64()),
        ])),
        pa.field("findings", pa.list_(pa.struct([(key, text) for key in _FINDING_KEYS]))),
        pa.field("feedback", text),
        pa.field("measures", text),
        pa.field("engine", text),
        pa.field("version", text),
        pa.field("error", pa.struct([(key, text) for key in _ERROR_KEYS])),
        pa.field("extra", text),
    ], metadata={SCHEMA_KEY: SCHEMA_VERSION})


class SchemaMismatch(ValueError):
    """A row whose fixed-shape parts do not have the documented keys."""


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def _exact_keys(value: Any, keys: Sequence[str], what: str) -> dict[str, Any]:
    if not isinstance(value, dict) or set(value) != set(keys):
        got = sorted(value) if isinstance(value, dict) else type(value).__name__
        raise SchemaMismatch(f"{what} must have the keys {list(keys)}, got {got}")
    return value


def _record(row: dict[str, Any]) -> dict[str, Any]:
    """One row as a record of the schema; SchemaMismatch if its fixed parts have other keys."""
    path = row.get("path")
    if not isinstance(path, str):
        raise SchemaMismatch(f"a row needs a text 'path', got {path!r}")
    if "error" in row:
        error = _exact_keys(row["error"], _ERROR_KEYS, "error")
        extra = {k: v for k, v in row.items() if k not in ("path", "error")}
        return {"path": path, "error": dict(error), "extra": _dumps(extra) if extra else None}
    missing = [k for k in _REPORT_KEYS if k not in row]
    if missing:
        raise SchemaMismatch(f"a report row lacks {missing}")
    scores = _exact_keys(row["scores"], SCORE_NAMES, "scores")
    scene = row["scene"]
    if scene is not None:
        scene = dict(_exact_keys(scene, _SCENE_KEYS, "scene"))
        scene["probabilities"] = dict(_exact_keys(scene["probabilities"], SCENES, "scene probabilities"))
    findings = row["findings"]
    if not isinstance(findings, list):
        raise SchemaMismatch(f"findings must be a list, got {type(findings).__name__}")
    findings = [dict(_exact_keys(f, _FINDING_KEYS, "a finding")) for f in findings]
    record = {k: row[k] for k in _REPORT_KEYS}
    record.update(scores=dict(scores), scene=scene, findings=findings,
                  **{k: _dumps(row[k]) for k in _JSON_KEYS})
    extra = {k: v for k, v in row.items() if k not in _REPORT_KEYS}
    record["extra"] = _dumps(extra) if extra else None
    record["error"] = None
    return record


def fit_row(row: dict[str, Any]) -> dict[str, Any]:
    """A record of the schema for ``row``; a row that does not fit becomes an ``internal_error`` row
    naming its path (as the local batch does with a row its writer cannot format)."""
    try:
        record = _record(row)
        _dumps(record)  # NaN, or objects JSON cannot hold, fail here and not in pyarrow
        return record
    except (SchemaMismatch, TypeError, ValueError) as exc:
        path = row.get("path") if isinstance(row.get("path"), str) else str(row.get("path"))
        return _record(error_row(path, SchemaMismatch(f"result does not fit the Parquet schema: {exc}")))


def rows_to_table(rows: Iterable[dict[str, Any]]):
    """A `pyarrow.Table` with `schema()` for result rows (see `fit_row` for rows that do not fit)."""
    import pyarrow as pa

    return pa.Table.from_pylist([fit_row(row) for row in rows], schema=schema())


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def table_to_rows(table) -> list[dict[str, Any]]:
    """Result rows (the dicts of the JSON lines) from a table written with `schema()`."""
    rows = []
    for record in table.to_pylist():
        extra = _loads(record.get("extra")) or {}
        if record.get("error") is not None:
            rows.append({"path": record["path"], "error": record["error"], **extra})
            continue
        row = {k: record[k] for k in _REPORT_KEYS}
        for key in _JSON_KEYS:
            row[key] = _loads(row[key])
        row.update(extra)
        rows.append(row)
    return rows
