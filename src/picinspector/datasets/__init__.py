"""Loaders for image-quality datasets: SPAQ, KonIQ-10k, BIQ2021 and a generic CSV.

Every loader is ``load_x(root) -> list[Sample]`` and is chosen by name in `DATASETS`;
`detect_format` picks one from the files present. A missing annotation file or column raises
`DatasetError` naming the file and what the format expects. Image files are *not* required to
exist (the evaluation counts and skips missing ones), but a loader refuses a dataset where none of
the first listed images can be found, since that means the image folder is wrong.

This package is for evaluation and training; ``picinspector.analyze`` does not import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ._base import ATTRIBUTES, DatasetError, Sample
from ._biq2021 import load_biq2021, looks_like_biq2021
from ._captions import (
    CAPTION_FORMATS,
    CaptionSample,
    detect_caption_format,
    load_caption_csv,
    load_caption_jsonl,
    load_captions,
    load_llava,
    load_qinstruct,
    write_captions,
)
from ._csv import infer_mos_range, load_csv
from ._koniq import load_koniq, looks_like_koniq
from ._spaq import load_spaq, looks_like_spaq

__all__ = [
    "ATTRIBUTES", "CAPTION_FORMATS", "CITATIONS", "DATASETS", "CaptionSample", "DatasetError", "Sample",
    "detect_caption_format", "detect_format", "infer_mos_range", "load_biq2021", "load_caption_csv",
    "load_caption_jsonl", "load_captions", "load_csv", "load_dataset", "load_koniq", "load_llava",
    "load_qinstruct", "load_spaq", "subsample", "write_captions",
]

#: Loaders by format name.
DATASETS: dict[str, Callable[[str | Path], list[Sample]]] = {
    "spaq": load_spaq, "koniq": load_koniq, "biq2021": load_biq2021, "csv": load_csv,
}

#: How to cite each dataset wherever results on it are reported.
CITATIONS: dict[str, str] = {
    "spaq": "Y. Fang et al., Perceptual Quality Assessment of Smartphone Photography, CVPR 2020, "
            "doi:10.1109/CVPR42600.2020.00373",
    "koniq": "V. Hosu et al., KonIQ-10k: An Ecologically Valid Database for Deep Learning of Blind Image "
             "Quality Assessment, IEEE TIP 29, 2020, doi:10.1109/TIP.2020.2967829",
    "biq2021": "N. Ahmed et al., BIQ2021: A Large-Scale Blind Image Quality Assessment Database, "
               "J. Electronic Imaging 31(5):053010, 2022, doi:10.1117/1.JEI.31.5.053010",
}

#: Format detectors, tried in this order; the generic CSV is the fallback.
_DETECTORS: dict[str, Callable[[Path], bool]] = {
    "spaq": looks_like_spaq, "koniq": looks_like_koniq, "biq2021": looks_like_biq2021,
    "csv": lambda root: root.is_file() and root.suffix.lower() == ".csv"
    or root.is_dir() and sum(p.suffix.lower() == ".csv" for p in root.iterdir() if p.is_file()) == 1,
}


def detect_format(root: str | Path) -> str:
    """The dataset format of ``root``, from the files present.

    Parameters
    ----------
    root : str or path-like
        A dataset folder, or an annotation file.

    Returns
    -------
    str
        A key of `DATASETS`: "spaq" (``Annotations/MOS and Image attribute scores.xlsx``), "koniq"
        (``koniq10k_scores_and_distributions.csv``), "biq2021" (``labels.csv`` with image and mos
        columns, or ``Train/Test (Images and MOS).csv``), else "csv" (a .csv file, or a folder
        with exactly one).

    Raises
    ------
    DatasetError
        ``root`` does not exist, or nothing identifies a format.
    """
    root = Path(root)
    if not root.exists():
        raise DatasetError(f"dataset {root} does not exist")
    for name, looks in _DETECTORS.items():
        if looks(root):
            return name
    raise DatasetError(
        f"cannot tell the dataset format of {root}: found no 'Annotations/MOS and Image attribute scores.xlsx' "
        "(spaq), 'koniq10k_scores_and_distributions.csv' (koniq), 'labels.csv' or 'Train (Images and MOS).csv' "
        "(biq2021), nor a single .csv (csv); name the format explicitly")


def load_dataset(root: str | Path, format: str | None = None) -> tuple[str, list[Sample]]:
    """Load a dataset by format name, or by `detect_format` when ``format`` is None.

    Parameters
    ----------
    root : str or path-like
    format : str, optional
        A key of `DATASETS`.

    Returns
    -------
    (str, list of Sample)
        The format used and the samples.

    Raises
    ------
    ValueError
        Unknown format name.
    DatasetError
        See the loaders.
    """
    if format is None:
        format = detect_format(root)
    if format not in DATASETS:
        raise ValueError(f"unknown dataset format {format!r}; choose from {', '.join(DATASETS)}")
    if not Path(root).exists():
        raise DatasetError(f"dataset {root} does not exist")
    return format, DATASETS[format](root)


def subsample(samples: list[Sample], limit: int | None, seed: int = 0) -> list[Sample]:
    """A seeded random subset of ``limit`` samples, kept in dataset order (all when ``limit`` is
    None or not smaller than the dataset).

    Parameters
    ----------
    samples : list of Sample
    limit : int or None
        Positive.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same subset.

    Returns
    -------
    list of Sample
    """
    if limit is None or limit >= len(samples):
        return list(samples)
    if limit < 1:
        raise ValueError(f"limit must be positive, got {limit!r}")
    keep = np.sort(np.random.default_rng(seed).choice(len(samples), size=limit, replace=False))
    return [samples[i] for i in keep]
