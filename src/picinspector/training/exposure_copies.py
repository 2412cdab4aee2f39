"""Brighter and darker copies of training photos, with targets taken from the dataset's own opinions.

A dataset of real photos with opinion scores (BIQ2021) holds few photos that are simply over- or
under-exposed versions of good ones, so a head fitted on it learns little of what a wrong exposure
does to a good photo (docs/effnet.md: fitted without copies, the effnet head's SRCC on the graded
over-exposure was -0.21, against -0.19 for the classic engine).
This module makes such versions, in the manner of ranking-based augmentation (Liu et al., RankIQA,
ICCV 2017): a share of the training photos each get copies ``ev`` stops brighter or darker (linear
light times ``2 ** ev``, re-saved as JPEG), and a copy's target is its photo's opinion score lowered by
``scale`` times what the dataset's people give, on average, for that much more clipped highlight
(brighter copies) or dark area (darker copies; `PRICED_BY`): the training photos' MOS against that
share, fitted monotone decreasing (isotonic regression). A copy never scores higher than its photo.

Copies join the training rows only; cross-validation scores the real photos alone. Which photos get
copies is a function of the file name and the seed (`ExposureCopies.picked`), so a benchmark can leave
the copied photos out of its test set.

References
----------
X. Liu, J. van de Weijer and A. D. Bagdanov, "RankIQA: Learning from rankings for no-reference image
quality assessment", ICCV 2017.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..io import linear_to_srgb, srgb_to_linear

#: The measure whose change prices a copy, by the sign of its exposure shift: the one along which
#: BIQ2021's opinion falls. Brighter: clipped highlights (MOS 0.653 below 2% clipped, 0.607 at 18%,
#: 0.527 at 57%). Darker: the share of pixels under L* 25 (0.659 up to 23%, 0.566 at 85%, 0.31 at
#: 99%); crushed shadows would price a darker copy at nothing (MOS flat up to the 99th percentile),
#: which teaches the head that darker is as good.
PRICED_BY = {1: "highlights_clipped_pct", -1: "dark_fraction"}


def shift_exposure(rgb: np.ndarray, ev: float) -> np.ndarray:
    """``rgb`` (sRGB in [0, 1]) ``ev`` stops brighter (negative: darker) in linear light, clipped to [0, 1]
    as a sensor or an encoder would clip it."""
    return np.clip(linear_to_srgb(srgb_to_linear(rgb) * np.float32(2.0 ** ev)), 0.0, 1.0)


@dataclass(frozen=True)
class ExposureCopies:
    """Which training photos get copies, how far their exposure moves, and how their targets are priced."""

    # Brighter only by default: darker copies, priced by what BIQ2021's people give for dark area,
    # cost nearly nothing and so taught the head that a darker photo is as good (docs/effnet.md).
    evs: tuple[float, ...] = (1.0, 2.0)
    fraction: float = 0.25  # share of the photos given copies
    scale: float = 0.3  # share of the dataset's average opinion change given to a copy
    seed: int = 0
    quality: int = 75  # JPEG quality of a saved copy (BIQ2021's own)

    def __post_init__(self) -> None:
        if not self.evs or any(ev == 0 for ev in self.evs):
            raise ValueError(f"exposure shifts must be non-zero stops, got {self.evs}")
        if not 0.0 < self.fraction <= 1.0 or self.scale < 0.0:
            raise ValueError(f"fraction must be in (0, 1] and scale >= 0, got {self.fraction}, {self.scale}")

    def picked(self, names: Sequence[str]) -> np.ndarray:
        """Whether each photo (by file name, not path) gets copies: a hash of the seed and the name below
        ``fraction``, so the choice does not depend on which other photos are in the list."""
        def u(name: str) -> float:
            digest = hashlib.sha256(f"{self.seed}:{os.path.basename(name)}".encode()).digest()
            return int.from_bytes(digest[:8], "big") / 2.0 ** 64
        return np.array([u(n) < self.fraction for n in names], dtype=bool)

    @classmethod
    def from_json(cls, meta: dict) -> "ExposureCopies":
        """The rule a head's ``meta["exposure_copies"]`` records (the inverse of `to_json`)."""
        return cls(evs=tuple(float(ev) for ev in meta["evs"]), fraction=float(meta["fraction"]),
                   scale=float(meta["scale"]), seed=int(meta["seed"]), quality=int(meta["quality"]))

    def to_json(self) -> dict:
        return {"evs": list(self.evs), "fraction": self.fraction, "scale": self.scale, "seed": self.seed,
                "quality": self.quality, "priced_by": {("+" if k > 0 else "-"): v for k, v in PRICED_BY.items()},
                "method": "RankIQA-style copies (Liu et al. 2017); target: MOS lowered by scale x the drop of the "
                          "isotonic MOS-vs-priced_by curve"}


def copy_path(folder: str | os.PathLike[str], source: str, ev: float) -> Path:
    """Where the copy of ``source`` shifted by ``ev`` stops is kept: its name, a digest of its absolute
    path (two photos of one name in different folders get different copies) and the shift."""
    stem = os.path.splitext(os.path.basename(source))[0]
    digest = hashlib.sha256(os.path.abspath(source).encode()).hexdigest()[:8]
    return Path(folder) / f"{stem}-{digest}.ev{ev:+g}.jpg"


def write_copy(source: str, ev: float, target: Path, quality: int) -> None:
    """Decode ``source`` (orientation applied, as the loader does), shift its exposure, save as JPEG with
    the source's colour profile, so that the loader reads the copy in the same colours."""
    from PIL import Image, ImageOps

    with Image.open(source) as im:
        profile = im.info.get("icc_profile")
        rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), np.float32) / 255.0
    u8 = (shift_exposure(rgb, ev) * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=quality, **({"icc_profile": profile} if profile else {}))
    tmp = target.with_name(target.name + ".part")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(target)


@dataclass
class CopyList:
    """The copies made for a list of photos: ``source[i]`` is the index of copy ``i``'s photo."""

    paths: list[str]
    source: np.ndarray  # (n,) int64
    ev: np.ndarray  # (n,) float64


def make_copies(sources: Sequence[str], folder: str | os.PathLike[str], rule: ExposureCopies) -> CopyList:
    """Write (once: existing files are kept) the copies of the photos ``rule`` picks; returns them all.

    A photo that cannot be decoded gets no copies (its own error is reported where it is measured)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths, src, evs = [], [], []
    for i in np.flatnonzero(rule.picked(sources)):
        for ev in rule.evs:
            target = copy_path(folder, sources[i], ev)
            if not target.is_file():
                try:
                    write_copy(sources[i], ev, target, rule.quality)
                except (OSError, ValueError):
                    break
            paths.append(str(target.resolve()))
            src.append(int(i))
            evs.append(float(ev))
    return CopyList(paths, np.array(src, dtype=np.int64), np.array(evs, dtype=np.float64))


def copy_targets(rule: ExposureCopies, y: np.ndarray, real: dict[str, np.ndarray], train: np.ndarray,
                 copies: CopyList, copied: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The copies of the ``train`` photos and their targets.

    Parameters
    ----------
    y : (n,) array
        The real photos' targets (MOS in [0, 1]).
    real, copied : {measure: array}
        `PRICED_BY`'s measures of the real photos (n,) and of the copies (len(copies.paths),).
    train : array of int
        Indices of the training photos; the curves are fitted on them alone.

    Returns
    -------
    rows : array of int
        Indices into ``copies`` of the copies whose photo is in ``train``.
    targets : array
        Their targets: the photo's ``y`` plus ``rule.scale`` times the (never positive) change of the
        fitted MOS-vs-measure curve from the photo's value to the copy's.
    """
    from sklearn.isotonic import IsotonicRegression

    in_train = np.isin(copies.source, train)
    rows = np.flatnonzero(in_train)
    targets = np.empty(len(rows))
    for sign, key in PRICED_BY.items():
        mine = np.sign(copies.ev[rows]) == sign
        if not mine.any():
            continue
        curve = IsotonicRegression(increasing=False, out_of_bounds="clip").fit(real[key][train], y[train]).predict
        r, s = rows[mine], copies.source[rows[mine]]
        targets[mine] = y[s] + rule.scale * np.minimum(0.0, curve(copied[key][r]) - curve(real[key][s]))
    return rows, targets
