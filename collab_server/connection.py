"""One socket on one document: identity, ordered outgoing frames, close.

The document never awaits a socket. With the socket's transport at hand (uvicorn), `send`
writes the already framed bytes straight to it; otherwise it appends to a backlog that a
writer task drains through ASGI. Either way one slow reader cannot stall a broadcast, and a
reader whose unsent bytes pass the limit is closed (1013) instead of growing memory unbounded.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from typing import Protocol

import structlog

from collab_server.frames import FlowControl, FrameTransport, frame_binary, frame_payload
from collab_server.identity import ConnectionOrigin, Identity
from collab_server.protocol import CloseCode

log = structlog.get_logger("collab.connection")


class Socket(Protocol):
    """What a connection needs from the web framework's WebSocket."""

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class Connection:
    # Thousands of idle sockets each hold one: no per-instance dict, and the ASGI send path
    # (backlog, writer task, its wake-up) exists only once something needs it.
    __slots__ = (
        "_backlog",
        "_backlog_bytes",
        "_backlog_limit",
        "_close_reason",
        "_flow",
        "_socket",
        "_transport",
        "_wakeup",
        "_writer",
        "close_code",
        "document",
        "id",
        "identity",
        "origin",
        "saved_check",
        "saved_check_newer",
    )

    def __init__(
        self,
        socket: Socket,
        document: str,
        identity: Identity,
        *,
        backlog_limit: int,
        transport: FrameTransport | None = None,
    ) -> None:
        self.id = uuid.uuid4().hex[:16]
        self.document = document
        self.identity = identity
        self.origin = ConnectionOrigin(self.id, identity.user_id, identity.display_name)
        self.close_code: int | None = None
        # The newest "is it stored?" question waiting for an answer (at most one per socket).
        self.saved_check: int | None = None
        self.saved_check_newer = False  # asked again since the wait began
        self._close_reason = ""
        self._socket = socket
        self._transport = transport
        self._flow: FlowControl | None = None
        self._backlog: deque[bytes] | None = None
        self._backlog_bytes = 0
        self._backlog_limit = backlog_limit
        self._wakeup: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None

    def use_transport(
        self, transport: FrameTransport | None, flow: FlowControl | None = None
    ) -> None:
        """Write frames straight to the socket from now on (after the handshake); `flow`
        tells when its send buffer drains."""
        if self._backlog:
            return  # keep order: frames already queued go out through ASGI first
        self._transport = transport
        self._flow = flow if transport is not None else None

    @property
    def is_open(self) -> bool:
        return self.close_code is None

    def send(self, frame: bytes, wire: bytes | None = None) -> None:
        """Queue one protocol message; `wire` is the same message already framed, if known."""
        if self.close_code is not None:
            return
        transport = self._transport
        if transport is not None:
            if transport.is_closing():
                self.abort()
                return
            transport.write(wire if wire is not None else frame_binary(frame))
            if transport.get_write_buffer_size() > self._backlog_limit:
                self.close(CloseCode.TRY_AGAIN_LATER, "reader too slow")
            return
        if self._backlog is None:
            self._backlog = deque()
        self._backlog.append(frame)
        self._backlog_bytes += len(frame)
        if self._backlog_bytes > self._backlog_limit:
            self.close(CloseCode.TRY_AGAIN_LATER, "reader too slow")
            return
        self._wake_writer()

    def send_framed(self, wire: bytes) -> None:
        """Queue one message already framed (`frames.frame_binary`), e.g. shared by joiners."""
        if self._transport is not None:
            self.send(b"", wire)
        else:
            self.send(frame_payload(wire))

    def is_drained(self) -> bool:
        """Nothing sent waits in the socket's buffer beyond its low-water mark, as far as can
        be seen (through ASGI alone, the backlog's own limit is the only bound)."""
        flow = self._flow
        return flow is None or self._transport is None or flow.writable.is_set()

    async def drained(self) -> None:
        """Wait until `is_drained` (or the socket is gone, which drains it too)."""
        flow = self._flow
        if flow is not None and self._transport is not None:
            await flow.writable.wait()

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued (e.g. a refusal message) are written."""
        if self.close_code is not None:
            return
        self.close_code = code
        self._close_reason = reason
        self._wake_writer()

    async def closed(self) -> None:
        """Wait until the writer has flushed and closed the socket (if it ever had to)."""
        if self._writer is not None:
            await asyncio.wait((self._writer,))

    def abort(self) -> None:
        """The peer is gone: stop writing."""
        if self.close_code is None:
            self.close_code = CloseCode.GOING_AWAY
        self._transport = None
        if self._backlog:
            self._backlog.clear()
        if self._writer is not None:
            self._writer.cancel()

    def _wake_writer(self) -> None:
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        if self._writer is None:
            self._writer = asyncio.create_task(
                self._write_loop(self._wakeup), name=f"writer-{self.id}"
            )
        self._wakeup.set()

    async def _write_loop(self, wakeup: asyncio.Event) -> None:
        socket = self._socket
        try:
            while True:
                await wakeup.wait()
                wakeup.clear()
                backlog = self._backlog
                while backlog:
                    frame = backlog.popleft()
                    self._backlog_bytes -= len(frame)
                    await socket.send_bytes(frame)
                if self.close_code is not None:
                    await socket.close(self.close_code, self._close_reason)
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer vanished mid-write: nothing left to deliver to
            log.debug("send_failed", connection=self.id, error=type(exc).__name__)
            if self.close_code is None:
                self.close_code = CloseCode.GOING_AWAY
            if self._backlog:
                self._backlog.clear()
