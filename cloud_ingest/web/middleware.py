"""ASGI middleware for every response of the console: request bodies capped before any parsing,
and `no-store`/`nosniff` on everything that is not a static asset.

Pure ASGI (not Starlette's BaseHTTPMiddleware) so SSE streams and file downloads pass through
unbuffered.
"""

from __future__ import annotations

import json

from fastapi import HTTPException, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_ingest import i18n

# Every body the console accepts is a small form or JSON object (a login, a name, a card number,
# a visit note); the largest, a login with a 1024-character password, is under 10 KiB.
MAX_BODY = 64 * 1024
BODY_TOO_LARGE = i18n.both("body_too_large")

# Paths whose answers may be cached: the vendored scripts and styles, and the login stylesheet,
# which set their own Cache-Control and hold no personal data.
CACHEABLE_PREFIXES = ("/static/", "/login.css")


class BodyTooLarge(HTTPException):
    """413; raised from `receive`, so the route's own error handling answers it."""

    def __init__(self) -> None:
        super().__init__(status.HTTP_413_CONTENT_TOO_LARGE, BODY_TOO_LARGE)


class BodyLimit:
    """413 for a request body over `max_bytes`, before anything reads it into memory.

    A declared Content-Length over the cap is refused without reading a byte; a chunked body is
    counted as it arrives and refused at the first chunk past the cap. Without this, a 200 MiB
    body to /login grew the process by 600 MiB before the CSRF check refused it.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _refuse(send)
            return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            # Raised where no route caught it (e.g. a dependency read the body): answer it here.
            if started:
                raise
            await _refuse(send)


async def _refuse(send: Send) -> None:
    body = json.dumps({"detail": BODY_TOO_LARGE}, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status.HTTP_413_CONTENT_TOO_LARGE,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"cache-control", b"no-store"),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class PrivateResponses:
    """`Cache-Control: no-store` and `X-Content-Type-Options: nosniff` on every answer.

    Nearly every answer of the console holds personal data (names, attendance, exports), so the
    rule is the other way round: everything is private unless it is a static asset, whatever
    Cache-Control a route set.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = str(scope.get("path", "")).startswith(CACHEABLE_PREFIXES)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                replaced = {b"x-content-type-options"} | (
                    set() if cacheable else {b"cache-control"}
                )
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in replaced
                ]
                headers.append((b"x-content-type-options", b"nosniff"))
                if not cacheable:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
