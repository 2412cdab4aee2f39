"""Request-body size limit, enforced before and while the body is read (a pure ASGI middleware).

A declared ``Content-Length`` over the limit is refused at once, before a byte of the body is
read; a body without one (chunked) is counted as it arrives and refused as soon as it passes the
limit, so an oversized upload never fills the disk with a temporary copy.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _TooLarge(Exception):
    pass


def _json_response(status: int, kind: str, message: str) -> tuple[Message, Message]:
    body = json.dumps({"error": {"kind": kind, "message": message}}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                         (b"connection", b"close")]}
    return start, {"type": "http.response.body", "body": body}


class BodyLimit:
    """Refuse HTTP requests whose body exceeds ``max_bytes`` with 413 ``upload_too_large``."""

    def __init__(self, app: Callable[..., Awaitable[None]], max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _message(self) -> str:
        return f"the request body is over the limit of {self.max_bytes / (1 << 20):g} MiB (--max-upload-mb)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or []:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > self.max_bytes:
                    for message in _json_response(413, "upload_too_large", self._message()):
                        await send(message)
                    return
        seen = 0
        exceeded = started = False

        async def counting_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the application's answer to the cut-off body is replaced by ours below
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:  # noqa: BLE001 - the framework may wrap _TooLarge in its own error
            if not exceeded:
                raise
        if exceeded and not started:
            for message in _json_response(413, "upload_too_large", self._message()):
                await send(message)
