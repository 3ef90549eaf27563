"""Three processes' worth of servers on one Postgres schema and one Redis, in one event loop:
real yjs clients spread over them edit one IEP and see each other as on one server."""

from __future__ import annotations

import asyncpg
import pytest

from collab_server.settings import Settings
from tests.cluster.conftest import nodes
from tests.interop.nodeclient import node_clients

pytestmark = pytest.mark.interop


async def test_clients_on_three_nodes_converge_and_see_each_other(
    cluster_settings: Settings,
) -> None:
    room = "iep/cluster-converge"
    async with nodes(cluster_settings, 3) as servers, node_clients() as clients:
        names = ["huda", "omar", "nadia", "salma", "karim", "lina"]
        for index, name in enumerate(names):
            server = servers[index % 3]
            await clients.open(
                name,
                url=f"ws://127.0.0.1:{server.port}/sync",
                room=room,
                params={"name": name},
                awareness={"user": {"name": name}},
            )
        await clients.wait_for(*names, synced=True)
        ids = {name: (await clients.state(name))["clientId"] for name in names}
        # Everyone sees everyone's presence, whichever server they are on.
        await clients.wait_for(*names, awarenessHas=list(ids.values()))

        # Two therapists per server type at once, in one field and in the plan's items.
        for round_ in range(5):
            for name in names:
                await clients.edit(
                    name,
                    {"op": "insert", "index": 0, "text": f"[{name}{round_}]"},
                    {"op": "push", "values": [f"{name}-{round_}"]},
                )
        expected_items = len(names) * 5
        await clients.wait_for(*names, itemsLength=expected_items, timeout=15)
        states = await clients.states(*names)
        texts = {s["notes"] for s in states.values()}
        assert len(texts) == 1
        text = texts.pop()
        for name in names:
            for round_ in range(5):
                assert f"[{name}{round_}]" in text

        roles = [s.app.state.collab.registry.replication.role(room) for s in servers]
        assert sorted(roles) == ["owner", "replica", "replica"]

    # Postgres holds every edit once, in one gapless log written by one process.
    conn = await asyncpg.connect(cluster_settings.database_url)
    try:
        rows = await conn.fetch(
            f"SELECT seq, user_id FROM {cluster_settings.db_schema}.updates "
            "WHERE document = $1 ORDER BY seq",
            room,
        )
    finally:
        await conn.close()
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))
    # Each edit attributed to the person who typed it, whichever server they typed on.
    assert {r["user_id"] for r in rows} == {f"dev:{n}" for n in names}
