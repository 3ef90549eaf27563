"""What real clients wrote survives SIGTERM, SIGKILL and unloading, on SQLite and PostgreSQL.

Clients that saw the old server are always gone before the restart: a reconnecting
y-websocket client would push its own copy back and hide a store that lost data.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from collab_server.protocol import CloseCode
from tests.interop.conftest import Servers, metric, sync_url
from tests.interop.nodeclient import node_clients

pytestmark = pytest.mark.interop


async def test_clean_restart_keeps_everything(durable_servers: Servers) -> None:
    server = await durable_servers.start()
    room = "iep/student-17/restart"
    async with node_clients() as writer, node_clients() as reader:
        await writer.open("writer", url=sync_url(server), room=room)
        await reader.open("reader", url=sync_url(server), room=room)
        await writer.wait_for("writer", synced=True)
        for i in range(10):
            await writer.edit(
                "writer",
                {"op": "insert", "text": f"جلسة {i} / session {i}\n"},
                {"op": "set", "key": f"goal-{i}", "value": {"met": i % 2 == 0}},
                {"op": "push", "values": [i]},
            )
        await reader.wait_for("reader", itemsLength=10, metaSize=10)
        before = await reader.state("reader")

        assert await asyncio.to_thread(server.terminate) == 0, server.log()
        await writer.wait_for("writer", connected=False)
        await reader.wait_for("reader", connected=False)
        assert writer.close_codes("writer")[0] == CloseCode.GOING_AWAY
        assert reader.close_codes("reader")[0] == CloseCode.GOING_AWAY

    await durable_servers.restart(server)
    async with node_clients() as fresh:
        await fresh.open("fresh", url=sync_url(server), room=room)
        await fresh.wait_for("fresh", synced=True, itemsLength=10, metaSize=10)
        after = await fresh.state("fresh")
    assert (after["notes"], after["meta"], after["items"]) == (
        before["notes"],
        before["meta"],
        before["items"],
    )


async def test_everything_a_peer_received_survives_sigkill(durable_servers: Servers) -> None:
    server = await durable_servers.start()
    room = "iep/student-17/crash"
    edits = 300
    async with node_clients() as writer, node_clients() as witness:
        await writer.open("writer", url=sync_url(server), room=room)
        await witness.open("witness", url=sync_url(server), room=room)
        await writer.wait_for("writer", synced=True)
        await witness.wait_for("witness", synced=True)
        # One transaction per edit: 300 separate updates through the group commit.
        for start in range(0, edits, 50):
            await writer.call(
                "edit",
                id="writer",
                ops=[{"op": "push", "values": [i]} for i in range(start, start + 50)],
            )
        await witness.wait_for("witness", itemsLength=edits)
        server.kill()  # at once: no flush, no drain
        received = await witness.state("witness")
        writer.kill()
        witness.kill()

    await durable_servers.restart(server)
    async with node_clients() as fresh:
        await fresh.open("fresh", url=sync_url(server), room=room)
        await fresh.wait_for("fresh", synced=True, itemsLength=edits)
        restored = await fresh.state("fresh")
    assert received["items"] == list(range(edits))
    assert restored["items"] == received["items"]


async def test_one_megabyte_document_reaches_a_late_joiner_and_survives_restart(
    durable_servers: Servers,
) -> None:
    server = await durable_servers.start()
    room = "iep/student-17/large"
    # 1 MiB of UTF-16 code units in 8 pastes of 128 KiB, Arabic and English mixed.
    chunk = {"op": "insert", "text": "Reading goal هدف القراءة. ", "times": 5042}
    chunk_length = len("Reading goal هدف القراءة. ") * 5042
    async with node_clients() as writer, node_clients() as late:
        await writer.open("writer", url=sync_url(server), room=room)
        await writer.wait_for("writer", synced=True)
        for _ in range(8):
            await writer.edit("writer", chunk)
        written = await writer.state("writer")
        assert written["notesLength"] == 8 * chunk_length >= 1024 * 1024

        await late.open("late", url=sync_url(server), room=room)
        await late.wait_for("late", synced=True, notesLength=written["notesLength"], timeout=30)
        assert (await late.state("late"))["notesSha256"] == written["notesSha256"]
        assert await asyncio.to_thread(server.terminate) == 0, server.log()

    await durable_servers.restart(server)
    async with node_clients() as fresh:
        await fresh.open("fresh", url=sync_url(server), room=room)
        await fresh.wait_for("fresh", synced=True, notesLength=written["notesLength"], timeout=30)
        assert (await fresh.state("fresh"))["notesSha256"] == written["notesSha256"]


async def test_sixty_documents_unload_and_reload_intact(durable_servers: Servers) -> None:
    server = await durable_servers.start(COLLAB_UNLOAD_GRACE_SECONDS="0.2")
    rooms = {f"peer{i:02d}": f"iep/student-{i:02d}/plan" for i in range(60)}
    async with node_clients() as clients:
        for peer, room in rooms.items():
            await clients.open(peer, url=sync_url(server), room=room)
        await clients.wait_for(*rooms, synced=True, timeout=30)
        assert await metric(server, "collab_documents_loaded") == 60
        for peer, room in rooms.items():
            await clients.edit(
                peer,
                {"op": "insert", "text": f"plan for {room}"},
                {"op": "set", "key": "room", "value": room},
                {"op": "push", "values": [peer]},
                transact=True,
            )
        # Close right after writing, as a browser tab does; the server must keep the write.
        await clients.destroy(*rooms)

    deadline = time.monotonic() + 20
    while await metric(server, "collab_documents_loaded") > 0:
        assert time.monotonic() < deadline, "documents were never unloaded"
        await asyncio.sleep(0.1)

    async with node_clients() as clients:
        for peer, room in rooms.items():
            await clients.open(peer, url=sync_url(server), room=room)
        await clients.wait_for(*rooms, synced=True, itemsLength=1, timeout=30)
        states = await clients.states(*rooms)
    for peer, room in rooms.items():
        assert (states[peer]["notes"], states[peer]["meta"], states[peer]["items"]) == (
            f"plan for {room}",
            {"room": room},
            [peer],
        )
