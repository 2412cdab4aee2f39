"""Noise: the standard deviation of additive noise in luma, chroma and shadows, and a luma SNR.

One estimator is used throughout: Immerkaer's fast noise variance estimator, a 3x3 mask that is
the difference of two Laplacians and so cancels any signal that is locally a function of x plus a
function of y plus a multiple of xy (planes, ramps, straight horizontal or vertical edges),
restricted to homogeneous pixels as Tai & Yang propose: where a gradient magnitude is high the
residual is image structure, not noise, and those pixels are left out before averaging.

Why the pixel selection does not bias the estimate: the gradient that decides "homogeneous" is a
pair of odd (antisymmetric) filters and Immerkaer's mask is even, so for white noise the two
responses at one pixel are uncorrelated and, being jointly Gaussian, independent. Choosing pixels
by gradient magnitude, however strictly, leaves the distribution of the residual at the chosen
pixels unchanged; it only removes the pixels where signal leaks into the residual.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..errors import AnalysisError
from ..io._photo import LUMA_WEIGHTS, Photo
from ._checks import check_gray
from ._registry import measure_group
from ._scratch import scratch

#: Immerkaer's mask: [1 -2 1] (x) [1 -2 1]. Its squared norm is 36, so its response to white noise
#: of standard deviation sigma has standard deviation 6 sigma.
IMMERKAER_MASK = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
_MASK_NORM = 6.0
#: E|X| = sigma * sqrt(2 / pi) for a zero-mean Gaussian X.
_ABS_TO_SIGMA = math.sqrt(math.pi / 2.0)

#: Fraction of the candidate pixels, lowest gradient first, treated as homogeneous.
KEEP_FRACTION = 0.3
#: Luma below this (on [0, 1], averaged over about 6 x 6 px) counts as shadow.
SHADOW_LUMA = 0.25
#: ``noise_shadows`` is None when less than this fraction of the image is shadow.
MIN_SHADOW_FRACTION = 0.02
#: Fewest homogeneous pixels an estimate may rest on.
MIN_PIXELS = 200
#: Code values at or beyond these (on [0, 1]) are clipped: a clipped area has no noise left in it.
_CLIP_LOW = 0.5 / 255.0
_CLIP_HIGH = 254.5 / 255.0
#: ``noise_snr_db`` is clamped to [0, SNR_CAP_DB].
SNR_CAP_DB = 60.0
#: Largest image the native-resolution estimate reads in full; larger ones are sampled with a
#: 3 x 3 grid of windows whose pixels add up to about this many.
MAX_NATIVE_PIXELS = 1 << 20


# --------------------------------------------------------------------------- checks and pieces


def _check_channel(arr, name: str = "channel", min_side: int = 8) -> np.ndarray:
    return check_gray(arr, min_side, "noise estimation", name)


def _check_fraction(keep_fraction: float) -> None:
    if not 0.0 < keep_fraction <= 1.0:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")


# Full-size temporaries are few and reused in place: on a 1024 x 683 image a fresh float32 array
# can cost 0.3 ms of page faults, as much as the filtering itself.


def _buf(name: str | None, shape, dtype=np.float32) -> np.ndarray | None:
    """This thread's scratch array ``noise.<name>`` (see `._scratch`), or None for a fresh one."""
    return None if name is None else scratch(f"noise.{name}", tuple(shape), dtype)


def _abs_residual(channel: np.ndarray, name: str | None = None) -> np.ndarray:
    r = cv2.filter2D(channel, cv2.CV_32F, IMMERKAER_MASK, dst=_buf(name and name + ".res", channel.shape),
                     borderType=cv2.BORDER_REFLECT)
    return np.abs(r, out=r)


def _gradient(channel: np.ndarray, name: str | None = None) -> np.ndarray:
    """Magnitude of the 5x5 Sobel gradient: smoothing [1 4 6 4 1] across, odd [-1 -2 0 2 1] along."""
    gx = cv2.Sobel(channel, cv2.CV_32F, 1, 0, dst=_buf(name and name + ".gx", channel.shape), ksize=5,
                   borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(channel, cv2.CV_32F, 0, 1, dst=_buf(name and name + ".gy", channel.shape), ksize=5,
                   borderType=cv2.BORDER_REFLECT)
    return cv2.magnitude(gx, gy, gx)


def _interior(shape) -> np.ndarray:
    """uint8 0/1 mask without the 2-pixel border (where the 5x5 gradient reads reflected pixels)."""
    m = np.zeros(shape[:2], np.uint8)
    m[2:-2, 2:-2] = 1
    return m


def _unclipped(image: np.ndarray, name: str | None = None) -> np.ndarray:
    """uint8 0/1 mask: inside the border, and no channel of the pixel or its 8 neighbours clipped."""
    n = image.shape[2] if image.ndim == 3 else 1
    ok = cv2.inRange(image, (_CLIP_LOW,) * n, (_CLIP_HIGH,) * n,
                     dst=_buf(name and name + ".in", image.shape[:2], np.uint8))
    ok = cv2.erode(ok, np.ones((3, 3), np.uint8), dst=_buf(name and name + ".ok", image.shape[:2], np.uint8),
                   borderType=cv2.BORDER_REPLICATE)
    ok[:2] = 0
    ok[-2:] = 0
    ok[:, :2] = 0
    ok[:, -2:] = 0
    return np.bitwise_and(ok, 1, out=ok)


def _estimate(residual_abs, grad, candidates, keep_fraction: float) -> float | None:
    """Sigma from the mean |residual| over the ``keep_fraction`` lowest-gradient candidates.

    The three arrays have one shape (any); ``candidates`` is uint8 0/1.
    """
    sel = candidates.view(bool)
    values = grad[sel]
    if values.size * keep_fraction < MIN_PIXELS:
        return None
    sample = values[:: max(values.size // 40_000, 1)]  # a quantile needs no more
    k = int(keep_fraction * (sample.size - 1))
    thr = float(np.partition(sample, k)[k])
    if grad.flags.c_contiguous and residual_abs.flags.c_contiguous and candidates.flags.c_contiguous:
        # The same selection and mean in OpenCV, without full-size boolean temporaries.
        chosen = cv2.compare(grad, thr, cv2.CMP_LE)
        cv2.bitwise_and(chosen, candidates, dst=chosen)  # candidates is 0/1: chosen becomes 0/1
        count = cv2.countNonZero(chosen)
        if count < MIN_PIXELS:
            return None
        return _ABS_TO_SIGMA / _MASK_NORM * float(cv2.sumElems(cv2.multiply(residual_abs, chosen, dtype=cv2.CV_64F))[0]) / count
    chosen = sel & (grad <= thr)
    if np.count_nonzero(chosen) < MIN_PIXELS:
        return None
    return _ABS_TO_SIGMA / _MASK_NORM * float(residual_abs[chosen].mean(dtype=np.float64))


def _sub(a: np.ndarray, name: str | None = None) -> np.ndarray:
    """Every other row and column of a large array (a view, or with ``name`` a contiguous copy in
    this thread's scratch).

    The statistics average tens of thousands of residuals either way; the filters ran on every
    pixel, so nothing is lost but time.
    """
    if a.size <= 250_000:
        return a
    view = a[::2, ::2]
    if name is None:
        return view
    out = _buf(name + ".sub", view.shape, a.dtype)
    np.copyto(out, view)
    return out


def _candidates(channel: np.ndarray, region, check_clipping: bool) -> np.ndarray:
    cand = _unclipped(channel) if check_clipping else _interior(channel.shape)
    if region is not None:
        region = np.asarray(region)
        if region.shape != channel.shape:
            raise ValueError(f"region shape {region.shape} does not match channel {channel.shape}")
        cand &= region.astype(bool).view(np.uint8)
    return cand


# --------------------------------------------------------------------------- public functions


def immerkaer_sigma(channel, mask=None) -> float:
    """Immerkaer's noise standard deviation estimate, over the whole image or selected pixels.

    Parameters
    ----------
    channel : ndarray, (H, W)
        One image channel, any units.
    mask : ndarray of bool, (H, W), optional
        Pixels to average over; the one-pixel image border is always left out.

    Returns
    -------
    float
        ``sqrt(pi / 2) / 6 * mean(|channel * M|)`` with ``M = [1 -2 1] (x) [1 -2 1]``, in the units
        of ``channel``.

    Notes
    -----
    The mask annihilates any f(x) + g(y) + c xy (constants, ramps, straight axis-aligned edges);
    for white Gaussian noise of standard deviation ``sigma`` its response is Gaussian with
    standard deviation ``6 sigma`` and mean absolute value ``6 sigma sqrt(2 / pi)``. Over the whole image (``mask=None``) edges and
    texture count as noise; :func:`estimate_noise_sigma` restricts it to homogeneous pixels.

    References
    ----------
    J. Immerkaer, "Fast noise variance estimation", Computer Vision and Image Understanding 64(2),
    300-302, 1996. doi:10.1006/cviu.1996.0060
    """
    channel = _check_channel(channel, min_side=3)
    valid = np.zeros(channel.shape, np.uint8)
    valid[1:-1, 1:-1] = 1
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != channel.shape:
            raise ValueError(f"mask shape {mask.shape} does not match channel {channel.shape}")
        valid &= mask.astype(bool).view(np.uint8)
    if not valid.any():
        raise ValueError("mask selects no pixel inside the one-pixel border")
    return _ABS_TO_SIGMA / _MASK_NORM * float(cv2.mean(_abs_residual(channel), mask=valid)[0])


def homogeneous_mask(channel, keep_fraction: float = KEEP_FRACTION, region=None,
                     check_clipping: bool = True) -> np.ndarray:
    """Pixels homogeneous enough to measure noise on.

    Parameters
    ----------
    channel : ndarray, (H, W)
        One image channel on [0, 1].
    keep_fraction : float
        Fraction (0, 1] of the candidate pixels to keep, lowest gradient magnitude first.
    region : ndarray of bool, (H, W), optional
        Candidate pixels; default all. The 2-pixel image border is never a candidate.
    check_clipping : bool
        Leave out pixels next to a clipped value (<= 0.5/255 or >= 254.5/255); turn off for a
        signed channel such as a colour difference.

    Returns
    -------
    ndarray of bool, (H, W)

    Notes
    -----
    The gradient is the magnitude of the 5x5 Sobel pair (its cross-smoothing makes the choice
    robust to the noise itself); the threshold is the ``keep_fraction`` quantile over the candidates,
    so the choice adapts to the image rather than to a fixed contrast. Tai & Yang treat the 10 %
    strongest Sobel responses as edges; keeping only the 30 % weakest also rejects fine texture,
    and costs no bias because the odd gradient filters are independent of the even residual.

    References
    ----------
    S.-C. Tai and S.-M. Yang, "A fast method for image noise estimation using Laplacian operator
    and adaptive edge detection", Proc. 3rd Int. Symp. on Communications, Control and Signal
    Processing (ISCCSP 2008), 1077-1081. doi:10.1109/ISCCSP.2008.4537384
    """
    channel = _check_channel(channel)
    _check_fraction(keep_fraction)
    grad = _gradient(channel)
    cand = _candidates(channel, region, check_clipping)
    values = grad[cand.view(bool)]
    if values.size == 0:
        return np.zeros(channel.shape, bool)
    return (grad <= np.quantile(values, keep_fraction)) & cand.view(bool)


def estimate_noise_sigma(channel, keep_fraction: float = KEEP_FRACTION, region=None,
                         check_clipping: bool = True) -> float | None:
    """Noise standard deviation of one channel: Immerkaer's estimator on its homogeneous pixels.

    Parameters
    ----------
    channel : ndarray, (H, W)
        One image channel, normally on [0, 1].
    keep_fraction : float
        See :func:`homogeneous_mask`.
    region : ndarray of bool, (H, W), optional
        Restrict the estimate to these pixels (e.g. the shadows).
    check_clipping : bool
        See :func:`homogeneous_mask`.

    Returns
    -------
    float or None
        The standard deviation in the units of ``channel``; None when fewer than ``MIN_PIXELS``
        homogeneous pixels remain.

    Notes
    -----
    The homogeneity threshold is a quantile among the candidate pixels (``region``), so a region
    noisier than the rest of the image is not rejected as "textured". With the defaults the
    estimate recovers added white Gaussian noise of 5 to 20 levels within a few per cent on
    ordinary photos (in quadrature with the photo's own small estimate).

    References
    ----------
    J. Immerkaer, CVIU 64(2), 300-302, 1996. doi:10.1006/cviu.1996.0060 ;
    S.-C. Tai and S.-M. Yang, ISCCSP 2008, 1077-1081. doi:10.1109/ISCCSP.2008.4537384
    """
    channel = _check_channel(channel)
    _check_fraction(keep_fraction)
    cand = _candidates(channel, region, check_clipping)
    return _estimate(_sub(_abs_residual(channel)), _sub(_gradient(channel)), _sub(cand), keep_fraction)


def snr_db(mean_level: float, sigma: float | None) -> float | None:
    """Luma signal-to-noise ratio in decibels, clamped to [0, ``SNR_CAP_DB``].

    Parameters
    ----------
    mean_level : float
        Mean luma in 8-bit levels.
    sigma : float or None
        Noise standard deviation in 8-bit levels.

    Returns
    -------
    float or None
        ``20 log10(mean_level / sigma)`` clamped to [0, 60] dB (60 dB when ``sigma`` is 0, 0 dB for a
        black image); None when ``sigma`` is None.

    Notes
    -----
    The ratio of mean signal to noise standard deviation that ISO 15739 reports per patch, here
    for the whole frame. The cap keeps noiseless synthetic images finite: 8-bit quantisation alone
    (sigma about 0.29 levels) gives about 53 dB at mid-grey.

    References
    ----------
    ISO 15739:2023, Photography - Electronic still-picture imaging - Noise measurements.
    """
    if sigma is None:
        return None
    if not (math.isfinite(mean_level) and math.isfinite(sigma)) or sigma < 0 or mean_level < 0:
        raise ValueError(f"need finite mean_level >= 0 and sigma >= 0, got {mean_level}, {sigma}")
    if mean_level == 0.0:
        return 0.0
    if sigma == 0.0:
        return SNR_CAP_DB
    return float(min(max(20.0 * math.log10(mean_level / sigma), 0.0), SNR_CAP_DB))


def noise_measures(rgb, luma=None, keep_fraction: float = KEEP_FRACTION) -> dict:
    """Noise of a photo at one resolution: luma, chroma, shadows and SNR.

    Parameters
    ----------
    rgb : ndarray, float, (H, W, 3)
        sRGB-encoded values in [0, 1], at least 16 px a side.
    luma : ndarray, float, (H, W), optional
        Rec. 709 luma of ``rgb`` (computed when not given).
    keep_fraction : float
        Fraction of pixels kept as homogeneous (see :func:`homogeneous_mask`).

    Returns
    -------
    dict
        ``noise_sigma``: luma noise, 8-bit levels.
        ``noise_chroma``: mean of the Cb and Cr estimates, 8-bit levels (see Notes).
        ``noise_shadows``: luma noise among pixels whose luma, averaged over about 6 x 6 px, is below
        ``SHADOW_LUMA``, 8-bit levels; None when under ``MIN_SHADOW_FRACTION`` of the image is shadow.
        ``noise_snr_db``: :func:`snr_db` of the mean luma level and ``noise_sigma``.
        Any estimate is None when fewer than ``MIN_PIXELS`` homogeneous pixels remain.

    Notes
    -----
    Every estimate is Immerkaer's on the homogeneous pixels of its channel (Tai & Yang), x255.
    Cb = (B - Y) / 1.8556 and Cr = (R - Y) / 1.5748 (Rec. 709, matching the luma), so noise along
    the luma weights leaves them untouched and noise orthogonal to the luma weights leaves
    ``noise_sigma`` untouched. Chroma is measured on 2x2-binned pixels (a quarter of the work;
    JPEG and most cameras keep chroma at half resolution anyway) and scaled by 2, the exact factor
    for white noise, so ``noise_chroma`` is the per-pixel standard deviation of a white chroma noise
    with the same binned power. The shadow estimate picks its homogeneous pixels among the shadows
    only, so shadows noisier than the rest are not mistaken for texture.

    References
    ----------
    J. Immerkaer, "Fast noise variance estimation", CVIU 64(2), 300-302, 1996.
    doi:10.1006/cviu.1996.0060 ;
    S.-C. Tai and S.-M. Yang, ISCCSP 2008, 1077-1081. doi:10.1109/ISCCSP.2008.4537384 ;
    Recommendation ITU-R BT.709-6, 2015 (luma and colour-difference equations).
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be an (H, W, 3) array, got shape {rgb.shape}")
    if min(rgb.shape[:2]) < 16:
        raise ValueError(f"rgb is too small to estimate noise: {rgb.shape}, need >= 16 px a side")
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    if luma is None:
        luma = cv2.transform(rgb, LUMA_WEIGHTS.reshape(1, 3))
    luma = _check_channel(luma, "luma")
    if luma.shape != rgb.shape[:2]:
        raise ValueError(f"luma shape {luma.shape} does not match rgb {rgb.shape[:2]}")
    _check_fraction(keep_fraction)

    # 2x2 binning: a half-size bilinear resize samples exactly between four pixels.
    h, w = (luma.shape[0] // 2) * 2, (luma.shape[1] // 2) * 2
    half = (h // 2, w // 2)
    binned = cv2.resize(rgb[:h, :w], half[::-1], dst=_buf("binned", half + (3,)), interpolation=cv2.INTER_LINEAR)
    luma_b = cv2.resize(luma[:h, :w], half[::-1], dst=_buf("luma_b", half), interpolation=cv2.INTER_LINEAR)
    if not math.isfinite(float(cv2.sumElems(binned)[0])):  # binning keeps any NaN or inf
        raise ValueError("rgb contains non-finite values")

    usable = _unclipped(luma, "luma")
    grad = _gradient(luma, "luma")
    res = _abs_residual(luma, "luma")
    res, grad = _sub(res, "luma.res"), _sub(grad, "luma.grad")
    sigma = _estimate(res, grad, _sub(usable, "luma.usable"), keep_fraction)

    # Shadows: luma averaged over about 6x6 px (binned, then 3x3), back at full size (255 = shadow).
    dark = cv2.compare(cv2.blur(luma_b, (3, 3), dst=_buf("dark_mean", half)), SHADOW_LUMA, cv2.CMP_LT,
                       dst=_buf("dark_b", half, np.uint8))
    shadows = None
    if cv2.countNonZero(dark) >= MIN_SHADOW_FRACTION * dark.size:
        dark = cv2.resize(dark, luma.shape[::-1], dst=_buf("dark", luma.shape, np.uint8),
                          interpolation=cv2.INTER_NEAREST)
        shadows = _estimate(res, grad, _sub(np.bitwise_and(usable, dark, out=dark), "dark"), keep_fraction)

    red = cv2.extractChannel(binned, 0, dst=_buf("red", half))
    blue = cv2.extractChannel(binned, 2, dst=_buf("blue", half))
    usable_c = _unclipped(binned, "chroma")
    chroma = []
    for name, c in (("cb", cv2.addWeighted(blue, 1 / 1.8556, luma_b, -1 / 1.8556, 0.0, dst=_buf("cb", half))),
                    ("cr", cv2.addWeighted(red, 1 / 1.5748, luma_b, -1 / 1.5748, 0.0, dst=_buf("cr", half)))):
        chroma.append(_estimate(_sub(_abs_residual(c, name), name + ".res"), _sub(_gradient(c, name), name + ".grad"),
                                _sub(usable_c, "chroma.usable"), keep_fraction))
    noise_chroma = None if None in chroma else (chroma[0] + chroma[1]) * 255.0  # mean of two, x2

    sigma_levels = None if sigma is None else sigma * 255.0
    mean_level = max(float(cv2.mean(luma)[0]) * 255.0, 0.0)
    return {
        "noise_sigma": sigma_levels,
        "noise_chroma": noise_chroma,
        "noise_shadows": None if shadows is None else shadows * 255.0,
        "noise_snr_db": snr_db(mean_level, sigma_levels),
    }


def sample_windows(shape, max_pixels: int = MAX_NATIVE_PIXELS, grid: int = 3) -> list[tuple[slice, slice]]:
    """Windows that sample a large image evenly.

    Parameters
    ----------
    shape : tuple
        ``(H, W, ...)`` of the image.
    max_pixels : int
        Pixel budget.
    grid : int
        Windows per side.

    Returns
    -------
    list of (slice, slice)
        The whole image when it has at most ``max_pixels`` pixels; otherwise ``grid x grid`` equal
        windows, one centred in each cell of a regular grid, whose pixels add up to about
        ``max_pixels``.

    Notes
    -----
    Used for the native-resolution estimates (:func:`detail_luma`), so that a 50-megapixel decode
    costs what a one-megapixel one does; noise is a spatial average, so an even sample of the
    frame estimates it as well as the whole.

    References
    ----------
    None; a sampling convenience.
    """
    h, w = int(shape[0]), int(shape[1])
    if max_pixels <= 0 or grid <= 0:
        raise ValueError(f"max_pixels and grid must be positive, got {max_pixels}, {grid}")
    if h * w <= max_pixels:
        return [(slice(0, h), slice(0, w))]
    scale = math.sqrt(max_pixels / float(h * w))
    wh, ww = max(int(h / grid * scale), 1), max(int(w / grid * scale), 1)
    out = []
    for i in range(grid):
        for j in range(grid):
            y0 = min(max(int((i + 0.5) * h / grid) - wh // 2, 0), h - wh)
            x0 = min(max(int((j + 0.5) * w / grid) - ww // 2, 0), w - ww)
            out.append((slice(y0, y0 + wh), slice(x0, x0 + ww)))
    return out


def pooled_noise_sigma(pieces, keep_fraction: float = KEEP_FRACTION) -> float | None:
    """Luma noise (8-bit levels) pooled over several pieces of one image.

    Parameters
    ----------
    pieces : ndarray (H, W) or sequence of them
        Luma on [0, 1]: one image, or windows of one (see :func:`sample_windows`), each at least
        8 px a side.
    keep_fraction : float
        See :func:`homogeneous_mask`.

    Returns
    -------
    float or None
        :func:`estimate_noise_sigma` x255 with one homogeneity threshold over all the pieces;
        None when too few homogeneous pixels remain.

    Notes
    -----
    Each piece is filtered on its own and its border dropped, so window seams never enter the
    residual or the gradient.

    References
    ----------
    J. Immerkaer, CVIU 64(2), 1996. doi:10.1006/cviu.1996.0060 ;
    S.-C. Tai and S.-M. Yang, ISCCSP 2008. doi:10.1109/ISCCSP.2008.4537384
    """
    _check_fraction(keep_fraction)
    if isinstance(pieces, np.ndarray):
        pieces = [pieces]
    if len(pieces) == 0:
        raise ValueError("no pieces given")
    res, grad, cand = [], [], []
    for piece in pieces:
        piece = _check_channel(piece, "piece")
        res.append(_sub(_abs_residual(piece)).ravel())
        grad.append(_sub(_gradient(piece)).ravel())
        cand.append(_sub(_unclipped(piece)).ravel())
    s = _estimate(np.concatenate(res), np.concatenate(grad), np.concatenate(cand), keep_fraction)
    return None if s is None else s * 255.0


def detail_luma(photo: Photo, max_pixels: int = MAX_NATIVE_PIXELS):
    """Luma of ``photo.detail``, whole or as the windows of :func:`sample_windows`.

    Parameters
    ----------
    photo : Photo
    max_pixels : int
        Pixel budget.

    Returns
    -------
    ndarray (H, W) or list of ndarrays
        ``photo.detail_gray`` when the detail image fits the budget; otherwise the luma of each
        window, computed from the window's pixels only.

    Notes
    -----
    Only the windows are converted, so a 50-megapixel detail image costs a one-megapixel luma
    conversion (unless another measure has already cached ``detail_gray``, which is then sliced).

    References
    ----------
    ITU-R BT.709-6 (luma weights).
    """
    windows = sample_windows(photo.detail.shape, max_pixels)
    if len(windows) == 1:
        return photo.detail_gray
    if "detail_gray" in photo.__dict__:  # already computed by someone: slice it
        return [np.ascontiguousarray(photo.detail_gray[sy, sx]) for sy, sx in windows]
    return [np.ascontiguousarray(photo.detail[sy, sx]) @ LUMA_WEIGHTS for sy, sx in windows]


@measure_group(
    "noise",
    outputs=[
        ("noise_sigma", "8-bit levels, luma, working resolution",
         "Standard deviation of the luma noise (Immerkaer's estimator on homogeneous pixels)"),
        ("noise_sigma_native", "8-bit levels, luma, native resolution",
         "The same at native resolution (sampled windows); None unless native pixels were decoded"),
        ("noise_chroma", "8-bit levels",
         "The same estimator on Rec. 709 Cb and Cr (2x2-binned, scaled to per pixel), averaged"),
        ("noise_shadows", "8-bit levels",
         "Luma noise among the shadows (luma < 0.25); None when under 2% of the image is shadow"),
        ("noise_snr_db", "dB",
         "20 log10(mean luma level / noise_sigma), clamped to [0, 60]"),
    ],
    cost=20,
)
def measure_noise(photo: Photo) -> dict:
    """Registered adapter: :func:`noise_measures` on the working image plus the native estimate."""
    try:
        out = noise_measures(photo.rgb, photo.gray)
        out["noise_sigma_native"] = (
            None if not photo.has_native_detail else pooled_noise_sigma(detail_luma(photo))
        )
    except ValueError as exc:
        raise AnalysisError(f"noise: {exc}", photo.path) from exc
    return out
