"""Schema 2 with real yjs clients: items created at once by two editors all survive, two
people typing into one field both keep every character, the server reads what they wrote;
and a stored schema-1 IEP reaches a fresh client migrated."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.interop.conftest import Servers, sync_url
from tests.interop.nodeclient import node_clients
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.interop


async def test_two_editors_on_a_new_iep_lose_nothing(shared_server: ServerProcess) -> None:
    server = shared_server
    room = "centre/schema-2/iep"
    async with node_clients() as clients:
        await clients.open("huda", "omar", url=sync_url(server), room=room, params={"name": "x"})
        await clients.wait_for("huda", "omar", synced=True)
        # Both add goals to the empty IEP in the same instant: no section to race over.
        await clients.edit(
            "huda", {"op": "addItem", "section": "goals", "id": "g1", "texts": {"title": "قراءة"}}
        )
        await clients.edit(
            "omar", {"op": "addItem", "section": "goals", "id": "g2", "texts": {"title": "Math"}}
        )
        await clients.wait_for("huda", "omar", goalsLength=2)
        # Both type into the first goal's title at its end, many times.
        for i in range(20):
            await clients.edit(
                "huda",
                {"op": "typeIn", "root": "goals", "item": "g1", "field": "title", "text": "ع"},
            )
            await clients.edit(
                "omar",
                {
                    "op": "typeIn",
                    "root": "goals",
                    "item": "g1",
                    "field": "title",
                    "text": str(i % 10),
                },
            )
        # Each one's last edit seen by the other: everything each sent before it arrived too.
        await clients.edit("huda", {"op": "typeIn", "root": "student/name", "text": "سارة"})
        await clients.wait_for("omar", studentName="سارة")
        await clients.edit("omar", {"op": "typeIn", "root": "student/name", "text": " ✓"})
        await clients.wait_for("huda", studentName="سارة ✓")
        states = await clients.states("huda", "omar")
        huda, omar = states["huda"]["iep"], states["omar"]["iep"]
        assert huda == omar
        title = next(g["title"] for g in huda["goals"] if g["id"] == "g1")
        assert title.startswith("قراءة") and len(title) == len("قراءة") + 40
        assert "".join(c for c in title[5:] if not c.isdigit()) == "ع" * 20
        assert "".join(c for c in title if c.isdigit()) == "".join(str(i % 10) for i in range(20))

    # The server reads schema 2: a version's content has what they wrote.
    async with httpx.AsyncClient(base_url=server.http) as http:
        version = (await http.post(f"/api/documents/{room}/versions", json={"name": "v"})).json()
        opened = (await http.get(f"/api/documents/{room}/versions/{version['id']}")).json()
    assert opened["content"]["student"] == {"name": "سارة ✓"}
    assert sorted(g["id"] for g in opened["content"]["goals"]) == ["g1", "g2"]


async def test_a_stored_schema_1_iep_reaches_a_new_client_migrated(
    durable_servers: Servers,
) -> None:
    server = await durable_servers.start()
    room = "centre/legacy/iep"
    async with node_clients() as old_editor:
        await old_editor.open("old", url=sync_url(server), room=room, params={"name": "Huda"})
        await old_editor.wait_for("old", synced=True)
        await old_editor.edit(
            "old",
            {
                "op": "legacy",
                "student": {"name": "عمر خالد", "grade": "3"},
                "goals": [{"id": "g1", "title": "Reading", "status": "met"}],
                "notes": "ملاحظة\nnote",
            },
            transact=True,
        )
        await old_editor.call("destroy", ids=["old"])
    assert await asyncio.to_thread(server.terminate) == 0, server.log()

    await durable_servers.restart(server)
    async with node_clients() as fresh:
        await fresh.open("new", url=sync_url(server), room=room, params={"name": "Omar"})
        await fresh.wait_for("new", synced=True, goalsLength=1, studentName="عمر خالد")
        iep = (await fresh.state("new"))["iep"]
    assert iep["goals"] == [
        {"id": "g1", "title": "Reading", "area": "", "baseline": "", "target": "", "status": "met"}
    ]
    assert iep["goalTexts"] == [True]  # free text is now collaborative text
    assert iep["notes"] == "ملاحظة\nnote"
    assert iep["legacy"]["student"] == {"name": "عمر خالد", "grade": "3"}  # kept, unread
