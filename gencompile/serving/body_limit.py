"""An ASGI middleware that refuses request bodies over a size, before anything parses them."""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]
Receive = Any  # async () -> message
Send = Any  # async (message) -> None


class BodyLimit:
    """413 for a body over `max_bytes`: at once when its Content-Length says so, else as soon
    as the bytes read pass the limit (a chunked body). Within it, the body is read whole and
    handed on, so the app never holds more than `max_bytes` of one request."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body, handed = b"".join(chunks), False

        async def replay() -> dict[str, Any]:
            nonlocal handed
            if not handed:
                handed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: wait for the disconnect

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        detail = (
            f"request body over {self.max_bytes:,} bytes: send fewer examples per request "
            "(the server's --max-body-bytes)"
        )
        payload = json.dumps({"detail": detail}).encode()
        headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
