"""Compression: JPEG quality from the file's quantisation tables, and visible 8x8 blockiness."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..io._photo import Photo
from ._exposure import _check_image
from ._registry import measure_group

# ITU-T T.81 (JPEG) Annex K, tables K.1 (luminance) and K.2 (chrominance), natural (row) order.
ANNEX_K_LUMINANCE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.int64,
).ravel()
ANNEX_K_CHROMINANCE = np.array(
    [
        [17, 18, 24, 47, 99, 99, 99, 99],
        [18, 21, 26, 66, 99, 99, 99, 99],
        [24, 26, 56, 99, 99, 99, 99, 99],
        [47, 66, 99, 99, 99, 99, 99, 99],
    ]
    + [[99] * 8] * 4,
    dtype=np.int64,
).ravel()

#: The JPEG block size, in native pixels.
BLOCK = 8
#: Smallest block period (in detail pixels) at which blockiness is measured.
MIN_PERIOD = 4
#: Blockiness reads at most about this many rows (and columns): enough for a stable ratio.
BLOCKINESS_SAMPLES = 256
#: Added to both sides of the boundary/interior ratio so that a flat image reads 1.
_BLOCK_EPS = 1e-4


def ijg_table(base, quality: int, baseline: bool = True) -> np.ndarray:
    """The quantisation table the IJG library (libjpeg, Pillow) writes for ``quality``.

    Parameters
    ----------
    base : array_like, (64,)
        Base table (Annex K luminance or chrominance).
    quality : int
        IJG quality 1..100.
    baseline : bool
        Clamp entries to 255 (``force_baseline``, what Pillow and most encoders do).

    Returns
    -------
    ndarray of int64, (64,)

    Notes
    -----
    IJG ``jpeg_quality_scaling``: ``scale = 5000 / q`` below 50, else ``200 - 2 q`` (percent);
    entry = ``(base * scale + 50) // 100`` clamped to 1..255 (or 1..32767).

    References
    ----------
    Independent JPEG Group, libjpeg 6b, ``jcparam.c`` (``jpeg_quality_scaling``,
    ``jpeg_add_quant_table``); ITU-T Recommendation T.81 (1992), Annex K.
    """
    q = int(quality)
    if not 1 <= q <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    scale = 5000 // q if q < 50 else 200 - 2 * q
    table = (np.asarray(base, dtype=np.int64) * scale + 50) // 100
    return np.clip(table, 1, 255 if baseline else 32767)


def _tables_array(tables) -> list[np.ndarray]:
    if isinstance(tables, dict):
        items = [tables[k] for k in sorted(tables)]
    else:
        items = list(tables)
    out = []
    for i, t in enumerate(items):
        arr = np.asarray(t, dtype=np.float64).ravel()
        if arr.size != 64:
            raise ValueError(f"quantisation table {i} has {arr.size} entries, expected 64")
        if not np.isfinite(arr).all() or (arr < 1).any() or (arr != np.round(arr)).any():
            raise ValueError(f"quantisation table {i} must hold integers >= 1")
        out.append(arr)
    return out


# Candidate tables for q = 1..100, rows = quality - 1.
_QUALITIES = np.arange(1, 101)
_CANDIDATES = {
    (name, baseline): np.log(np.stack([ijg_table(base, q, baseline) for q in _QUALITIES]))
    for name, base in (("luma", ANNEX_K_LUMINANCE), ("chroma", ANNEX_K_CHROMINANCE))
    for baseline in (True, False)
}


def estimate_jpeg_quality(tables) -> int | None:
    """IJG-equivalent quality (1-100) of a JPEG from its quantisation tables.

    Parameters
    ----------
    tables : dict or sequence
        ``{table_id: 64 values}`` in natural (row-major) order, as Pillow's
        ``Image.quantization`` gives them (Pillow de-zigzags the file's DQT order on reading), or
        a sequence of such tables. Table 0 is compared with the Annex K luminance table, the
        others with the chrominance table.

    Returns
    -------
    int or None
        The quality in 1..100 whose IJG tables are nearest; None when ``tables`` is empty.

    Notes
    -----
    Exhaustive search over the 100 IJG qualities: the error of a candidate is the sum over all
    entries of all tables of ``|log(actual) - log(predicted)|``, so every frequency counts the
    same whatever its step size (least squares on the raw values would be decided by the large
    high-frequency steps, which saturate at 255 at low quality). Ties go to the lower quality.
    For tables written by IJG-based encoders (Pillow, libjpeg, ImageMagick, most web tools) the
    answer is exact. Cameras and Photoshop use their own tables; the result is then the quality
    of the IJG tables that quantise about as coarsely. Entries above 255 (12-bit, non-baseline
    tables) are compared with unclamped IJG tables.

    References
    ----------
    ITU-T Recommendation T.81 (1992), Annex K; Independent JPEG Group libjpeg 6b ``jcparam.c``.
    Kornblum, J. D. (2008). Using JPEG quantization tables to identify imagery processed by
    software. Digital Investigation 5, S21-S25. doi:10.1016/j.diin.2008.05.004
    """
    if tables is None:
        return None
    arrays = _tables_array(tables)
    if not arrays:
        return None
    baseline = max(float(a.max()) for a in arrays) <= 255
    error = np.zeros(len(_QUALITIES))
    for i, arr in enumerate(arrays):
        cand = _CANDIDATES[("luma" if i == 0 else "chroma", baseline)]
        error += np.abs(cand - np.log(arr)[None, :]).sum(axis=1)
    return int(_QUALITIES[int(np.argmin(error))])


def _phase_means(profile: np.ndarray, first: int, period: int) -> np.ndarray:
    """Per-phase sums and counts of ``profile``, whose element j lies at position ``first + j``."""
    phase = (np.arange(first, first + profile.size) + 1) % period
    sums = np.bincount(phase, weights=profile, minlength=period)
    counts = np.bincount(phase, minlength=period).astype(np.float64)
    return np.stack([sums, counts])


def _ratio_at(stats: np.ndarray, phase: int) -> float:
    sums, counts = stats
    rest = (sums.sum() - sums[phase]) / (counts.sum() - counts[phase])
    return float((sums[phase] / counts[phase] + _BLOCK_EPS) / (rest + _BLOCK_EPS))


def _phase_ratio(profile: np.ndarray, period: int) -> float:
    """Boundary-phase mean over the mean of the other phases of a difference profile.

    ``profile[j]`` is the mean |x[j + 1] - x[j]|; its block-boundary phase is ``(j + 1) % period``.
    The grid phase is chosen on one half of the profile and the ratio read on the other half
    (then the other way round, and averaged), so that picking the strongest of ``period`` noisy
    phases does not bias the ratio above 1 on images without blocks.
    """
    half = (profile.size // (2 * period)) * period
    if half < period:  # too short to split: choose and read on the whole profile
        stats = _phase_means(profile, 0, period)
        return _ratio_at(stats, int(np.argmax(stats[0] / stats[1])))
    left = _phase_means(profile[:half], 0, period)
    right = _phase_means(profile[half:], half, period)
    best_left = int(np.argmax(left[0] / left[1]))
    best_right = int(np.argmax(right[0] / right[1]))
    return 0.5 * (_ratio_at(right, best_left) + _ratio_at(left, best_right))


def block_grid(gray, period: int = BLOCK) -> tuple[tuple[int, float], tuple[int, float]] | None:
    """Where a block grid lies in an image, and how visible it is, in each direction.

    Parameters
    ----------
    gray : ndarray, (H, W)
        Luma in [0, 1] (float32), at least ``2 * period`` px a side.
    period : int
        Block size in pixels.

    Returns
    -------
    ((phase_x, ratio_x), (phase_y, ratio_y)) or None
        ``phase``: the block boundaries lie between pixel ``j`` and ``j + 1`` wherever
        ``(j + 1) % period == phase`` (columns for x, rows for y); ``ratio``: the mean step across
        those boundaries over the mean step elsewhere (about 1 without a grid). None when the
        image is under two blocks in either direction.

    Notes
    -----
    The same boundary/interior difference profile as :func:`blockiness`, read on the whole
    profile: the phase is the strongest of the ``period`` phases, so on an image without blocks
    the ratio is biased a little above 1 (use :func:`blockiness` for an unbiased reading).

    References
    ----------
    Wang, Z., Sheikh, H. R. & Bovik, A. C. (2002). No-reference perceptual quality assessment of
    JPEG compressed images. Proc. IEEE ICIP 2002, vol. 1, 477-480. doi:10.1109/ICIP.2002.1038064
    """
    h, w = gray.shape
    if w < 2 * period or h < 2 * period:
        return None
    rows = gray[:: max(1, h // BLOCKINESS_SAMPLES)]
    cols = np.ascontiguousarray(gray[:, :: max(1, w // BLOCKINESS_SAMPLES)])
    out = []
    for profile in (cv2.reduce(cv2.absdiff(rows[:, 1:], rows[:, :-1]), 0, cv2.REDUCE_AVG).ravel(),
                    cv2.reduce(cv2.absdiff(cols[1:], cols[:-1]), 1, cv2.REDUCE_AVG).ravel()):
        stats = _phase_means(profile, 0, period)
        phase = int(np.argmax(stats[0] / stats[1]))
        out.append((phase, _ratio_at(stats, phase)))
    return out[0], out[1]


def blockiness(gray, period: int = BLOCK) -> float | None:
    """Blocking artefacts: mean step across block boundaries over the mean step elsewhere.

    Parameters
    ----------
    gray : ndarray, (H, W)
        Luma in [0, 1], at a resolution where JPEG blocks are ``period`` pixels wide.
    period : int
        Block size in pixels (8 at native resolution, 4 for a JPEG decoded at 1/2 scale).

    Returns
    -------
    float or None
        The mean of the horizontal and vertical ratios: about 1 (within a few per cent either
        way) without blocking, rising as blocks appear (about 1.05 at JPEG quality 90, 1.3-1.5 at
        50 and 2.3-3.2 at 10 on the sample photos). None when the image is under two blocks in
        both directions.

    Notes
    -----
    For each direction, the absolute differences between neighbouring pixels are averaged along
    the other direction (on at most about 256 evenly spaced rows or columns), giving a profile
    across the image; its values are pooled by position modulo ``period``. The ratio is the
    largest pooled mean (the block-boundary phase) over the mean of the others (block
    interiors). The grid phase is not assumed to start at pixel 0 (rotated or cropped JPEGs
    shift it): it is the strongest phase of one half of the profile, and the ratio is read on the
    other half (both ways, averaged), so that choosing the best of ``period`` noisy phases does
    not bias images without blocks above 1. This is the boundary versus in-block difference of
    Wang, Sheikh & Bovik (2002), used as a ratio; the periodic 8-pixel structure it detects is
    the one whose spectral peaks Wang, Bovik & Evans (2000) measure.

    References
    ----------
    Wang, Z., Bovik, A. C. & Evans, B. L. (2000). Blind measurement of blocking artifacts in
    images. Proc. IEEE ICIP 2000, vol. 3, 981-984. doi:10.1109/ICIP.2000.899622

    Wang, Z., Sheikh, H. R. & Bovik, A. C. (2002). No-reference perceptual quality assessment of
    JPEG compressed images. Proc. IEEE ICIP 2002, vol. 1, 477-480. doi:10.1109/ICIP.2002.1038064
    """
    if isinstance(period, bool) or int(period) != period or period < 2:
        raise ValueError(f"period must be an integer >= 2, got {period}")
    period = int(period)
    gray = _check_image(gray, "gray", None)
    h, w = gray.shape
    ratios = []
    if w >= 2 * period:
        rows = gray[:: max(1, h // BLOCKINESS_SAMPLES)]
        diff = cv2.absdiff(rows[:, 1:], rows[:, :-1])
        ratios.append(_phase_ratio(cv2.reduce(diff, 0, cv2.REDUCE_AVG).ravel(), period))
    if h >= 2 * period:
        cols = np.ascontiguousarray(gray[:, :: max(1, w // BLOCKINESS_SAMPLES)])
        diff = cv2.absdiff(cols[1:], cols[:-1])
        ratios.append(_phase_ratio(cv2.reduce(diff, 1, cv2.REDUCE_AVG).ravel(), period))
    if not ratios:
        return None
    value = float(np.mean(ratios))
    if not math.isfinite(value):
        raise ValueError("gray contains non-finite values")
    return value


def block_period(detail_scale: float) -> int | None:
    """JPEG block size in pixels of an image decoded at ``detail_scale``; None if not usable.

    Parameters
    ----------
    detail_scale : float
        Decoded pixels per native pixel (1, 1/2, 1/4, 1/8 for JPEG DCT-domain scaling).

    Returns
    -------
    int or None
        ``8 * detail_scale`` when it is a whole number >= 4, else None (blocks of 2 px or less
        cannot be told from detail; a non-integer period means the grid was resampled away).

    Notes
    -----
    Decoding at 1/2 scale keeps each 8x8 block as a 4x4 block, so boundaries stay sharp.

    References
    ----------
    ITU-T Recommendation T.81 (1992), section A.3 (8x8 blocks).
    """
    scale = float(detail_scale)
    if not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"detail_scale must be a positive number, got {detail_scale}")
    period = BLOCK * scale
    nearest = round(period)
    if abs(period - nearest) > 1e-6 or nearest < MIN_PERIOD:
        return None
    return int(nearest)


@measure_group(
    "compression",
    outputs=[
        (
            "jpeg_quality",
            "IJG quality 1-100",
            "Quality whose IJG (libjpeg) tables best match the file's quantisation tables; "
            "None if not a JPEG.",
        ),
        (
            "blockiness",
            "ratio, 1 = none",
            "Mean luma step across the 8x8 block grid over the step inside blocks; None when "
            "blocks are under 4 px at the decoded scale.",
        ),
    ],
)
def measure_compression(photo: Photo) -> dict:
    """Compression group for one photo (adapter over the pure functions)."""
    period = block_period(photo.detail_scale)
    return {
        "jpeg_quality": estimate_jpeg_quality(photo.jpeg_quantization or None),
        "blockiness": None if period is None else blockiness(photo.detail_gray, period),
    }
