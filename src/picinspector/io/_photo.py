"""The `Photo`: pixels at the working resolution plus facts about the file."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import cv2
import numpy as np

#: Long side, in pixels, of the image every measure works on. Images with a longer side are reduced
#: (in the DCT domain first for JPEG, then with area averaging); smaller images are never enlarged.
WORKING_LONG_SIDE = 1024

#: Long side, in pixels, of the copy that the whole-image statistics (exposure, colour, NSS) read: such
#: statistics do not need 1024 px, and the fitted models learnt them on 512-px photos (BIQ2021). A
#: working image up to this size is that copy itself, so its statistics are exactly the working
#: image's.
STATS_LONG_SIDE = 512

#: Rec. 709 / sRGB luma weights.
LUMA_WEIGHTS = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    """sRGB transfer function inverse (IEC 61966-2-1), float in [0, 1] -> linear light."""
    x = np.asarray(x, dtype=np.float32)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB transfer function, linear light in [0, 1] -> encoded float in [0, 1]."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


@dataclass(eq=False)
class Photo:
    """One decoded photo, ready for the measures.

    Attributes
    ----------
    rgb : ndarray, float32, (H, W, 3)
        sRGB-encoded pixels in [0, 1] at the working resolution (long side <= ``WORKING_LONG_SIDE``).
        Alpha, if any, has been composited over white; grayscale is replicated to three channels.
    detail : ndarray, float32, (h, w, 3)
        The decoded pixels before reduction to the working size: native resolution for every format
        except large JPEGs, which are decoded at 1/2, 1/4 or 1/8 scale in the DCT domain unless the
        inspector is asked for native detail. Measures that need fine detail (noise, fine focus,
        blockiness) read this. May be the same array as ``rgb``.
    detail_scale : float
        Pixels of ``detail`` per native pixel (1.0 = native).
    width, height : int
        Native size in pixels, after EXIF orientation.
    format : str
        Container format as Pillow names it ("JPEG", "PNG", "HEIF", ...), "RAW" or "ARRAY".
    path : str or None
    exif : dict
        Normalised EXIF: ``make``, ``model``, ``iso``, ``exposure_time_s``, ``f_number``,
        ``focal_length_mm``, ``datetime`` (ISO 8601), ``orientation``; absent keys are omitted.
    bit_depth : int
        Bits per channel of the source (8 or 16).
    mode : str
        Source mode ("RGB", "L", "CMYK", "P", "RGBA", "I;16", ...).
    has_alpha : bool
    jpeg_quantization : dict or None
        The JPEG file's own quantisation tables, ``{table_id: [64 ints in natural order]}``.
    """

    rgb: np.ndarray
    detail: np.ndarray | None = None
    detail_scale: float = 1.0
    width: int = 0
    height: int = 0
    format: str = "ARRAY"
    path: str | None = None
    exif: dict = field(default_factory=dict)
    bit_depth: int = 8
    mode: str = "RGB"
    has_alpha: bool = False
    jpeg_quantization: dict | None = None

    def __post_init__(self) -> None:
        if self.detail is None:
            self.detail = self.rgb
        if not self.width or not self.height:
            self.height, self.width = self.detail.shape[:2]
            self.height = int(round(self.height / self.detail_scale))
            self.width = int(round(self.width / self.detail_scale))

    @property
    def working_scale(self) -> float:
        """Pixels of ``rgb`` per native pixel."""
        return self.rgb.shape[1] / float(self.width)

    @property
    def has_native_detail(self) -> bool:
        """True when ``detail`` holds native pixels finer than the working image (the measures
        ending in ``_native`` run only then)."""
        return self.detail is not self.rgb and self.detail_scale == 1.0

    @cached_property
    def gray(self) -> np.ndarray:
        """Luma (Rec. 709 weights on the encoded values), float32 in [0, 1], working resolution."""
        return self.rgb @ LUMA_WEIGHTS

    @cached_property
    def detail_gray(self) -> np.ndarray:
        """Luma of ``detail``."""
        if self.detail is self.rgb:
            return self.gray
        return self.detail @ LUMA_WEIGHTS

    @cached_property
    def lab(self) -> np.ndarray:
        """CIE L*a*b* (D65) of ``rgb``: L in [0, 100], a and b roughly in [-128, 127], float32."""
        return cv2.cvtColor(self.rgb, cv2.COLOR_RGB2Lab)

    @cached_property
    def stats_rgb(self) -> np.ndarray:
        """``rgb`` area-averaged to a long side of at most `STATS_LONG_SIDE` (``rgb`` itself when it
        is no larger): what the whole-image statistics read (exposure, colour, NSS). About a quarter of
        the pixels of a 12-MP photo's working image."""
        h, w = self.rgb.shape[:2]
        if max(h, w) <= STATS_LONG_SIDE:
            return self.rgb
        scale = STATS_LONG_SIDE / float(max(h, w))
        size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
        return cv2.resize(self.rgb, size, interpolation=cv2.INTER_AREA)

    @cached_property
    def stats_gray(self) -> np.ndarray:
        """Luma of `stats_rgb` (``gray`` itself when that is ``rgb``)."""
        return self.gray if self.stats_rgb is self.rgb else self.stats_rgb @ LUMA_WEIGHTS

    @cached_property
    def stats_lab(self) -> np.ndarray:
        """CIE L*a*b* of `stats_rgb` (``lab`` itself when that is ``rgb``)."""
        return self.lab if self.stats_rgb is self.rgb else cv2.cvtColor(self.stats_rgb, cv2.COLOR_RGB2Lab)

    @cached_property
    def linear_luminance(self) -> np.ndarray:
        """Relative luminance Y in linear light, [0, 1], working resolution."""
        return srgb_to_linear(self.rgb) @ LUMA_WEIGHTS
