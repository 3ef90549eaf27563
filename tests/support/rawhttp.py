"""HTTP as an attacker writes it: raw bytes on a socket, with lengths that lie or never end."""

from __future__ import annotations

import asyncio


async def status_of_reply(reader: asyncio.StreamReader, timeout: float = 5.0) -> int:
    line = await asyncio.wait_for(reader.readline(), timeout)
    return int(line.split()[1])


async def declare_body(port: int, path: str, length: int) -> int:
    """Send only the head of a POST announcing `length` bytes; the status the server answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n"
        writer.write(head.encode())
        await writer.drain()
        return await status_of_reply(reader)
    finally:
        writer.close()


async def stream_body(port: int, path: str, chunk: int, max_chunks: int) -> tuple[int, int]:
    """POST a chunked body until the server answers (at most `max_chunks` chunks of `chunk`
    bytes): the status, and how many bytes had been written by then."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    reply = asyncio.ensure_future(status_of_reply(reader, timeout=30.0))
    sent = 0
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        data = f"{chunk:x}\r\n".encode() + b"x" * chunk + b"\r\n"
        for _ in range(max_chunks):
            if reply.done():
                break
            writer.write(data)
            try:
                await writer.drain()
            except ConnectionError:
                break  # the server answered and closed while this was still writing
            sent += chunk
        return await reply, sent
    finally:
        reply.cancel()
        writer.close()
