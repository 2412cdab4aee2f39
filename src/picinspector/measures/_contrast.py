"""Contrast: global RMS contrast, robust tonal range and local RMS contrast of luma."""

from __future__ import annotations

import cv2
import numpy as np

from ..io._photo import Photo
from ._exposure import _check_image, hist_quantile
from ._registry import measure_group

# Luma histogram for the percentile range: bin k holds luma with round(255 * luma) == k.
_Y_CENTRES = np.arange(256, dtype=np.float64) / 255.0

#: Local windows are this fraction of the image width (at least 2 px).
LOCAL_WINDOW_FRACTION = 1.0 / 64.0
#: Local means below this luma are raised to it, so near-black noise does not read as contrast.
LOCAL_MEAN_FLOOR = 0.05


def contrast_rms(luma) -> float:
    """Global RMS contrast: the standard deviation of luma.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Rec. 709 luma of the encoded values, [0, 1].

    Returns
    -------
    float
        0..0.5 (0.5 for a half-black, half-white image).

    Notes
    -----
    Peli's RMS contrast without normalisation by the mean, as is usual for natural images.
    Dominated by large-scale tonal differences, so nearly unchanged by slight blur or noise.

    References
    ----------
    Peli, E. (1990). Contrast in complex images. Journal of the Optical Society of America A 7(10),
    2032-2040. doi:10.1364/JOSAA.7.002032
    """
    luma = _check_image(luma, "luma", None)
    std = float(cv2.meanStdDev(luma)[1][0, 0])
    if not np.isfinite(std):
        raise ValueError("luma contains non-finite values")
    return std


def contrast_range(luma, low: float = 0.01, high: float = 0.99) -> float:
    """Robust tonal range: the 99th minus the 1st percentile of luma.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Rec. 709 luma in [0, 1]; values outside are an error.
    low, high : float
        Quantiles, default 1 % and 99 %.

    Returns
    -------
    float
        0..1.

    Notes
    -----
    Percentiles from a 256-bin (8-bit) histogram, interpolated between bin centres, about ten
    times faster than sorting: exact for 8-bit grey input, within half an 8-bit step otherwise.

    References
    ----------
    Hyndman, R. J. & Fan, Y. (1996). Sample quantiles in statistical packages. The American
    Statistician 50(4), 361-365. doi:10.1080/00031305.1996.10473566
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"need 0 <= low < high <= 1, got low={low}, high={high}")
    luma = _check_image(luma, "luma", None)
    lo, hi, _, _ = cv2.minMaxLoc(luma)
    if not (lo >= -1e-6 and hi <= 1.0 + 1e-6 and np.isfinite(cv2.mean(luma)[0])):
        raise ValueError(f"luma must be finite and within [0, 1], got range [{lo}, {hi}]")
    codes = cv2.convertScaleAbs(luma, alpha=255.0)
    hist = cv2.calcHist([codes], [0], None, [256], [0, 256]).ravel().astype(np.float64)
    return hist_quantile(hist, _Y_CENTRES, high) - hist_quantile(hist, _Y_CENTRES, low)


def contrast_local(luma, window_fraction: float = LOCAL_WINDOW_FRACTION) -> float:
    """Mean local RMS contrast: local standard deviation over local mean, in small windows.

    Parameters
    ----------
    luma : ndarray, (H, W)
        Rec. 709 luma in [0, 1].
    window_fraction : float
        Window side as a fraction of the image width (default 1/64: 16 px at 1024 px wide).

    Returns
    -------
    float
        0..1: the mean over windows of ``min(std / max(mean, 0.05), 1)``.

    Notes
    -----
    The simple local RMS contrast (standard deviation of luma over its mean in a window), not
    Peli's band-limited contrast: one scale, cheap, and for this window size it responds to
    texture and edges at the scale of small objects. Windows are non-overlapping squares of side
    ``max(2, round(window_fraction * W))``, tiled from the top-left corner (a partial last row or
    column of windows is left out; an image smaller than one window is one window). Means and
    mean squares come from one area-average reduction each. Local means are floored at 0.05 so
    that sensor noise in near-black regions does not count as contrast, and each window's value
    is capped at 1. Blending the image towards its mean (``a * img + (1 - a) * mean``) lowers every
    window's value, so the result falls monotonically with contrast.

    References
    ----------
    Peli, E. (1990). Contrast in complex images. Journal of the Optical Society of America A 7(10),
    2032-2040. doi:10.1364/JOSAA.7.002032
    """
    if not 0.0 < window_fraction <= 1.0:
        raise ValueError(f"window_fraction must be in (0, 1], got {window_fraction}")
    luma = _check_image(luma, "luma", None)
    h, w = luma.shape
    side = max(2, int(round(window_fraction * w)))
    nh, nw = max(1, h // side), max(1, w // side)
    crop = luma[: min(h, nh * side), : min(w, nw * side)]
    mean = cv2.resize(crop, (nw, nh), interpolation=cv2.INTER_AREA)
    mean_sq = cv2.resize(cv2.multiply(crop, crop), (nw, nh), interpolation=cv2.INTER_AREA)
    var = np.maximum(mean_sq - mean * mean, 0.0)
    local = np.minimum(np.sqrt(var) / np.maximum(mean, LOCAL_MEAN_FLOOR), 1.0)
    value = float(local.mean())
    if not np.isfinite(value):
        raise ValueError("luma contains non-finite values")
    return value


@measure_group(
    "contrast",
    outputs=[
        ("contrast_rms", "luma std, 0-0.5", "Standard deviation of luma (global RMS contrast)."),
        ("contrast_range", "luma p99-p1, 0-1", "99th minus 1st percentile of luma."),
        (
            "contrast_local",
            "0-1",
            "Mean local RMS contrast (std / mean of luma) in windows 1/64 of the width.",
        ),
    ],
    cost=4,
)
def measure_contrast(photo: Photo) -> dict:
    """Contrast group for one photo (adapter over the pure functions)."""
    luma = photo.gray
    return {
        "contrast_rms": contrast_rms(luma),
        "contrast_range": contrast_range(luma),
        "contrast_local": contrast_local(luma),
    }
