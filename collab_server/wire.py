"""Frame once, write to many: direct WebSocket frame writes for broadcasts.

Why: a profile of 1 writer -> 50 readers showed about 60 % of server CPU per delivered update
spent in the per-socket ASGI -> uvicorn -> websockets send path (message dicts, state checks,
framing the same bytes again for every reader). A broadcast sends identical bytes to every
reader, and server-to-client frames are unmasked, so we frame the message once and hand the
bytes to each socket's transport. Uncompressed frames are valid even where permessage-deflate
was negotiated (RSV1 clear), so this is safe whatever the client offered.

Only frames to an open, accepted socket are written this way; the handshake and the close
still go through ASGI. If the ASGI server does not expose its transport (not uvicorn), the
connection falls back to ordinary ASGI sends.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any, Protocol, cast

from starlette.types import ASGIApp, Receive, Scope, Send

_SERVER_SEND = "collab.server_send"
_FIN_BINARY = 0x82


class FrameTransport(Protocol):
    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...


def frame_binary(payload: bytes) -> bytes:
    """One unmasked, final, binary WebSocket frame (RFC 6455 section 5.2)."""
    length = len(payload)
    if length < 126:
        header = bytes((_FIN_BINARY, length))
    elif length < 1 << 16:
        header = struct.pack("!BBH", _FIN_BINARY, 126, length)
    else:
        header = struct.pack("!BBQ", _FIN_BINARY, 127, length)
    return header + payload


class ExposeServerSend:
    """ASGI middleware: remembers the server's own `send` so the socket's transport can be found."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[_SERVER_SEND] = send
        await self.app(scope, receive, send)


async def find_transport(scope: Scope) -> FrameTransport | None:
    """The accepted socket's transport when the ASGI server is uvicorn; else None.

    Call after `accept`. uvicorn's legacy websockets protocol writes the 101 response from
    another task, so wait for it: no frame may reach the socket before the handshake does.
    """
    protocol: Any = getattr(scope.get(_SERVER_SEND), "__self__", None)
    handshake_done = getattr(protocol, "handshake_completed_event", None)
    if isinstance(handshake_done, asyncio.Event):
        await handshake_done.wait()
    transport = getattr(protocol, "transport", None)
    if transport is not None and all(
        hasattr(transport, name) for name in ("write", "is_closing", "get_write_buffer_size")
    ):
        return cast(FrameTransport, transport)
    return None
