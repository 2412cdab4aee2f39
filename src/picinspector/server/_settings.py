"""The server's limits and options, with their defaults (each is a `serve` option)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

MIB = 1 << 20


def _default_concurrency() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True)
class ServerSettings:
    """Limits of ``picinspector serve``.

    Attributes
    ----------
    max_upload_bytes : int
        Largest request body (all photos of one request together); larger requests get 413
        ``upload_too_large``, checked on ``Content-Length`` before reading and while reading.
    max_files : int
        Photos per request; more get 413 ``too_many_files``.
    max_pixels : int
        Decompression-bomb guard: a photo whose header says more pixels is refused (413
        ``decompression_bomb``) before any pixel is decoded.
    concurrency : int
        Analyses running at once (threads sharing one `Inspector`, so a model loads once).
    queue : int
        Photos that may wait for a free analysis slot; beyond ``concurrency + queue`` a request gets
        503 ``busy`` with ``Retry-After``.
    timeout_s : float
        Longest a request waits for its analyses (queueing included); then 503 ``timeout``. An
        analysis already running finishes in the background and keeps its slot until then, so the
        bound on concurrent analyses holds.
    thumb_size : int
        Long side of the preview that ``?overlays=true`` adds (the web page asks for it).
    inspector_options : dict
        `picinspector.Inspector` keyword arguments (engine, feedback, quality model, ...).
    """

    max_upload_bytes: int = 64 * MIB
    max_files: int = 16
    max_pixels: int = 100_000_000
    concurrency: int = field(default_factory=_default_concurrency)
    queue: int = 32
    timeout_s: float = 60.0
    thumb_size: int = 320
    inspector_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_files", "max_pixels", "concurrency", "thumb_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.queue, bool) or not isinstance(self.queue, int) or self.queue < 0:
            raise ValueError(f"queue must be a non-negative integer, got {self.queue!r}")
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {self.timeout_s!r}")

    def limits(self) -> dict[str, Any]:
        """The limits as ``/healthz`` reports them."""
        out = asdict(self)
        out.pop("inspector_options")
        return out
