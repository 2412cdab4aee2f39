"""Hand-made scene cues: each a pure function of small arrays that returns plain numbers.

Every cue works on a reduced copy of the photo (see :func:`prepare`): the scene category of a
photo is a property of its coarse layout and colour, and at a long side of 256 px (320 px for
faces) the whole set costs a few milliseconds.
"""

from __future__ import annotations

import numbers
import os
import threading
from dataclasses import dataclass

import cv2
import numpy as np

#: Long side, in pixels, of the reduced copy every cue reads (faces included).
CUE_LONG_SIDE = 256
#: Smallest face searched for, as a fraction of the long side: 38 px of the 256-px copy (the detector's
#: scales step by 1.25 from its 20-px window, so the smallest window searched is 39 px), a face box
#: of ~3.4 % of a 3:2 frame. The detector's cost grows steeply towards small faces: 0.085 (22 px)
#: cost ~1.9x as much on BIQ2021 photos, kept a face on 1 more of 1,500 photos (64 -> 63 with
#: faces), and changed no cross-validated figure of the effnet scene head, which reads these cues
#: (docs/effnet.md).
FACE_MIN_FRACTION = 0.15
FACE_CASCADE = "haarcascade_frontalface_alt2.xml"

_MIN_SIDE = 16


# --------------------------------------------------------------------------------------------
# Shared preparation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CueImages:
    """The reduced copies every cue reads, all of the same size.

    Attributes
    ----------
    rgb : ndarray, float32, (h, w, 3)
        sRGB in [0, 1], long side ``CUE_LONG_SIDE`` (or less when the photo is smaller).
    lab : ndarray, float32, (h, w, 3)
        CIE L*a*b* of ``rgb`` (L in [0, 100]).
    hue, saturation, value : ndarray, float32, (h, w)
        HSV of ``rgb``: hue in degrees [0, 360), saturation and value in [0, 1].
    gray : ndarray, float32, (h, w)
        Luma of ``rgb`` in [0, 1].
    gx, gy : ndarray, float32, (h, w)
        Sobel luma gradients, scaled to luma change per pixel of this copy.
    texture : ndarray, float32, (h, w)
        Local texture: mean absolute luma gradient (per pixel of this copy) over a 5x5 window.
    face_gray : ndarray, uint8, (h, w)
        Histogram-equalised luma for the face detector.
    """

    rgb: np.ndarray
    lab: np.ndarray
    hue: np.ndarray
    saturation: np.ndarray
    value: np.ndarray
    gray: np.ndarray
    gx: np.ndarray
    gy: np.ndarray
    texture: np.ndarray
    face_gray: np.ndarray


def _reduce(img: np.ndarray, long_side: int) -> np.ndarray:
    """Area-average ``img`` down to ``long_side`` (never enlarges).

    First an integer-factor area reduction (OpenCV's fast path; up to factor-1 rows/columns at
    the bottom/right are dropped to make the size divisible), then, when the result is still
    larger, an ordinary area resize of the small image.
    """
    h, w = img.shape[:2]
    factor = max(h, w) // long_side
    if factor >= 2:
        hh, ww = (h // factor) * factor, (w // factor) * factor
        img = cv2.resize(img[:hh, :ww], (ww // factor, hh // factor), interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
    scale = long_side / float(max(h, w))
    if scale >= 1.0:
        return img
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def check_rgb(rgb: np.ndarray) -> np.ndarray:
    """Validate the shape and type of an sRGB working image; return it as C-contiguous float32.

    Finiteness is checked by :func:`prepare` on the reduced copy (area averaging carries any
    NaN or inf into it), which is 16 times cheaper than checking the full image.

    Raises
    ------
    ValueError
        If ``rgb`` is not a float (H, W, 3) array or is smaller than 16x16.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"scene cues need an (H, W, 3) RGB image, got shape {rgb.shape}")
    if min(rgb.shape[:2]) < _MIN_SIDE:
        raise ValueError(
            f"scene cues need an image of at least {_MIN_SIDE}x{_MIN_SIDE} pixels, got "
            f"{rgb.shape[1]}x{rgb.shape[0]}"
        )
    if not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"scene cues need float RGB in [0, 1], got dtype {rgb.dtype}")
    return np.ascontiguousarray(rgb, dtype=np.float32)


def prepare(rgb: np.ndarray) -> CueImages:
    """Reduce a working-resolution sRGB image to the copies the cues read.

    Parameters
    ----------
    rgb : ndarray, float (H, W, 3)
        sRGB in [0, 1] (values outside are clipped).

    Returns
    -------
    CueImages

    Raises
    ------
    ValueError
        On a wrong shape or type, or NaN/inf pixel values.
    """
    small = _reduce(check_rgb(rgb), CUE_LONG_SIDE)
    if not np.isfinite(small).all():
        raise ValueError("scene cues need finite pixel values; the image holds NaN or inf")
    small = np.clip(small, 0.0, 1.0)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2Lab)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3, scale=0.125)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3, scale=0.125)
    texture = cv2.blur(np.abs(gx) + np.abs(gy), (5, 5))
    face_u8 = cv2.convertScaleAbs(gray, alpha=255.0)
    return CueImages(
        rgb=small,
        lab=lab,
        hue=hsv[..., 0],
        saturation=hsv[..., 1],
        value=hsv[..., 2],
        gray=gray,
        gx=gx,
        gy=gy,
        texture=texture,
        face_gray=cv2.equalizeHist(face_u8),
    )


# --------------------------------------------------------------------------------------------
# Faces
# --------------------------------------------------------------------------------------------

_local = threading.local()


def load_face_cascade() -> "cv2.CascadeClassifier":
    """The frontal-face Haar cascade, loaded once per thread.

    OpenCV's ``CascadeClassifier`` keeps scratch state, so each thread gets its own copy.

    Raises
    ------
    RuntimeError
        If OpenCV does not ship the cascade files (``cv2.data`` is gone in OpenCV 5 wheels:
        install ``opencv-python-headless<5``) or the file cannot be parsed.
    """
    cascade = getattr(_local, "face_cascade", None)
    if cascade is not None:
        return cascade
    data = getattr(cv2, "data", None)
    folder = getattr(data, "haarcascades", None)
    path = None if folder is None else os.path.join(folder, FACE_CASCADE)
    if path is None or not os.path.isfile(path):
        raise RuntimeError(
            f"OpenCV {cv2.__version__} does not ship the Haar cascade {FACE_CASCADE} "
            f"(looked in {folder!r}); the scene 'cues' method needs opencv-python-headless<5"
        )
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise RuntimeError(f"OpenCV could not parse the Haar cascade {path}")
    _local.face_cascade = cascade
    return cascade


def _skin_like(lab_patch: np.ndarray) -> bool:
    """Loose skin-tone test on a candidate face box (mean a*, b* in the skin locus)."""
    centre = lab_patch[
        lab_patch.shape[0] // 4 : 3 * lab_patch.shape[0] // 4,
        lab_patch.shape[1] // 4 : 3 * lab_patch.shape[1] // 4,
    ]
    a = float(centre[..., 1].mean())
    b = float(centre[..., 2].mean())
    return 2.0 <= a <= 45.0 and 2.0 <= b <= 50.0


def face_cue(gray_u8: np.ndarray, lab: np.ndarray | None = None) -> dict:
    """Frontal faces found by the Viola-Jones detector.

    Parameters
    ----------
    gray_u8 : ndarray, uint8 (h, w)
        Luma, ideally histogram-equalised (long side ~``CUE_LONG_SIDE``).
    lab : ndarray, float32 (h, w, 3), optional
        L*a*b* of the same pixels. When given and the image is in colour, detections whose
        centre is not skin-coloured are dropped (this removes most false faces on foliage,
        fur and textiles); for greyscale images every detection is kept.

    Returns
    -------
    dict
        ``face_count`` (int) and ``face_area_fraction`` (float, area of the largest face box
        over the image area, 0 when none).

    Notes
    -----
    Uses OpenCV's ``haarcascade_frontalface_alt2`` (the default cascade fires on flower
    centres), scale step 1.25, 4 neighbours, smallest face ``FACE_MIN_FRACTION`` of the long
    side. Profile and upper-body cascades were left out: each would double the cost and neither
    helped on the sample photos.

    References
    ----------
    P. Viola and M. Jones, "Rapid object detection using a boosted cascade of simple
    features", CVPR 2001. doi:10.1109/CVPR.2001.990517
    R. Lienhart and J. Maydt, "An extended set of Haar-like features for rapid object
    detection", ICIP 2002. doi:10.1109/ICIP.2002.1038171
    """
    gray_u8 = np.asarray(gray_u8)
    if gray_u8.ndim != 2 or gray_u8.dtype != np.uint8:
        raise ValueError(f"face_cue needs a 2-D uint8 image, got {gray_u8.dtype} {gray_u8.shape}")
    h, w = gray_u8.shape
    min_side = max(20, int(round(FACE_MIN_FRACTION * max(h, w))))
    if min(h, w) < min_side:
        return {"face_count": 0, "face_area_fraction": 0.0}
    boxes = load_face_cascade().detectMultiScale(
        gray_u8, scaleFactor=1.25, minNeighbors=4, minSize=(min_side, min_side)
    )
    coloured = lab is not None and float(np.hypot(lab[..., 1], lab[..., 2]).mean()) > 4.0
    areas = []
    for x, y, bw, bh in np.asarray(boxes).reshape(-1, 4):
        if coloured and not _skin_like(lab[y : y + bh, x : x + bw]):
            continue
        areas.append(float(bw) * float(bh))
    return {
        "face_count": len(areas),
        "face_area_fraction": max(areas) / float(h * w) if areas else 0.0,
    }


# --------------------------------------------------------------------------------------------
# Night
# --------------------------------------------------------------------------------------------


def night_cue(lightness: np.ndarray, exif: dict | None = None) -> dict:
    """Darkness, point lights and low-light exposure settings.

    Parameters
    ----------
    lightness : ndarray, float (h, w)
        CIE L* in [0, 100].
    exif : dict, optional
        Normalised EXIF; ``exposure_time_s`` and ``iso`` are read when present.

    Returns
    -------
    dict
        ``mean_lightness`` (L*, 0..100), ``dark_fraction`` (share of pixels with L* < 25),
        ``point_lights`` (int: small bright blobs, L* > 70 and at most 0.5 % of the frame
        each, counted only where at least 40 % of the frame is dark; on the 256-px copy a
        street lamp is a pixel or two, so its averaged lightness is lower than the lamp's),
        ``exif_low_light`` (0, 0.5 or 1: one or both of exposure >= 1/15 s and ISO >= 1600).

    Notes
    -----
    A night photo is dark overall and lit by lamps, windows and signs that appear as small
    saturated blobs; a dark but evenly lit photo (a low-key portrait, a shaded flower) has
    no such blobs. Camera settings chosen by auto-exposure in low light corroborate it.

    References
    ----------
    None: an engineering heuristic. The EXIF thresholds follow from the exposure equation
    (ISO 2720:1974): at f/2, 1/15 s and ISO 1600 correspond to about EV 2 at ISO 100, i.e.
    street lighting rather than daylight or a lit room.
    """
    L = np.asarray(lightness, dtype=np.float32)
    if L.ndim != 2 or L.size == 0:
        raise ValueError(f"night_cue needs a 2-D lightness map, got shape {L.shape}")
    mean_l = float(L.mean())
    dark = float((L < 25.0).mean())
    lights = 0
    if dark > 0.4:
        bright = (L > 70.0).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=8)
        max_area = max(1.0, 0.005 * L.size)
        lights = int(np.count_nonzero(stats[1:, cv2.CC_STAT_AREA] <= max_area))
    exif = exif or {}
    votes = 0.0
    t = exif.get("exposure_time_s")
    iso = exif.get("iso")
    if isinstance(t, numbers.Real) and t >= 1.0 / 15.0:
        votes += 0.5
    if isinstance(iso, numbers.Real) and iso >= 1600:
        votes += 0.5
    return {
        "mean_lightness": mean_l,
        "dark_fraction": dark,
        "point_lights": lights,
        "exif_low_light": votes,
    }


# --------------------------------------------------------------------------------------------
# Sky
# --------------------------------------------------------------------------------------------


def _sky_mask(lab: np.ndarray, texture: np.ndarray) -> np.ndarray:
    """Pixels that look like daytime sky: smooth, bright and blue or pale grey.

    Parameters
    ----------
    lab : ndarray, float (h, w, 3)
    texture : ndarray, float (h, w)
        Mean absolute luma gradient per pixel (see :func:`prepare`).

    Returns
    -------
    ndarray, bool (h, w)
    """
    L, a, b = lab[..., 0], lab[..., 1], lab[..., 2]
    smooth = texture < 0.012
    blue = (L > 40.0) & (b < -4.0) & (a < 25.0)  # deep blue sky reaches a* ~ 20
    pale = (L > 65.0) & (np.hypot(a, b) < 14.0)
    mask = (smooth & (blue | pale)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    return mask.astype(bool)


def sky_cue(lab: np.ndarray, texture: np.ndarray) -> dict:
    """How much of the frame is sky connected to the top edge, and where the horizon sits.

    Parameters
    ----------
    lab : ndarray, float (h, w, 3)
        CIE L*a*b*.
    texture : ndarray, float (h, w)
        Mean absolute luma gradient per pixel.

    Returns
    -------
    dict
        ``sky_fraction`` (share of the frame that is sky reached from the top edge without
        crossing non-sky), ``sky_top_fraction`` (share of the top quarter that is sky),
        ``sky_bottom_fraction`` (share of the bottom tenth that passes the same test: high for
        a plain studio backdrop or a white page, which surround the subject on every side,
        low under a real sky),
        ``horizon`` (median depth of the sky from the top, as a fraction of the height;
        0 when there is no sky).

    Notes
    -----
    Sky is the most reliable outdoor cue: it is smooth, bright, blue or overcast grey, and it
    hangs from the top of the frame. Measuring only sky that touches the top edge ignores blue
    walls and studio backdrops in the middle of a frame.

    References
    ----------
    A. Vailaya, A. Jain and H.-J. Zhang, "On image classification: city images vs.
    landscapes", Pattern Recognition 31(12), 1998. doi:10.1016/S0031-3203(98)00079-X
    """
    mask = _sky_mask(lab, texture)
    h = mask.shape[0]
    not_sky = ~mask
    # Depth of the sky run from the top edge, per column.
    first_break = np.where(not_sky.any(axis=0), not_sky.argmax(axis=0), h)
    depth = first_break.astype(np.float32) / h
    top = mask[: max(1, h // 4)]
    bottom = mask[h - max(1, h // 10):]
    return {
        "sky_fraction": float(depth.mean()),
        "sky_top_fraction": float(top.mean()),
        "sky_bottom_fraction": float(bottom.mean()),
        "horizon": float(np.median(depth)),
    }


# --------------------------------------------------------------------------------------------
# Orientation statistics (man-made vs natural)
# --------------------------------------------------------------------------------------------


def orientation_cue(gx: np.ndarray, gy: np.ndarray) -> dict:
    """Share of strong edges that are horizontal or vertical.

    Parameters
    ----------
    gx, gy : ndarray, float (h, w)
        Horizontal and vertical luma gradients (e.g. Sobel, scaled to change per pixel) of a
        reduced copy of the photo; the reduction averages away pixel-grid and JPEG-block edges.

    Returns
    -------
    dict
        ``cardinal_edge_ratio`` (share of gradient energy within 10 degrees of horizontal or
        vertical, among the strongest 20 % of gradients; ~0.22 for isotropic texture, 0.4 and
        more for buildings, furniture and streets), ``vertical_edge_ratio`` (the part of it
        from vertical edges, ~0.11 for isotropic texture: walls, poles and windows are
        vertical, whereas a natural horizon is horizontal), ``edge_density`` (mean gradient
        magnitude, per pixel of the reduced copy).

    Notes
    -----
    Man-made scenes are dominated by straight vertical and horizontal structure; natural
    scenes spread their edge energy over all orientations. The histogram is weighted by
    gradient magnitude.

    References
    ----------
    A. Torralba and A. Oliva, "Statistics of natural image categories", Network:
    Computation in Neural Systems 14(3), 2003. doi:10.1088/0954-898X_14_3_302
    """
    gx = np.asarray(gx, dtype=np.float32)
    gy = np.asarray(gy, dtype=np.float32)
    if gx.ndim != 2 or gx.shape != gy.shape or gx.size == 0:
        raise ValueError(
            f"orientation_cue needs two 2-D gradients of one shape, got {gx.shape}, {gy.shape}"
        )
    mag = cv2.magnitude(gx, gy)
    density = float(cv2.mean(mag)[0])
    flat = mag.ravel()
    k = int(0.8 * (flat.size - 1))
    thr = max(float(np.partition(flat, k)[k]), 0.004)
    strong = mag > thr
    if np.count_nonzero(strong) < 20:
        return {"cardinal_edge_ratio": 0.0, "vertical_edge_ratio": 0.0, "edge_density": density}
    ang = np.degrees(np.arctan2(gy[strong], gx[strong])) % 180.0  # gradient direction
    w = mag[strong]
    total = float(w.sum())
    # A vertical edge has a horizontal gradient (0 or 180 deg); a horizontal edge, 90 deg.
    vertical = float(w[(ang < 10.0) | (ang > 170.0)].sum()) / total
    horizontal = float(w[np.abs(ang - 90.0) < 10.0].sum()) / total
    return {
        "cardinal_edge_ratio": vertical + horizontal,
        "vertical_edge_ratio": vertical,
        "edge_density": density,
    }


# --------------------------------------------------------------------------------------------
# Colour regions: vegetation, centre object, warmth
# --------------------------------------------------------------------------------------------


def vegetation_cue(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray,
                   texture: np.ndarray) -> dict:
    """Green vegetation: foliage hue, and how much of it is textured.

    Parameters
    ----------
    hue : ndarray, float (h, w)
        HSV hue in degrees.
    saturation, value : ndarray, float (h, w)
        HSV saturation and value in [0, 1].
    texture : ndarray, float (h, w)
        Mean absolute luma gradient per pixel.

    Returns
    -------
    dict
        ``green_fraction`` (share of pixels with a foliage hue, 60-190 degrees, saturation
        > 0.2 and value > 0.08; the range reaches teal because shaded leaves and out-of-focus
        greenery turn blue-green), ``textured_green_fraction`` (those with texture > 0.02).

    References
    ----------
    A. Vailaya, M. Figueiredo, A. Jain and H.-J. Zhang, "Image classification for
    content-based indexing", IEEE Trans. Image Processing 10(1), 2001. doi:10.1109/83.892448
    """
    green = (hue >= 60.0) & (hue <= 190.0) & (saturation > 0.2) & (value > 0.08)
    return {
        "green_fraction": float(green.mean()),
        "textured_green_fraction": float((green & (texture > 0.02)).mean()),
    }


def centre_surround_cue(lab: np.ndarray, texture: np.ndarray, hue: np.ndarray) -> dict:
    """Is there a distinct object in the middle of a plain surround?

    Parameters
    ----------
    lab : ndarray, float (h, w, 3)
    texture : ndarray, float (h, w)
    hue : ndarray, float (h, w)
        HSV hue in degrees.

    Returns
    -------
    dict
        ``centre_contrast`` (L*a*b* distance between the mean colours of the centre, the
        middle 50 % of width and height, and the border ring outside the middle 70 %),
        ``surround_texture`` (mean texture of that ring), ``centre_texture_ratio``
        (centre texture over ring texture), ``centre_bloom`` (share of the centre that is
        vividly coloured, chroma > 30, and not green: petals, fruit, painted objects).

    Notes
    -----
    A photographer isolates a subject by placing it in the middle of a plain, often blurred,
    background; this is the layout of still life and of close-up plant photos. The contrast is
    a crude centre-surround saliency in the spirit of Itti et al.

    References
    ----------
    L. Itti, C. Koch and E. Niebur, "A model of saliency-based visual attention for rapid
    scene analysis", IEEE TPAMI 20(11), 1998. doi:10.1109/34.730558
    """
    h, w = texture.shape
    cy0, cy1, cx0, cx1 = h // 4, h - h // 4, w // 4, w - w // 4
    ry0, ry1, rx0, rx1 = int(0.15 * h), h - int(0.15 * h), int(0.15 * w), w - int(0.15 * w)
    n_inner = (ry1 - ry0) * (rx1 - rx0)
    n_ring = h * w - n_inner
    if n_ring <= 0 or cy1 <= cy0 or cx1 <= cx0:
        raise ValueError(f"centre_surround_cue needs an image of at least 8x8, got {w}x{h}")
    # cv2.sumElems is ~50x faster than numpy's axis sums over interleaved channels.
    lab_sum = np.array(cv2.sumElems(lab)[:3])
    inner_sum = np.array(cv2.sumElems(lab[ry0:ry1, rx0:rx1])[:3])
    ring_lab = (lab_sum - inner_sum) / n_ring
    centre_lab = np.array(cv2.mean(lab[cy0:cy1, cx0:cx1])[:3])
    ring_tex = (cv2.sumElems(texture)[0] - cv2.sumElems(texture[ry0:ry1, rx0:rx1])[0]) / n_ring
    centre_tex = cv2.mean(texture[cy0:cy1, cx0:cx1])[0]
    c_lab = lab[cy0:cy1, cx0:cx1]
    c_hue = hue[cy0:cy1, cx0:cx1]
    chroma = np.hypot(c_lab[..., 1], c_lab[..., 2])
    bloom = (chroma > 30.0) & ~((c_hue >= 60.0) & (c_hue <= 190.0))
    return {
        "centre_contrast": float(np.linalg.norm(centre_lab - ring_lab)),
        "surround_texture": ring_tex,
        "centre_texture_ratio": centre_tex / max(ring_tex, 1e-3),
        "centre_bloom": float(bloom.mean()),
    }


def warmth_cue(lab: np.ndarray) -> dict:
    """Colour cast of the mid-tones: indoor tungsten and candle light is yellow-orange.

    Parameters
    ----------
    lab : ndarray, float (h, w, 3)

    Returns
    -------
    dict
        ``warmth``: mean b* (yellow-blue) plus half the mean a* (red-green) over pixels with
        L* > 20 (shadows carry noise, not the illuminant); 0 for neutral, 20 and more for a
        strong tungsten cast. A white backdrop keeps it near 0 whatever the subject's colour.

    Notes
    -----
    A crude stand-in for illuminant estimation: daylight scenes average towards neutral
    (grey-world), artificial indoor light pushes everything towards orange.

    References
    ----------
    G. Buchsbaum, "A spatial processor model for object colour perception", J. Franklin
    Inst. 310(1), 1980. doi:10.1016/0016-0032(80)90058-7
    """
    L = lab[..., 0]
    mid = (L > 20.0).astype(np.uint8)
    if np.count_nonzero(mid) < 10:
        return {"warmth": 0.0}
    _, a, b, _ = cv2.mean(lab, mask=mid)
    return {"warmth": float(b + 0.5 * a)}


def fur_cue(lab: np.ndarray, texture: np.ndarray, hue: np.ndarray, saturation: np.ndarray,
            cardinal_edge_ratio: float) -> dict:
    """Fine, even, brownish-grey texture that could be fur or feathers (a weak cue).

    Parameters
    ----------
    lab : ndarray, float (h, w, 3)
    texture : ndarray, float (h, w)
    hue, saturation : ndarray, float (h, w)
    cardinal_edge_ratio : float
        From :func:`orientation_cue`; fur has no preferred orientation.

    Returns
    -------
    dict
        ``fur_fraction``: share of pixels with moderate texture (0.015-0.06), low-to-moderate
        saturation (< 0.55), a non-green hue and mid lightness (15 < L* < 85), scaled down
        when edges are strongly horizontal/vertical.

    Notes
    -----
    Without a trained recogniser an animal cannot be told from a wool jumper or a dry field;
    this cue only nudges the animal class and is weighted so that it never wins alone with
    high confidence.

    References
    ----------
    H. Tamura, S. Mori and T. Yamawaki, "Textural features corresponding to visual
    perception", IEEE Trans. SMC 8(6), 1978 (coarseness and directionality).
    doi:10.1109/TSMC.1978.4309999
    """
    L = lab[..., 0]
    furry = (
        (texture > 0.015) & (texture < 0.06) & (saturation < 0.55)
        & ~((hue >= 60.0) & (hue <= 190.0) & (saturation > 0.2))
        & (L > 15.0) & (L < 85.0)
    )
    isotropy = float(np.clip((0.40 - cardinal_edge_ratio) / 0.15, 0.0, 1.0))
    return {"fur_fraction": float(furry.mean()) * isotropy}
