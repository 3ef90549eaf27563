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

from collab_server.frames import FrameTransport, frame_binary
from collab_server.identity import ConnectionOrigin, Identity
from collab_server.protocol import CloseCode

log = structlog.get_logger("collab.connection")


class Socket(Protocol):
    """What a connection needs from the web framework's WebSocket."""

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


class Connection:
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
        self._socket = socket
        self._transport = transport
        self._backlog: deque[bytes] = deque()
        self._backlog_bytes = 0
        self._backlog_limit = backlog_limit
        # Started on first use: with the transport at hand only a close needs it, and an idle
        # socket should not hold a task.
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def use_transport(self, transport: FrameTransport | None) -> None:
        """Write frames straight to the socket from now on (after the handshake)."""
        if self._backlog:
            return  # keep order: frames already queued go out through ASGI first
        self._transport = transport

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
        self._backlog.append(frame)
        self._backlog_bytes += len(frame)
        if self._backlog_bytes > self._backlog_limit:
            self.close(CloseCode.TRY_AGAIN_LATER, "reader too slow")
            return
        self._wake_writer()

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
        self._backlog.clear()
        if self._writer is not None:
            self._writer.cancel()

    def _wake_writer(self) -> None:
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_loop(), name=f"writer-{self.id}")
        self._wakeup.set()

    async def _write_loop(self) -> None:
        socket = self._socket
        backlog = self._backlog
        try:
            while True:
                await self._wakeup.wait()
                self._wakeup.clear()
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
            backlog.clear()
