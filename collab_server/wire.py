"""Frame once, write to many; hand each received message straight to its connection.

Why: a fan-out profile put most of the server's CPU per delivered update in the per-socket
ASGI -> uvicorn -> websockets send path (message dicts, state checks, framing the same bytes
again for every reader; see docs/decisions.md). A broadcast sends identical bytes to every
reader, and server-to-client frames are unmasked, so we frame the message once and hand the
bytes to each socket's transport. Uncompressed frames are valid even where permessage-deflate
was negotiated (RSV1 clear), so this is safe whatever the client offered.

Only frames to an open, accepted socket are written this way; the handshake and the close
still go through ASGI. If the ASGI server does not expose its transport (not uvicorn), the
connection falls back to ordinary ASGI sends.

The receive side has the same shape: through ASGI every client message became a dict in a
queue, a pause and resume of the socket's reads, and a task switch into the endpoint's receive
loop. `DirectReceiveProtocol` keeps
uvicorn's and websockets' handshake, limits, ping and close handling, and delivers complete
data messages (binary; text, for the handler to refuse) by calling the connection's handler
in place.

It also reads the common frame itself: a whole, final, uncompressed, masked binary frame
within the size limit, read while websockets' parser waits between frames (its generator-based
parser is slow on a processor woken from idle, the fan-out case). Every other frame (control,
text, fragments, compressed, oversize, unmasked) and any frame not yet complete goes to
websockets with whatever follows it, so it keeps every rule of the protocol; reading resumes
here once its parser is between frames.
Both lean on uvicorn's and websockets' internals: `COLLAB_FAST_RECEIVE=false` serves with
uvicorn's own protocol instead, and the test suite runs the socket tests both ways.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State
from websockets.streams import StreamReader

from collab_server.frames import FIN_BINARY, FrameTransport

try:
    from websockets.speedups import apply_mask
except ImportError:  # a build without websockets' C extension
    from websockets.utils import apply_mask

_SERVER_SEND = "collab.server_send"
_MASKED = 0x80
_AT_EOF_CODE = StreamReader.at_eof.__code__


class ExposeServerSend:
    """ASGI middleware: remembers the server's own `send` so the socket's transport can be found."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        scope[_SERVER_SEND] = send
        try:
            await self.app(scope, receive, send)
        finally:
            # The server's protocol holds this scope and `send` holds the protocol: without this
            # the whole socket (transport, parser, queue) waits for a full GC cycle to be freed.
            del scope[_SERVER_SEND]


def _server_protocol(scope: Scope) -> Any:
    return getattr(scope.get(_SERVER_SEND), "__self__", None)


async def find_transport(scope: Scope) -> FrameTransport | None:
    """The accepted socket's transport when the ASGI server is uvicorn; else None.

    Call after `accept`. uvicorn's legacy websockets protocol writes the 101 response from
    another task, so wait for it: no frame may reach the socket before the handshake does.
    """
    protocol: Any = _server_protocol(scope)
    handshake_done = getattr(protocol, "handshake_completed_event", None)
    if isinstance(handshake_done, asyncio.Event):
        await handshake_done.wait()
    transport = getattr(protocol, "transport", None)
    if transport is not None and all(
        hasattr(transport, name) for name in ("write", "is_closing", "get_write_buffer_size")
    ):
        return cast(FrameTransport, transport)
    return None


MessageHandler = Callable[[bytes | str], None]


# websockets 16 renamed the parser's size fields; these read either major.
def _message_size(conn: Any) -> int | None:
    """Bytes of a fragmented message received so far; None between messages."""
    size: int | None = conn.current_size if hasattr(conn, "current_size") else conn.cur_size
    return size


def _max_message_size(conn: Any) -> int | None:
    limit: int | None = (
        conn.max_message_size if hasattr(conn, "max_message_size") else conn.max_size
    )
    return limit


class DirectReceiveProtocol(WebSocketsSansIOProtocol):
    """uvicorn's sans-I/O WebSocket protocol that can hand messages to a handler in place.

    Until `attach_handler`, and for anything but data messages (disconnects, the close
    handshake), messages travel through uvicorn's ASGI queue as usual. The handler runs inside
    `data_received`, so it must not raise and must not block; backpressure is the handler's own
    (our connections are rate-limited and the document never awaits a socket).
    """

    message_handler: MessageHandler | None = None

    def data_received(self, data: bytes) -> None:
        handler = self.message_handler
        if handler is not None and not self.close_sent and self._parser_idle():
            data = self._receive_whole_frames(data, handler)
            if not data:
                return
        super().data_received(data)

    def _parser_idle(self) -> bool:
        """True when websockets' parser holds no bytes and waits for the next frame's header."""
        conn = self.conn
        if conn.state is not State.OPEN or _message_size(conn) is not None or conn.reader.buffer:
            return False
        # Its buffer is also empty in the middle of a frame whose start it has consumed: the
        # innermost generator says where it waits (`at_eof` only between frames).
        waiting: Any = conn.parser
        while waiting.gi_yieldfrom is not None:
            waiting = waiting.gi_yieldfrom
        return waiting.gi_code is _AT_EOF_CODE

    def _receive_whole_frames(self, data: bytes, handler: MessageHandler) -> bytes:
        """Handle the leading frames this class reads itself; return the rest for websockets."""
        max_size = _max_message_size(self.conn)
        offset, end = 0, len(data)
        while end - offset >= 6:
            if data[offset] != FIN_BINARY:  # RSV bits set, control, text, continuation
                break
            length = data[offset + 1] ^ _MASKED  # a clear mask bit leaves it over 127
            header = 6
            if length == 126:
                length, header = int.from_bytes(data[offset + 2 : offset + 4], "big"), 8
            elif length == 127:
                length, header = int.from_bytes(data[offset + 2 : offset + 10], "big"), 14
            elif length > 127:
                break
            start = offset + header
            if (max_size is not None and length > max_size) or start + length > end:
                break
            payload = apply_mask(data[start : start + length], data[start - 4 : start])
            offset = start + length
            handler(payload)
            if self.message_handler is not handler:  # detached meanwhile: ASGI takes the rest
                break
        return data[offset:] if offset else data

    def attach_handler(self, handler: MessageHandler) -> list[bytes | str]:
        """Deliver later messages to `handler`; returns the ones already queued, in order.

        Call from the event loop between two reads: nothing can arrive in between, so the
        caller handles the returned messages first and order is kept.
        """
        self.message_handler = handler
        # The handshake is done: its parsed request and response are never read again, and
        # an idle socket should not keep them.
        for name in ("request", "response"):
            if hasattr(self, name):
                delattr(self, name)
        queued: list[bytes | str] = []
        kept: list[Any] = []
        while not self.queue.empty():
            message: Any = self.queue.get_nowait()
            if message["type"] == "websocket.receive":
                data = message.get("bytes")
                queued.append(data if data is not None else message["text"])
            else:
                kept.append(message)
        for message in kept:
            self.queue.put_nowait(message)
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()
        return queued

    def detach_handler(self) -> None:
        self.message_handler = None

    def send_receive_event_to_app(self) -> None:
        handler = self.message_handler
        if handler is None or self.close_sent:
            super().send_receive_event_to_app()
            return
        frames = self.frames
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        self.frames = []
        if self.curr_msg_data_type == "text":
            handler(data.decode(errors="replace"))
        else:
            handler(data if type(data) is bytes else bytes(data))


def direct_receiver(scope: Scope) -> DirectReceiveProtocol | None:
    """The socket's protocol when the server runs `DirectReceiveProtocol`; else None."""
    protocol = _server_protocol(scope)
    return protocol if isinstance(protocol, DirectReceiveProtocol) else None
