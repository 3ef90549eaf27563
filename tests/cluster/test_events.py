"""Live events across processes: a schedule changed through one process reaches a page
subscribed on another at once, and a signal the bus lost is made up from the log."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import websockets

from collab_server.settings import Settings
from tests.cluster.conftest import OwnRedis, nodes

STUDENT = "centre/omar/iep-2026"


async def next_event(socket: websockets.ClientConnection, kind: str, timeout: float) -> Any:
    async def read() -> Any:
        while True:
            message = json.loads(await socket.recv())
            if message.get("type") == kind:
                return message

    return await asyncio.wait_for(read(), timeout)


async def schedule(http: httpx.AsyncClient, starts_at: str) -> httpx.Response:
    body = {
        "therapists": ["dev:Huda"],
        "starts_at": starts_at,
        "duration_minutes": 45,
        "place": {"room": "Room 3"},
        "kind": "speech",
        "goals": [],
    }
    return await http.post(f"/api/students/{STUDENT}/sessions?name=Huda", json=body)


async def test_a_change_on_one_process_reaches_a_page_on_another(
    cluster_settings: Settings,
) -> None:
    async with nodes(cluster_settings, 2) as (first, second):
        events_url = f"ws://127.0.0.1:{second.port}/events?name=Layla"
        async with (
            websockets.connect(events_url) as socket,
            httpx.AsyncClient(base_url=first.http) as http,
        ):
            await socket.send(json.dumps({"type": "subscribe", "topics": [f"student:{STUDENT}"]}))
            await next_event(socket, "subscribed", 5)
            made = await schedule(http, "2027-01-10T16:00:00+03:00")
            assert made.status_code == 201, made.text
            # Live: well before the log check every 2 s would find it.
            event = await next_event(socket, "event", 1.5)
            assert event["kind"] == "session.scheduled"
            assert event["data"]["session"]["id"] == made.json()["id"]


async def test_an_announcement_redis_lost_is_found_in_the_log(
    cluster_settings: Settings, own_redis: OwnRedis
) -> None:
    settings = cluster_settings.model_copy(update={"redis_url": own_redis.url})
    async with nodes(settings, 2) as (first, second):
        events_url = f"ws://127.0.0.1:{second.port}/events?name=Layla"
        async with (
            websockets.connect(events_url) as socket,
            httpx.AsyncClient(base_url=first.http) as http,
        ):
            await socket.send(json.dumps({"type": "subscribe", "topics": [f"student:{STUDENT}"]}))
            await next_event(socket, "subscribed", 5)
            own_redis.stop()  # nothing crosses between the processes now
            made = await schedule(http, "2027-01-11T16:00:00+03:00")
            assert made.status_code == 201, made.text
            event = await next_event(socket, "event", 6)
            assert event["data"]["session"]["id"] == made.json()["id"]
