"""Colour: colourfulness, mean chroma and a colour-cast estimate."""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..io._photo import LUMA_WEIGHTS, Photo, srgb_to_linear
from ._exposure import _check_image
from ._registry import measure_group
from ._scratch import scratch

# Hasler & Suesstrunk opponent channels on 8-bit sRGB values: rg = R - G, yb = (R + G) / 2 - B.
_RG = np.array([[255.0, -255.0, 0.0]], dtype=np.float32)
_YB = np.array([[127.5, 127.5, -255.0]], dtype=np.float32)
_A = np.array([[0.0, 1.0, 0.0]], dtype=np.float32)
_B = np.array([[0.0, 0.0, 1.0]], dtype=np.float32)

#: The cast is estimated on the image reduced (by an integer factor) to about this width.
CAST_WIDTH = 256
#: Gaussian pre-smoothing (pixels of the reduced image) before the derivatives of grey-edge.
CAST_SIGMA = 1.0
#: Reduced pixels with any channel at or above this are treated as clipped and left out.
CAST_CLIP = 0.98
#: Luminance of the grey surface whose colour under the estimated illuminant is the cast.
CAST_GREY = 0.18
# sRGB code value -> linear light, for the reduced image of the cast estimate.
_LINEAR_LUT = srgb_to_linear(np.arange(256, dtype=np.float32) / 255.0).reshape(256, 1)

#: Below this C*ab the cast has no meaningful hue.
CAST_HUE_MIN_STRENGTH = 1.0


def colorfulness(rgb) -> float:
    """Hasler-Suesstrunk colourfulness M of an sRGB image, in 8-bit units.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Encoded sRGB in [0, 1].

    Returns
    -------
    float
        ``M = sqrt(std_rg**2 + std_yb**2) + 0.3 * sqrt(mean_rg**2 + mean_yb**2)`` with
        ``rg = R - G`` and ``yb = (R + G) / 2 - B`` on 0..255 values. 0 for any grey image; about 15
        is "slightly", 33 "moderately", 59 "quite" and 82 "highly" colourful in the authors'
        panel study.

    Notes
    -----
    Computed on the encoded values, as in the paper, with one matrix transform per opponent
    channel. The result correlated at about 0.95 with mean observer ratings.

    References
    ----------
    Hasler, D. & Suesstrunk, S. (2003). Measuring colourfulness in natural images. Proc. SPIE 5007,
    Human Vision and Electronic Imaging VIII, 87-95. doi:10.1117/12.477378
    """
    rgb = _check_image(rgb, "rgb", 3)
    plane = scratch("color.plane", rgb.shape[:2])
    mean_rg, std_rg = (float(v[0, 0]) for v in cv2.meanStdDev(cv2.transform(rgb, _RG, dst=plane)))
    mean_yb, std_yb = (float(v[0, 0]) for v in cv2.meanStdDev(cv2.transform(rgb, _YB, dst=plane)))
    value = math.hypot(std_rg, std_yb) + 0.3 * math.hypot(mean_rg, mean_yb)
    if not math.isfinite(value):
        raise ValueError("rgb contains non-finite values")
    return value


def saturation_mean(lab) -> float:
    """Mean CIE chroma C*ab of an image, divided by 100.

    Parameters
    ----------
    lab : ndarray, (H, W, 3)
        OpenCV float CIE L*a*b* (D65).

    Returns
    -------
    float
        ``mean(sqrt(a*^2 + b*^2)) / 100``: 0 for grey; about 0.1-0.3 for most photos; sRGB
        primaries reach 0.8-1.3.

    Notes
    -----
    Chroma rather than HSV saturation: HSV S is 1 for any near-black pixel with one channel at 0,
    so noisy shadows would read as saturated, while C*ab follows perceived colour strength and
    vanishes towards black.

    References
    ----------
    CIE 15:2004, Colorimetry, 3rd ed., section 8.2.1 (CIELAB chroma C*ab).
    """
    lab = _check_image(lab, "lab", 3)
    a = cv2.transform(lab, _A, dst=scratch("color.a", lab.shape[:2]))
    chroma = cv2.magnitude(a, cv2.transform(lab, _B, dst=scratch("color.b", lab.shape[:2])), a)
    value = cv2.mean(chroma)[0] / 100.0
    if not math.isfinite(value):
        raise ValueError("lab contains non-finite values")
    return float(value)


def estimate_illuminant(rgb, sigma: float = CAST_SIGMA) -> np.ndarray | None:
    """Colour of the scene illuminant in linear sRGB, by the second-order grey-edge method.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Encoded sRGB in [0, 1].
    sigma : float
        Gaussian smoothing, in pixels of the reduced image, before the derivatives.

    Returns
    -------
    ndarray of float64, (3,) or None
        Linear RGB of the illuminant scaled to unit luminance (Rec. 709 weights): ``(1, 1, 1)``
        for a neutral (D65) light. None when every pixel is clipped.

    Notes
    -----
    Grey-edge hypothesis with Minkowski norm 2: the average reflectance *difference* in a scene is
    achromatic, so the per-channel RMS gradient magnitude of linear light is proportional to the
    illuminant. Edges discount large uniform coloured areas (a wall, the sky), which is where
    grey-world fails; on the scikit-image and scikit-learn sample photos it read nearer neutral
    than grey-world on six of seven. Being computed on linear light, it is equivariant (up to
    rounding and clipping) to a von Kries cast, i.e. per-channel gains.
    The image is first reduced by an integer factor to about 256 px wide and linearised through
    an 8-bit table (the reduced image is rounded to 8-bit codes first); pixels with any
    channel >= 0.98 there (blown highlights, whose colour is not the light's) and their
    neighbours are left out. A scene with no edges at all falls back to grey-world (channel
    means). A scene dominated by one colour still reads as a cast in that colour: no statistical
    method separates the two.

    References
    ----------
    van de Weijer, J., Gevers, T. & Gijsenij, A. (2007). Edge-based color constancy. IEEE
    Transactions on Image Processing 16(9), 2207-2214. doi:10.1109/TIP.2007.901808
    """
    rgb = _check_image(rgb, "rgb", 3)
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    h, w = rgb.shape[:2]
    f = max(1, w // CAST_WIDTH)
    nh, nw = max(1, h // f), max(1, w // f)
    # Linear interpolation at an exact 1/f scale averages a 2x2 group in each f x f block:
    # ten times cheaper than INTER_AREA here, and the Gaussian below does the rest.
    small = cv2.resize(rgb[: nh * f, : nw * f], (nw, nh), interpolation=cv2.INTER_LINEAR)
    if not np.isfinite(small).all():
        raise ValueError("rgb contains non-finite values")
    usable = cv2.inRange(small, (-1e30,) * 3, (CAST_CLIP,) * 3)  # 255 where no channel clips
    if not cv2.countNonZero(usable):
        return None
    keep = cv2.erode(usable, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    linear = cv2.LUT(cv2.convertScaleAbs(small, alpha=255.0), _LINEAR_LUT)
    smooth = cv2.GaussianBlur(linear, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    gx = cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REFLECT)
    gy = cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REFLECT)
    energy = cv2.add(cv2.multiply(gx, gx), cv2.multiply(gy, gy))
    illum = None
    if cv2.countNonZero(keep):
        illum = np.sqrt(np.array(cv2.mean(energy, mask=keep)[:3], dtype=np.float64))
    if illum is None or illum.max() <= 1e-12:
        illum = np.array(cv2.mean(linear, mask=usable)[:3], dtype=np.float64)
    luminance = float(illum @ LUMA_WEIGHTS.astype(np.float64))
    if luminance <= 1e-12:  # black: no light to judge
        return np.ones(3)
    return illum / luminance


# sRGB (D65) linear RGB -> CIE XYZ, IEC 61966-2-1; the white point is its row sums.
_RGB_TO_XYZ = np.array(
    [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]], dtype=np.float64
)
_WHITE = _RGB_TO_XYZ.sum(axis=1)


def _lab_ab(linear_rgb: np.ndarray) -> tuple[float, float]:
    """CIELAB a*, b* of one linear sRGB colour (float64, exact CIE 1976 formulas)."""
    t = (_RGB_TO_XYZ @ np.clip(linear_rgb, 0.0, 1.0)) / _WHITE
    f = np.where(t > (6.0 / 29.0) ** 3, np.cbrt(t), t * (29.0 / 6.0) ** 2 / 3.0 + 4.0 / 29.0)
    return float(500.0 * (f[0] - f[1])), float(200.0 * (f[1] - f[2]))


def illuminant_to_cast(illuminant) -> tuple[float, float]:
    """CIELAB a*, b* that a mid-grey surface takes on under ``illuminant``.

    Parameters
    ----------
    illuminant : array_like, (3,)
        Linear sRGB of the light, any scale; ``(1, 1, 1)`` is neutral.

    Returns
    -------
    (float, float)
        a*, b* of a surface of luminance 0.18 lit by the illuminant (its linear RGB is
        ``0.18 * illuminant / Y(illuminant)``, clipped to [0, 1]), relative to the D65 white of
        sRGB; exactly (0, 0) for a neutral light.

    Notes
    -----
    Expresses a per-channel gain in the perceptual units of the cast keys: e.g. gains
    (0.85, 1, 1.15) give about (-1.4, -5.4), a visible blue cast. Computed in float64 with the
    CIE formulas (not OpenCV's table-driven float conversion, which reads about 0.03 off zero
    for grey).

    References
    ----------
    CIE 15:2004, Colorimetry, 3rd ed., section 8.2.1.
    """
    e = np.asarray(illuminant, dtype=np.float64).reshape(-1)
    if e.shape != (3,) or not np.isfinite(e).all() or (e < 0).any():
        raise ValueError(f"illuminant must be 3 finite non-negative values, got {illuminant!r}")
    y = float(e @ LUMA_WEIGHTS.astype(np.float64))
    if y <= 0:
        raise ValueError("illuminant has zero luminance")
    return _lab_ab(CAST_GREY * e / y)


def color_cast(rgb) -> tuple[float, float] | None:
    """Signed colour cast of an sRGB photo as CIELAB (a*, b*) of a grey card in the scene.

    Parameters
    ----------
    rgb : ndarray, (H, W, 3)
        Encoded sRGB in [0, 1].

    Returns
    -------
    (float, float) or None
        (a*, b*): a* > 0 magenta, < 0 green; b* > 0 yellow/warm, < 0 blue. (0, 0) for a neutral
        image. None when every pixel is clipped.

    Notes
    -----
    :func:`estimate_illuminant` (grey-edge, van de Weijer et al. 2007) then
    :func:`illuminant_to_cast`. Estimating the light in linear RGB, rather than averaging a*, b*,
    makes a cast applied as channel gains read the same whatever the scene's colours.

    References
    ----------
    van de Weijer, J., Gevers, T. & Gijsenij, A. (2007). Edge-based color constancy. IEEE
    Transactions on Image Processing 16(9), 2207-2214. doi:10.1109/TIP.2007.901808
    """
    illum = estimate_illuminant(rgb)
    if illum is None:
        return None
    return illuminant_to_cast(illum)


@measure_group(
    "color",
    outputs=[
        (
            "colorfulness",
            "Hasler-Suesstrunk M, 8-bit units",
            "Colourfulness of Hasler & Suesstrunk 2003 "
            "(0 grey, ~33 moderate, ~82+ highly colourful).",
        ),
        ("saturation_mean", "C*ab / 100", "Mean CIELAB chroma divided by 100."),
        ("cast_a", "Lab a*", "Colour cast: a* of a grey card in the estimated light (+ magenta)."),
        ("cast_b", "Lab b*", "Colour cast: b* of a grey card in the estimated light (+ yellow)."),
        ("cast_strength", "C*ab units", "hypot(cast_a, cast_b)."),
        (
            "cast_hue_deg",
            "degrees, atan2(b*, a*) in [0, 360)",
            "Hue angle of the cast; None when cast_strength < 1.",
        ),
    ],
    cost=11,
)
def measure_color(photo: Photo) -> dict:
    """Colour group for one photo (adapter over the pure functions), on the statistics copy
    (`~picinspector.io.Photo.stats_rgb`: the working image up to 512 px long side)."""
    cast = color_cast(photo.stats_rgb)
    out = {
        "colorfulness": colorfulness(photo.stats_rgb),
        "saturation_mean": saturation_mean(photo.stats_lab),
        "cast_a": None,
        "cast_b": None,
        "cast_strength": None,
        "cast_hue_deg": None,
    }
    if cast is not None:
        a, b = cast
        strength = math.hypot(a, b)
        out.update(cast_a=a, cast_b=b, cast_strength=strength)
        if strength >= CAST_HUE_MIN_STRENGTH:
            hue = math.degrees(math.atan2(b, a)) % 360.0
            out["cast_hue_deg"] = 0.0 if hue >= 360.0 else hue
    return out
