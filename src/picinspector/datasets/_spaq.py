"""SPAQ (Fang et al., CVPR 2020): 11,125 smartphone photos with MOS, five attributes, scenes, EXIF.

Layout of the released database (the annotation layout was checked against public code that reads
these files; e.g. pyiqa's SPAQ meta-info script and CSV exports of the three workbooks)::

    root/Annotations/MOS and Image attribute scores.xlsx
        Image name | MOS | Brightness | Colorfulness | Contrast | Noisiness | Sharpness   (all 0-100)
    root/Annotations/Scene category labels.xlsx        (optional)
        Image name | Animal | Cityscape | Human | Indoor scene | Landscape | Night scene | Plant |
        Still-life | Others
        one column per category; a cell > 0 marks the category (an image with k categories has
        1/k in each of them, so the row sums to 1).
    root/Annotations/EXIF_tags.xlsx                     (optional)
        Image name | Focal length | F-number | Exposure time | ISO | Brightness | Flash | Time | (unnamed)
        Time is encoded as two numbers (the second column has no header).
    root/TestImage/00001.jpg ...

Besides one-hot scene columns, scene files that hold numeric labels in one or more columns named
like "Scene", "Scene 1", "Label" or "Category" are read too: 0-8 index SPAQ's categories in the
order above (which is also ``picinspector.scene.SCENES``); text labels are matched by name.
File and folder names are matched ignoring case.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..scene import SCENES
from ._base import (ATTRIBUTES, DatasetError, Sample, cell, column_index, find_ci, locate_images, missing_file,
                    norm_header, number, read_xlsx_table, scene_name, to01)

MOS_FILE = "MOS and Image attribute scores.xlsx"
SCENE_FILE = "Scene category labels.xlsx"
EXIF_FILE = "EXIF_tags.xlsx"
MOS_RANGE = (0.0, 100.0)

_NAME = ("Image name", "image", "image_name", "name")
_EXIF_KEYS = {
    "focal length": "focal_length_mm", "f number": "f_number", "exposure time": "exposure_time_s",
    "iso": "iso", "brightness": "brightness_value", "flash": "flash", "time": "time",
}
_LABEL_COLUMN = re.compile(r"^(scene|label|category|class)( ?(category|label))?( ?\d+)?$")


def annotations_dir(root: Path) -> Path:
    """``root/Annotations`` (any case), or ``root`` itself when the workbooks lie there."""
    ann = find_ci(root, "Annotations")
    return ann if ann is not None and ann.is_dir() else root


def _scene_labels(path: Path) -> dict[str, list[str]]:
    """Image name -> our scene names, from one-hot category columns or numeric label columns."""
    header, rows = read_xlsx_table(path)
    name_col = column_index(header, path, {"image": _NAME})["image"]
    onehot = {i: scene_name(h) for i, h in enumerate(header) if i != name_col and h is not None}
    onehot = {i: s for i, s in onehot.items() if s is not None}
    labels = [i for i, h in enumerate(header) if i != name_col and _LABEL_COLUMN.match(norm_header(h))]
    if not onehot and not labels:
        have = ", ".join(repr(str(h)) for h in header if h is not None)
        raise DatasetError(f"{path}: found neither one column per scene category ({', '.join(SCENES)}, or "
                           f"SPAQ's 'Indoor scene', 'Night scene', 'Still-life') nor label columns named "
                           f"'Scene', 'Scene 1', 'Label' ... (the header has {have})")
    out: dict[str, list[str]] = {}
    for line, row in enumerate(rows, start=2):
        name = cell(row, name_col)
        if name is None:
            continue
        found: list[str] = []
        for col, scene in onehot.items():
            value = number(cell(row, col), path, line, repr(header[col]))
            if value is not None and value > 0 and scene not in found:
                found.append(scene)
        for col in labels:
            value = cell(row, col)
            if value is None:
                continue
            scene = _label_value(value, path, line, header[col])
            if scene not in found:
                found.append(scene)
        out[str(name)] = found
    return out


def _label_value(value: Any, path: Path, line: int, column: Any) -> str:
    if isinstance(value, str) and not re.fullmatch(r"\s*\d+(\.0*)?\s*", value):
        scene = scene_name(value)
        if scene is None:
            raise DatasetError(f"{path} row {line}: scene label {value!r} in column {column!r} is not one of "
                               f"{', '.join(SCENES)}")
        return scene
    index = number(value, path, line, repr(column))
    if index is None or index != int(index) or not 0 <= int(index) < len(SCENES):
        raise DatasetError(f"{path} row {line}: scene label {value!r} in column {column!r} is not a category "
                           f"number 0-{len(SCENES) - 1} ({', '.join(f'{i}={s}' for i, s in enumerate(SCENES))})")
    return SCENES[int(index)]


def _exif(path: Path) -> dict[str, dict[str, Any]]:
    """Image name -> capture settings. Known headers get our EXIF key names; a column without a
    header continues the one before it (``time`` -> ``time_2``)."""
    header, rows = read_xlsx_table(path)
    name_col = column_index(header, path, {"image": _NAME})["image"]
    keys: dict[int, str] = {}
    previous = None
    for i, h in enumerate(header):
        if i == name_col:
            continue
        text = norm_header(h)
        if text:
            key = _EXIF_KEYS.get(text, re.sub(r"[^a-z0-9]+", "_", text).strip("_"))
            previous = key
        elif previous is not None:
            key = f"{previous}_2"
        else:
            continue
        keys[i] = key
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        name = cell(row, name_col)
        if name is None:
            continue
        values = {}
        for col, key in keys.items():
            value = cell(row, col)
            if value is None:
                continue
            try:
                values[key] = float(value)
            except (TypeError, ValueError):
                values[key] = str(value)
        out[str(name)] = values
    return out


def load_spaq(root: str | Path) -> list["Sample"]:
    """Read the SPAQ database.

    Parameters
    ----------
    root : str or path-like
        The folder holding ``Annotations/`` and ``TestImage/`` (see the module docstring).

    Returns
    -------
    list of Sample
        In the order of the MOS workbook. ``mos`` is SPAQ's 0-100 MOS, ``mos01 = mos / 100``;
        ``attributes`` holds the five attribute scores (0-100); ``scenes`` and ``exif`` are filled
        when their workbooks are present.

    Raises
    ------
    DatasetError
        The MOS workbook is missing, lacks a column, or holds a bad value; a scene workbook is
        present but has neither layout; none of the images is found.
    ImportError
        openpyxl is not installed (``pip install "picinspector[eval]"``).

    References
    ----------
    Y. Fang, H. Zhu, Y. Zeng, K. Ma and Z. Wang, "Perceptual quality assessment of smartphone
    photography", CVPR 2020, doi:10.1109/CVPR42600.2020.00373.
    """
    root = Path(root)
    ann = annotations_dir(root)
    mos_path = find_ci(ann, MOS_FILE)
    if mos_path is None:
        raise missing_file(root / "Annotations" / MOS_FILE,
                           "SPAQ keeps its scores there (columns Image name, MOS, Brightness, Colorfulness, "
                           "Contrast, Noisiness, Sharpness)")
    header, rows = read_xlsx_table(mos_path)
    cols = column_index(header, mos_path, {"image": _NAME, "mos": ("MOS",)},
                        {a: (a,) for a in ATTRIBUTES})
    scene_path = find_ci(ann, SCENE_FILE)
    scenes = _scene_labels(scene_path) if scene_path is not None else {}
    exif_path = find_ci(ann, EXIF_FILE)
    exif = _exif(exif_path) if exif_path is not None else {}

    names = [str(cell(r, cols["image"])) for r in rows if cell(r, cols["image"]) is not None]
    images = locate_images(root, ("TestImage", "images", ""), names, f"SPAQ at {root}")
    samples = []
    for line, row in enumerate(rows, start=2):
        name = cell(row, cols["image"])
        if name is None:
            continue
        name = str(name)
        mos = number(cell(row, cols["mos"]), mos_path, line, "MOS")
        attributes = {}
        for a in ATTRIBUTES:
            value = number(cell(row, cols.get(a)), mos_path, line, a)
            if value is not None:
                attributes[a] = value
        samples.append(Sample(path=str(images / name), mos=mos, mos01=to01(mos, *MOS_RANGE),
                              attributes=attributes, scenes=list(scenes.get(name, [])), subset=None,
                              exif=dict(exif.get(name, {}))))
    return samples


def looks_like_spaq(root: Path) -> bool:
    return root.is_dir() and find_ci(annotations_dir(root), MOS_FILE) is not None
