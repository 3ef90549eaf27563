"""Request bodies are capped before they are read: by `Content-Length`, then while streaming.

Starlette's `request.body()` reads everything it is sent into memory; a 128 MiB POST would
grow the server by as much before any handler could look at it. Each path prefix has its own
cap (the WhatsApp webhook's fits Meta's largest payloads); everything else gets the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 64 * 1024
TOO_LARGE = 413


@dataclass(frozen=True)
class BodyLimits:
    default: int = DEFAULT_MAX_BODY_BYTES
    by_path_prefix: Mapping[str, int] = field(default_factory=dict)

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.by_path_prefix.items():
            if path.startswith(prefix):
                return limit
        return self.default


async def serve_capped(
    app: ASGIApp, limits: BodyLimits, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run `app` on an HTTP request whose body may not pass its path's cap (413 if it does)."""
    limit = limits.limit_for(scope["path"])
    declared = _content_length(scope)
    if declared is not None and declared > limit:
        await PlainTextResponse("request body too large", status_code=TOO_LARGE)(
            scope, receive, send
        )
        return
    received = 0

    async def capped_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                # Starlette turns this into a 413 response wherever the body is being read.
                raise HTTPException(TOO_LARGE, "request body too large")
        return message

    await app(scope, capped_receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # uvicorn's parser refuses a malformed length before we see it
    return None
