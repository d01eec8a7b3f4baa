"""Request body limits, enforced before any route runs (so an oversized body leaves no trace).

The body is read up to the limit (Content-Length is checked first when present) and replayed to
the app; one byte more and the client gets 413, as `{"detail": ...}`, or in the error format of the
drop-in routes (a Google API error for Perspective, plain text for Akismet).
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.config import MAX_BATCH_BODY_BYTES, MAX_BODY_BYTES
from api.errors import google_error

LARGE_BODY_PATHS = {"/v1/moderate/batch": MAX_BATCH_BODY_BYTES}
PERSPECTIVE_PREFIX = "/v1alpha1/"
AKISMET_PREFIX = "/1.1/"


def too_large_body(path: str, limit: int) -> tuple[bytes, bytes]:
    """The 413 answer for `path` as (content type, body), in the format the route's clients parse:
    a Google API error on the Perspective routes, plain text on the Akismet ones, else FastAPI's."""
    if path.startswith(PERSPECTIVE_PREFIX):
        message = f"Request payload size exceeds the limit: {limit} bytes."  # Google's own wording
        return b"application/json", json.dumps(google_error(413, message)).encode()
    if path.startswith(AKISMET_PREFIX):
        return b"text/plain; charset=utf-8", f"Request body too large (limit {limit} bytes)".encode()
    return b"application/json", json.dumps({"detail": f"Request body too large (limit {limit} bytes)"}).encode()


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, default: int = MAX_BODY_BYTES, per_path: dict[str, int] | None = None) -> None:
        self.app = app
        self.default = default
        self.per_path = LARGE_BODY_PATHS if per_path is None else per_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.per_path.get(scope["path"], self.default)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    if int(value) > limit:
                        await self._too_large(send, scope["path"], limit)
                        return
                except ValueError:
                    pass
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._too_large(send, scope["path"], limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(send: Send, path: str, limit: int) -> None:
        content_type, body = too_large_body(path, limit)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
