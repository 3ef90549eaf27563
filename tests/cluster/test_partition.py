"""A node cut off from the others by a real network cut (a network namespace whose veth link
goes down), with its own clients on its side of the cut: the others carry on, and once the
link is back every document converges with nothing lost."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.conftest import OwnRedis
from tests.cluster.test_failures import converged, type_rounds
from tests.interop.nodeclient import node_clients
from tests.support.netns import PrivatePostgres, Site
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.interop


@pytest.fixture
def site() -> Iterator[Site]:
    made = Site()
    made.create()
    yield made
    made.delete()


@pytest.fixture
def postgres(site: Site) -> Iterator[PrivatePostgres]:
    server = PrivatePostgres(also_listen=site.host_ip)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_server(tmp_path: Path, site: Site) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path, also_bind=(site.host_ip,))
    server.start()
    yield server
    server.stop()


async def test_a_node_cut_off_with_its_clients_converges_with_nothing_lost_when_healed(
    site: Site, postgres: PrivatePostgres, redis_server: OwnRedis, tmp_path: Path
) -> None:
    room = "iep/partitioned"  # written by the node that is cut off
    other_room = "iep/held-elsewhere"  # written by a host node; the cut-off one holds a copy
    on_host = {"DATABASE_URL": postgres.url, "COLLAB_REDIS_URL": redis_server.url}
    on_site = {
        "DATABASE_URL": postgres.url_from_site,
        "COLLAB_REDIS_URL": f"redis://{site.host_ip}:{redis_server.port}/0",
        "COLLAB_ALLOW_ANONYMOUS": "1",  # development sign-in on the namespace's own address
    }
    cut_off = ServerProcess(on_site, tmp_path, host=site.ip, prefix=site.prefix)
    others = [ServerProcess(on_host, tmp_path) for _ in range(2)]
    try:
        await asyncio.to_thread(cut_off.start)  # first: it loads the IEP and writes its log
        await asyncio.gather(*(asyncio.to_thread(s.start) for s in others))
        async with node_clients() as host, node_clients(site.prefix) as remote:
            await remote.open("c0", url=f"{cut_off.ws()}", room=room, params={"name": "c0"})
            await remote.wait_for("c0", synced=True)
            for peer, server in (("a0", others[0]), ("b0", others[1])):
                await host.open(peer, url=server.ws(), room=room, params={"name": peer})
                await host.wait_for(peer, synced=True)
            await host.open("a1", url=others[0].ws(), room=other_room, params={"name": "a1"})
            await host.wait_for("a1", synced=True)
            await remote.open("c1", url=cut_off.ws(), room=other_room, params={"name": "c1"})
            await remote.wait_for("c1", synced=True)

            markers = await type_rounds(host, ["a0", "b0"], range(3))
            markers |= await type_rounds(remote, ["c0"], range(3))
            await converged(host, ["a0", "b0"], markers)
            await converged(remote, ["c0"], markers)
            other = await type_rounds(host, ["a1"], range(3))
            other |= await type_rounds(remote, ["c1"], range(3))
            await converged(host, ["a1"], other)

            site.cut()
            # Both sides keep typing. The host's nodes take the IEP over once the cut-off
            # node's database session is gone (keepalives), and carry on together.
            cut_markers = await type_rounds(remote, ["c0"], range(3, 8))
            host_markers = await type_rounds(host, ["a0", "b0"], range(3, 8))
            other |= await type_rounds(remote, ["c1"], range(3, 8))
            other |= await type_rounds(host, ["a1"], range(3, 8))
            await converged(host, ["a0", "b0"], markers | host_markers)

            site.heal()
            everything = markers | cut_markers | host_markers
            text = await converged(host, ["a0", "b0"], everything)
            await remote.wait_for("c0", notes=text, timeout=60)
            other_text = await converged(host, ["a1"], other)
            await remote.wait_for("c1", notes=other_text, timeout=60)
    finally:
        for server in (cut_off, *others):
            server.stop()
