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


#: JPEG's luma (ITU-R BT.601 full range, JFIF): the channel whose DCT the file quantised.
JFIF_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: The 8-point orthonormal DCT-II matrix: ``D @ block @ D.T`` is JPEG's forward DCT (T.81 A.3.3).
_U = np.arange(BLOCK)
DCT_MATRIX = (np.sqrt(2.0 / BLOCK) * np.cos(np.pi * (2 * _U[None, :] + 1) * _U[:, None] / (2 * BLOCK)))
DCT_MATRIX[0] /= np.sqrt(2.0)
DCT_MATRIX = DCT_MATRIX.astype(np.float32)
#: The 2-D DCT of a row-major 8x8 block as one (64, 64) product: ``block.ravel() @ _DCT2_T``.
_DCT2_T = np.kron(DCT_MATRIX, DCT_MATRIX).T.astype(np.float32)
#: Zig-zag order of the 64 coefficients (T.81 figure A.6), as row-major indices.
ZIGZAG = [u * BLOCK + v for u, v in sorted(((u, v) for u in range(BLOCK) for v in range(BLOCK)),
                                          key=lambda p: (p[0] + p[1], p[1] if (p[0] + p[1]) % 2 == 0 else p[0]))]
#: Coefficients whose quantisation step is estimated: DC and the 20 lowest AC frequencies, those
#: that stay non-zero often enough to show their lattice.
LATTICE_POSITIONS = ZIGZAG[:21]
#: Candidate quantisation steps: every step a baseline table can hold.
STEP_CANDIDATES = np.arange(2, 256, dtype=np.float64)
#: Coefficients within this of zero (DCT units, 8-bit levels) are read as quantised to zero: the
#: pixels' rounding to whole levels moves a coefficient by about 0.3.
LATTICE_ZERO = 1.0
#: A step is accepted when its lattice score is at least this (1 = every coefficient on the
#: lattice; about 0 without one)...
LATTICE_MIN_SCORE = 0.5
#: ...and the largest step within this of the best score is taken (a step's divisors score as
#: well as the step itself).
LATTICE_TOL = 0.03
#: Fewest non-zero coefficients for a position's step to be judged.
LATTICE_MIN_COUNT = 20
#: At most this many 8x8 blocks are read (evenly spread): more would not change the estimate.
LATTICE_MAX_BLOCKS = 6000
#: Fewest positions with a judged step for a quality to be given.
LATTICE_MIN_POSITIONS = 3
#: Lattice score of each candidate step (rows) for a coefficient of |value| = column / 2.
_HALF_LEVELS = 2 * 1024 + 1
_LATTICE_TABLE = np.where(
    np.arange(_HALF_LEVELS)[None, :] * 0.5 > STEP_CANDIDATES[:, None] / 2.0,
    np.cos((2.0 * np.pi) * np.arange(_HALF_LEVELS)[None, :] * 0.5 / STEP_CANDIDATES[:, None]), -1.0,
).astype(np.float32)
_LUMA_TABLES = np.log(np.stack([ijg_table(ANNEX_K_LUMINANCE, q) for q in _QUALITIES]).astype(np.float64))


def _dct_blocks(rgb: np.ndarray, phase_y: int, phase_x: int, max_blocks: int = LATTICE_MAX_BLOCKS) -> np.ndarray:
    """(n, 64) DCT coefficients of the JPEG luma blocks starting at (phase_y, phase_x), blocks
    with a clipped pixel left out (clipping breaks the lattice), at most ``max_blocks`` of them
    evenly spread."""
    h, w = rgb.shape[:2]
    nby, nbx = (h - phase_y) // BLOCK, (w - phase_x) // BLOCK
    if nby < 1 or nbx < 1:
        return np.zeros((0, 64), np.float32)
    if nby * nbx > max_blocks:  # whole block rows and columns, evenly spread
        side = max(1, int(math.sqrt(max_blocks * nby / nbx)))
        rows = np.unique(np.linspace(0, nby - 1, min(nby, side)).astype(np.intp))
        cols = np.unique(np.linspace(0, nbx - 1, min(nbx, max(1, max_blocks // rows.size))).astype(np.intp))
        ry = (phase_y + rows[:, None] * BLOCK + _U[None, :]).ravel()
        cx = (phase_x + cols[:, None] * BLOCK + _U[None, :]).ravel()
        px = np.ascontiguousarray(rgb[ry][:, cx])
    else:
        px = np.ascontiguousarray(rgb[phase_y:phase_y + nby * BLOCK, phase_x:phase_x + nbx * BLOCK])
    by, bx = px.shape[0] // BLOCK, px.shape[1] // BLOCK
    luma = cv2.transform(px, JFIF_LUMA.reshape(1, 3) * 255.0).reshape(by, BLOCK, bx, BLOCK)
    unclipped = cv2.inRange(px, (0.5 / 255.0,) * 3, (254.5 / 255.0,) * 3).reshape(by, BLOCK, bx, BLOCK)
    ok = unclipped.min(axis=(1, 3)).ravel() > 0
    blocks = np.ascontiguousarray(luma.transpose(0, 2, 1, 3).reshape(-1, 64)[ok])
    if blocks.shape[0] == 0:
        return np.zeros((0, 64), np.float32)
    blocks -= 128.0
    # OpenCV's product rather than NumPy's: no BLAS thread pool to wake beside the measure threads.
    return cv2.gemm(blocks, _DCT2_T, 1.0, None, 0.0)


def _lattice_scores(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Lattice score of each step candidate for one coefficient's values, and how many values
    counted (those not quantised to zero)."""
    a = np.abs(values)
    a = a[a > LATTICE_ZERO]
    if a.size == 0:
        return np.zeros(STEP_CANDIDATES.size), 0
    hist = np.bincount(np.minimum(np.rint(a * 2.0).astype(np.intp), _HALF_LEVELS - 1))  # half-level bins
    nz = np.flatnonzero(hist)
    return (_LATTICE_TABLE[:, nz] * hist[nz]).sum(axis=1) / a.size, int(a.size)


def quantisation_steps(coefficients: np.ndarray, positions=None) -> dict[int, float]:
    """Quantisation step of each DCT coefficient, read from the lattice its values lie on.

    Parameters
    ----------
    coefficients : ndarray, (n, 64)
        8x8 DCT coefficients (JPEG scaling, 8-bit levels) of ``n`` blocks on the file's grid,
        row-major.
    positions : sequence of int, optional
        Row-major coefficient indices to judge; default ``LATTICE_POSITIONS``.

    Returns
    -------
    dict
        ``{position: step}`` for the positions that could be judged: a step >= 2 where the values
        lie on its lattice, 1.0 where a position has values enough but no lattice (steps of 1, or
        never quantised).

    Notes
    -----
    A JPEG decoder returns coefficients that are whole multiples of the step ``Q``; the decoded
    pixels, rounded to whole levels, give back those coefficients within a fraction of a level,
    so the values cluster at ``k Q``. For each candidate step ``q`` the score is the mean of
    ``cos(2 pi c / q)`` over the coefficients not quantised to zero (``|c| > LATTICE_ZERO``),
    where a value within ``q / 2`` of zero counts -1 (a true step leaves nothing there, and this
    rejects the multiples ``2 Q, 3 Q`` and, without a lattice, large ``q``). Divisors of ``Q``
    score as well as ``Q``, so the largest step within ``LATTICE_TOL`` of the best score is
    taken. This is the quantiser estimation of Fan & de Queiroz (2003) with a periodicity score in
    place of their likelihood.

    References
    ----------
    Z. Fan and R. L. de Queiroz, "Identification of bitmap compression history: JPEG detection
    and quantizer estimation", IEEE Trans. Image Processing 12(2), 230-235, 2003.
    doi:10.1109/TIP.2002.807361
    """
    out = {}
    for p in (LATTICE_POSITIONS if positions is None else positions):
        score, n = _lattice_scores(coefficients[:, p])
        if n < LATTICE_MIN_COUNT:
            continue
        best = float(score.max())
        ok = np.flatnonzero(score >= max(LATTICE_MIN_SCORE, best - LATTICE_TOL))
        out[p] = float(STEP_CANDIDATES[ok.max()]) if ok.size else 1.0
    return out


def jpeg_quality_from_pixels(rgb, luma=None) -> int | None:
    """IJG-equivalent JPEG quality of a photo read from its pixels alone, whatever the container.

    Parameters
    ----------
    rgb : ndarray, float, (H, W, 3)
        sRGB-encoded pixels in [0, 1] at the file's native resolution (the JPEG's grid intact: a
        JPEG decoded at full size, or a PNG/TIFF/WebP-lossless copy of one).
    luma : ndarray, (H, W), optional
        Any luma of ``rgb`` (used to find the grid's phase); computed when not given.

    Returns
    -------
    int or None
        1-100: the IJG quality whose luminance table best matches the quantisation steps found in
        the pixels; 100 when no trace of quantisation is found (never compressed, or at quality
        about 95 or higher, whose steps of 1-2 levels hide under the pixels' rounding). None when
        fewer than ``LATTICE_MIN_POSITIONS`` coefficients could be judged (flat images, or under
        two blocks a side).

    Notes
    -----
    The grid's phase is taken from the block-boundary steps (:func:`block_grid`) and compared
    with phase 0 on the lattice of the six lowest frequencies; the better one is used. On
    Pillow-written JPEGs of the sample photos saved as PNG, qualities 10-90 are read back exactly
    or within 1, and quality 5 within 5. A photo re-compressed at a high quality after a low one
    reads the low one (the first lattice survives), so ``min(jpeg_quality, this)`` is the
    compression the photo carries. Resizing, or denoising, after compression erases the lattice
    (the reading is then 100, and :func:`blockiness` is what remains).

    References
    ----------
    Z. Fan and R. L. de Queiroz, IEEE TIP 12(2), 230-235, 2003. doi:10.1109/TIP.2002.807361 ;
    ITU-T Recommendation T.81 (1992), Annex K; Independent JPEG Group libjpeg 6b ``jcparam.c``.
    """
    rgb = _check_image(rgb, "rgb", 3)
    if min(rgb.shape[:2]) < 2 * BLOCK:
        return None
    if luma is None:
        luma = cv2.transform(rgb, JFIF_LUMA.reshape(1, 3))
    grid = block_grid(np.ascontiguousarray(luma, dtype=np.float32), BLOCK)
    phases = [(0, 0)]
    if grid is not None and (grid[1][0], grid[0][0]) != (0, 0):
        phases.append((grid[1][0], grid[0][0]))
    best = None
    for phase_y, phase_x in phases:
        low = quantisation_steps(_dct_blocks(rgb, phase_y, phase_x, LATTICE_MAX_BLOCKS // 4),
                                 LATTICE_POSITIONS[:6])
        score = sum(math.log(v) for v in low.values())
        if best is None or score > best[0]:
            best = (score, phase_y, phase_x)
    coef = _dct_blocks(rgb, best[1], best[2])
    if coef.shape[0] == 0:
        return None
    steps = quantisation_steps(coef)
    if len(steps) < LATTICE_MIN_POSITIONS:
        return None
    pos = list(steps)
    est = np.log(np.array([steps[p] for p in pos]))
    error = np.abs(_LUMA_TABLES[:, pos] - est[None, :]).sum(axis=1)
    return int(_QUALITIES[np.flatnonzero(error <= error.min() + 1e-9).max()])


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


def photo_pixels_quality(photo: Photo) -> int | None:
    """:func:`jpeg_quality_from_pixels` of a photo's native pixels, once per photo (the compression
    and focus groups both read it); None when no native pixels were decoded."""
    memo = photo.__dict__
    if "_jpeg_quality_pixels" not in memo:  # two threads may both compute it: the same value
        memo["_jpeg_quality_pixels"] = (jpeg_quality_from_pixels(photo.detail, photo.detail_gray)
                                        if photo.detail_scale == 1.0 else None)
    return memo["_jpeg_quality_pixels"]


def shows_jpeg_compression(photo: Photo) -> bool:
    """Whether the photo carries evidence of JPEG compression: the file's own tables, or a
    quantisation lattice in its native pixels (a PNG copy of a JPEG). Only then can an 8x8 grid of
    steps be block edges rather than content (a checkerboard drawn on multiples of 8 px)."""
    if photo.jpeg_quantization:
        return True
    q = photo_pixels_quality(photo)
    return q is not None and q < 100


def effective_jpeg_quality(measures: dict) -> float | None:
    """The JPEG compression a photo carries: the lower of the file's tables and its pixels.

    Parameters
    ----------
    measures : dict
        Holding ``jpeg_quality`` and ``jpeg_quality_pixels`` (either may be None or missing).

    Returns
    -------
    float or None
        The smaller of the two that are known; None when neither is.

    Notes
    -----
    The tables say how the file was last saved; the pixels say how coarsely they were ever
    quantised on the grid they still hold. A photo saved at quality 20 and re-saved at 95 (or
    as a PNG) carries quality 20.

    References
    ----------
    Z. Fan and R. L. de Queiroz, IEEE TIP 12(2), 230-235, 2003. doi:10.1109/TIP.2002.807361
    """
    known = [float(measures[k]) for k in ("jpeg_quality", "jpeg_quality_pixels") if measures.get(k) is not None]
    return min(known) if known else None


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
            "jpeg_quality_pixels",
            "IJG quality 1-100",
            "Quality whose IJG luminance table matches the quantisation steps found in the pixels "
            "(any container: a PNG of a JPEG too); 100 = no trace of quantisation; None unless "
            "native pixels were decoded.",
        ),
        (
            "blockiness",
            "ratio, 1 = none",
            "Mean luma step across the 8x8 block grid over the step inside blocks; None when "
            "blocks are under 4 px at the decoded scale.",
        ),
    ],
    cost=2,
)
def measure_compression(photo: Photo) -> dict:
    """Compression group for one photo (adapter over the pure functions)."""
    period = block_period(photo.detail_scale)
    return {
        "jpeg_quality": estimate_jpeg_quality(photo.jpeg_quantization or None),
        "jpeg_quality_pixels": photo_pixels_quality(photo),
        "blockiness": None if period is None else blockiness(photo.detail_gray, period),
    }
