"""Typed errors. Every failure a user can cause names the file and the reason."""

from __future__ import annotations


class PicInspectorError(Exception):
    """Base class of every error PicInspector raises on purpose."""

    kind = "error"

    def __init__(self, message: str, path: str | None = None):
        self.path = None if path is None else str(path)
        self.reason = message
        super().__init__(f"{self.path}: {message}" if self.path else message)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "message": self.reason}


class LoadError(PicInspectorError):
    """The file could not be turned into pixels."""

    kind = "load_error"


class FileNotFound(LoadError):
    kind = "not_found"


class UnreadableFile(LoadError):
    """Permission denied, a directory, or an I/O error."""

    kind = "unreadable"


class EmptyFile(LoadError):
    kind = "empty"


class NotAnImage(LoadError):
    kind = "not_an_image"


class UnsupportedFormat(LoadError):
    """An image format we recognise but cannot decode (e.g. RAW without the `raw` extra)."""

    kind = "unsupported"


class CorruptImage(LoadError):
    """Truncated or damaged data."""

    kind = "corrupt"


class DecompressionBomb(LoadError):
    """More pixels than the configured limit: refused before decoding."""

    kind = "decompression_bomb"


class InvalidPixels(LoadError, ValueError):
    """An in-memory array that cannot be a photo (wrong shape or dtype, NaN, floats outside [0, 1])."""

    kind = "invalid_pixels"


class OutOfMemory(LoadError):
    """Decoding or measuring the image needed more memory than the process could get."""

    kind = "out_of_memory"


class AnalysisError(PicInspectorError):
    """The pixels loaded but a measure could not run on them (e.g. a 1x1 image)."""

    kind = "analysis_error"
