"""uvicorn's HTTP protocol with a deadline and a size cap on receiving each request.

uvicorn arms no timer until a first response is sent: a socket that sends half a request (or
nothing) stays open for ever, and a few hundred of them take every file descriptor. And
httptools buffers a request line or a header of any length until it ends. Here each request
must arrive whole within `request_timeout_seconds` (408, or a plain close once the app has
it), and its head may not pass `MAX_REQUEST_HEAD_BYTES` (431). A body the app accepts (the
size caps per path answer 413 at once otherwise) gets time for its announced length at a slow
phone's rate on top: a 16 MB photo from a parent on 3G arrives. Time to answer is not limited:
the deadline ends when the last byte of the request is in.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# A URL with a token in its query and ordinary headers take a few KiB; nginx allows 32 KiB.
MAX_REQUEST_HEAD_BYTES = 32 * 1024
# The slowest upload still waited for: 256 kbit/s, a weak mobile link.
MIN_BODY_BYTES_PER_SECOND = 32 * 1024


def _plain_response(status: bytes, text: bytes) -> bytes:
    return b"".join(
        (
            b"HTTP/1.1 ",
            status,
            b"\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n",
            b"content-length: ",
            str(len(text)).encode(),
            b"\r\n\r\n",
            text,
        )
    )


_TIMED_OUT = _plain_response(b"408 Request Timeout", b"the request did not arrive in time")
_HEAD_TOO_LARGE = _plain_response(
    b"431 Request Header Fields Too Large", b"request line and headers are too large"
)


class DeadlineHttpProtocol(HttpToolsProtocol):
    """Set `request_timeout_seconds` with `configured` before handing the class to uvicorn."""

    request_timeout_seconds = 10.0

    @classmethod
    def configured(cls, request_timeout_seconds: float) -> type[DeadlineHttpProtocol]:
        return type(cls.__name__, (cls,), {"request_timeout_seconds": request_timeout_seconds})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._awaiting_head = True  # no request handed to the app since the deadline was set

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_head = True
        self._arm()  # the next request on a kept-alive socket has its own deadline

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._awaiting_head or self.transport.is_closing():
            return
        # Everything this socket sent since its request began is still head: httptools would
        # keep buffering a header value until it ends.
        self._head_bytes += len(data)
        if self._head_bytes > MAX_REQUEST_HEAD_BYTES:
            self._disarm()
            self.transport.write(_HEAD_TOO_LARGE)
            self.transport.close()

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._head_bytes = 0
        super().on_headers_complete()
        announced = _content_length(self.headers)
        if announced and self._deadline is not None:
            self._disarm()
            self._deadline = self.loop.call_later(
                self.request_timeout_seconds + announced / MIN_BODY_BYTES_PER_SECOND,
                self._expire,
            )

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._disarm()  # the WebSocket protocol has its own keepalive from here on
        super().handle_websocket_upgrade()

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(self.request_timeout_seconds, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._awaiting_head:  # nothing of this request has reached the app yet
            self.transport.write(_TIMED_OUT)
        self.transport.close()


def _content_length(headers: list[tuple[bytes, bytes]]) -> int:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0
