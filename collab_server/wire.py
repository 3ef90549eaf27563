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
loop. `DirectReceiveProtocol` keeps uvicorn's and websockets' handshake, limits, ping and
close handling, and delivers complete data messages (binary; text, for the handler to refuse)
by calling the connection's handler in place. Once it owns a socket the endpoint's task ends:
an idle socket holds no task, coroutine chain, receive queue or handshake (see
docs/decisions.md), and the socket's end starts its clean-up.

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
import functools
import math
from collections.abc import Callable, Coroutine
from typing import Any, cast

import structlog
from starlette.types import Send
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import Protocol, State
from websockets.streams import StreamReader

from collab_server.frames import FIN_BINARY, FlowControl, FrameTransport

try:
    from websockets.speedups import apply_mask
except ImportError:  # a build without websockets' C extension
    from websockets.utils import apply_mask

log = structlog.get_logger("collab.wire")

_MASKED = 0x80
_AT_EOF_CODE = StreamReader.at_eof.__code__


def _server_protocol(send: Send) -> Any:
    """The ASGI server's own object behind `send` (uvicorn: the socket's protocol)."""
    return getattr(send, "__self__", None)


async def find_transport(send: Send) -> FrameTransport | None:
    """The accepted socket's transport when the ASGI server is uvicorn; else None.

    `send` is the server's own, as the app received it. Call after `accept`. uvicorn's legacy
    websockets protocol writes the 101 response from another task, so wait for it: no frame
    may reach the socket before the handshake does.
    """
    protocol: Any = _server_protocol(send)
    handshake_done = getattr(protocol, "handshake_completed_event", None)
    if isinstance(handshake_done, asyncio.Event):
        await handshake_done.wait()
    transport = getattr(protocol, "transport", None)
    if transport is not None and all(
        hasattr(transport, name) for name in ("write", "is_closing", "get_write_buffer_size")
    ):
        return cast(FrameTransport, transport)
    return None


def find_flow_control(send: Send) -> FlowControl | None:
    """What shows when the socket's send buffer drains (uvicorn's protocol); else None."""
    protocol: Any = _server_protocol(send)
    writable = getattr(protocol, "writable", None)
    if hasattr(writable, "wait") and hasattr(writable, "is_set"):
        return cast(FlowControl, protocol)
    return None


MessageHandler = Callable[[bytes | str], None]
OnClosed = Callable[[], Coroutine[Any, Any, None]]


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
    """uvicorn's sans-I/O WebSocket protocol that can own an accepted socket by itself.

    Until `take_over`, messages travel through uvicorn's ASGI queue as usual. After it, data
    messages (binary; text, for the handler to refuse) go to a handler called in place, the
    end of the socket (closed by either side, lost, server shutdown) starts the owner's
    `on_closed` coroutine, and the ASGI app may return without closing the socket: an idle
    socket then holds no task, no coroutine frames and no copy of its handshake. The handler
    runs inside `data_received`, so it must not raise and must not block; backpressure is the
    handler's own (our connections are rate-limited and the document never awaits a socket).
    """

    message_handler: MessageHandler | None = None
    _ping_tick: int | None = None

    def __init__(self, *args: Any, keepalive: Keepalive | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.keepalive = keepalive

    @classmethod
    def factory(cls, keepalive: Keepalive) -> type[asyncio.Protocol]:
        """What uvicorn's `ws` setting takes: builds each socket's protocol with `keepalive`."""
        return cast(type[asyncio.Protocol], functools.partial(cls, keepalive=keepalive))

    def schedule_ping(self) -> None:
        keepalive = self.keepalive
        if keepalive is None or self.ping_interval is None:
            super().schedule_ping()
            return
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        self._ping_tick = keepalive.schedule(self, delay)

    def stop_keepalive(self) -> None:
        super().stop_keepalive()
        self._ping_tick = None

    def ping_due(self, tick: int) -> None:
        """`Keepalive` says the ping scheduled for `tick` is due (unless stopped since)."""
        if self._ping_tick == tick:
            self._ping_tick = None
            self.send_keepalive_ping()

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
            if self.message_handler is not handler:  # the socket ended meanwhile
                break
        return data[offset:] if offset else data

    def take_over(self, handler: MessageHandler, on_closed: OnClosed) -> None:
        """Own the socket from now on: `handler` gets every data message, `on_closed` runs once
        (as a task uvicorn waits for at shutdown) when the socket ends.

        Call from the event loop between two reads, after the handshake: messages that were
        already queued are handled first, in order.
        """
        self.message_handler = handler
        self._forget_handshake()
        queued: list[Any] = []
        while not self.queue.empty():
            queued.append(self.queue.get_nowait())
        self.queue = _EndSignal(self, on_closed)  # type: ignore[assignment]
        self.writable = _WriteFlag(self.writable.is_set())  # type: ignore[assignment]
        for message in queued:
            if message["type"] != "websocket.receive":
                self.queue.put_nowait(message)
            elif self.message_handler is handler:
                data = message.get("bytes")
                handler(data if data is not None else message["text"])
        if self.read_paused:
            self.read_paused = False
            self.transport.resume_reading()

    def _forget_handshake(self) -> None:
        """Drop what only the handshake needed: an idle socket should not keep it."""
        for name in ("request", "response", "scope"):
            if hasattr(self, name):
                delattr(self, name)
        # uvicorn's protocol has too many attributes for a shared-key dict: its own dict grew
        # by doubling; a copy is sized to what is there (about half).
        self.__dict__ = dict(self.__dict__)
        # websockets' server parser keeps the parsed request in its frame for as long as the
        # socket lives; between frames the base class' frame parser takes over unchanged.
        if self._parser_idle():
            self.conn.parser = Protocol.parse(self.conn)
            next(self.conn.parser)

    def send_receive_event_to_app(self) -> None:
        handler = self.message_handler
        if handler is None or self.close_sent:
            super().send_receive_event_to_app()
            return
        frames = self.frames
        data = frames[0] if len(frames) == 1 else b"".join(frames)
        self.frames = []
        if self.curr_msg_data_type == "text":
            handler(data.decode(errors="surrogateescape"))  # invalid UTF-8 -> 1007 (RFC 6455)
        else:
            handler(data if type(data) is bytes else bytes(data))

    async def run_asgi(self) -> None:
        """uvicorn's, except that a socket taken over stays open when the app returns."""
        try:
            result = await self.app(self.scope, self.receive, self.send)
        except ClientDisconnected:
            pass
        except BaseException:
            self.logger.exception("Exception in ASGI application\n")
            self.send_500_response()
        else:
            if not self.handshake_complete:
                self.logger.error("ASGI callable returned without completing handshake.")
                self.send_500_response()
            elif result is not None:
                self.logger.error("ASGI callable should return None, but returned '%s'.", result)
        if self.close_timer is None and not isinstance(self.queue, _EndSignal):
            self.transport.close()

    def ended(self, on_closed: OnClosed) -> None:
        """The socket is done: no more messages; run the owner's clean-up once."""
        if self.message_handler is None:
            return
        self.message_handler = None
        task = self.loop.create_task(on_closed())
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)


class Keepalive:
    """Every socket's next keepalive ping on one timer per tick, not a timer per socket.

    uvicorn arms a timer for each socket between its pings (a handle, a libuv timer and a
    context each); thousands of idle sockets need only a list entry each. A socket that ends
    before its tick stays listed until then and is skipped.
    """

    def __init__(self, resolution_seconds: float) -> None:
        self.resolution_seconds = resolution_seconds
        self._due: dict[int, list[DirectReceiveProtocol]] = {}

    def schedule(self, protocol: DirectReceiveProtocol, delay: float) -> int:
        """Ping `protocol` in about `delay` seconds (up to one tick later); returns the tick."""
        loop = protocol.loop
        tick = math.ceil((loop.time() + delay) / self.resolution_seconds)
        due = self._due.get(tick)
        if due is None:
            due = self._due[tick] = []
            loop.call_at(tick * self.resolution_seconds, self._fire, tick)
        due.append(protocol)
        return tick

    def _fire(self, tick: int) -> None:
        for protocol in self._due.pop(tick, ()):
            try:
                protocol.ping_due(tick)
            except Exception:  # one broken socket must not cost the others their pings
                log.exception("keepalive_ping_failed")


class _EndSignal:
    """Stands in for uvicorn's receive queue once a socket is taken over: every path that
    ends a socket (close either way, loss, keepalive timeout, shutdown) puts a disconnect
    there, and nothing reads it any more."""

    __slots__ = ("_on_closed", "_protocol")

    def __init__(self, protocol: DirectReceiveProtocol, on_closed: OnClosed) -> None:
        self._protocol = protocol
        self._on_closed = on_closed

    def put_nowait(self, message: Any) -> None:
        if message["type"] == "websocket.disconnect":
            self._protocol.ended(self._on_closed)

    def empty(self) -> bool:
        return True


class _WriteFlag:
    """uvicorn's `writable` event (set while the transport takes writes), holding an
    `asyncio.Event` only while the transport is paused: an idle socket needs none."""

    __slots__ = ("_paused",)

    def __init__(self, writable: bool) -> None:
        self._paused: asyncio.Event | None = None if writable else asyncio.Event()

    def is_set(self) -> bool:
        return self._paused is None

    def set(self) -> None:
        paused, self._paused = self._paused, None
        if paused is not None:
            paused.set()

    def clear(self) -> None:
        if self._paused is None:
            self._paused = asyncio.Event()

    async def wait(self) -> bool:
        paused = self._paused
        if paused is not None:
            await paused.wait()
        return True


class ProtocolSocket:
    """The `Socket` of a connection whose socket `DirectReceiveProtocol` owns: the close (and
    any frame sent before the transport was at hand) go through uvicorn's ASGI `send`."""

    __slots__ = ("_send",)

    def __init__(self, protocol: DirectReceiveProtocol) -> None:
        self._send = protocol.send

    async def send_bytes(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason})


def direct_receiver(send: Send) -> DirectReceiveProtocol | None:
    """The socket's protocol when the server runs `DirectReceiveProtocol`; else None."""
    protocol = _server_protocol(send)
    return protocol if isinstance(protocol, DirectReceiveProtocol) else None
