"""Real yjs / y-websocket editors against a server process: convergence, late join, offline."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from tests.interop.conftest import sync_url
from tests.interop.nodeclient import NodeClients, node_clients
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.interop

ROUNDS = 25


def document_of(state: dict[str, Any]) -> dict[str, Any]:
    return {key: state[key] for key in ("notes", "meta", "items")}


async def test_three_concurrent_editors_converge(shared_server: ServerProcess) -> None:
    server = shared_server
    names = ("amal", "ben", "carla")
    async with contextlib.AsyncExitStack() as stack:
        editors = [await stack.enter_async_context(node_clients()) for _ in names]
        for name, editor in zip(names, editors, strict=True):
            await editor.open(name, url=sync_url(server), room="iep/converge")
        for name, editor in zip(names, editors, strict=True):
            await editor.wait_for(name, synced=True)

        async def type_away(name: str, editor: NodeClients) -> None:
            for i in range(ROUNDS):
                # Each call is one transaction, so the three streams interleave at the server.
                await editor.edit(
                    name,
                    {"op": "insert", "index": 0, "text": f"{name}{i};"},
                    {"op": "set", "key": "status", "value": f"{name}-{i}"},
                    {"op": "set", "key": f"by-{name}", "value": i},
                    {"op": "push", "values": [{"goal": f"{name}-{i}", "ar": "هدف"}]},
                )

        await asyncio.gather(*(type_away(n, e) for n, e in zip(names, editors, strict=True)))
        notes_length = sum(len(f"{n}{i};") for n in names for i in range(ROUNDS))
        for name, editor in zip(names, editors, strict=True):
            await editor.wait_for(
                name, notesLength=notes_length, itemsLength=3 * ROUNDS, metaSize=4
            )
        states = [(await e.state(n)) for n, e in zip(names, editors, strict=True)]

    first = document_of(states[0])
    assert all(document_of(s) == first for s in states[1:])
    assert sorted(first["notes"].split(";")[:-1]) == sorted(
        f"{n}{i}" for n in names for i in range(ROUNDS)
    )
    assert first["meta"]["status"] in {f"{n}-{ROUNDS - 1}" for n in names}
    assert [item["goal"] for item in first["items"] if item["goal"].startswith("ben")] == [
        f"ben-{i}" for i in range(ROUNDS)
    ]


async def test_late_joiner_gets_the_full_document(shared_server: ServerProcess) -> None:
    server = shared_server
    async with node_clients() as writer_process, node_clients() as late_process:
        await writer_process.open("writer", url=sync_url(server), room="iep/late")
        await writer_process.wait_for("writer", synced=True)
        await writer_process.edit("writer", {"op": "insert", "text": "Reading: 20 wpm → 40 wpm"})
        await writer_process.edit("writer", {"op": "set", "key": "student", "value": "Yusuf"})
        await writer_process.edit(
            "writer", {"op": "push", "values": [{"id": "g1"}, {"id": "g2"}]}, transact=True
        )
        written = await writer_process.state("writer")

        await late_process.open("late", url=sync_url(server), room="iep/late")
        await late_process.wait_for(
            "late", synced=True, notes=written["notes"], itemsLength=2, metaSize=1
        )
        assert document_of(await late_process.state("late")) == document_of(written)


async def test_offline_edits_merge_on_reconnect(shared_server: ServerProcess) -> None:
    server = shared_server
    async with node_clients() as laptop, node_clients() as desk:
        await laptop.open("laptop", url=sync_url(server), room="iep/offline")
        await desk.open("desk", url=sync_url(server), room="iep/offline")
        await laptop.wait_for("laptop", synced=True)
        await desk.wait_for("desk", synced=True)
        await laptop.edit("laptop", {"op": "insert", "text": "Goals."})
        await desk.wait_for("desk", notes="Goals.")

        await laptop.disconnect("laptop")
        await laptop.wait_for("laptop", connected=False)
        await laptop.edit("laptop", {"op": "insert", "text": " Offline note."})
        await laptop.edit("laptop", {"op": "set", "key": "reviewed", "value": True})
        await desk.edit("desk", {"op": "insert", "index": 0, "text": "Draft: "})
        await desk.edit("desk", {"op": "push", "values": ["online item"]})

        merged = "Draft: Goals. Offline note."
        await laptop.connect("laptop")
        await laptop.wait_for("laptop", synced=True, notes=merged, itemsLength=1, metaSize=1)
        await desk.wait_for("desk", notes=merged, itemsLength=1, metaSize=1)
        laptop_state, desk_state = await laptop.state("laptop"), await desk.state("desk")
        assert document_of(laptop_state) == document_of(desk_state)
        assert laptop_state["meta"] == {"reviewed": True}
        assert desk_state["items"] == ["online item"]


async def test_fifty_readers_joining_at_once_all_sync_and_receive_updates(
    shared_server: ServerProcess,
) -> None:
    server = shared_server
    readers = [f"reader{i:02d}" for i in range(50)]
    async with node_clients() as writer_process, node_clients() as reader_process:
        await writer_process.open("writer", url=sync_url(server), room="iep/crowd")
        await writer_process.wait_for("writer", synced=True)
        await writer_process.edit("writer", {"op": "insert", "text": "before"})
        # All 50 sockets are opened in the same tick of the Node event loop.
        await reader_process.open(*readers, url=sync_url(server), room="iep/crowd")
        await reader_process.wait_for(*readers, synced=True, notes="before", timeout=20)

        await writer_process.edit("writer", {"op": "insert", "text": " and after"})
        await reader_process.wait_for(*readers, notes="before and after", timeout=20)
        states = await reader_process.states(*readers)
    assert all(s["statuses"] == ["connecting", "connected"] for s in states.values())
