"""Join storms: many joiners of one document at once each get the whole stored document,
while the replies held at once (computed, or waiting in send buffers) stay within the budget,
and a joiner that stops reading holds up nobody for long."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import asyncpg
import httpx
import websockets
from pycrdt import Doc, Text

from collab_server.app import create_app
from collab_server.join_budget import JoinBudget
from collab_server.protocol import SyncStep
from collab_server.settings import load_settings
from persistence import store_from_settings
from tests.collab_server.conftest import ServerFactory
from tests.support.frames import sync_frame
from tests.support.servers import InProcessServer, serve_in_process
from tests.support.yclient import YClient, connect

EMPTY_UPDATE = b"\x00\x00"
# A document past what the kernel buffers for a socket that reads nothing (the server's send
# buffer grows to 4 MB on loopback): the rest of its reply waits in the server's own buffer.
STALLING_SIZE = 6_000_000
PHRASES = ("Goal: reads a short passage aloud. ", "الهدف: يقرأ فقرة قصيرة بصوت عالٍ. ")


def budget_of(server: InProcessServer) -> JoinBudget:
    budget: JoinBudget = server.app.state.collab.registry.join_budget
    return budget


async def write_document(server: InProcessServer, name: str, paragraphs: int, size: int) -> str:
    """A document typed by one editor, stored: returns its notes once a reader has them all."""
    async with connect(server.ws(name)) as writer, connect(server.ws(name)) as reader:
        notes = writer.doc.get("notes", type=Text)
        for i in range(paragraphs):
            notes.insert(0 if i % 2 else len(notes), PHRASES[i % 2] * (size // 40) + f"[{i}] ")
        expected = str(notes)
        # The reader has it all only once it is stored (broadcast waits for the store).
        await reader.wait_for(lambda: str(reader.doc.get("notes", type=Text)) == expected, 20)
    return expected


@contextlib.asynccontextmanager
async def storm(url: str, docs: Iterable[Doc[Any]]) -> AsyncIterator[list[YClient]]:
    """Joiners that all open the document at once, each synced when the block starts."""
    docs = list(docs)
    sockets = await asyncio.gather(*(websockets.connect(url, max_size=None) for _ in docs))
    clients = [YClient(ws, doc) for ws, doc in zip(sockets, docs, strict=True)]
    try:
        await asyncio.gather(*(client.sync(timeout=30) for client in clients))
        yield clients
    finally:
        await asyncio.gather(*(client.close() for client in clients))


async def stored_document(server: InProcessServer, name: str) -> Doc[Any]:
    stored = await server.app.state.collab.store.load(name)
    doc: Doc[Any] = Doc()
    if stored.snapshot:
        doc.apply_update(stored.snapshot)
    for record in stored.tail:
        doc.apply_update(record.update)
    return doc


def same_content(a: Doc[Any], b: Doc[Any]) -> bool:
    """Neither holds anything the other lacks."""
    return a.get_update(b.get_state()) == EMPTY_UPDATE and b.get_update(a.get_state()) == (
        EMPTY_UPDATE
    )


async def test_a_storm_of_joiners_all_receive_exactly_the_stored_document(
    start_server: ServerFactory,
) -> None:
    name = "iep/storm"
    # A budget smaller than one reply: replies go out one at a time, the others wait in line.
    async with start_server(join_budget_bytes=1024) as server:
        expected = await write_document(server, name, paragraphs=30, size=4000)
        stored = await stored_document(server, name)
        # A third come back with part of the document (a reconnect): they get only the rest.
        part: Doc[Any] = Doc()
        async with connect(server.ws(name)) as early:
            part.apply_update(early.doc.get_update())
        part.get("notes", type=Text).insert(0, "")  # nothing new: an old copy of the document

        def joiner_doc(i: int) -> Doc[Any]:
            doc: Doc[Any] = Doc()
            if i % 3 == 0:
                doc.apply_update(part.get_update())
            return doc

        async with storm(server.ws(name), (joiner_doc(i) for i in range(24))) as joiners:
            for joiner in joiners:
                assert str(joiner.doc.get("notes", type=Text)) == expected
                assert same_content(joiner.doc, stored)
        budget = budget_of(server)
        whole = len(stored.get_update())
        # Never two whole documents held at once, and everything handed back.
        assert whole <= budget.peak < 2 * whole
        assert budget.in_use == 0 and budget.waiting == 0


async def stalled_reader(server: InProcessServer, name: str) -> websockets.ClientConnection:
    """A joiner that asks for the document and then reads nothing, with a receive window so
    small that the reply stays in the server's send buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
    ws = await websockets.connect(server.ws(name), sock=sock, max_size=None)
    await ws.send(sync_frame(SyncStep.STEP1, b"\x00"))
    ws.transport.pause_reading()
    return ws


async def wait_until(condition: Any, timeout: float = 10) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def test_a_joiner_that_stops_reading_holds_its_share_and_no_more(
    start_server: ServerFactory,
) -> None:
    name = "iep/slow-reader"
    reply = STALLING_SIZE
    async with start_server(join_budget_bytes=reply * 3 // 2) as server:
        expected = await write_document(server, name, paragraphs=10, size=reply // 10)
        budget = budget_of(server)
        slow = await stalled_reader(server, name)
        try:
            await wait_until(lambda: budget.in_use > 0)
            held = budget.in_use
            async with storm(server.ws(name), (Doc() for _ in range(6))) as joiners:
                assert all(str(j.doc.get("notes", type=Text)) == expected for j in joiners)
            # The stalled reply still holds its share; the others never held more than the
            # budget beside it.
            assert budget.in_use == held
            assert budget.peak <= budget.limit_bytes + held
        finally:
            slow.transport.abort()  # it vanishes: its share is handed back
        await wait_until(lambda: budget.in_use == 0)


async def test_a_stalled_reader_first_in_line_delays_the_others_only_for_its_patience(
    start_server: ServerFactory,
) -> None:
    name = "iep/stalled-first"
    # Room for one reply at a time: the stalled reader's share holds up everyone else until
    # its patience runs out.
    async with start_server(join_budget_bytes=1024, join_patience_seconds=0.3) as server:
        expected = await write_document(server, name, paragraphs=10, size=STALLING_SIZE // 10)
        budget = budget_of(server)
        slow = await stalled_reader(server, name)
        try:
            await wait_until(lambda: budget.in_use > 0)
            async with storm(server.ws(name), (Doc() for _ in range(4))) as joiners:
                assert all(str(j.doc.get("notes", type=Text)) == expected for j in joiners)
        finally:
            slow.transport.abort()


async def test_joiners_in_line_during_a_store_outage_get_only_stored_changes(
    postgres_url: str,
) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        {},
        database_url=postgres_url,
        db_schema=schema,
        store_retry_max_seconds=0.2,
        join_budget_bytes=1024,
    )
    app = create_app(settings, store=store_from_settings(settings))
    admin = await asyncpg.connect(postgres_url)
    name = "iep/storm-outage"
    try:
        async with serve_in_process(app) as server, httpx.AsyncClient(base_url=server.http) as http:
            await write_document(server, name, paragraphs=4, size=4000)
            async with connect(server.ws(name)) as writer:
                await admin.execute(f"ALTER TABLE {schema}.updates RENAME TO updates_away")
                writer.doc.get("notes", type=Text).insert(0, "written during the outage ")
                while (await http.get("/readyz")).status_code != 503:
                    await asyncio.sleep(0.02)
                sockets = [await websockets.connect(server.ws(name)) for _ in range(4)]
                joiners = [YClient(ws) for ws in sockets]
                try:
                    for joiner in joiners:
                        await joiner.ws.send(sync_frame(SyncStep.STEP1, b"\x00"))
                    # Their own later frames come back (awareness is echoed): each step 1 was
                    # read, and none of them has a step 2 holding the unstored change.
                    for n, joiner in enumerate(joiners):
                        await joiner.set_awareness(7000 + n, 1, "{}")
                        await joiner.wait_for(lambda j=joiner, n=n: 7000 + n in j.awareness)
                    assert not any(joiner.synced.is_set() for joiner in joiners)

                    await admin.execute(f"ALTER TABLE {schema}.updates_away RENAME TO updates")
                    for joiner in joiners:
                        await asyncio.wait_for(joiner.synced.wait(), 10)
                        text = str(joiner.doc.get("notes", type=Text))
                        assert text.startswith("written during the outage ")
                finally:
                    await asyncio.gather(*(joiner.close() for joiner in joiners))
    finally:
        await admin.close()


def test_answers_in_line_run_in_order_and_one_handing_back_at_once_recurses_nowhere() -> None:
    budget = JoinBudget(limit_bytes=100)
    order: list[int] = []

    def answer(n: int, size: int, hand_back: bool) -> None:
        order.append(n)
        budget.take(size)
        if hand_back:
            budget.give_back(size)

    budget.admit(lambda: answer(0, 150, False))  # over the budget on its own: still goes out
    for n in range(1, 5001):
        budget.admit(lambda n=n: answer(n, 10, True))
    assert order == [0] and budget.waiting == 5000
    budget.give_back(150)
    assert order == list(range(5001))
    assert budget.in_use == 0 and budget.peak == 150
