"""What every dataset loader shares: `Sample`, `DatasetError`, and readers for CSV and XLSX tables."""

from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..scene import SCENES

#: The SPAQ attribute names, as PicInspector's attribute scores are named.
ATTRIBUTES = ("brightness", "colorfulness", "contrast", "noisiness", "sharpness")

_EVAL_EXTRA = 'pip install "picinspector[eval]"'


class DatasetError(ValueError):
    """A dataset cannot be read: a missing annotation file, a missing column, a bad value.

    The message names the file and says what the format expects.
    """


@dataclass
class Sample:
    """One image of an IQA dataset with its human annotations.

    Attributes
    ----------
    path : str
        Image file (it may not exist: the evaluation counts and skips missing files).
    mos : float or None
        The mean opinion score on the dataset's own scale (SPAQ 0-100, KonIQ-10k 1-5, BIQ2021 0-1).
    mos01 : float or None
        The same score mapped linearly onto [0, 1] from the dataset's nominal range (clipped).
        The evaluation compares ``100 * mos01`` with PicInspector's 0-100 quality, so RMSE is in
        points of that scale; the rank correlations do not depend on the mapping.
    attributes : dict
        Human attribute scores (SPAQ: brightness, colorfulness, contrast, noisiness, sharpness;
        0-100 like ours).
    scenes : list of str
        Scene labels, names from ``picinspector.scene.SCENES`` (an image may have several).
    subset : str or None
        The dataset's own grouping (BIQ2021: author_gallery, intentional_capture_distortions,
        unsplash), used for per-subset metrics.
    exif : dict
        Capture settings the dataset ships (SPAQ's EXIF_tags.xlsx).
    """

    path: str
    mos: float | None = None
    mos01: float | None = None
    attributes: dict[str, float] = field(default_factory=dict)
    scenes: list[str] = field(default_factory=list)
    subset: str | None = None
    exif: dict[str, Any] = field(default_factory=dict)


def to01(value: float | None, lo: float, hi: float) -> float | None:
    """``value`` mapped linearly from [lo, hi] onto [0, 1] and clipped (None stays None)."""
    if value is None:
        return None
    return min(1.0, max(0.0, (value - lo) / (hi - lo)))


# --------------------------------------------------------------------------------------------------
# Files


def find_ci(folder: str | os.PathLike[str], name: str) -> Path | None:
    """``folder/name`` if it exists, else an entry of ``folder`` whose name matches ignoring case."""
    folder = Path(folder)
    exact = folder / name
    if exact.exists():
        return exact
    try:
        entries = os.listdir(folder)
    except OSError:
        return None
    for entry in sorted(entries):
        if entry.lower() == name.lower():
            return folder / entry
    return None


def locate_images(folder: Path, candidates: Sequence[str], names: Sequence[str], what: str) -> Path:
    """The candidate sub-folder of ``folder`` ("" is ``folder`` itself) holding most of the first
    image names; DatasetError naming the places searched when none holds any of them."""
    probe = [n for n in names[:25] if n]
    best, best_hits = None, 0
    for sub in candidates:
        where = find_ci(folder, sub) if sub else folder
        if where is None or not where.is_dir():
            continue
        hits = sum((where / n).is_file() for n in probe)
        if hits > best_hits:
            best, best_hits = where, hits
    if best is None:
        searched = ", ".join(str(folder / s) if s else str(folder) for s in candidates)
        raise DatasetError(f"{what}: none of the listed images (e.g. {probe[0] if probe else '?'!r}) was found; "
                           f"looked in {searched}")
    return best


def missing_file(path: Path, expects: str) -> DatasetError:
    return DatasetError(f"missing annotation file {path}: {expects}")


# --------------------------------------------------------------------------------------------------
# Tables


def norm_header(cell: Any) -> str:
    """A header cell for matching: lower case, runs of spaces/underscores/dashes as one space."""
    if cell is None:
        return ""
    return re.sub(r"[\s_\-]+", " ", str(cell).strip().lower()).strip()


def read_csv_table(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header (raw cells) and the non-empty rows of a CSV file (UTF-8, an optional BOM)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = [row for row in csv.reader(fh) if any(c.strip() for c in row)]
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not a UTF-8 text CSV ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: not a readable CSV ({exc})") from None
    except OSError as exc:
        raise DatasetError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not rows:
        raise DatasetError(f"{path}: the file is empty; expected a header row and one row per image")
    return rows[0], rows[1:]


def read_xlsx_table(path: Path) -> tuple[list[Any], list[tuple[Any, ...]]]:
    """Header and the non-empty rows of the first sheet of an .xlsx file (values, not formulas).

    Needs openpyxl (the ``eval`` extra); read-only mode keeps memory flat for large sheets.
    """
    try:
        import openpyxl
    except ImportError as exc:
        raise ImportError(f"reading {path} needs openpyxl: {_EVAL_EXTRA}") from exc
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - zipfile/XML/openpyxl errors all mean "not a readable xlsx"
        raise DatasetError(f"{path}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
    try:
        rows = (r for r in book.worksheets[0].iter_rows(values_only=True)
                if any(c is not None and str(c).strip() for c in r))
        header = next(rows, None)
        if header is None:
            raise DatasetError(f"{path}: the first sheet is empty; expected a header row and one row per image")
        return list(header), [tuple(r) for r in rows]
    finally:
        book.close()


def column_index(header: Sequence[Any], path: Path, required: dict[str, Iterable[str]],
                 optional: dict[str, Iterable[str]] | None = None) -> dict[str, int]:
    """Map field names to column positions by (normalised) header aliases.

    ``required`` and ``optional`` map a field to its accepted header spellings. A missing required
    column raises DatasetError naming the file, the columns it has and the ones expected.
    """
    normed = [norm_header(h) for h in header]
    out: dict[str, int] = {}
    for fields, needed in ((required, True), (optional or {}, False)):
        for name, aliases in fields.items():
            keys = [norm_header(a) for a in aliases]
            col = next((i for key in keys for i, h in enumerate(normed) if h == key), None)
            if col is not None:
                out[name] = col
            elif needed:
                have = ", ".join(repr(str(h)) for h in header if h is not None and str(h).strip())
                raise DatasetError(f"{path}: no {' / '.join(repr(a) for a in aliases)} column "
                                   f"(the header has {have or 'nothing'})")
    return out


def cell(row: Sequence[Any], col: int | None) -> Any:
    """The value at ``col`` (None when the row is short, the column absent or the cell blank)."""
    if col is None or col >= len(row):
        return None
    value = row[col]
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def number(value: Any, path: Path, line: int, what: str) -> float | None:
    """A finite float from a cell (None for a blank cell); DatasetError naming file, row and column."""
    if value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise DatasetError(f"{path} row {line}: {what} is {value!r}, not a number") from None
    if not math.isfinite(out):
        raise DatasetError(f"{path} row {line}: {what} is {value!r}, not a finite number")
    return out


# --------------------------------------------------------------------------------------------------
# Scenes

#: Other spellings of our scene names (after lower-casing and joining words with "_").
_SCENE_ALIASES = {
    "indoor_scene": "indoor", "night_scene": "night", "stilllife": "still_life", "still": "still_life",
    "other": "others", "city": "cityscape", "people": "human", "portrait": "human", "plants": "plant",
    "animals": "animal",
}


def scene_name(text: Any) -> str | None:
    """Our scene name for a label ("Night scene", "Still-life", "indoor" ...) or None if unknown."""
    key = re.sub(r"[^a-z0-9]+", "_", str(text).strip().lower()).strip("_")
    if key in SCENES:
        return key
    return _SCENE_ALIASES.get(key)
