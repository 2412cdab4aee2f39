"""Loading every photo a user has into a `Photo`."""

from ._exif import apply_orientation, exif_from_pil, exif_from_tiff_header, normalise_exif
from ._load import (
    MAX_PIXELS,
    MIN_SIDE,
    RAW_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    InvalidPixels,
    load_photo,
    load_photo_bytes,
    photo_from_array,
    photo_from_pil,
    read_file_bytes,
)
from ._photo import WORKING_LONG_SIDE, Photo, linear_to_srgb, srgb_to_linear

__all__ = [
    "MAX_PIXELS",
    "MIN_SIDE",
    "RAW_EXTENSIONS",
    "SUPPORTED_EXTENSIONS",
    "WORKING_LONG_SIDE",
    "InvalidPixels",
    "Photo",
    "apply_orientation",
    "exif_from_pil",
    "exif_from_tiff_header",
    "linear_to_srgb",
    "load_photo",
    "load_photo_bytes",
    "normalise_exif",
    "photo_from_array",
    "photo_from_pil",
    "read_file_bytes",
    "srgb_to_linear",
]
