"""BIQ2021 (Ahmed et al., J. Electronic Imaging 2022): 12,000 photos with MOS in [0, 1].

Two layouts are read:

- The project's copy (``../shared/data/biq2021_train``): ``root/labels.csv`` with columns
  ``image, mos, subset`` and the images in ``root/images/``.
- The original repository (nisarahmedrana/BIQ2021): ``root/Train (Images and MOS).csv`` and/or
  ``root/Test (Images and MOS).csv``, columns ``Image Name, MOS`` (the train file has two more,
  empty, columns), images named ``ss01 (12).jpg`` in ``root/Images/``. Both files are read when
  both are present; pass one of the CSV files as ``root`` to read only that split.

The subset comes from the file-name prefix when there is no ``subset`` column: ``ss01`` is the
author's gallery, ``ss02`` the intentional capture distortions, ``ss03`` the Unsplash photos.
"""

from __future__ import annotations

import re
from pathlib import Path

from ._base import (DatasetError, Sample, cell, column_index, find_ci, locate_images, missing_file, number,
                    read_csv_table, to01)

LABELS = "labels.csv"
ORIGINAL = ("Train (Images and MOS).csv", "Test (Images and MOS).csv")
MOS_RANGE = (0.0, 1.0)
SUBSETS = {"ss01": "author_gallery", "ss02": "intentional_capture_distortions", "ss03": "unsplash"}


def _subset_from_name(name: str) -> str | None:
    match = re.match(r"(ss\d\d)", Path(name).name.lower())
    return SUBSETS.get(match.group(1)) if match else None


def _read(path: Path) -> list[Sample]:
    header, rows = read_csv_table(path)
    cols = column_index(header, path, {"image": ("image", "Image Name", "image_name"), "mos": ("mos",)},
                        {"subset": ("subset",)})
    names = [str(cell(r, cols["image"])) for r in rows if cell(r, cols["image"]) is not None]
    images = locate_images(path.parent, ("images", ""), names, f"BIQ2021 listed in {path}")
    samples = []
    for line, row in enumerate(rows, start=2):
        name = cell(row, cols["image"])
        if name is None:
            continue
        name = str(name)
        mos = number(cell(row, cols["mos"]), path, line, "MOS")
        subset = cell(row, cols.get("subset")) or _subset_from_name(name)
        samples.append(Sample(path=str(images / name), mos=mos, mos01=to01(mos, *MOS_RANGE), subset=subset))
    return samples


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    labels = find_ci(root, LABELS)
    if labels is not None:
        return [labels]
    return [p for p in (find_ci(root, name) for name in ORIGINAL) if p is not None]


def load_biq2021(root: str | Path) -> list[Sample]:
    """Read BIQ2021 in either layout (see the module docstring).

    Parameters
    ----------
    root : str or path-like
        The dataset folder, or one of its CSV files.

    Returns
    -------
    list of Sample
        In file order. ``mos`` is BIQ2021's MOS (0-1; a few original values are slightly below 0)
        and ``mos01`` the same clipped to [0, 1]; ``subset`` names the content subset.

    Raises
    ------
    DatasetError
        No label file, a missing column or bad value, or none of the listed images is found.

    References
    ----------
    N. Ahmed et al., "BIQ2021: a large-scale blind image quality assessment database",
    J. Electronic Imaging 31(5):053010, 2022, doi:10.1117/1.JEI.31.5.053010.
    """
    root = Path(root)
    files = _files(root)
    if not files:
        raise missing_file(root / LABELS, f"BIQ2021 needs labels.csv (image, mos, subset; images in images/) or "
                                          f"the original {' / '.join(repr(n) for n in ORIGINAL)} "
                                          f"(Image Name, MOS; images in Images/)")
    samples: list[Sample] = []
    for path in files:
        samples += _read(path)
    if not samples:
        raise DatasetError(f"{', '.join(map(str, files))}: no image rows")
    return samples


def looks_like_biq2021(root: Path) -> bool:
    if root.is_file():
        return root.name.lower() in {n.lower() for n in ORIGINAL}
    labels = find_ci(root, LABELS)
    if labels is not None:
        try:
            header, _ = read_csv_table(labels)
        except DatasetError:
            return False
        return {"image", "mos"} <= {h.strip().lower() for h in header}
    return any(find_ci(root, name) is not None for name in ORIGINAL)
