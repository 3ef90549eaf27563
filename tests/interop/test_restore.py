"""Restore with real yjs clients: it arrives live at every editor, merges with what others type
at the same moment, and the restorer's Y.UndoManager undoes it."""

from __future__ import annotations

import httpx
import pytest

from tests.interop.conftest import sync_url
from tests.interop.nodeclient import node_clients
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.interop

ROOM = "centre/restore/iep-2026"


async def test_restore_arrives_live_merges_with_typing_and_undoes(
    shared_server: ServerProcess,
) -> None:
    server = shared_server
    api = f"{server.http}/api/documents/{ROOM}"
    async with (
        node_clients() as amal_process,
        node_clients() as ben_process,
        httpx.AsyncClient() as http,
    ):
        await amal_process.open("amal", url=sync_url(server), room=ROOM, params={"name": "Amal"})
        await ben_process.open("ben", url=sync_url(server), room=ROOM, params={"name": "Ben"})
        await amal_process.wait_for("amal", synced=True)
        await ben_process.wait_for("ben", synced=True)
        await amal_process.edit("amal", {"op": "insert", "text": "Draft one."})
        await amal_process.edit("amal", {"op": "set", "key": "title", "value": "v1"})
        await ben_process.wait_for("ben", notes="Draft one.", metaSize=1)
        version = (await http.post(f"{api}/versions", json={"name": "Draft"})).json()

        await amal_process.edit("amal", {"op": "insert", "text": " Later edit by Amal."})
        await amal_process.edit("amal", {"op": "set", "key": "title", "value": "v2"})
        await ben_process.edit("ben", {"op": "push", "values": [{"id": "goal-1", "title": "x"}]})
        await amal_process.wait_for("amal", itemsLength=1)
        await ben_process.wait_for("ben", notes="Draft one. Later edit by Amal.")

        restore = await http.post(f"{api}/versions/{version['id']}/restore")
        state = restore.json()["state"]
        # Ben types at the moment Amal restores (his edit in flight, unseen by her: a
        # dropped link makes the overlap certain); both changes survive.
        await ben_process.disconnect("ben")
        await ben_process.wait_for("ben", connected=False)
        await ben_process.edit("ben", {"op": "insert", "index": 0, "text": "Ben: "})
        reply = await amal_process.call("restore", id="amal", state=state)
        assert reply["changed"]
        await ben_process.connect("ben")
        restored = "Ben: Draft one."
        for process, peer in ((amal_process, "amal"), (ben_process, "ben")):
            await process.wait_for(peer, notes=restored, itemsLength=0)
        states = [await amal_process.state("amal"), await ben_process.state("ben")]
        assert all(s["meta"] == {"title": "v1"} for s in states)

        await amal_process.edit("amal", {"op": "insert", "text": " After."})
        await amal_process.call("undo", id="amal")
        undone = "Ben: Draft one. Later edit by Amal. After."
        for process, peer in ((amal_process, "amal"), (ben_process, "ben")):
            await process.wait_for(peer, notes=undone, itemsLength=1)
        states = [await amal_process.state("amal"), await ben_process.state("ben")]
        assert states[0]["meta"] == states[1]["meta"] == {"title": "v2"}
        assert states[0]["items"] == states[1]["items"] == [{"id": "goal-1", "title": "x"}]

        history = (await http.get(f"{api}/history")).json()
        restorer = next(s for s in history["sessions"] if s["user_id"] == "dev:Amal")
        assert restorer["name"] == "Amal"
