"""Requests that never finish arriving, or whose head never ends, as `make run` serves them."""

from __future__ import annotations

import asyncio

import httpx
import uvicorn
from pycrdt import Text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from collab_server.request_deadline import MAX_REQUEST_HEAD_BYTES, DeadlineHttpProtocol
from tests.collab_server.conftest import ServerFactory
from tests.support.servers import free_port
from tests.support.yclient import connect

DEADLINE = 0.5


async def reply_then_close(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the socket."""
    return await asyncio.wait_for(reader.read(), DEADLINE * 10)


async def test_half_sent_requests_are_closed_and_everyone_else_is_served(
    start_server: ServerFactory,
) -> None:
    async with (
        start_server(request_timeout_seconds=DEADLINE) as server,
        connect(server.ws("iep/deadline")) as editor,
        connect(server.ws("iep/deadline")) as reader_client,
    ):
        sockets = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(40)]
        for number, (_, writer) in enumerate(sockets):
            if number % 4 == 0:
                continue  # connects and says nothing at all
            if number % 4 == 3:  # a whole head, half of the body it announced
                writer.write(b"POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf")
            else:
                writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # no blank line
        async with httpx.AsyncClient(base_url=server.http) as http:
            assert (await http.get("/healthz")).status_code == 200
        replies = [await reply_then_close(reader) for reader, _ in sockets]
        for _, writer in sockets:
            writer.close()
        # Upgraded sockets are past the deadline's reach: they keep editing.
        editor.doc.get("notes", type=Text).insert(0, "still here")
        await reader_client.wait_for(
            lambda: str(reader_client.doc.get("notes", type=Text)) == "still here"
        )
    # Every socket was closed (reading it ended); those whose head never ended were told why.
    # The half-sent body reached the app, which may answer before reading it.
    heads_never_finished = [r for n, r in enumerate(replies) if n % 4 != 3]
    assert all(r.startswith(b"HTTP/1.1 408 ") for r in heads_never_finished)


async def oversized_head(port: int, start: bytes) -> bytes:
    """Send a head of exactly one byte over the cap (so the server has read all of it when it
    answers, and closes without a reset); what it answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(start + b"a" * (MAX_REQUEST_HEAD_BYTES + 1 - len(start)))
    try:
        return await reply_then_close(reader)
    finally:
        writer.close()


async def test_an_endless_request_head_gets_431(start_server: ServerFactory) -> None:
    async with start_server() as server:
        long_header = await oversized_head(
            server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: "
        )
        long_url = await oversized_head(server.port, b"GET /healthz?q=")
        async with httpx.AsyncClient(base_url=server.http) as http:
            fine = await http.get("/healthz?" + "q" * 4000)
    assert long_header.startswith(b"HTTP/1.1 431 ")
    assert long_url.startswith(b"HTTP/1.1 431 ")
    assert fine.status_code == 200


async def test_a_large_body_on_a_slow_link_arrives_and_a_stalled_one_is_cut() -> None:
    """The deadline grows with the announced size at a slow phone's rate, never without it."""

    async def length_of_body(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(len(await request.body())))

    app = Starlette(routes=[Route("/upload", length_of_body, methods=["POST"])])
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        http=DeadlineHttpProtocol.configured(DEADLINE),
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        size = 64 * 1024  # two more seconds at the slowest rate waited for
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(8):  # well past the bare deadline, well inside the grown one
            writer.write(b"x" * (size // 8))
            await writer.drain()
            await asyncio.sleep(DEADLINE / 3)
        answer = await reply_until(reader, b"\r\n\r\n" + str(size).encode())
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200 ")

        # The same announcement with most of the body never sent: closed once its time is up.
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nab" % size)
        stalled = await asyncio.wait_for(reader.read(), DEADLINE + size / 32768 + 5)
        writer.close()
        assert not stalled.startswith(b"HTTP/1.1 200 ")
    finally:
        server.should_exit = True
        await task


async def reply_until(reader: asyncio.StreamReader, end: bytes) -> bytes:
    received = b""
    while not received.endswith(end):
        chunk = await asyncio.wait_for(reader.read(4096), DEADLINE * 10)
        if not chunk:
            break
        received += chunk
    return received
