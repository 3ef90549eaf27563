"""Server-to-client WebSocket frames, framed once and written to many transports (pure)."""

from __future__ import annotations

import struct
from typing import Protocol

FIN_BINARY = 0x82


class FrameTransport(Protocol):
    def write(self, data: bytes) -> None: ...

    def is_closing(self) -> bool: ...

    def get_write_buffer_size(self) -> int: ...


def frame_binary(payload: bytes) -> bytes:
    """One unmasked, final, binary WebSocket frame (RFC 6455 section 5.2)."""
    length = len(payload)
    if length < 126:
        header = bytes((FIN_BINARY, length))
    elif length < 1 << 16:
        header = struct.pack("!BBH", FIN_BINARY, 126, length)
    else:
        header = struct.pack("!BBQ", FIN_BINARY, 127, length)
    return header + payload
