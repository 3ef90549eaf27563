"""Digests, the outbox and reminders run on one process of the cluster at a time (the holder
of the jobs lock): a parent gets each digest once, and a new leader takes over when the old
one stops."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import httpx

from iep_collab.composition import build_app
from iep_collab.config import load_config
from tests.cluster.conftest import until
from tests.integrations.conftest import whatsapp_environment
from tests.integrations.edits import add_item, create_sections
from tests.integrations.fakes import graph_api
from tests.support.servers import serve_in_process
from tests.support.yclient import connect

DOCUMENT = "centre/student-9/iep"
LAYLA = {
    "name": "ليلى",
    "phone": "+966500000019",
    "email": None,
    "language": "ar",
    "timezone": "Asia/Riyadh",
    "channels": {"whatsapp": True, "email": False, "in_app": False},
}


async def test_each_digest_is_sent_once_with_three_nodes_and_after_the_leader_stops(
    postgres_url: str, redis_url: str
) -> None:
    async with graph_api() as graph:
        environment = whatsapp_environment(
            Path("unused.db"),  # replaced by DATABASE_URL below
            graph.url,
            DATABASE_URL=postgres_url,
            COLLAB_DB_SCHEMA=f"j_{uuid.uuid4().hex[:10]}",
            COLLAB_REDIS_URL=redis_url,
        )
        config = load_config(environment)
        apps = [build_app(config.server, config.notifications) for _ in range(3)]
        stacks = [contextlib.AsyncExitStack() for _ in apps]
        servers = [
            await stack.enter_async_context(serve_in_process(app))
            for stack, app in zip(stacks, apps, strict=True)
        ]
        try:
            await until(lambda: sum(a.state.jobs_leader.leading for a in apps) == 1)
            async with httpx.AsyncClient(base_url=servers[0].http) as http:
                assert (await http.put("/api/people/p-layla", json=LAYLA)).status_code in (200, 201)
                member = await http.put(
                    f"/api/documents/{DOCUMENT}/members/p-layla",
                    json={"role": "viewer", "digest": True},
                )
                assert member.status_code in (200, 201)
            # Two therapists on two other processes; one change each, apart.
            async with connect(f"{servers[1].ws(DOCUMENT)}?name=Huda") as huda:
                with huda.doc.transaction():
                    create_sections(huda, "Sara")
                    add_item(huda, "goals", "g1", "Reading fluency")
                await until(lambda: len(graph.accepted) == 1, timeout=15)
            await asyncio.sleep(2.5)  # every process's loop ticks at least twice meanwhile
            assert len(graph.accepted) == 1

            leader = next(i for i, a in enumerate(apps) if a.state.jobs_leader.leading)
            await stacks[leader].aclose()  # the leader stops (a deploy)
            alive = [i for i in range(3) if i != leader]
            await until(lambda: any(apps[i].state.jobs_leader.leading for i in alive), 10)
            async with connect(f"{servers[alive[0]].ws(DOCUMENT)}?name=Omar") as omar:
                add_item(omar, "goals", "g2", "Counting to twenty")
                await until(lambda: len(graph.accepted) == 2, timeout=15)
            await asyncio.sleep(2.5)
            assert len(graph.accepted) == 2
            assert "Counting to twenty" in graph.accepted[1].text
        finally:
            for stack in stacks:
                await stack.aclose()
