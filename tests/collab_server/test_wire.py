"""Frames as bytes on the socket: however they are split or packed, each message counts once.

The server reads whole, plain binary frames itself and leaves every other frame, and any frame
not complete yet, to websockets; these streams cross that boundary in every direction.
"""

from __future__ import annotations

import asyncio
import struct

import websockets
from pycrdt import Doc, Text, create_awareness_message
from websockets.frames import CloseCode as RFC6455Close

from collab_server.protocol import AwarenessEntry, CloseCode, SyncStep, encode_awareness_update
from tests.collab_server.conftest import ServerFactory
from tests.support.frames import sync_frame
from tests.support.servers import InProcessServer
from tests.support.yclient import YClient, connect

CONTINUATION, TEXT, BINARY, CLOSE, PING = 0x0, 0x1, 0x2, 0x8, 0x9
FIN = 0x80


# A mask that reads as the start of a binary frame (0x82, then "masked, 5 bytes"): a reader
# that took the bytes after a consumed header for a new frame would misread every frame.
DECOY_MASK = bytes((0x82, 0x85, 0x11, 0x22))


def client_frame(opcode: int, payload: bytes, *, fin: bool = True, masked: bool = True) -> bytes:
    """A client-to-server frame as RFC 6455 lays it out (shortest length form)."""
    first = (FIN if fin else 0) | opcode
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        header = struct.pack("!BB", first, mask_bit | len(payload))
    elif len(payload) < 1 << 16:
        header = struct.pack("!BBH", first, mask_bit | 126, len(payload))
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, len(payload))
    if not masked:
        return header + payload
    mask = DECOY_MASK
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def typed_updates(*insertions: str) -> tuple[list[bytes], str]:
    """One sync update message per insertion, and the text they make together."""
    doc = Doc()
    text = doc.get("notes", type=Text)
    messages: list[bytes] = []
    doc.observe(lambda event: messages.append(sync_frame(SyncStep.UPDATE, event.update)))
    for insertion in insertions:
        text += insertion
    return messages, str(text)


async def write_in_pieces(client: YClient, stream: bytes, cuts: list[int]) -> None:
    """Write `stream` cut at the given offsets, letting the server read between writes."""
    transport = client.ws.transport
    start = 0
    for cut in [*cuts, len(stream)]:
        transport.write(stream[start:cut])
        start = cut
        for _ in range(3):  # the server shares this loop: give it turns to read
            await asyncio.sleep(0)


def notes(client: YClient) -> str:
    return str(client.doc.get("notes", type=Text))


async def test_frames_split_and_packed_anyhow_are_each_applied_once(
    server: InProcessServer,
) -> None:
    messages, expected = typed_updates(
        "short;", "m" * 300 + ";", "L" * 70_000 + ";", "in two fragments;", "after;"
    )
    short, medium, long, fragmented, after = messages
    frames = [
        client_frame(BINARY, short),  # 7-bit length
        client_frame(PING, b"still there?"),
        client_frame(BINARY, medium),  # 16-bit length
        client_frame(BINARY, long),  # 64-bit length
        client_frame(BINARY, fragmented[:3], fin=False),
        client_frame(CONTINUATION, fragmented[3:]),
        client_frame(BINARY, after),
    ]
    stream = b"".join(frames)
    starts = [sum(len(f) for f in frames[:i]) for i in range(len(frames))]
    # Cut at frame boundaries, right after each 2-byte header (websockets has read the start
    # of the frame and waits for the rest: the mask, which begins like a frame) and mid-payload.
    cuts = sorted({*starts[1:], *(s + 2 for s in starts), *range(1, len(stream), 7919)})
    room = "iep/wire-pieces"
    async with connect(server.ws(room)) as writer, connect(server.ws(room)) as reader:
        await write_in_pieces(writer, stream, cuts)
        await reader.wait_for(lambda: notes(reader) == expected)
        live = server.app.state.collab.registry.get_live(room)
        assert live is not None and live.last_seq == len(messages)

        # One read holding a whole frame, a ping, another whole frame and one cut short.
        more, _ = typed_updates("x;", "y;", "z;")
        x, y, z = (client_frame(BINARY, m) for m in more)
        packed = x + client_frame(PING, b"?") + y + z
        await write_in_pieces(writer, packed, [len(packed) - 2])
        await reader.wait_for(lambda: live.last_seq == len(messages) + 3)


async def test_an_update_packed_with_a_close_is_stored_before_the_close(
    server: InProcessServer,
) -> None:
    (update,), expected = typed_updates("last words;")
    room = "iep/wire-close"
    async with connect(server.ws(room)) as writer, connect(server.ws(room)) as reader:
        bye = client_frame(CLOSE, struct.pack("!H", CloseCode.NORMAL))
        await write_in_pieces(writer, client_frame(BINARY, update) + bye, [])
        await reader.wait_for(lambda: notes(reader) == expected)
        assert await writer.closed() == CloseCode.NORMAL
    async with connect(server.ws(room)) as late:
        assert notes(late) == expected


async def test_an_unmasked_frame_fails_only_its_connection(server: InProcessServer) -> None:
    (update,), _ = typed_updates("never applied;")
    room = "iep/wire-unmasked"
    async with connect(server.ws(room)) as bad, connect(server.ws(room)) as good:
        await write_in_pieces(bad, client_frame(BINARY, update, masked=False), [])
        assert await bad.closed() == RFC6455Close.PROTOCOL_ERROR  # from websockets' parser
        good.doc.get("notes", type=Text).insert(0, "fine;")
        async with connect(server.ws(room)) as late:
            assert notes(late) == "fine;"


async def test_keepalive_drops_a_client_that_stops_answering_and_keeps_those_that_answer(
    start_server: ServerFactory,
) -> None:
    async with (
        start_server(ping_interval_seconds=0.2, ping_timeout_seconds=0.2) as server,
        connect(server.ws("iep/keepalive")) as present,
    ):
        vanished = await websockets.connect(server.ws("iep/keepalive"))
        try:
            update = encode_awareness_update([AwarenessEntry(4242, 1, '{"name":"سارة"}')])
            await vanished.send(create_awareness_message(update))
            await present.wait_for(lambda: 4242 in present.awareness)
            vanished.transport.pause_reading()  # hears no pings from now on, answers none
            await present.wait_for(lambda: 4242 not in present.awareness, timeout=5)
        finally:
            vanished.transport.abort()
        # The one that answered every ping meanwhile is still connected and in sync.
        assert present.close_code is None
        present.doc.get("notes", type=Text).insert(0, "still here")
        async with connect(server.ws("iep/keepalive")) as joiner:
            await joiner.wait_for(lambda: notes(joiner) == "still here")


async def test_a_text_frame_that_is_not_utf8_closes_with_1007(server: InProcessServer) -> None:
    room = "iep/wire-not-utf8"
    async with connect(server.ws(room)) as bad, connect(server.ws(room)) as good:
        await write_in_pieces(bad, client_frame(TEXT, b"\xff\xfe not UTF-8"), [])
        assert await bad.closed() == CloseCode.INVALID_PAYLOAD
        good.doc.get("notes", type=Text).insert(0, "fine;")
        async with connect(server.ws(room)) as late:
            assert notes(late) == "fine;"
