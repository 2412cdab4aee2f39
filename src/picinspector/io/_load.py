"""Turn any photo a user has (a file, a Pillow image, a NumPy array) into a `Photo`.

Design: decode as little as the working size needs (JPEG DCT-domain reduction, RAW half size),
convert to float32 exactly once, and map every way a user's file can be bad to a typed error
that names the file.
"""

from __future__ import annotations

import io
import math
import os
import re
import stat
import struct
import warnings
import zlib

# OpenCV's own ceiling on decoded pixels (default 2^30), read at its first decode: ours, so that no
# OpenCV decoder allocates for more than the limit below, whatever a file's header claims.
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(200_000_000))
# Intel IPP off in every thread (see `reproducible_opencv`), read when OpenCV first asks about IPP.
os.environ.setdefault("OPENCV_IPP", "disabled")

import cv2  # noqa: E402 - after the environment it reads

_log_level = cv2.utils.logging.getLogLevel()
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV warns that IPP is off
cv2.ipp.useIPP()  # initialise its IPP settings now, quietly
cv2.utils.logging.setLogLevel(_log_level)



def reproducible_opencv() -> None:
    """Switch Intel IPP off in OpenCV for the calling thread.

    IPP (inside the OpenCV wheels) sums float images with SIMD code whose order depends on the
    buffer's address modulo 64, and its ``magnitude`` rounds differently from OpenCV's own: the same
    photo was measured differently between calls and between threads (last bits, enough to flip a
    rounded digit). OpenCV's own code paths do not depend on addresses and, measured on our
    pipeline, are no slower. ``OPENCV_IPP=disabled`` (set before OpenCV is imported, unless the
    environment already sets it) switches IPP off in every thread; when the application imported
    OpenCV first, only this per-thread switch works, so every thread that measures calls it
    (`load_photo` does, and so do the Inspector's measure threads).
    """
    cv2.ipp.setUseIPP(False)


reproducible_opencv()
import numpy as np
import pillow_heif
from PIL import Image, ImageCms, UnidentifiedImageError

from ..errors import (
    AnalysisError,
    CorruptImage,
    DecompressionBomb,
    EmptyFile,
    FileNotFound,
    InvalidPixels,
    LoadError,
    NotAnImage,
    OutOfMemory,
    UnreadableFile,
    UnsupportedFormat,
)
from ._exif import apply_orientation, exif_from_pil
from ._photo import WORKING_LONG_SIDE, Photo
from ._raw import RAW_EXTENSIONS, decode_raw

__all__ = [
    "MAX_PIXELS",
    "MIN_SIDE",
    "RAW_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "InvalidPixels",
    "load_photo",
    "load_photo_bytes",
    "photo_from_array",
    "photo_from_pil",
    "read_file_bytes",
    "reproducible_opencv",
]

# HEIC/HEIF through libheif. AVIF is left to Pillow's own plugin (Pillow >= 11.2).
pillow_heif.register_heif_opener()

#: Decompression-bomb limit: images with more pixels than this (200 megapixels) are refused from
#: their header, before any pixel is decoded, with a `DecompressionBomb` naming the size.
#: Pillow has its own, process-wide limit (an error above 2 * ``PIL.Image.MAX_IMAGE_PIXELS``, about
#: 179 megapixels by default): importing picinspector raises it to this limit when it is lower, and
#: a larger ``max_pixels`` raises it further, so that the limit users meet is this one.
MAX_PIXELS = 200_000_000

#: Largest `Photo.detail` kept at native resolution (36 megapixels: 432 MB as float32 RGB). A larger
#: image is reduced by the smallest whole factor that fits (a 61-MP TIFF by 2, a 200-MP PNG by 3)
#: while its pixels are converted, in bands, so that memory stays bounded; its ``detail_scale`` is
#: then 1/factor and the ``_native`` measures are null, as for a JPEG decoded at reduced size.
MAX_DETAIL_PIXELS = 36_000_000

#: 16-bit colour PNG/TIFF is decoded at full precision (by OpenCV, 6 bytes a pixel) up to this many
#: pixels; a larger one is decoded by Pillow at 8 bits, which is all its reduced detail needs.
MAX_WIDE_PIXELS = 50_000_000

# Pixels converted to float at a time while building the detail image.
_BAND_PIXELS = 1 << 22

# The orientation whose view undoes each EXIF orientation (see `apply_orientation`).
_INVERSE_ORIENTATION = {2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}

#: Smallest width and height the measures can work with.
MIN_SIDE = 16

#: Lower-case file suffixes the loader reads (the batch runner uses this to walk folders).
SUPPORTED_EXTENSIONS = frozenset({
    ".jpg", ".jpeg", ".jpe", ".jfif", ".mpo",
    ".png", ".webp", ".tif", ".tiff", ".bmp", ".dib", ".gif",
    ".heic", ".heif", ".hif", ".avif",
    ".pbm", ".pgm", ".ppm", ".pnm",
}) | RAW_EXTENSIONS

# JPEG DCT-domain reduction: the largest 1/2^k (k <= 3) whose long side is still this fraction of
# the working long side (4000x3000 -> 1/4 = 1000x750, used as the working image without re-sampling).
_DRAFT_MIN_FRACTION = 0.9
_DRAFT_MAX_SHIFT = 3

# Exceptions Pillow (and its plugins, and zlib) raise on damaged data while opening or decoding.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError,
                  struct.error, zlib.error, RuntimeError)

_SRGB_PROFILE = ImageCms.createProfile("sRGB")


def _allow_pillow(max_pixels: int) -> None:
    """Raise Pillow's process-wide bomb limit (never lower it) so that it refuses nothing under
    ``max_pixels``: our own check, with our message, is the one that applies."""
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and 2 * limit < max_pixels:
        Image.MAX_IMAGE_PIXELS = -(-max_pixels // 2)


_allow_pillow(MAX_PIXELS)


def _pillow_bomb(exc: Exception, max_pixels: int, path) -> DecompressionBomb:
    """Our `DecompressionBomb` for Pillow's own refusal (an image over its process-wide limit)."""
    found = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(found.group(1)):,} pixels" if found else "more pixels than Pillow's limit"
    return DecompressionBomb(
        f"image is {size}, over the limit of {max_pixels:,} (decompression-bomb guard; raise max_pixels to "
        "allow it)", path)


# --------------------------------------------------------------------------------------------
# Sizes and pixel conversion
# --------------------------------------------------------------------------------------------

def _working_size(width: int, height: int) -> tuple[int, int]:
    """Working (width, height): long side ``WORKING_LONG_SIDE``, never enlarged."""
    long_side = max(width, height)
    if long_side <= WORKING_LONG_SIDE:
        return width, height
    if width >= height:
        return WORKING_LONG_SIDE, max(1, round(height * WORKING_LONG_SIDE / width))
    return max(1, round(width * WORKING_LONG_SIDE / height)), WORKING_LONG_SIDE


def _draft_shift(width: int, height: int) -> int:
    """k of the JPEG 1/2^k reduction: largest k <= 3 with ceil(long/2^k) >= 0.9 * working side."""
    long_side = max(width, height)
    for k in range(_DRAFT_MAX_SHIFT, 0, -1):
        if -(-long_side // (1 << k)) >= _DRAFT_MIN_FRACTION * WORKING_LONG_SIDE:
            return k
    return 0


def _check_size(width: int, height: int, max_pixels: int | None, path) -> None:
    pixels = width * height
    if max_pixels is not None and pixels > max_pixels:
        raise DecompressionBomb(
            f"image is {width}x{height} = {pixels:,} pixels, over the limit of {max_pixels:,} "
            "(decompression-bomb guard; raise max_pixels to allow it)", path)
    if width < MIN_SIDE or height < MIN_SIDE:
        raise AnalysisError(f"image too small: {width}x{height}, need at least {MIN_SIDE}x{MIN_SIDE}",
                            path)


def _to_float(pixels: np.ndarray, scale: float) -> np.ndarray:
    """One C-contiguous float32 copy of ``pixels`` / ``scale`` (works on strided/oriented views)."""
    out = np.empty(pixels.shape, dtype=np.float32)
    np.divide(pixels, np.float32(scale), out=out, casting="unsafe")
    return out


def _finish_pixels(values: np.ndarray, has_alpha: bool) -> np.ndarray:
    """float32 (H, W), (H, W, 2), (H, W, 3) or (H, W, 4) in [0, 1] -> (H, W, 3), alpha over white."""
    if values.ndim == 2:
        return cv2.cvtColor(values, cv2.COLOR_GRAY2RGB)
    channels = values.shape[2]
    if channels == 1:
        return cv2.cvtColor(values[:, :, 0], cv2.COLOR_GRAY2RGB)
    if channels == 2:  # gray + alpha
        alpha = values[:, :, 1]
        gray = values[:, :, 0] * alpha + (1.0 - alpha) if has_alpha else values[:, :, 0]
        return cv2.cvtColor(np.ascontiguousarray(gray, dtype=np.float32), cv2.COLOR_GRAY2RGB)
    if channels == 4:
        if not has_alpha:
            return np.ascontiguousarray(values[:, :, :3])
        alpha = values[:, :, 3:4]
        out = values[:, :, :3] * alpha
        out += 1.0 - alpha
        return np.clip(out, 0.0, 1.0, out=out)  # float rounding could step just past 1
    return values


def _make_photo(detail: np.ndarray, native: tuple[int, int], detail_scale: float | None = None,
                **facts) -> Photo:
    """Build the Photo: reduce ``detail`` to the working size (or share it when already there).
    ``detail_scale``: pixels of ``detail`` per native pixel when it is known exactly (a whole
    reduction factor); default: measured from the widths."""
    native_w, native_h = native
    det_h, det_w = detail.shape[:2]
    if max(det_w, det_h) <= WORKING_LONG_SIDE:
        # Already at or below the working size (small images, and large JPEGs decoded in the DCT
        # domain to a long side of 922-1024): used as they are, never enlarged or re-sampled.
        rgb = detail
    else:
        rgb = cv2.resize(detail, _working_size(det_w, det_h), interpolation=cv2.INTER_AREA)
        np.clip(rgb, 0.0, 1.0, out=rgb)  # float rounding in the averaging can step just past 1
    scale = det_w / float(native_w) if detail_scale is None else float(detail_scale)
    return Photo(rgb=rgb, detail=detail, detail_scale=scale, width=native_w, height=native_h, **facts)


# --------------------------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------------------------

def photo_from_array(arr: np.ndarray) -> Photo:
    """Wrap an in-memory image as a `Photo`.

    Parameters
    ----------
    arr : ndarray
        (H, W) grayscale, (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA, sRGB-encoded. dtype uint8
        (0..255), uint16 (0..65535), bool, or float (float16/32/64) in [0, 1].

    Returns
    -------
    Photo
        ``format="ARRAY"``, no EXIF; alpha composited over white; ``detail`` is a float32 copy of
        the input (the caller's array is never aliased).

    Raises
    ------
    InvalidPixels
        Wrong number of dimensions or channels, an unsupported dtype, NaN/inf, or floats outside
        [0, 1] (a ``ValueError``).
    AnalysisError
        Smaller than ``MIN_SIDE`` on a side.
    TypeError
        ``arr`` is not an ndarray.

    Notes
    -----
    Floats are not clipped: values outside [0, 1] usually mean the caller passed 0..255 floats or
    linear HDR data, and guessing would silently change every measure.

    References
    ----------
    IEC 61966-2-1:1999, Multimedia systems and equipment - Colour measurement and management -
    Part 2-1: Default RGB colour space - sRGB.
    """
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"expected a numpy.ndarray, got {type(arr).__name__}")
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        channels = arr.shape[2]
    elif arr.ndim == 2:
        channels = 1
    else:
        raise InvalidPixels(f"expected shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {arr.shape}")
    height, width = arr.shape[:2]
    _check_size(width, height, None, None)  # already in memory: no bomb check
    if arr.dtype == np.uint8:
        values, bit_depth = _to_float(arr, 255.0), 8
    elif arr.dtype == np.uint16:
        values, bit_depth = _to_float(arr, 65535.0), 16
    elif arr.dtype == np.bool_:
        values, bit_depth = arr.astype(np.float32), 1
    elif np.issubdtype(arr.dtype, np.floating):
        values, bit_depth = arr.astype(np.float32), 32 if arr.dtype.itemsize >= 4 else 16
        if not np.isfinite(values).all():
            raise InvalidPixels("float pixels contain NaN or infinity")
        low, high = float(values.min()), float(values.max())
        if low < 0.0 or high > 1.0:
            raise InvalidPixels(
                f"float pixels must lie in [0, 1], got [{low:.4g}, {high:.4g}] "
                "(divide 0..255 data by 255, or pass uint8)")
    else:
        raise InvalidPixels(f"unsupported dtype {arr.dtype} (use uint8, uint16, or float in [0, 1])")
    has_alpha = channels == 4
    detail = _finish_pixels(values, has_alpha)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[channels]
    return _make_photo(detail, (width, height), format="ARRAY", path=None, exif={},
                       bit_depth=bit_depth, mode=mode, has_alpha=has_alpha)


# --------------------------------------------------------------------------------------------
# Pillow images
# --------------------------------------------------------------------------------------------

def _rawmode(img: Image.Image) -> str:
    if not img.tile:
        return ""
    args = img.tile[0].args if hasattr(img.tile[0], "args") else img.tile[0][3]
    mode = args[0] if isinstance(args, tuple) and args else args
    return mode if isinstance(mode, str) else ""


def _is_16bit_colour(img: Image.Image) -> bool:
    """A 16-bit-per-channel RGB(A) PNG/TIFF, which Pillow would truncate to 8 bits."""
    return (img.format in ("PNG", "TIFF") and img.mode in ("RGB", "RGBA")
            and ";16" in _rawmode(img))


def _srgb_converter(img: Image.Image):
    """A function converting RGB(A)/CMYK bands with the image's embedded non-sRGB ICC profile to
    sRGB (built once per image), CMYK without one plainly; None when nothing is to be done."""
    icc = img.info.get("icc_profile")
    if img.mode not in ("RGB", "RGBA", "CMYK"):
        return None
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            description = ImageCms.getProfileDescription(source) or ""
            if img.mode == "CMYK" or "srgb" not in description.lower():
                out_mode = "RGBA" if img.mode == "RGBA" else "RGB"
                transform = ImageCms.buildTransform(source, _SRGB_PROFILE, img.mode, out_mode)
                return lambda band: ImageCms.applyTransform(band, transform)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            # A broken embedded profile: the pixels are still the best description of the photo,
            # so fall through and use them unconverted (CMYK through Pillow's naive formula).
            pass
    if img.mode == "CMYK":
        return lambda band: band.convert("RGB")
    return None


def _pixel_plan(img: Image.Image, path):
    """How to turn bands of a loaded Pillow image into arrays: ``(convert, full_scale, has_alpha,
    bit_depth, check)``, where ``convert(band) -> Image`` and ``check(array)`` raises for pixels
    outside the mode's range."""
    mode = img.mode
    check = None
    if mode in ("RGB", "RGBA", "CMYK"):
        convert = _srgb_converter(img) or (lambda band: band)
        out_mode = "RGBA" if mode == "RGBA" else "RGB"
    elif mode in ("P", "PA"):
        out_mode = "RGBA" if mode == "PA" or "transparency" in img.info else "RGB"
        convert = lambda band: band.convert(out_mode)  # noqa: E731
    elif mode == "1":
        out_mode, convert = "L", (lambda band: band.convert("L"))
    elif mode in ("RGBa", "La"):
        out_mode = mode.upper()  # premultiplied -> straight alpha
        convert = lambda band: band.convert(out_mode)  # noqa: E731
    elif mode in ("L", "LA", "I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        out_mode, convert = mode, (lambda band: band)
    else:
        try:
            img.crop((0, 0, 1, 1)).convert("RGB")
        except ValueError:
            raise UnsupportedFormat(f"pixel mode {mode} cannot be converted to RGB", path) from None
        out_mode, convert = "RGB", (lambda band: band.convert("RGB"))
    if out_mode.startswith("I;16"):
        return convert, 65535.0, False, 16, None
    if out_mode == "I":  # 32-bit integers; in practice 16-bit data
        def check(pixels):
            if pixels.size and (pixels.min() < 0 or pixels.max() > 65535):
                raise UnsupportedFormat("32-bit integer pixels outside 0..65535", path)
        return convert, 65535.0, False, 16, check
    if out_mode == "F":
        def check(pixels):
            if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 1:
                raise UnsupportedFormat("floating-point pixels outside [0, 1]", path)
        return convert, 1.0, False, 32, check
    has_alpha = out_mode in ("RGBA", "LA")
    return convert, 255.0, has_alpha, (1 if mode == "1" else 8), check


def _detail_factor(width: int, height: int) -> int:
    """The smallest whole reduction that brings ``width x height`` within `MAX_DETAIL_PIXELS`."""
    factor = 1
    while width * height > MAX_DETAIL_PIXELS * factor * factor:
        factor += 1
    return factor


def _banded_detail(read_band, width: int, height: int, factor: int, orientation, reduced: bool = False
                   ) -> np.ndarray:
    """The float32 RGB detail image, assembled band by band of stored rows.

    ``read_band(y0, y1)`` gives stored rows ``y0:y1`` as float32 (rows, width, 3) in [0, 1] (alpha
    already composited); each band is reduced by ``factor`` with box averaging (OpenCV
    ``INTER_AREA`` at a whole factor), unless ``reduced`` says ``read_band`` did it already, and
    written straight into its oriented place, so the only full-size arrays are the decoder's and
    the result.
    """
    out_w, out_h = width // factor, height // factor
    rows = max(1, _BAND_PIXELS // max(1, width) // factor) * factor
    # One band, stored upright (a working-size decode): the band is the result, no second full-size array
    single = out_h > 0 and rows >= out_h * factor and orientation in (None, 1)
    if not single:
        shape = (out_w, out_h) if orientation in (5, 6, 7, 8) else (out_h, out_w)
        out = np.empty((*shape, 3), dtype=np.float32)
        stored = out if orientation in (None, 1) else apply_orientation(out, _INVERSE_ORIENTATION[orientation])
    for y0 in range(0, out_h * factor, rows):
        y1 = min(y0 + rows, out_h * factor)
        band = read_band(y0, y1)
        if factor > 1 and not reduced:
            band = cv2.resize(np.ascontiguousarray(band[:, : out_w * factor]), (out_w, (y1 - y0) // factor),
                              interpolation=cv2.INTER_AREA)
        if single:
            return np.ascontiguousarray(band, dtype=np.float32)
        stored[y0 // factor: y1 // factor] = band
    return out


#: Modes whose whole-factor reduction Pillow's ``Image.reduce`` does as our bands would (no alpha
#: to composite first, no palette indices).
_PILLOW_REDUCES = frozenset({"L", "RGB", "I", "F", "CMYK"})


def _pil_detail(img: Image.Image, path, orientation, factor: int) -> tuple[np.ndarray, bool, int]:
    """Loaded Pillow image -> (float32 RGB detail, oriented and reduced by ``factor``, has_alpha,
    bit depth), converting at most `_BAND_PIXELS` pixels at a time.

    A reduction is done by Pillow in C where it averages as we would: on the whole image for modes
    without alpha or palette, else band by band after the band's conversion (8-bit alpha averaged
    premultiplied, then put over white, which is exact for a box average).
    """
    if factor > 1 and img.mode in _PILLOW_REDUCES:
        # Pillow's own box reduction, in C on the decoded image: several times faster than bands
        width, height = img.size
        img = img.reduce(factor, box=(0, 0, width - width % factor, height - height % factor))
        factor = 1
    convert, full_scale, has_alpha, bit_depth, check = _pixel_plan(img, path)
    width, height = img.size
    in_pillow = factor > 1 and full_scale == 255.0  # 8-bit L, LA, RGB, RGBA after the conversion
    box_width = (width // factor) * factor

    def read_band(y0: int, y1: int) -> np.ndarray:
        # One band is the whole image (a working-size decode): no crop, which would copy it
        band = convert(img if (y0, y1) == (0, height) else img.crop((0, y0, width, y1)))
        if in_pillow:
            box = (0, 0, box_width, y1 - y0)
            if band.mode in ("RGBA", "LA"):
                band = band.convert("RGBa" if band.mode == "RGBA" else "La").reduce(factor, box=box)
                values = _to_float(np.asarray(band), 255.0)
                colour = values[:, :, :-1]
                colour += 1.0 - values[:, :, -1:]  # premultiplied colour over white
                np.clip(colour, 0.0, 1.0, out=colour)
                return _finish_pixels(np.ascontiguousarray(colour), False)
            band = band.reduce(factor, box=box)
        pixels = np.asarray(band)
        if check is not None:
            check(pixels)
        return _finish_pixels(_to_float(pixels, full_scale), has_alpha)

    return (_banded_detail(read_band, width, height, factor, orientation, reduced=in_pillow), has_alpha,
            bit_depth)


def _png_overrun(handle) -> str | None:
    """Why a PNG file's chunk structure is impossible (a chunk longer than the rest of the file), or
    None. Reads the 8-byte chunk headers only; the file position is left where it was."""
    start = handle.tell()
    try:
        size = handle.seek(0, os.SEEK_END)
        offset = 8
        while offset + 8 <= size:
            handle.seek(offset)
            length, kind = struct.unpack(">I4s", handle.read(8))
            if offset + 12 + length > size:
                name = kind.decode("latin-1") if kind.isalpha() else repr(kind)
                return (f"chunk {name} declares {length:,} bytes, but the file ends {size - offset - 12:,} bytes "
                        "later (truncated or damaged)")
            if kind == b"IEND":
                return None
            offset += 12 + length
        return None
    except (OSError, struct.error):
        return None
    finally:
        handle.seek(start)


def _png_chunks_fit(data: bytes) -> bool:
    """Whether every chunk of a PNG file fits inside the file (a chunk length is read before any
    decoder allocates for it: a 25-KB file can declare a 2-GB IDAT)."""
    offset = 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if length > 0x7FFFFFFF or offset + 12 + length > len(data):
            return False
        offset += 12 + length
        if kind == b"IEND":
            return True
    return False


class _QuietOpenCV:
    """OpenCV's log silenced around a decode whose failure we report ourselves."""

    def __enter__(self):
        self._level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)

    def __exit__(self, *exc):
        cv2.utils.logging.setLogLevel(self._level)


def _tiff_layout(data: bytes) -> dict | None:
    """Width, height, samples per pixel, bits per sample and sample format of a TIFF's first
    image, read from its first IFD (TIFF 6.0, section 2), or None if the header is unreadable."""
    if data[:4] == b"II*\x00":
        end = "<"
    elif data[:4] == b"MM\x00*":
        end = ">"
    else:
        return None
    sizes = {1: 1, 3: 2, 4: 4}
    try:
        (ifd,) = struct.unpack(end + "I", data[4:8])
        (count,) = struct.unpack(end + "H", data[ifd:ifd + 2])
        tags: dict[int, int] = {}
        for i in range(count):
            tag, kind, n, raw = struct.unpack(end + "HHI4s", data[ifd + 2 + 12 * i: ifd + 14 + 12 * i])
            if tag not in (256, 257, 258, 277, 339) or kind not in sizes or n < 1:
                continue
            size = sizes[kind]
            if n * size <= 4:
                field = raw[:size]
            else:
                (at,) = struct.unpack(end + "I", raw)
                field = data[at:at + size]
            tags[tag] = struct.unpack(end + {1: "B", 2: "H", 4: "I"}[size], field)[0]
    except (struct.error, IndexError):
        return None
    if 256 not in tags or 257 not in tags:
        return None
    return {"width": tags[256], "height": tags[257], "samples": tags.get(277, 1), "bits": tags.get(258, 1),
            "format": tags.get(339, 1)}


#: Largest decoded buffer (bytes) of a TIFF that Pillow cannot read and OpenCV decodes instead.
_MAX_FALLBACK_BYTES = 600_000_000


def _decode_tiff_fallback(data: bytes, path, max_pixels: int) -> Photo | None:
    """A TIFF Pillow cannot read (32/64-bit float RGB, as tifffile and HDR tools write): decoded by
    OpenCV after its size is checked from the header. None when OpenCV cannot read it either."""
    layout = _tiff_layout(data)
    if layout is None:
        return None
    width, height = layout["width"], layout["height"]
    _check_size(width, height, max_pixels, path)
    if width * height * layout["samples"] * max(1, layout["bits"]) // 8 > _MAX_FALLBACK_BYTES:
        raise UnsupportedFormat(f"{width}x{height} TIFF with {layout['samples']}x{layout['bits']}-bit samples "
                                "is too large for this decoder (at most 600 MB of pixels)", path)
    decoded = _opencv_decode(data)
    if decoded is None and (layout["format"] not in (1, 2) or layout["bits"] not in (1, 8, 16)):
        kind = {1: "unsigned", 2: "signed", 3: "floating-point"}.get(layout["format"], "unusual")
        raise UnsupportedFormat(f"TIFF with {layout['samples']} {kind} {layout['bits']}-bit samples per pixel "
                                "is not supported (8/16-bit integers and 32/64-bit floats are)", path)
    return _opencv_photo(decoded, width, height, "TIFF", path)


def _opencv_decode(data: bytes) -> np.ndarray | None:
    try:
        with _QuietOpenCV():
            return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None


def _opencv_photo(decoded: np.ndarray | None, width: int, height: int, fmt: str, path) -> Photo | None:
    """A `Photo` from what ``cv2.imdecode(..., IMREAD_UNCHANGED)`` gave for a file whose header said
    ``width x height``; None when it gave nothing usable."""
    if decoded is None or decoded.ndim not in (2, 3) or decoded.shape[:2] != (height, width):
        return None
    if decoded.ndim == 3 and decoded.shape[2] not in (1, 3, 4):
        return None
    if decoded.ndim == 3 and decoded.shape[2] >= 3:
        decoded = decoded[:, :, [2, 1, 0, 3][: decoded.shape[2]]]  # BGR(A) -> RGB(A), a view
    kind = decoded.dtype
    if np.issubdtype(kind, np.floating):
        if not np.isfinite(decoded).all() or decoded.min() < 0 or decoded.max() > 1:
            raise UnsupportedFormat("floating-point pixels outside [0, 1] (linear HDR data?); convert them to "
                                    "an 8- or 16-bit image first", path)
        scale, bits = 1.0, 8 * kind.itemsize
    elif kind == np.uint8:
        scale, bits = 255.0, 8
    elif kind == np.uint16:
        scale, bits = 65535.0, 16
    else:
        return None
    has_alpha = decoded.ndim == 3 and decoded.shape[2] == 4
    factor = _detail_factor(width, height)

    def read_band(y0: int, y1: int) -> np.ndarray:
        return _finish_pixels(_to_float(decoded[y0:y1], scale), has_alpha)

    detail = _banded_detail(read_band, width, height, factor, None)
    mode = {1: "L", 3: "RGB", 4: "RGBA"}[1 if decoded.ndim == 2 else decoded.shape[2]]
    if np.issubdtype(kind, np.floating):
        mode += f";{bits}F"
    elif bits == 16:
        mode += ";16"
    return _make_photo(detail, (width, height), format=fmt, path=path, exif={}, bit_depth=bits, mode=mode,
                       has_alpha=has_alpha, jpeg_quantization=None, detail_scale=1.0 / factor)


#: WebP larger than this is decoded by OpenCV (3 bytes a pixel) instead of Pillow, whose decoder
#: holds three full RGBA copies (12 bytes a pixel: 2.35 GB for 144 MP). OpenCV reads no ICC
#: profile or EXIF orientation from WebP; such large WebPs rarely carry them.
MAX_PILLOW_WEBP_PIXELS = 40_000_000


#: (colour, greyscale) ``cv2.imdecode`` flags of a JPEG decoded at 1/2^k in the DCT domain, by k.
_OPENCV_JPEG_FLAGS = {
    0: (cv2.IMREAD_COLOR, cv2.IMREAD_GRAYSCALE),
    1: (cv2.IMREAD_REDUCED_COLOR_2, cv2.IMREAD_REDUCED_GRAYSCALE_2),
    2: (cv2.IMREAD_REDUCED_COLOR_4, cv2.IMREAD_REDUCED_GRAYSCALE_4),
    3: (cv2.IMREAD_REDUCED_COLOR_8, cv2.IMREAD_REDUCED_GRAYSCALE_8),
}


def _opencv_jpeg(img: Image.Image, file_bytes, shift: int, path) -> Photo | None:
    """The common JPEG (8-bit YCbCr or greyscale, no ICC profile to convert) decoded by OpenCV.

    OpenCV's libjpeg-turbo decodes the file from memory in one call, at 1/2^``shift`` in the DCT
    domain as Pillow's ``draft`` does: the same pixels (tests/test_io.py compares them), about 1 ms
    sooner than Pillow's chunked decode on a 12-MP photo, on the one step of an analysis that no
    second core can share (entropy decoding is sequential). EXIF and quantisation tables come from
    Pillow's parse of the header; an MPO gives its first image, as Pillow does. None sends the file
    to the Pillow path: another mode or an ICC profile to convert, a detail image over the pixel
    budget, data that does not end with an end-of-image marker (a truncated file: Pillow names the
    fault), or a decode OpenCV refuses or sizes differently.
    """
    if img.mode not in ("RGB", "L") or shift not in _OPENCV_JPEG_FLAGS or _srgb_converter(img) is not None:
        return None
    stored_w, stored_h = img.size
    step = 1 << shift
    out_w, out_h = (stored_w + step - 1) >> shift, (stored_h + step - 1) >> shift
    if _detail_factor(out_w, out_h) > 1:
        return None
    data = file_bytes()
    if data.rstrip(b"\x00")[-2:] != b"\xff\xd9":
        return None
    grey = img.mode == "L"
    flags = _OPENCV_JPEG_FLAGS[shift][grey] | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        with _QuietOpenCV():
            pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error:
        return None
    if pixels is None or pixels.shape[:2] != (out_h, out_w) or pixels.dtype != np.uint8:
        return None
    exif = exif_from_pil(img)
    orientation = exif.get("orientation")
    quant = _quantization(img, path)
    stored = pixels if grey else cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)  # a reversed view divides 5x slower
    detail = _finish_pixels(_to_float(apply_orientation(stored, orientation), 255.0), False)
    return _make_photo(detail, _oriented_size(stored_w, stored_h, orientation), format="JPEG", path=path,
                       exif=exif, bit_depth=8, mode=img.mode, has_alpha=False, jpeg_quantization=quant)


def _webp_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from a WebP file's first chunk (RFC 9649: VP8, VP8L or VP8X), or None."""
    if len(head) < 30 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", head[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _decode_16bit_colour(data: bytes) -> np.ndarray | None:
    """16-bit RGB(A) PNG/TIFF through OpenCV, as RGB(A) uint16 (stored orientation), or None.

    A PNG is decoded only when all its chunks fit in the file (else Pillow decides, and reports it)."""
    if data.startswith(b"\x89PNG") and not _png_chunks_fit(data):
        return None
    try:
        with _QuietOpenCV():
            decoded = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        return None
    if decoded is None or decoded.dtype != np.uint16 or decoded.ndim != 3:
        return None
    if decoded.shape[2] == 3:
        return decoded[:, :, ::-1]
    if decoded.shape[2] == 4:
        return decoded[:, :, [2, 1, 0, 3]]
    return None


def _quantization(img: Image.Image, path) -> dict | None:
    """The JPEG's quantisation tables in natural order, or None; a zero step is a damaged file."""
    # Pillow's JpegImagePlugin reads each DQT table in the file's zigzag order and stores it
    # de-zigzagged, i.e. in natural (row-major 8x8) order: entry 8*v + u is the step of DCT
    # frequency (u horizontal, v vertical).
    tables = getattr(img, "quantization", None)
    if not tables:
        return None
    quant = {int(k): [int(v) for v in table] for k, table in tables.items()}
    if any(min(table, default=1) < 1 for table in quant.values()):
        raise CorruptImage("damaged JPEG: a quantisation table holds a zero step", path)
    return quant


def _oriented_size(stored_w: int, stored_h: int, orientation) -> tuple[int, int]:
    return (stored_h, stored_w) if orientation in (5, 6, 7, 8) else (stored_w, stored_h)


def _decode_pil(img: Image.Image, *, path, fmt, native_detail: bool, max_pixels: int,
                allow_draft: bool, file_bytes=None) -> Photo:
    """Core of every Pillow-readable source. ``img`` may be lazily opened (not yet loaded).

    Order matters: the size check uses the header only; EXIF is read after ``load()`` because
    Pillow's PNG reader decodes the whole image to find an eXIf chunk stored after the pixels.
    Memory: the decoder's own image, plus the detail image (at most `MAX_DETAIL_PIXELS`), plus one
    band; a MemoryError becomes `OutOfMemory`.
    """
    stored_w, stored_h = img.size
    _check_size(stored_w, stored_h, max_pixels, path)  # area and min side are rotation-invariant
    fmt = fmt or img.format or "ARRAY"
    try:
        return _decode_checked(img, path=path, fmt=fmt, native_detail=native_detail, allow_draft=allow_draft,
                               file_bytes=file_bytes, max_pixels=max_pixels)
    except MemoryError:
        raise OutOfMemory(f"not enough memory to decode this {stored_w}x{stored_h} {fmt} image", path) from None


def _decode_checked(img: Image.Image, *, path, fmt, native_detail: bool, allow_draft: bool,
                    file_bytes, max_pixels: int) -> Photo:
    stored_w, stored_h = img.size
    is_jpeg = img.format in ("JPEG", "MPO")
    source_mode = img.mode

    if file_bytes is not None and _is_16bit_colour(img) and stored_w * stored_h <= MAX_WIDE_PIXELS:
        wide = _decode_16bit_colour(file_bytes())
        if wide is not None:
            # a PNG's eXIf chunk after the pixels would make Pillow decode them all again: skip it
            exif = exif_from_pil(img) if img.format != "PNG" or "exif" in img.info else {}
            orientation = exif.get("orientation")
            has_alpha = wide.shape[2] == 4
            factor = _detail_factor(stored_w, stored_h)

            def read_band(y0: int, y1: int) -> np.ndarray:
                return _finish_pixels(_to_float(wide[y0:y1], 65535.0), has_alpha)

            detail = _banded_detail(read_band, stored_w, stored_h, factor, orientation)
            del wide
            return _make_photo(detail, _oriented_size(stored_w, stored_h, orientation), format=fmt,
                               path=path, exif=exif, bit_depth=16, mode=source_mode + ";16",
                               has_alpha=has_alpha, jpeg_quantization=None, detail_scale=1.0 / factor)
        # OpenCV could not read it (an unusual TIFF compression): Pillow's 8-bit decode below.

    if is_jpeg and allow_draft:
        if not native_detail:
            shift = _draft_shift(stored_w, stored_h)
        else:  # native pixels, unless they would exceed the detail budget: then the least reduction
            shift = max(0, math.ceil(math.log2(_detail_factor(stored_w, stored_h))))
        if file_bytes is not None:
            photo = _opencv_jpeg(img, file_bytes, shift, path)
            if photo is not None:
                return photo
        if shift:
            img.draft("RGB", (stored_w >> shift, stored_h >> shift))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
    except Image.DecompressionBombError as exc:
        raise _pillow_bomb(exc, max_pixels, path) from None
    except MemoryError:
        raise
    except OSError as exc:
        message = str(exc)
        if "not available" in message and ("decoder" in message or "codec" in message):
            raise UnsupportedFormat(f"cannot decode {fmt}: {message}", path) from None
        raise CorruptImage(f"damaged or truncated {fmt} data: {message}", path) from None
    except _DECODE_ERRORS as exc:
        raise CorruptImage(f"damaged or truncated {fmt} data: {exc}", path) from None

    exif = exif_from_pil(img)
    orientation = exif.get("orientation")
    quant = _quantization(img, path) if is_jpeg else None
    decoded_w, decoded_h = img.size
    factor = _detail_factor(decoded_w, decoded_h)
    try:
        detail, has_alpha, bit_depth = _pil_detail(img, path, orientation, factor)
    except (LoadError, MemoryError):
        raise
    except _DECODE_ERRORS as exc:
        raise CorruptImage(f"cannot convert {fmt} pixels: {exc}", path) from None
    scale = (decoded_w / stored_w) / factor
    return _make_photo(detail, _oriented_size(stored_w, stored_h, orientation),
                       format="JPEG" if is_jpeg else fmt, path=path, exif=exif,
                       bit_depth=bit_depth, mode=source_mode, has_alpha=has_alpha,
                       jpeg_quantization=quant, detail_scale=scale if factor > 1 else None)


def photo_from_pil(img: Image.Image, *, path=None, fmt: str | None = None,
                   native_detail: bool = False, max_pixels: int = MAX_PIXELS) -> Photo:
    """Turn a Pillow image into a `Photo`.

    Parameters
    ----------
    img : PIL.Image.Image
        Loaded or lazily opened. It is loaded if needed but never drafted (reduced) here, since
        it belongs to the caller.
    path : str or PathLike, optional
        Recorded on the Photo and named in errors.
    fmt : str, optional
        Format name to record; default ``img.format``, or ``"ARRAY"`` for an in-memory image.
    native_detail : bool
        Accepted for symmetry with `load_photo`; a caller's image is always used at the
        resolution it has.
    max_pixels : int
        Decompression-bomb limit, checked on the header size.

    Returns
    -------
    Photo
        EXIF orientation applied, alpha over white, grayscale replicated, CMYK and non-sRGB ICC
        profiles converted to sRGB.

    Raises
    ------
    DecompressionBomb, CorruptImage, UnsupportedFormat, AnalysisError
        See `load_photo`.

    Notes
    -----
    Orientation follows ``PIL.ImageOps.exif_transpose``; JPEG quantisation tables are recorded
    when the image came from a JPEG file.

    References
    ----------
    CIPA DC-008-2023, Exif Version 3.0 (orientation); ICC.1:2022 (colour profiles).
    """
    if not isinstance(img, Image.Image):
        raise TypeError(f"expected a PIL.Image.Image, got {type(img).__name__}")
    _check_max_pixels(max_pixels)
    _allow_pillow(max_pixels)
    path = None if path is None else os.fspath(path)
    return _decode_pil(img, path=path, fmt=fmt, native_detail=native_detail, max_pixels=max_pixels,
                       allow_draft=False)


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

_KNOWN_DECODABLE = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "BigTIFF"),
    (b"MM\x00+", "BigTIFF"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif",
                b"avis", b"mif2", b"miaf"}


def _sniff(head: bytes) -> tuple[str, bool] | None:
    """(format name, whether we can decode it) from the magic number, or None if unrecognised."""
    for magic, name in _KNOWN_DECODABLE:
        if head.startswith(magic):
            return name, name != "BigTIFF"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP", True
    if head[:2] == b"BM" and len(head) >= 18 and struct.unpack("<I", head[14:18])[0] in (
            12, 16, 40, 52, 56, 64, 108, 124):
        return "BMP", True
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return ("AVIF" if brand.startswith(b"avi") else "HEIF"), True
        if brand == b"jxl ":
            return "JPEG XL", False
        if brand == b"crx ":
            return "Canon CR3", False
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL \r\n\x87\n"):
        return "JPEG XL", False
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "JPEG 2000", False
    return None


def _check_max_pixels(max_pixels) -> None:
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) or max_pixels <= 0:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels!r}")


def _stat_file(path: str) -> None:
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFound("no such file", path) from None
    except PermissionError:
        raise UnreadableFile("permission denied", path) from None
    except (OSError, ValueError) as exc:  # name too long, embedded NUL, ...
        raise UnreadableFile(f"cannot access: {exc}", path) from None
    if stat.S_ISDIR(info.st_mode):
        try:
            with os.scandir(path):
                pass
        except PermissionError:
            raise UnreadableFile("folder cannot be listed (permission denied), so its images cannot be "
                                 "read", path) from None
        except OSError as exc:
            raise UnreadableFile(f"folder cannot be listed ({exc.strerror or exc})", path) from None
        raise UnreadableFile("is a folder, not an image file", path)
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableFile("not a regular file", path)
    if info.st_size == 0:
        raise EmptyFile("file is empty (0 bytes)", path)


def _load_file(path: str, *, native_detail: bool, max_pixels: int) -> Photo:
    _stat_file(path)
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the with-block below
    except PermissionError:
        raise UnreadableFile("permission denied", path) from None
    except OSError as exc:
        raise UnreadableFile(f"cannot open: {exc}", path) from None
    return _load_handle(handle, path, native_detail=native_detail, max_pixels=max_pixels)


def _load_handle(handle, path: str | None, *, native_detail: bool, max_pixels: int,
                 in_memory: bool = False) -> Photo:
    """Decode an open binary file or a ``BytesIO`` (``in_memory``), closing it; ``path`` names it."""
    is_raw = path is not None and os.path.splitext(path)[1].lower() in RAW_EXTENSIONS
    with handle:
        try:
            head = handle.read(1 << 20 if is_raw else 64)
        except OSError as exc:
            raise UnreadableFile(f"read error: {exc}", path) from None
        if not head:
            raise EmptyFile("file is empty (0 bytes)", path)

        if is_raw:
            handle.seek(0)
            pixels, native, exif, bits = decode_raw(path, head, native_detail=native_detail,
                                                   max_pixels=max_pixels,
                                                   working_long_side=WORKING_LONG_SIDE,
                                                   source=handle if in_memory else None)
            _check_size(native[0], native[1], None, path)  # sensor size was checked before decoding
            detail = _to_float(pixels, 255.0)
            return _make_photo(detail, native, format="RAW", path=path, exif=exif, bit_depth=bits,
                               mode="RAW", has_alpha=False)

        size = _webp_size(head)
        if size is not None and size[0] * size[1] > MAX_PILLOW_WEBP_PIXELS:
            _check_size(size[0], size[1], max_pixels, path)
            handle.seek(0)
            try:
                photo = _opencv_photo(_opencv_decode(handle.read()), size[0], size[1], "WEBP", path)
            except MemoryError:
                raise OutOfMemory(f"not enough memory to decode this {size[0]}x{size[1]} WebP", path) from None
            if photo is None:
                raise CorruptImage(f"damaged or truncated WEBP data ({size[0]}x{size[1]})", path)
            return photo

        handle.seek(0)
        _allow_pillow(max_pixels)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                img = Image.open(handle)
        except Image.DecompressionBombError as exc:
            raise _pillow_bomb(exc, max_pixels, path) from None
        except MemoryError:
            raise OutOfMemory("not enough memory to read this image's header", path) from None
        except UnidentifiedImageError:
            known = _sniff(head)
            if known is None:
                raise NotAnImage("not an image file (format not recognised)", path) from None
            name, decodable = known
            if name == "TIFF":  # e.g. float32 RGB, which Pillow does not read
                handle.seek(0)
                try:
                    photo = _decode_tiff_fallback(handle.read(), path, max_pixels)
                except MemoryError:
                    raise OutOfMemory("not enough memory to decode this TIFF", path) from None
                if photo is not None:
                    return photo
            if decodable:
                raise CorruptImage(f"damaged {name} file (header unreadable)", path) from None
            raise UnsupportedFormat(f"{name} images are not supported", path) from None
        except _DECODE_ERRORS as exc:
            known = _sniff(head)
            if known is not None and not known[1]:
                raise UnsupportedFormat(f"{known[0]} images are not supported", path) from None
            raise CorruptImage(f"damaged image header: {exc}", path) from None

        if img.format == "PNG":
            problem = _png_overrun(handle)
            if problem is not None:
                raise CorruptImage(f"damaged PNG file: {problem}", path)

        def file_bytes() -> bytes:
            handle.seek(0)
            return handle.read()

        with img:
            return _decode_pil(img, path=path, fmt=None, native_detail=native_detail,
                               max_pixels=max_pixels, allow_draft=True, file_bytes=file_bytes)


def read_file_bytes(path: str | os.PathLike[str]) -> bytes:
    """The whole content of an image file, with the typed errors `load_photo` gives for it.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    bytes
        Non-empty; decode it with `load_photo_bytes` (``load_photo_bytes(read_file_bytes(p), path=p)``
        gives the same `Photo`, or raises the same error, as ``load_photo(p)``).

    Raises
    ------
    FileNotFound, UnreadableFile, EmptyFile
        Missing; a folder, not a regular file, permission denied or an I/O error; 0 bytes.
    """
    path = os.fsdecode(os.fspath(path))
    _stat_file(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except PermissionError:
        raise UnreadableFile("permission denied", path) from None
    except OSError as exc:
        raise UnreadableFile(f"read error: {exc}", path) from None
    if not data:
        raise EmptyFile("file is empty (0 bytes)", path)
    return data


def load_photo_bytes(data: bytes | bytearray | memoryview, *, path: str | os.PathLike[str] | None = None,
                     native_detail: bool = False, max_pixels: int = MAX_PIXELS) -> Photo:
    """Load a photo from the bytes of its file (read from object storage, a database, an upload).

    Parameters
    ----------
    data : bytes-like
        The complete file, in any format `load_photo` reads (the content decides, except that a
        ``path`` with a camera RAW suffix goes to LibRaw, as for files).
    path : str or path-like, optional
        Where the bytes came from (a path or a URI such as ``s3://bucket/key.jpg``): recorded on the
        Photo, named in errors, and its suffix tells RAW files apart.
    native_detail, max_pixels
        As for `load_photo`; the decompression-bomb limit is checked on the header, before decoding.

    Returns
    -------
    Photo
        The same as `load_photo` gives for a file with these bytes.

    Raises
    ------
    EmptyFile, NotAnImage, CorruptImage, UnsupportedFormat, DecompressionBomb, AnalysisError
        As for `load_photo`, naming ``path``.
    TypeError
        ``data`` is not bytes-like.
    """
    _check_max_pixels(max_pixels)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, got {type(data).__name__}")
    path = None if path is None else os.fsdecode(os.fspath(path))
    if len(data) == 0:
        raise EmptyFile("file is empty (0 bytes)", path)
    return _load_handle(io.BytesIO(data), path, native_detail=native_detail, max_pixels=max_pixels,
                        in_memory=True)


def load_photo(source, *, native_detail: bool = False, max_pixels: int = MAX_PIXELS) -> Photo:
    """Load a photo from a file, a Pillow image or a NumPy array.

    Parameters
    ----------
    source : str, os.PathLike, PIL.Image.Image or numpy.ndarray
        A path to any file in `SUPPORTED_EXTENSIONS` (the content decides the format, except that
        camera RAW suffixes go to LibRaw), an image object, or an array (see `photo_from_array`).
    native_detail : bool
        Decode JPEGs at full resolution so ``photo.detail`` is native (``detail_scale == 1``);
        RAW files are then demosaiced at full size. Slower; by default large JPEGs are decoded at
        1/2, 1/4 or 1/8 scale in the DCT domain.
    max_pixels : int
        Decompression-bomb limit (default `MAX_PIXELS`, 200 megapixels), checked on the header
        before any pixel is decoded.

    Returns
    -------
    Photo
        ``rgb``: float32 sRGB in [0, 1], long side at most ``WORKING_LONG_SIDE``; ``detail``: the
        decoded pixels; EXIF orientation applied; alpha composited over white; grayscale
        replicated to three channels; 16-bit data scaled by 1/65535; CMYK and embedded non-sRGB ICC
        profiles converted to sRGB; normalised EXIF and, for JPEGs, the quantisation tables.

    Raises
    ------
    FileNotFound, UnreadableFile, EmptyFile, NotAnImage, CorruptImage, UnsupportedFormat,
    DecompressionBomb
        Each names the file and the reason (all are `picinspector.errors.LoadError`).
    AnalysisError
        Fewer than `MIN_SIDE` pixels on a side.
    InvalidPixels
        A bad array (a ``ValueError``).
    TypeError
        ``source`` is none of the accepted types.

    Notes
    -----
    For a JPEG the reduction is the largest 1/2^k, k <= 3, whose long side stays at least 90 % of
    the working long side, so a 4000x3000 photo is decoded as 1000x750 (libjpeg's scaled IDCT),
    costing a fraction of a full decode, and used as the working image as it is (a working long side
    of 922-1024 px, never enlarged). Larger decodes are reduced to a long side of 1024 with area
    averaging (OpenCV ``INTER_AREA``); smaller images are used as they are.
    Pillow's global ``LOAD_TRUNCATED_IMAGES`` is left off, so truncated files are reported as
    corrupt rather than padded with grey.

    References
    ----------
    ITU-T T.81 | ISO/IEC 10918-1 (JPEG), Annex A (DCT) - scaled decoding as in IJG libjpeg
    ``scale_num/scale_denom``; CIPA DC-008-2023, Exif Version 3.0.
    """
    _check_max_pixels(max_pixels)
    reproducible_opencv()
    if isinstance(source, np.ndarray):
        return photo_from_array(source)
    if isinstance(source, Image.Image):
        return photo_from_pil(source, native_detail=native_detail, max_pixels=max_pixels)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        return _load_file(path, native_detail=native_detail, max_pixels=max_pixels)
    raise TypeError(
        f"source must be a path, a PIL.Image.Image or a numpy.ndarray, got {type(source).__name__}")
