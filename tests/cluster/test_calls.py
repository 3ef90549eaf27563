"""A call whose two people are on two processes: they learn of each other, their offers and
candidates cross over the bus, and when one process dies its people leave the call within
the bound instead of staying as ghosts."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import websockets

from collab_server.settings import Settings
from integrations.calls.rooms import STALE_SECONDS, CallRooms
from tests.cluster.conftest import nodes
from tests.cluster.test_events import STUDENT, next_event


async def keep_alive(socket: websockets.ClientConnection) -> None:
    """What a page does while in a call: a ping every second (a silent tab is dropped)."""
    while True:
        await asyncio.sleep(1)
        await socket.send(json.dumps({"type": "ping"}))


async def next_of(socket: websockets.ClientConnection, kind: str, timeout: float = 5) -> Any:
    return await next_event(socket, kind, timeout)


async def test_two_people_on_two_processes_share_a_call(cluster_settings: Settings) -> None:
    async with nodes(cluster_settings, 2) as (first, second):
        async with httpx.AsyncClient(base_url=first.http) as http:
            started = await http.post(
                f"/api/students/{STUDENT}/calls?name=Huda", json={"invite": ["dev:Layla"]}
            )
        assert started.status_code == 201, started.text
        call = started.json()["call"]
        query = f"student={STUDENT}&call={call}"
        async with websockets.connect(
            f"ws://127.0.0.1:{first.port}/calls?{query}&name=Huda"
        ) as huda:
            huda_peer = (await next_of(huda, "welcome"))["peer"]
            pinging = asyncio.create_task(keep_alive(huda))
            async with websockets.connect(
                f"ws://127.0.0.1:{second.port}/calls?{query}&name=Layla"
            ) as layla:
                layla_peer = (await next_of(layla, "welcome"))["peer"]
                # Each learns of the other although neither process had both.
                assert (await next_of(huda, "joined"))["peer"] == layla_peer
                met = await next_of(layla, "joined")
                assert (met["peer"], met["name"]) == (huda_peer, "Huda")
                offer = {"description": {"type": "offer", "sdp": "v=0\r\n"}}
                await layla.send(json.dumps({"type": "signal", "to": huda_peer, "data": offer}))
                relayed = await next_of(huda, "signal")
                assert (relayed["from"], relayed["data"]) == (layla_peer, offer)

                # Layla's process stops talking to the others (as if it died): she leaves
                # Huda's call within the bound, not after a 30 s timeout.
                second_rooms: CallRooms = second.app.state.call_rooms
                await second_rooms.aclose()
                gone_at = time.monotonic()
                left = await next_of(huda, "left", timeout=STALE_SECONDS + 5)
                assert left["peer"] == layla_peer
                assert time.monotonic() - gone_at < STALE_SECONDS + 2
                # Huda's own socket is still served.
                assert (await next_of(huda, "pong"))["type"] == "pong"
                pinging.cancel()
