"""KonIQ-10k (Hosu et al., IEEE TIP 2020): 10,073 in-the-wild photos with MOS.

Layout of the release::

    root/koniq10k_scores_and_distributions.csv
        "image_name","c1","c2","c3","c4","c5","c_total","MOS","SD","MOS_zscore"
        MOS is on the 1-5 ACR scale, MOS_zscore on 0-100.
    root/1024x768/*.jpg   and/or   root/512x384/*.jpg

The CSV may also sit in a folder of the same name (as the download unpacks) and the images in
``koniq10k_1024x768/1024x768`` or ``koniq10k_512x384/512x384``, or in ``root`` itself; the folder
holding the listed images is found by looking. The full-resolution folder wins when both hold them.
A ``set`` column, if present (as in ``koniq10k_distributions_sets.csv``), becomes the subset.
"""

from __future__ import annotations

from pathlib import Path

from ._base import (DatasetError, Sample, cell, column_index, find_ci, locate_images, missing_file, number,
                    read_csv_table, to01)

CSV_NAME = "koniq10k_scores_and_distributions.csv"
MOS_RANGE = (1.0, 5.0)
_IMAGE_DIRS = ("1024x768", "koniq10k_1024x768/1024x768", "512x384", "koniq10k_512x384/512x384", "images", "")


def _csv_path(root: Path) -> Path | None:
    if root.is_file():
        return root
    for candidate in (CSV_NAME, f"{CSV_NAME[:-4]}/{CSV_NAME}", "koniq10k_distributions_sets.csv"):
        folder, _, name = candidate.rpartition("/")
        where = find_ci(root, folder) if folder else root
        if where is not None and (path := find_ci(where, name)) is not None:
            return path
    return None


def load_koniq(root: str | Path) -> list[Sample]:
    """Read KonIQ-10k.

    Parameters
    ----------
    root : str or path-like
        The dataset folder (or the scores CSV itself).

    Returns
    -------
    list of Sample
        In CSV order. ``mos`` is the 1-5 MOS and ``mos01 = (mos - 1) / 4``. When the CSV has only
        ``MOS_zscore``, ``mos`` is that (0-100) and ``mos01 = mos / 100``.

    Raises
    ------
    DatasetError
        The CSV is missing or lacks ``image_name`` and a MOS column, a value is not a number, or
        no folder holds the listed images.

    References
    ----------
    V. Hosu, H. Lin, T. Sziranyi and D. Saupe, "KonIQ-10k: an ecologically valid database for deep
    learning of blind image quality assessment", IEEE TIP 29:4041-4056, 2020,
    doi:10.1109/TIP.2020.2967829.
    """
    root = Path(root)
    path = _csv_path(root)
    if path is None:
        raise missing_file(root / CSV_NAME, "KonIQ-10k keeps its scores there (columns image_name, MOS (1-5), "
                                            "MOS_zscore, ...)")
    header, rows = read_csv_table(path)
    cols = column_index(header, path, {"image": ("image_name", "image")},
                        {"mos": ("MOS",), "zscore": ("MOS_zscore",), "set": ("set",)})
    if "mos" in cols:
        mos_col, lo, hi = cols["mos"], *MOS_RANGE
    elif "zscore" in cols:
        mos_col, lo, hi = cols["zscore"], 0.0, 100.0
    else:
        raise DatasetError(f"{path}: no 'MOS' (1-5) or 'MOS_zscore' (0-100) column")
    names = [str(cell(r, cols["image"])) for r in rows if cell(r, cols["image"]) is not None]
    base = path.parent if path.parent.name.lower() != CSV_NAME[:-4] else path.parent.parent
    images = locate_images(base, _IMAGE_DIRS, names, f"KonIQ-10k at {base}")
    samples = []
    for line, row in enumerate(rows, start=2):
        name = cell(row, cols["image"])
        if name is None:
            continue
        mos = number(cell(row, mos_col), path, line, "MOS")
        samples.append(Sample(path=str(images / str(name)), mos=mos, mos01=to01(mos, lo, hi),
                              subset=cell(row, cols.get("set"))))
    return samples


def looks_like_koniq(root: Path) -> bool:
    if root.is_file():
        return root.name.lower() in (CSV_NAME, "koniq10k_distributions_sets.csv")
    return _csv_path(root) is not None
