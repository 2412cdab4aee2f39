"""EXIF: normalise the camera's tags into a small, typed dict, and apply the orientation tag.

Every field is read defensively: a tag that is missing, of the wrong type, non-finite, non-positive
or unparsable is simply left out of the result. Odd EXIF never stops a photo from loading.
"""

from __future__ import annotations

import math
import re
import struct
import warnings
from datetime import datetime

import numpy as np
from PIL import Image

__all__ = ["apply_orientation", "exif_from_pil", "exif_from_tiff_header", "normalise_exif"]

# IFD0 tags
_MAKE = 0x010F
_MODEL = 0x0110
_ORIENTATION = 0x0112
_DATETIME = 0x0132
# Pointer from IFD0 to the Exif IFD
_EXIF_IFD = 0x8769
# Exif IFD tags
_EXPOSURE_TIME = 0x829A
_F_NUMBER = 0x829D
_ISO = 0x8827  # PhotographicSensitivity (ISOSpeedRatings before Exif 2.3)
_RECOMMENDED_EXPOSURE_INDEX = 0x8832
_ISO_SPEED = 0x8833
_DATETIME_ORIGINAL = 0x9003
_OFFSET_TIME = 0x9010
_OFFSET_TIME_ORIGINAL = 0x9011
_SUBSEC_TIME = 0x9290
_SUBSEC_TIME_ORIGINAL = 0x9291
_SHUTTER_SPEED_VALUE = 0x9201  # APEX Tv
_APERTURE_VALUE = 0x9202  # APEX Av
_FOCAL_LENGTH = 0x920A
_LENS_MODEL = 0xA434

# Exceptions Pillow's EXIF parser raises on damaged data. Anything else is a bug and propagates.
_EXIF_ERRORS = (
    SyntaxError, struct.error, ValueError, TypeError, KeyError, IndexError, OSError,
    UnicodeDecodeError, ZeroDivisionError, OverflowError, AttributeError,
)

_DATE_RE = re.compile(r"^(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
_OFFSET_RE = re.compile(r"^[+-]\d{2}:\d{2}$")
_SUBSEC_RE = re.compile(r"^\d{1,6}$")


def _first(value):
    if isinstance(value, (tuple, list)):
        return value[0] if len(value) else None
    return value


def _as_float(value) -> float | None:
    value = _first(value)
    if value is None or isinstance(value, (str, bytes, bytearray)):
        return None
    try:
        out = float(value)  # IFDRational, int and float all convert
    except _EXIF_ERRORS:
        return None
    return out if math.isfinite(out) else None


def _as_positive(value) -> float | None:
    out = _as_float(value)
    return out if out is not None and out > 0 else None


def _as_str(value) -> str | None:
    value = _first(value) if isinstance(value, (tuple, list)) else value
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if not isinstance(value, str):
        return None
    # Cameras pad fixed-size fields with NULs (sometimes followed by junk): keep what precedes the
    # first NUL after leading padding, then trim whitespace.
    value = value.strip("\x00 \t\r\n").split("\x00", 1)[0].strip()
    return value or None


def _iso_datetime(value, offset, subsec=None) -> str | None:
    text = _as_str(value)
    if text is None:
        return None
    match = _DATE_RE.match(text)
    if match is None:
        return None
    try:
        stamp = datetime(*(int(g) for g in match.groups()))
    except ValueError:  # 0000:00:00 00:00:00 and other impossible dates
        return None
    out = stamp.isoformat()
    subsec = _as_str(subsec)
    if subsec is not None and _SUBSEC_RE.match(subsec):
        out += "." + subsec  # the fraction's digits as the camera wrote them (SubSecTime* is ASCII)
    offset = _as_str(offset)
    if offset is not None and _OFFSET_RE.match(offset):
        out += offset
    return out


def normalise_exif(exif: Image.Exif) -> dict:
    """Turn a Pillow ``Image.Exif`` into PicInspector's EXIF dict.

    Parameters
    ----------
    exif : PIL.Image.Exif
        Tags of IFD0; the Exif IFD (0x8769) is read through it.

    Returns
    -------
    dict
        Any of: ``make`` (str), ``model`` (str), ``lens`` (str), ``iso`` (int),
        ``exposure_time_s`` (float, seconds), ``f_number`` (float), ``focal_length_mm`` (float),
        ``datetime`` (ISO 8601 str, from DateTimeOriginal, else DateTime, with the fraction of a
        second from SubSecTimeOriginal / SubSecTime and the UTC offset when the file records them), ``orientation`` (int, 1..8). Missing or unusable tags are omitted.

    Notes
    -----
    Photo tags are looked up in the Exif IFD first, then in IFD0 (some TIFF writers put them
    there). Rationals become floats. When ExposureTime or FNumber is absent, the APEX values
    ShutterSpeedValue (t = 2^-Tv) and ApertureValue (N = 2^(Av/2)) stand in. An ISO of 65535
    means "too large for this field" (CIPA DC-008), so ISOSpeed / RecommendedExposureIndex is
    preferred when present.

    References
    ----------
    CIPA DC-008-2023, "Exchangeable image file format for digital still cameras: Exif
    Version 3.0", Camera & Imaging Products Association.
    """
    ifd0: dict = {}
    sub: dict = {}
    try:
        ifd0 = dict(exif)
    except _EXIF_ERRORS:
        ifd0 = {}
    try:
        sub = dict(exif.get_ifd(_EXIF_IFD))
    except _EXIF_ERRORS:
        sub = {}

    def tag(number):
        value = sub.get(number)
        return ifd0.get(number) if value is None else value

    out: dict = {}
    for key, number in (("make", _MAKE), ("model", _MODEL), ("lens", _LENS_MODEL)):
        text = _as_str(tag(number))
        if text is not None:
            out[key] = text

    iso = _as_positive(tag(_ISO))
    if iso is None or iso >= 65535:
        iso = _as_positive(tag(_ISO_SPEED)) or _as_positive(tag(_RECOMMENDED_EXPOSURE_INDEX)) or iso
    if iso is not None:
        out["iso"] = int(round(iso))

    exposure = _as_positive(tag(_EXPOSURE_TIME))
    if exposure is None:
        tv = _as_float(tag(_SHUTTER_SPEED_VALUE))
        if tv is not None and -20 < tv < 40:
            exposure = 2.0 ** (-tv)
    if exposure is not None:
        out["exposure_time_s"] = exposure

    f_number = _as_positive(tag(_F_NUMBER))
    if f_number is None:
        av = _as_float(tag(_APERTURE_VALUE))
        if av is not None and 0 <= av < 40:
            f_number = 2.0 ** (av / 2.0)
    if f_number is not None:
        out["f_number"] = f_number

    focal = _as_positive(tag(_FOCAL_LENGTH))
    if focal is not None:
        out["focal_length_mm"] = focal

    stamp = _iso_datetime(sub.get(_DATETIME_ORIGINAL), sub.get(_OFFSET_TIME_ORIGINAL),
                          sub.get(_SUBSEC_TIME_ORIGINAL))
    if stamp is None:
        stamp = _iso_datetime(ifd0.get(_DATETIME), sub.get(_OFFSET_TIME), sub.get(_SUBSEC_TIME))
    if stamp is not None:
        out["datetime"] = stamp

    orientation = _as_float(ifd0.get(_ORIENTATION))
    if orientation is not None and orientation == int(orientation) and 1 <= orientation <= 8:
        out["orientation"] = int(orientation)
    return out


def exif_from_pil(img: Image.Image) -> dict:
    """Normalised EXIF of an opened Pillow image (JPEG, PNG, WebP, TIFF, HEIF, AVIF...).

    Parameters
    ----------
    img : PIL.Image.Image

    Returns
    -------
    dict
        See `normalise_exif`; empty when the image carries no EXIF or it cannot be parsed.

    Notes
    -----
    Pillow warns on damaged EXIF; those warnings are silenced here because the affected fields are
    left out anyway.

    References
    ----------
    CIPA DC-008-2023, Exif Version 3.0.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exif = img.getexif()
        except _EXIF_ERRORS:
            return {}
        return normalise_exif(exif)


def exif_from_tiff_header(head: bytes) -> dict:
    """Normalised EXIF from the first bytes of a TIFF-structured file (most camera RAW formats).

    Parameters
    ----------
    head : bytes
        The start of the file (the first megabyte is plenty for DNG, CR2, NEF, ARW, PEF, ORF, RW2).

    Returns
    -------
    dict
        See `normalise_exif`; empty when ``head`` is not TIFF-structured.

    Notes
    -----
    Olympus ORF (``IIRO``/``IIRS``/``MMOR``) and Panasonic RW2 (``IIU\\0``) are TIFF with a private
    magic number; it is replaced by the standard one (42) before parsing. Tags whose data lie beyond
    ``head`` are skipped.

    References
    ----------
    Adobe, "TIFF Revision 6.0" (1992); Adobe, "Digital Negative (DNG) Specification" 1.7.1 (2023).
    """
    if len(head) < 8 or head[:2] not in (b"II", b"MM"):
        return {}
    magic = head[2:4]
    if head[:2] == b"II" and magic in (b"*\x00", b"RO", b"RS", b"U\x00"):
        head = b"II*\x00" + head[4:]
    elif head[:2] == b"MM" and magic in (b"\x00*", b"OR"):
        head = b"MM\x00*" + head[4:]
    else:
        return {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exif = Image.Exif()
        try:
            exif.load(head)
        except _EXIF_ERRORS:
            return {}
        return normalise_exif(exif)


def apply_orientation(pixels: np.ndarray, orientation: int | None) -> np.ndarray:
    """Turn stored pixels into displayed pixels according to the EXIF orientation tag.

    Parameters
    ----------
    pixels : ndarray, (H, W) or (H, W, C)
    orientation : int or None
        EXIF Orientation, 1..8; None or 1 leaves the pixels as they are.

    Returns
    -------
    ndarray
        A view (no copy) of ``pixels``, rotated / mirrored exactly like
        ``PIL.ImageOps.exif_transpose``: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
        6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.

    Notes
    -----
    Orientation n describes where the stored 0th row and 0th column lie in the displayed scene;
    the view here undoes it. Orientations 5-8 swap width and height.

    References
    ----------
    CIPA DC-008-2023, Exif Version 3.0, tag 0x0112 (Orientation).
    """
    if orientation is None or orientation == 1:
        return pixels
    if orientation not in (2, 3, 4, 5, 6, 7, 8):
        raise ValueError(f"EXIF orientation must be 1..8, got {orientation!r}")
    if pixels.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) array, got shape {pixels.shape}")
    if orientation == 2:
        return pixels[:, ::-1]
    if orientation == 3:
        return pixels[::-1, ::-1]
    if orientation == 4:
        return pixels[::-1]
    transposed = pixels.swapaxes(0, 1)
    if orientation == 5:
        return transposed
    if orientation == 6:
        return transposed[:, ::-1]
    if orientation == 7:
        return transposed[::-1, ::-1]
    return transposed[::-1]  # 8
