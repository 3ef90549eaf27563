"""Cluster mode under failure, with real processes and real yjs clients: a node SIGKILLed
under load, and Redis restarted or flushed under load. Nothing any client saw is lost."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from collab_server.settings import Settings
from tests.cluster.conftest import OwnRedis, until
from tests.interop.nodeclient import NodeClients, node_clients
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.interop


def cluster_env(settings: Settings, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": settings.database_url,
        "COLLAB_DB_SCHEMA": settings.db_schema,
        "COLLAB_REDIS_URL": redis_url,
    }


async def start_nodes(env: dict[str, str], cwd: Path, count: int) -> list[ServerProcess]:
    servers = [ServerProcess(env, cwd) for _ in range(count)]
    await asyncio.gather(*(asyncio.to_thread(s.start) for s in servers))
    return servers


def url(server: ServerProcess) -> str:
    return f"ws://127.0.0.1:{server.port}/sync"


async def type_rounds(clients: NodeClients, peers: list[str], rounds: range) -> set[str]:
    """Each peer types a marker per round, at a therapist's pace; returns the markers."""
    typed = set()
    for round_ in rounds:
        for peer in peers:
            marker = f"[{peer}:{round_}]"
            await clients.edit(peer, {"op": "insert", "text": marker})
            typed.add(marker)
        await asyncio.sleep(0.05)
    return typed


async def converged(clients: NodeClients, peers: list[str], markers: set[str]) -> str:
    """Wait until every peer holds the same text with every marker in it; returns it."""
    final: dict[str, Any] = {}

    async def check() -> bool:
        states = await clients.states(*peers)
        texts = {s["notes"] for s in states.values()}
        if len(texts) != 1:
            return False
        text = next(iter(texts))
        final["text"] = text
        return all(m in text for m in markers)

    await until(check, timeout=30, every=0.2)
    return str(final["text"])


async def test_sigkill_of_the_owner_under_load_loses_nothing_and_its_presence_goes(
    cluster_settings: Settings, redis_url: str, tmp_path: Path
) -> None:
    servers = await start_nodes(cluster_env(cluster_settings, redis_url), tmp_path, 3)
    room = "iep/killed-owner"
    try:
        async with node_clients() as clients:
            peers = ["a0", "a1", "b0", "b1", "c0", "c1"]
            for index, peer in enumerate(peers):  # a* on the first node: it loads first, owns
                await clients.open(
                    peer,
                    url=url(servers[index // 2]),
                    room=room,
                    params={"name": peer},
                    awareness={"user": {"name": peer}},
                )
                await clients.wait_for(peer, synced=True)
            ids = {p: (await clients.state(p))["clientId"] for p in peers}
            await clients.wait_for(*peers, awarenessHas=list(ids.values()))

            markers = await type_rounds(clients, peers, range(8))
            servers[0].kill()
            killed_at = time.monotonic()
            # Its clients' presence leaves the other nodes within 5 s (their lease lapses).
            await clients.wait_for("b0", "c0", awarenessLacks=[ids["a0"], ids["a1"]], timeout=5)
            assert time.monotonic() - killed_at < 5
            markers |= await type_rounds(clients, peers, range(8, 16))
            # The survivors took over: what they type reaches each other meanwhile.
            survivors = ["b0", "b1", "c0", "c1"]
            await converged(clients, survivors, {m for m in markers if m[1] != "a"})

            await asyncio.to_thread(servers[0].start)  # a supervisor restarts it
            text = await converged(clients, peers, markers)
            await clients.open("late", url=url(servers[2]), room=room, params={"name": "late"})
            await clients.wait_for("late", synced=True, notes=text, timeout=10)
    finally:
        for server in servers:
            server.stop()


@pytest.mark.parametrize("failure", ["restart", "flush"])
async def test_redis_lost_under_load_loses_nothing_and_the_cluster_recovers(
    cluster_settings: Settings, own_redis: OwnRedis, tmp_path: Path, failure: str
) -> None:
    servers = await start_nodes(cluster_env(cluster_settings, own_redis.url), tmp_path, 2)
    room = f"iep/redis-{failure}"
    try:
        async with node_clients() as clients:
            peers = ["a0", "a1", "b0", "b1"]
            for index, peer in enumerate(peers):
                await clients.open(
                    peer, url=url(servers[index // 2]), room=room, params={"name": peer}
                )
                await clients.wait_for(peer, synced=True)
            markers = await type_rounds(clients, peers, range(5))
            if failure == "restart":
                own_redis.stop()
                await until(lambda: not_ready(servers[1]), timeout=10)
                markers |= await type_rounds(clients, peers, range(5, 10))
                await asyncio.to_thread(own_redis.start)  # empty: Redis keeps nothing
            else:
                own_redis.flush()
                markers |= await type_rounds(clients, peers, range(5, 10))
            markers |= await type_rounds(clients, peers, range(10, 15))
            await converged(clients, peers, markers)
            await until(lambda: ready(servers[0]) and ready(servers[1]), timeout=10)
            # Recovered: a new edit crosses nodes at once again, not at the next check.
            started = time.monotonic()
            await clients.edit("a0", {"op": "insert", "text": "[after]"})
            await converged(clients, peers, {*markers, "[after]"})
            assert time.monotonic() - started < 2
    finally:
        for server in servers:
            server.stop()


def ready(server: ServerProcess) -> bool:
    return httpx.get(f"{server.http}/readyz", timeout=3).status_code == 200


def not_ready(server: ServerProcess) -> bool:
    response = httpx.get(f"{server.http}/readyz", timeout=5)
    return response.status_code == 503 and "redis" in response.text
