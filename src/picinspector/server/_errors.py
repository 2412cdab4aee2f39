"""Typed JSON errors: every refused request gets ``{"error": {"kind", "message"}}`` and a status code."""

from __future__ import annotations

from typing import Any

#: HTTP status of a photo that could not be analysed, by error kind (`picinspector.errors`).
STATUS_FOR_KIND: dict[str, int] = {
    "not_an_image": 415,
    "unsupported": 415,
    "empty": 422,
    "corrupt": 422,
    "invalid_pixels": 422,
    "analysis_error": 422,
    "decompression_bomb": 413,
    "not_found": 400,
    "unreadable": 400,
    "internal_error": 500,
}


class ApiError(Exception):
    """A refused request: ``status`` with ``{"error": {"kind", "message"}}`` (and extra headers)."""

    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None,
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"kind": self.kind, "message": self.message}, **self.extra}


#: Kinds of the request-level errors, with their status: the README's table is made from this.
REQUEST_ERRORS: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "a missing or malformed field (e.g. no `files` part), or a bad option value"),
    "unsupported_option": (400, "an engine or feedback writer other than the one this server runs"),
    "not_found": (404, "no such path"),
    "method_not_allowed": (405, "e.g. GET /v1/analyze"),
    "upload_too_large": (413, "request body over --max-upload-mb"),
    "too_many_files": (413, "more photos than --max-files in one request"),
    "unsupported_media_type": (415, "POST /v1/analyze that is not multipart/form-data"),
    "busy": (503, "more photos waiting than --concurrency + --queue (Retry-After: 1)"),
    "timeout": (503, "the analyses took longer than --timeout (Retry-After: 5)"),
    "internal_error": (500, "a bug: the message names the exception; the log has the traceback"),
}
