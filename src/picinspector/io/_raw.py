"""Camera RAW through rawpy (LibRaw), imported only when a RAW file is opened."""

from __future__ import annotations

import importlib
import math

import numpy as np

from ..errors import CorruptImage, DecompressionBomb, NotAnImage, UnsupportedFormat
from ._exif import exif_from_tiff_header

__all__ = ["RAW_EXTENSIONS", "decode_raw", "looks_like_raw"]

#: Suffixes handed to LibRaw instead of Pillow.
RAW_EXTENSIONS = frozenset({
    ".3fr", ".ari", ".arw", ".bay", ".cap", ".cr2", ".cr3", ".crw", ".dcr", ".dcs", ".dng", ".erf",
    ".fff", ".iiq", ".k25", ".kdc", ".mdc", ".mef", ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef",
    ".raf", ".raw", ".rw2", ".rwl", ".sr2", ".srf", ".srw", ".x3f",
})

_HEADER_BYTES = 1 << 20

_RAW_MAGIC = (
    b"II*\x00", b"MM\x00*",  # TIFF-based: DNG, CR2, NEF, ARW, PEF, SRW, 3FR, IIQ, ...
    b"IIRO", b"IIRS", b"MMOR",  # Olympus ORF
    b"IIU\x00",  # Panasonic RW2
    b"FUJIFILMCCD-RAW",  # Fujifilm RAF
    b"FOVb",  # Sigma X3F
    b"\x00MRM",  # Minolta MRW
)


def looks_like_raw(head: bytes) -> bool:
    """True when ``head`` starts like a camera RAW file LibRaw could know."""
    if head.startswith(_RAW_MAGIC):
        return True
    if head[6:14] == b"HEAPCCDR":  # Canon CRW (CIFF)
        return True
    return head[4:8] == b"ftyp" and head[8:12] == b"crx "  # Canon CR3 (ISO BMFF)


def _import_rawpy(path):
    try:
        return importlib.import_module("rawpy")
    except ImportError:
        raise UnsupportedFormat(
            'camera RAW needs the optional rawpy package: pip install "picinspector[raw]"', path
        ) from None


def _exif_from_rawpy(raw) -> dict:
    """What LibRaw itself parsed; used for the fields the TIFF header did not give."""
    out: dict = {}
    other = getattr(raw, "other", None)
    if other is not None:
        for key, attr in (("iso", "iso_speed"), ("exposure_time_s", "shutter_speed"),
                          ("f_number", "aperture"), ("focal_length_mm", "focal_length")):
            value = getattr(other, attr, None)
            if isinstance(value, (int, float)) and math.isfinite(value) and value > 0:
                out[key] = int(round(value)) if key == "iso" else float(value)
        stamp = getattr(other, "timestamp", None)
        if stamp is not None and getattr(stamp, "year", 1970) > 1970:
            out["datetime"] = stamp.replace(microsecond=0).isoformat()
    lens = getattr(raw, "lens", None)
    model = getattr(lens, "model", None) if lens is not None else None
    if isinstance(model, str) and model.strip("\x00 "):
        out["lens"] = model.strip("\x00 ")
    return out


def decode_raw(path: str, head: bytes, *, native_detail: bool, max_pixels: int,
               working_long_side: int, source=None) -> tuple[np.ndarray, tuple[int, int], dict, int]:
    """Demosaic a camera RAW file to 8-bit sRGB.

    Parameters
    ----------
    path : str
        The RAW file (already checked to exist, be a readable regular file, and be non-empty).
    head : bytes
        The first bytes of the file, used to tell a RAW from something else and to read EXIF.
    native_detail : bool
        Demosaic at full resolution even when half size would still cover the working size.
    max_pixels : int
        Sensor pixels above which the file is refused before decoding.
    working_long_side : int
        Long side of the working image; ``half_size`` is used when half the sensor covers it.
    source : binary file object, optional
        Read the RAW data from this (e.g. a ``BytesIO`` of bytes from object storage) instead of
        opening ``path``.

    Returns
    -------
    pixels : ndarray, uint8, (h, w, 3)
        sRGB, camera white balance, oriented as the camera recorded (LibRaw applies the flip).
    native_size : (int, int)
        Width and height at full resolution, after orientation.
    exif : dict
        Normalised EXIF (see `picinspector.io._exif.normalise_exif`); from the TIFF header where the
        format has one, completed with what LibRaw parsed.
    bit_depth : int
        Bits of the sensor data (from the white level), e.g. 12 or 14.

    Notes
    -----
    ``half_size`` makes LibRaw take one pixel per 2x2 Bayer quad instead of interpolating, which is
    several times faster and loses nothing once the result is reduced to the working size anyway.
    LibRaw's default automatic brightening (dcraw ``-W`` off) is kept, as in most RAW viewers.

    References
    ----------
    LibRaw, https://www.libraw.org/docs; D. Coffin, dcraw, https://www.dechifro.org/dcraw/.
    """
    if not looks_like_raw(head):
        raise NotAnImage("not a camera RAW file (no RAW header found)", path)
    rawpy = _import_rawpy(path)
    try:
        raw = rawpy.imread(path if source is None else source)
    except rawpy.LibRawFileUnsupportedError as exc:
        raise UnsupportedFormat(f"RAW variant not supported by LibRaw: {exc}", path) from None
    except rawpy.LibRawTooBigError as exc:
        raise DecompressionBomb(f"RAW too big for LibRaw: {exc}", path) from None
    except (rawpy.LibRawError, OSError) as exc:
        raise CorruptImage(f"damaged RAW file: {exc}", path) from None
    with raw:
        sizes = raw.sizes
        sensor = int(sizes.raw_width) * int(sizes.raw_height)
        if sensor > max_pixels:
            raise DecompressionBomb(
                f"RAW sensor is {sizes.raw_width}x{sizes.raw_height} = {sensor:,} pixels, over the "
                f"limit of {max_pixels:,} (raise max_pixels to allow it)", path)
        width, height = int(sizes.width), int(sizes.height)
        if int(sizes.flip) in (5, 6):  # LibRaw flip codes for 90-degree rotations
            width, height = height, width
        half = (not native_detail) and max(width, height) // 2 >= working_long_side
        try:
            pixels = raw.postprocess(use_camera_wb=True, half_size=half, output_bps=8,
                                     output_color=rawpy.ColorSpace.sRGB)
        except rawpy.LibRawTooBigError as exc:
            raise DecompressionBomb(f"RAW too big for LibRaw: {exc}", path) from None
        except rawpy.LibRawError as exc:
            raise CorruptImage(f"damaged RAW data: {exc}", path) from None
        exif = exif_from_tiff_header(head)
        for key, value in _exif_from_rawpy(raw).items():
            exif.setdefault(key, value)
        white = int(getattr(raw, "white_level", 0) or 0)
        bit_depth = max(8, int(white).bit_length()) if white > 0 else 16
    return pixels, (width, height), exif, bit_depth
