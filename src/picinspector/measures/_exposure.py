"""Exposure: lightness, clipped highlights, crushed shadows, exposure error and dynamic range.

The lightness statistics come from one 256-bin histogram of CIE L* (from the cached
``photo.stats_lab``: the working image up to 512 px long side), quantised on a square-root scale so
that bins are fine in the shadows (0.08 L* at L* = 1) and still 0.55 L* at mid-grey; 8-bit histograms
are what OpenCV computes fastest. L* is a monotone function of the relative luminance Y, so quantiles
of L* map to quantiles of Y and the log-average of Y is a weighted sum over the bins.

This module also holds the small helpers the other measure modules of this package share
(``_check_image``, :func:`hist_quantile`).
"""

from __future__ import annotations

import cv2
import numpy as np

from ..io._photo import Photo
from ._registry import measure_group
from ._scratch import scratch

#: A channel at or above this value (254/255) counts as clipped.
HIGHLIGHT_THRESHOLD = 254.0 / 255.0
#: A pixel whose luma is at or below this value (2/255) counts as crushed.
SHADOW_THRESHOLD = 2.0 / 255.0
#: Float tolerance so that a luma exactly at the shadow threshold is counted.
_TOL = 1e-3 / 255.0
#: Middle grey: the luminance a "correctly" exposed scene averages to (Reinhard et al. 2002).
MIDDLE_GREY = 0.18
#: Luminance floor: the relative luminance of sRGB code value 1/255 (1 / (255 * 12.92)).
LUMINANCE_FLOOR = 1.0 / (255.0 * 12.92)
#: Luminance quantiles between which pixels enter the exposure key (clipped tails left out).
KEY_TRIM = (0.10, 0.98)
#: Luminance quantiles whose ratio is the dynamic range.
RANGE_QUANTILES = (0.01, 0.99)

# CIE 1976: L* = 116 f(Y) - 16 with f linear below (6/29)^3; kappa = (29/3)^3.
_CIE_KAPPA = (29.0 / 3.0) ** 3
_CIE_L_KNEE = 8.0

# Lightness histogram: bin k holds L* with round(25.5 * sqrt(L*)) == k, k = 0..255.
_SQRT_SCALE = 25.5
_K = np.arange(256, dtype=np.float64)
_L_CENTRES = (_K / _SQRT_SCALE) ** 2
_L_MAX_ALLOWED = 100.01  # float slack over white's L* = 100
_FIRST_CHANNEL = np.array([[1.0, 0.0, 0.0]], dtype=np.float32)


def luminance_from_lightness(lightness):
    """Relative luminance Y in [0, 1] from CIE lightness L* in [0, 100].

    Parameters
    ----------
    lightness : float or ndarray
        CIE 1976 L*.

    Returns
    -------
    float or ndarray of float64
        Y relative to the white point (Y_n = 1).

    Notes
    -----
    The exact inverse of the CIE 1976 L* formula: ``Y = ((L* + 16) / 116) ** 3`` above L* = 8 and
    ``Y = L* / kappa`` below, with ``kappa = (29/3) ** 3``.

    References
    ----------
    CIE 15:2004, Colorimetry, 3rd ed., section 8.2.1.
    """
    L = np.asarray(lightness, dtype=np.float64)
    return np.where(L > _CIE_L_KNEE, ((L + 16.0) / 116.0) ** 3, L / _CIE_KAPPA)


_LOG2_Y_CENTRES = np.log2(np.maximum(luminance_from_lightness(_L_CENTRES), LUMINANCE_FLOOR))


def _check_image(arr, name: str, channels: int | None) -> np.ndarray:
    """Validate shape (2-D, or (H, W, channels)) and return contiguous float32."""
    arr = np.asarray(arr)
    if channels is None:
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-D (H, W) array, got shape {arr.shape}")
    elif arr.ndim != 3 or arr.shape[2] != channels:
        raise ValueError(f"{name} must be an (H, W, {channels}) array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if arr.dtype != np.float32:
        if not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"{name} must hold floats in [0, 1], got dtype {arr.dtype}")
        arr = arr.astype(np.float32)
    return np.ascontiguousarray(arr)


def hist_quantile(hist: np.ndarray, centres: np.ndarray, q: float) -> float:
    """Quantile ``q`` (0..1) of the values a histogram counts.

    Parameters
    ----------
    hist : ndarray, (n,)
        Counts per bin.
    centres : ndarray, (n,)
        The value each bin stands for (its centre), increasing.
    q : float
        Quantile in [0, 1].

    Returns
    -------
    float
        The centre of the bin that holds the value of rank ``q * N`` (the first bin whose
        cumulative count reaches it): exact for data that sit on bin centres (8-bit codes, flat
        images), within half a bin otherwise.

    Notes
    -----
    Hyndman & Fan's definition 1 (inverse of the empirical distribution function) on binned data.
    Used instead of sorting because one ``cv2.calcHist`` pass over 8-bit codes is about ten times
    faster than ``np.percentile`` on a megapixel image.

    References
    ----------
    Hyndman, R. J. & Fan, Y. (1996). Sample quantiles in statistical packages. The American
    Statistician 50(4), 361-365. doi:10.1080/00031305.1996.10473566
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {q}")
    hist = np.asarray(hist, dtype=np.float64)
    filled = np.flatnonzero(hist > 0)
    if filled.size == 0:
        raise ValueError("histogram is empty")
    cum = np.cumsum(hist[filled])
    k = min(int(np.searchsorted(cum, q * cum[-1], side="left")), filled.size - 1)
    return float(np.asarray(centres, dtype=np.float64)[filled[k]])


def _lightness(lab) -> tuple[np.ndarray, float]:
    """Validated, contiguous copy of the L* channel of an (H, W, 3) Lab image, and its mean."""
    lab = _check_image(lab, "lab", 3)
    lightness = cv2.transform(lab, _FIRST_CHANNEL, dst=scratch("exposure.L", lab.shape[:2]))  # contiguous L*
    lo, hi, _, _ = cv2.minMaxLoc(lightness)
    mean = float(cv2.mean(lightness)[0])
    if not (np.isfinite(mean) and lo >= -1e-3 and hi <= _L_MAX_ALLOWED):
        raise ValueError(f"lab L* must be finite and within [0, 100], got range [{lo}, {hi}]")
    return lightness, mean


def _lightness_hist(lightness: np.ndarray) -> np.ndarray:
    """256-bin histogram of L* on the square-root scale of ``_L_CENTRES``; overwrites its input."""
    cv2.threshold(lightness, 0.0, 0.0, cv2.THRESH_TOZERO, dst=lightness)  # negatives -> 0
    cv2.sqrt(lightness, dst=lightness)
    codes = cv2.convertScaleAbs(lightness, dst=scratch("exposure.Lcodes", lightness.shape, np.uint8), alpha=_SQRT_SCALE)
    return cv2.calcHist([codes], [0], None, [256], [0, 256]).ravel().astype(np.float64)


def lightness_stats(lab) -> tuple[float, float]:
    """Mean and median CIE lightness L*.

    Parameters
    ----------
    lab : ndarray, (H, W, 3)
        OpenCV float CIE L*a*b*; only L* is read.

    Returns
    -------
    (float, float)
        Mean (exact) and median (from the square-root-scale histogram, interpolated; within
        0.3 L* at mid-grey) of L*, 0..100.

    Notes
    -----
    L* rather than luma or Y: it is the CIE's perceptually uniform lightness, so 50 looks halfway
    between black and white.

    References
    ----------
    CIE 15:2004, Colorimetry, 3rd ed., section 8.2.1.
    """
    lightness, mean = _lightness(lab)
    return mean, hist_quantile(_lightness_hist(lightness), _L_CENTRES, 0.5)


def _clipped_count(rgb: np.ndarray, threshold: float) -> int:
    code = int(round(float(threshold) * 255.0))
    if not 1 <= code <= 255:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    # Round to 8-bit codes once (cheaper than comparing floats in three channels), then one
    # inRange pass: 255 where every channel is below the threshold code.
    codes = cv2.convertScaleAbs(rgb, dst=scratch("exposure.codes", rgb.shape, np.uint8), alpha=255.0)
    unclipped = cv2.inRange(codes, (0, 0, 0), (code - 1,) * 3, dst=scratch("exposure.unclipped", rgb.shape[:2], np.uint8))
    return rgb.shape[0] * rgb.shape[1] - cv2.countNonZero(unclipped)


def highlights_clipped_pct(rgb, threshold: float = HIGHLIGHT_THRESHOLD) -> float:
    """Percentage of pixels with any channel at or above ``threshold`` (default 254/255).

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Encoded pixels in [0, 1].
    threshold : float
        Clipping level; 254 rather than 255 also catches JPEG ringing just below full scale.
        Values are compared after rounding to 8-bit codes, so for 16-bit sources anything from
        253.5/255 up counts.

    Returns
    -------
    float
        0..100.

    Notes
    -----
    "Any channel" rather than luma: a sky clipped in blue alone has lost detail although its luma
    is well below white.

    References
    ----------
    IEC 61966-2-1:1999, Multimedia systems and equipment - Colour measurement and management -
    Default RGB colour space - sRGB.
    """
    rgb = _check_image(rgb, "rgb", 3)
    return 100.0 * _clipped_count(rgb, threshold) / (rgb.shape[0] * rgb.shape[1])


def shadows_crushed_pct(luma, threshold: float = SHADOW_THRESHOLD) -> float:
    """Percentage of pixels whose luma is at or below ``threshold`` (default 2/255).

    Parameters
    ----------
    luma : ndarray, (H, W)
        Rec. 709 luma of the encoded values, [0, 1].
    threshold : float

    Returns
    -------
    float
        0..100.

    Notes
    -----
    Luma rather than per-channel: a saturated blue (0, 0, 255) is not a crushed shadow.

    References
    ----------
    ITU-R BT.709-6 (2015), Parameter values for the HDTV standards, item 3.2 (luma weights).
    """
    luma = _check_image(luma, "luma", None)
    return 100.0 * _crushed_count(luma, threshold) / luma.size


def _crushed_count(luma: np.ndarray, threshold: float) -> int:
    # THRESH_BINARY_INV: 1 where luma <= threshold (cv2.threshold, unlike cv2.compare with a
    # Python scalar, also works on 1x1 images).
    at_or_below = cv2.threshold(luma, float(threshold) + _TOL, 1.0, cv2.THRESH_BINARY_INV,
                                dst=scratch("exposure.crushed", luma.shape, luma.dtype))[1]
    return cv2.countNonZero(at_or_below)


def _trimmed_log2_mean(hist: np.ndarray, low: float, high: float) -> float:
    """Mean of log2(Y) over the pixels ranked between quantiles ``low`` and ``high``."""
    cum = np.cumsum(hist)
    lo, hi = low * cum[-1], high * cum[-1]
    weights = np.clip(cum, lo, hi) - np.clip(cum - hist, lo, hi)
    return float(np.dot(weights, _LOG2_Y_CENTRES) / weights.sum())


def _exposure_from_hist(hist, low=KEY_TRIM[0], high=KEY_TRIM[1]) -> float:
    return _trimmed_log2_mean(hist, low, high) - float(np.log2(MIDDLE_GREY))


def exposure_ev(lab, low: float = KEY_TRIM[0], high: float = KEY_TRIM[1]) -> float:
    """Exposure error in EV: log2 of a robust log-average luminance relative to middle grey 0.18.

    Parameters
    ----------
    lab : ndarray, (H, W, 3)
        OpenCV float CIE L*a*b* (L* in 0..100); only L* is read.
    low, high : float
        Quantiles of luminance between which pixels enter the average (default 10 % and 98 %).

    Returns
    -------
    float
        Signed EV: 0 when the key is 0.18, -1 for half that (under-exposed), +1 for twice that.

    Notes
    -----
    The key is the log-average (geometric mean) luminance of Reinhard et al. (2002), trimmed to
    the pixels ranked between the ``low`` and ``high`` quantiles of Y. Pixels clipped at either end
    of the signal (crushed shadows, blown highlights) record a bound, not their luminance; they
    sit in the tails, so while under 10 % of pixels are crushed and under 2 % clipped in
    luminance, the key is proportional to linear exposure (doubling the light adds 1.0 EV) and
    does not depend on the clipped values. Averaging only the unclipped pixels instead, or
    flooring black as Reinhard's additive delta does, lets the averaged set change with exposure:
    on a photo with a black background that biased a 2-EV change by 0.3 EV in our tests. Beyond
    those fractions the estimate is pulled towards 0 EV (it under-states the error). Y comes from
    L* by the exact CIE inverse, floored at the luminance of sRGB code 1/255.

    References
    ----------
    Reinhard, E., Stark, M., Shirley, P. & Ferwerda, J. (2002). Photographic tone reproduction for
    digital images. ACM Transactions on Graphics 21(3), 267-276. doi:10.1145/566654.566575
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    return _exposure_from_hist(_lightness_hist(_lightness(lab)[0]), low, high)


def _dynamic_range_from_hist(hist, low=RANGE_QUANTILES[0], high=RANGE_QUANTILES[1]) -> float:
    l_lo, l_hi = hist_quantile(hist, _L_CENTRES, low), hist_quantile(hist, _L_CENTRES, high)
    y_lo = max(float(luminance_from_lightness(l_lo)), LUMINANCE_FLOOR)
    y_hi = max(float(luminance_from_lightness(l_hi)), LUMINANCE_FLOOR)
    return float(np.log2(y_hi / y_lo))


def dynamic_range_ev(
    lab, low: float = RANGE_QUANTILES[0], high: float = RANGE_QUANTILES[1]
) -> float:
    """Spread of scene luminance in EV: log2 of the 99th over the 1st percentile of Y.

    Parameters
    ----------
    lab : ndarray, (H, W, 3)
        OpenCV float CIE L*a*b*; only L* is read.
    low, high : float
        Quantiles, default 1 % and 99 % (robust to a few specular or black pixels).

    Returns
    -------
    float
        EV, >= 0. Both percentiles are floored at the luminance of sRGB code 1/255 (~3.0e-4), so
        the largest value an 8-bit sRGB image can give is about 11.7 EV.

    Notes
    -----
    Percentiles of L* from the square-root-scale histogram, mapped to Y with the exact CIE
    inverse (L* is monotone in Y, so the mapped quantile is the quantile of Y).

    References
    ----------
    Reinhard, E., Ward, G., Pattanaik, S. & Debevec, P. (2005). High Dynamic Range Imaging.
    Morgan Kaufmann, section 1.1 (dynamic range as a log2 luminance ratio).
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    return _dynamic_range_from_hist(_lightness_hist(_lightness(lab)[0]), low, high)


def exposure_measures(rgb, lab, luma) -> dict:
    """Every exposure statistic, sharing one lightness histogram.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Encoded sRGB in [0, 1].
    lab : ndarray, (H, W, 3)
        OpenCV float CIE L*a*b* of ``rgb``.
    luma : ndarray, (H, W)
        Rec. 709 luma of ``rgb``.

    Returns
    -------
    dict
        ``lightness_mean``, ``lightness_median`` (L*), ``highlights_clipped_pct``,
        ``shadows_crushed_pct`` (% of pixels), ``exposure_ev`` (signed EV), ``dynamic_range_ev``
        (EV), as defined by :func:`lightness_stats`, :func:`highlights_clipped_pct`,
        :func:`shadows_crushed_pct`, :func:`exposure_ev` and :func:`dynamic_range_ev`.

    Notes
    -----
    Same values as those functions, computed with one L* histogram instead of three.

    References
    ----------
    Reinhard, E., Stark, M., Shirley, P. & Ferwerda, J. (2002). Photographic tone reproduction for
    digital images. ACM Transactions on Graphics 21(3), 267-276. doi:10.1145/566654.566575
    """
    rgb = _check_image(rgb, "rgb", 3)
    luma = _check_image(luma, "luma", None)
    lightness, lightness_mean = _lightness(lab)
    if rgb.shape[:2] != lightness.shape or luma.shape != lightness.shape:
        raise ValueError(
            f"rgb {rgb.shape}, lab {np.shape(lab)} and luma {luma.shape} differ in size"
        )
    n = luma.size
    hist = _lightness_hist(lightness)
    crushed = _crushed_count(luma, SHADOW_THRESHOLD)
    return {
        "lightness_mean": lightness_mean,
        "lightness_median": hist_quantile(hist, _L_CENTRES, 0.5),
        "highlights_clipped_pct": 100.0 * _clipped_count(rgb, HIGHLIGHT_THRESHOLD) / n,
        "shadows_crushed_pct": 100.0 * crushed / n,
        "exposure_ev": _exposure_from_hist(hist),
        "dynamic_range_ev": _dynamic_range_from_hist(hist),
    }


@measure_group(
    "exposure",
    outputs=[
        ("lightness_mean", "L* 0-100", "Mean CIE lightness L*."),
        ("lightness_median", "L* 0-100", "Median CIE lightness L*."),
        (
            "highlights_clipped_pct",
            "% of pixels",
            "Pixels with any channel >= 254/255 (blown highlights).",
        ),
        ("shadows_crushed_pct", "% of pixels", "Pixels with luma <= 2/255 (crushed blacks)."),
        (
            "exposure_ev",
            "EV, signed, negative = under-exposed",
            "log2 of the log-average luminance (Reinhard 2002) of the pixels between the 10th and "
            "98th luminance percentiles (clipped tails left out), relative to middle grey 0.18.",
        ),
        (
            "dynamic_range_ev",
            "EV",
            "log2 of the 99th / 1st percentile of linear luminance (floored at sRGB code 1).",
        ),
    ],
    cost=7,
)
def measure_exposure(photo: Photo) -> dict:
    """Exposure group for one photo (adapter over :func:`exposure_measures`), on the statistics copy
    (`~picinspector.io.Photo.stats_rgb`: the working image up to 512 px long side)."""
    return exposure_measures(photo.stats_rgb, photo.stats_lab, photo.stats_gray)
