"""A generic CSV of your own images and scores.

Columns (header names ignore case; only ``image`` is required)::

    image        path of the image, relative to the CSV's folder (or absolute)   aliases: path, file
    mos          the opinion score (blank = none)                                 alias: score
    brightness, colorfulness, contrast, noisiness, sharpness    optional human attribute scores
    scene        optional scene labels separated by ";" (names from picinspector.scene.SCENES)
    subset       optional group name, for per-subset metrics
"""

from __future__ import annotations

from pathlib import Path

from ..scene import SCENES
from ._base import (ATTRIBUTES, DatasetError, Sample, cell, column_index, missing_file, number, read_csv_table,
                    scene_name, to01)

#: Nominal MOS ranges tried in this order when none is given: the first that holds every value wins.
_RANGES = ((0.0, 1.0), (1.0, 5.0), (0.0, 5.0), (0.0, 10.0), (0.0, 100.0))


def _csv_file(root: Path) -> Path:
    if root.is_file():
        return root
    if not root.exists():
        raise missing_file(root, "expected a CSV file, or a folder holding exactly one .csv")
    found = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if len(found) != 1:
        listed = ", ".join(p.name for p in found) or "none"
        raise DatasetError(f"{root}: expected exactly one .csv file (columns image, mos, ...), found {listed}; "
                           "pass the CSV file itself")
    return found[0]


def infer_mos_range(values: list[float]) -> tuple[float, float]:
    """The first nominal range of 0-1, 1-5, 0-5, 0-10, 0-100 that holds every value, else their
    own min-max (a single value maps to 0.5 of a unit range around it)."""
    if not values:
        return (0.0, 1.0)
    lo, hi = min(values), max(values)
    for a, b in _RANGES:
        if a <= lo and hi <= b:
            return (a, b)
    return (lo, hi) if hi > lo else (lo - 0.5, lo + 0.5)


def load_csv(root: str | Path, mos_range: tuple[float, float] | None = None) -> list[Sample]:
    """Read a generic CSV (columns in the module docstring).

    Parameters
    ----------
    root : str or path-like
        The CSV file, or a folder holding exactly one ``.csv``.
    mos_range : (float, float), optional
        The nominal MOS range, for ``mos01``. Default: inferred with `infer_mos_range` (only RMSE
        depends on it; the correlations do not).

    Returns
    -------
    list of Sample
        In file order.

    Raises
    ------
    DatasetError
        No CSV, no ``image`` column, a bad number, or an unknown scene name (each naming the file
        and row).
    """
    path = _csv_file(Path(root))
    header, rows = read_csv_table(path)
    cols = column_index(header, path, {"image": ("image", "path", "file")},
                        {"mos": ("mos", "score"), "scene": ("scene", "scenes"), "subset": ("subset",),
                         **{a: (a,) for a in ATTRIBUTES}})
    parsed = []
    for line, row in enumerate(rows, start=2):
        image = cell(row, cols["image"])
        if image is None:
            raise DatasetError(f"{path} row {line}: the image cell is empty")
        mos = number(cell(row, cols.get("mos")), path, line, "mos")
        attributes = {}
        for a in ATTRIBUTES:
            value = number(cell(row, cols.get(a)), path, line, a)
            if value is not None:
                attributes[a] = value
        scenes: list[str] = []
        for label in (cell(row, cols.get("scene")) or "").split(";"):
            if not label.strip():
                continue
            scene = scene_name(label)
            if scene is None:
                raise DatasetError(f"{path} row {line}: scene {label.strip()!r} is not one of {', '.join(SCENES)}")
            if scene not in scenes:
                scenes.append(scene)
        image_path = Path(image) if Path(image).is_absolute() else path.parent / image
        parsed.append((str(image_path), mos, attributes, scenes, cell(row, cols.get("subset"))))
    lo, hi = mos_range or infer_mos_range([p[1] for p in parsed if p[1] is not None])
    if not hi > lo:
        raise ValueError(f"mos_range must be (low, high) with low < high, got {mos_range!r}")
    return [Sample(path=p, mos=m, mos01=to01(m, lo, hi), attributes=a, scenes=s, subset=sub)
            for p, m, a, s, sub in parsed]
