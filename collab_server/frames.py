"""Server-to-client WebSocket frames, framed once and written to many transports (pure)."""

from __future__ import annotations

import struct
from typing import Protocol

FIN_BINARY = 0x82


class FrameTransport(Protocol):
    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...


class WriteFlag(Protocol):
    """Set while the transport takes writes; cleared while its buffer is over the high-water
    mark (uvicorn's `writable`, driven by the transport's pause/resume_writing)."""

    def is_set(self) -> bool: ...

    async def wait(self) -> bool: ...


class FlowControl(Protocol):
    """What shows that a socket's send buffer drained: its ASGI server protocol (uvicorn)."""

    @property
    def writable(self) -> WriteFlag: ...


def frame_binary(*parts: bytes) -> bytes:
    """One unmasked, final, binary WebSocket frame (RFC 6455 section 5.2) holding the parts,
    built with a single copy of each (a document's whole state can be megabytes)."""
    length = sum(map(len, parts))
    if length < 126:
        header = bytes((FIN_BINARY, length))
    elif length < 1 << 16:
        header = struct.pack("!BBH", FIN_BINARY, 126, length)
    else:
        header = struct.pack("!BBQ", FIN_BINARY, 127, length)
    return b"".join((header, *parts))


def frame_payload(frame: bytes) -> bytes:
    """The payload of a frame made by `frame_binary` (a copy)."""
    length = frame[1]
    header = 2 if length < 126 else 4 if length == 126 else 10
    return frame[header:]
