"""Awareness (who is here) with real y-websocket clients: snapshot on join, removal on crash."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future

import pytest

from tests.interop import lone_client
from tests.interop.conftest import sync_url
from tests.interop.nodeclient import node_clients
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.interop


async def test_joiner_sees_everyone_and_a_killed_client_leaves_within_a_second(
    shared_server: ServerProcess,
) -> None:
    server = shared_server
    url, room = sync_url(server), "iep/presence"
    async with node_clients() as watcher, node_clients() as doomed, node_clients() as joiner:
        await watcher.open("huda", url=url, room=room, awareness={"user": {"name": "Ms. Huda"}})
        await doomed.open("omar", url=url, room=room, awareness={"user": {"name": "Mr. Omar"}})
        huda = (await watcher.state("huda"))["clientId"]
        omar = (await doomed.state("omar"))["clientId"]
        await watcher.wait_for("huda", synced=True, awarenessHas=[huda, omar])
        await doomed.wait_for("omar", synced=True, awarenessHas=[huda, omar])

        await joiner.open("nadia", url=url, room=room, awareness={"user": {"name": "Nadia"}})
        # Both states arrive with the join itself, not with the others' next renewal (15 s).
        await joiner.wait_for("nadia", synced=True, awarenessHas=[huda, omar], timeout=2)
        states = (await joiner.state("nadia"))["awareness"]
        assert states[str(huda)] == {"user": {"name": "Ms. Huda"}}
        assert states[str(omar)] == {"user": {"name": "Mr. Omar"}}

        doomed.kill()  # no closing handshake, no awareness goodbye: the kernel drops the socket
        await doomed.proc.wait()
        killed_at = time.monotonic()
        await asyncio.gather(
            watcher.wait_for("huda", awarenessLacks=[omar], timeout=5),
            joiner.wait_for("nadia", awarenessLacks=[omar], timeout=5),
        )
        removal_seconds = time.monotonic() - killed_at
        assert removal_seconds < 1.0
        remaining = (await watcher.state("huda"))["awareness"]
        assert set(remaining) == {str(huda), str((await joiner.state("nadia"))["clientId"])}


async def test_lone_client_stays_connected(
    lone_client_run: Future[lone_client.LoneClientReport] | None,
) -> None:
    # Started in the background with the first interop test (see conftest.py).
    assert lone_client_run is not None
    report = await asyncio.wrap_future(lone_client_run)
    assert not report.dropped_early, report.state
    assert report.alone_seconds >= lone_client.ALONE_SECONDS - 1
    assert report.state["connected"], report.state
    assert report.state["statuses"] == ["connecting", "connected"], report.state
    assert report.state["closes"] == []
