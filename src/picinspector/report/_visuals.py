"""What a report card shows of the photo itself: a thumbnail and two overlays.

- **Thumbnail**: the working image (EXIF orientation applied, any format the loader reads) reduced
  with area averaging to a long side of `THUMB_LONG_SIDE`, as WebP (a quarter smaller than a JPEG
  of the same quality; every current browser shows it), or JPEG where Pillow lacks WebP.
- **Clipping mask**: the pixels the exposure measures count, marked on a transparent PNG of the
  thumbnail's size: red where any channel is at or above 254/255 (clipped highlights, as
  ``highlights_clipped_pct``), blue where the luma is at or below 2/255 (crushed shadows, as
  ``shadows_crushed_pct``). A thumbnail pixel is marked when at least `MASK_FRACTION` of the
  working pixels under it are, so that thin clipped specular highlights stay visible.
- **Focus map**: the focus measure of `picinspector.measures._focus` per tile, on a grid twice as
  fine as the ``focus_map`` measure (6x8 for a landscape photo instead of 3x4), computed from the
  same edge samples; a tile with too few strong edges to judge is None.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from PIL import Image, features

from ..io import Photo
from ..measures._exposure import HIGHLIGHT_THRESHOLD, SHADOW_THRESHOLD
from ..measures._focus import edge_blur_samples, focus_grid, focus_map

#: Long side of the thumbnails, in pixels.
THUMB_LONG_SIDE = 320
#: Quality (0-100) of the thumbnails.
THUMB_QUALITY = 78
#: Thumbnail encoding: (Pillow format, MIME type, file suffix, save options).
THUMB_FORMAT = (("WEBP", "image/webp", ".webp", {"method": 2}) if features.check("webp")
                else ("JPEG", "image/jpeg", ".jpg", {"optimize": True}))
#: Share of the working pixels under a thumbnail pixel that must be clipped for it to be marked.
MASK_FRACTION = 0.2
#: The focus overlay's grid is this many times finer than the ``focus_map`` measure's.
FOCUS_REFINE = 2

#: Colours of the clipping mask (RGBA): 1 = clipped highlights, 2 = crushed shadows.
MASK_COLOURS = {1: (255, 32, 64, 215), 2: (40, 110, 255, 215)}


@dataclass(frozen=True)
class PhotoView:
    """The pictures of one card, as encoded bytes (see the module docstring)."""

    thumb: bytes          # encoded as THUMB_FORMAT (WebP, or JPEG)
    width: int            # thumbnail size
    height: int
    clip: bytes | None    # PNG with alpha, same size as the thumbnail; None when nothing is clipped
    highlights_marked: int  # thumbnail pixels marked as clipped highlights
    shadows_marked: int     # ... as crushed shadows
    focus: dict[str, Any] | None  # {"rows", "cols", "grid"}

    def to_dict(self, urls: dict[str, str]) -> dict[str, Any]:
        """The ``view`` object a card reads, with the thumbnail and mask at ``urls["thumb"]`` and
        ``urls.get("clip")`` (data URIs or file names)."""
        return {"thumb": urls["thumb"], "w": self.width, "h": self.height, "clip": urls.get("clip"),
                "focus": self.focus, "checked": self.focus is not None}


def thumb_size(width: int, height: int, long_side: int = THUMB_LONG_SIDE) -> tuple[int, int]:
    """(width, height) with the long side at most ``long_side``, never enlarged."""
    scale = min(1.0, long_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail(rgb: np.ndarray, long_side: int = THUMB_LONG_SIDE) -> np.ndarray:
    """``rgb`` (float [0, 1], H x W x 3) reduced with area averaging, as uint8."""
    h, w = rgb.shape[:2]
    tw, th = thumb_size(w, h, long_side)
    small = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA) if (tw, th) != (w, h) else rgb
    return np.clip(np.rint(small * 255.0), 0, 255).astype(np.uint8)


def clipping_mask(rgb: np.ndarray, gray: np.ndarray, size: tuple[int, int],
                  fraction: float = MASK_FRACTION) -> np.ndarray:
    """Clipped highlights and crushed shadows, at ``size`` = (width, height).

    Parameters
    ----------
    rgb : ndarray, float32, (H, W, 3)
        Encoded pixels in [0, 1] (the working image).
    gray : ndarray, float32, (H, W)
        Their Rec. 709 luma.
    size : (int, int)
        Width and height of the mask (the thumbnail's).
    fraction : float
        A mask pixel is marked when at least this share of the pixels under it are.

    Returns
    -------
    ndarray, uint8, (height, width)
        0 = neither, 1 = clipped highlights (any channel >= 254/255), 2 = crushed shadows (luma <=
        2/255). Highlights win where both reach ``fraction`` (a pixel cannot be both).

    Notes
    -----
    The thresholds are those of ``highlights_clipped_pct`` and ``shadows_crushed_pct``, compared
    on 8-bit codes as there, so the marked area matches the measured percentages up to the
    reduction to the mask size.
    """
    # the exposure measure's own operations: 8-bit codes, then one inRange pass (255 = unclipped)
    code = int(round(HIGHLIGHT_THRESHOLD * 255.0))
    codes = cv2.convertScaleAbs(np.ascontiguousarray(rgb, dtype=np.float32), alpha=255.0)
    high = 255 - cv2.inRange(codes, (0, 0, 0), (code - 1,) * 3)
    low = cv2.threshold(np.ascontiguousarray(gray, dtype=np.float32), SHADOW_THRESHOLD + 1e-3 / 255.0, 255.0,
                        cv2.THRESH_BINARY_INV)[1].astype(np.uint8)
    w, h = size
    if (w, h) != (rgb.shape[1], rgb.shape[0]):
        high = cv2.resize(high, (w, h), interpolation=cv2.INTER_AREA)
        low = cv2.resize(low, (w, h), interpolation=cv2.INTER_AREA)
    level = fraction * 255.0
    mask = np.zeros((h, w), np.uint8)
    mask[low >= level] = 2
    mask[high >= level] = 1
    return mask


def fine_focus_map(gray: np.ndarray, refine: int = FOCUS_REFINE) -> dict[str, Any]:
    """The focus map on a grid ``refine`` times finer than the ``focus_map`` measure's.

    Returns
    -------
    dict
        ``{"rows", "cols", "grid"}``, ``grid`` a list of ``rows`` lists of ``cols`` values in
        0-1 (higher = sharper) or None for tiles too flat to judge.

    References
    ----------
    S. Zhuo and T. Sim, "Defocus map estimation from a single image", Pattern Recognition 44(9),
    1852-1858, 2011. doi:10.1016/j.patcog.2011.03.009
    """
    rows, cols = focus_grid(gray.shape)
    rows, cols = rows * refine, cols * refine
    samples = edge_blur_samples(gray)
    grid = focus_map(samples, gray.shape, (rows, cols))
    return {"rows": rows, "cols": cols, "grid": [[None if v is None else round(float(v), 3) for v in r] for r in grid]}


def _encode_thumb(pixels: np.ndarray, quality: int) -> bytes:
    fmt, _, _, options = THUMB_FORMAT
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, format=fmt, quality=quality, **options)
    return buf.getvalue()


def _mask_png(mask: np.ndarray) -> bytes:
    palette = [0, 0, 0] * 256
    alpha = bytes([0] + [MASK_COLOURS.get(i, (0, 0, 0, 0))[3] for i in range(1, 256)])
    for index, (r, g, b, _) in MASK_COLOURS.items():
        palette[3 * index:3 * index + 3] = [r, g, b]
    img = Image.fromarray(mask, "P")
    img.putpalette(palette)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True, transparency=alpha)
    return buf.getvalue()


def photo_view(photo: Photo, long_side: int = THUMB_LONG_SIDE, overlays: bool = True,
               quality: int = THUMB_QUALITY) -> PhotoView:
    """Thumbnail, clipping mask and fine focus map of a loaded photo (see the module docstring)."""
    small = thumbnail(photo.rgb, long_side)
    h, w = small.shape[:2]
    clip, highs, lows, focus = None, 0, 0, None
    if overlays:
        mask = clipping_mask(photo.rgb, photo.gray, (w, h))
        highs, lows = int(np.count_nonzero(mask == 1)), int(np.count_nonzero(mask == 2))
        if highs or lows:
            clip = _mask_png(mask)
        focus = fine_focus_map(photo.gray)
    return PhotoView(thumb=_encode_thumb(small, quality), width=w, height=h, clip=clip, highlights_marked=highs,
                     shadows_marked=lows, focus=focus)


def data_uri(data: bytes, mime: str) -> str:
    """``data:`` URL of some bytes (RFC 2397)."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
