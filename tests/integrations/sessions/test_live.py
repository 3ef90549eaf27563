"""The schedule live on every screen: `WS /events` with the sessions' topics."""

from __future__ import annotations

import json

import pytest
import websockets

from tests.integrations.fakes import realtime
from tests.integrations.sessions.conftest import OMAR, SARA, Centre, next_message


async def subscribe(
    socket: websockets.ClientConnection, topics: list[str], after: int | None = None
) -> dict:
    request: dict = {"type": "subscribe", "topics": topics}
    if after is not None:
        request["after"] = after
    await socket.send(json.dumps(request))
    return await next_message(socket, "subscribed")


async def test_catch_up_after_a_disconnect_has_no_duplicate_and_no_gap(centre: Centre) -> None:
    async with websockets.connect(centre.events_url("p-layla")) as socket:
        start = (await subscribe(socket, [f"student:{OMAR}"]))["position"]
        first = (await centre.schedule()).json()
        event = await next_message(socket, "event")
        assert event["kind"] == "session.scheduled"
        assert event["data"]["session"]["id"] == first["id"]
        assert event["position"] > start
        last_seen = event["position"]

    # Offline: three changes of Omar's schedule, and one of Sara's that Layla may not see.
    path = f"/api/sessions/{first['id']}"
    await centre.call("t-huda", "PATCH", path, {"starts_at": "2026-11-28T16:00:00+03:00"})
    await centre.schedule(student=SARA, goals=["g-speech"], starts_at="2026-11-27T09:00:00Z")
    await centre.call("t-huda", "PATCH", path, {"status": "confirmed"})
    second = (await centre.schedule(starts_at="2026-11-30T16:00:00+03:00")).json()

    async with websockets.connect(centre.events_url("p-layla")) as socket:
        await socket.send(
            json.dumps({"type": "subscribe", "topics": [f"student:{OMAR}"], "after": last_seen})
        )
        missed = [await next_message(socket, "event") for _ in range(3)]
        assert [e["kind"] for e in missed] == [
            "session.moved",
            "session.confirmed",
            "session.scheduled",
        ]
        assert missed[-1]["data"]["session"]["id"] == second["id"]
        positions = [e["position"] for e in missed]
        assert positions == sorted(positions) and positions[0] > last_seen
        caught_up = await next_message(socket, "subscribed")
        assert caught_up["position"] >= positions[-1]
        # Live again: the next change arrives once.
        await centre.call(
            "t-huda", "PATCH", f"/api/sessions/{second['id']}", {"status": "cancelled"}
        )
        live = await next_message(socket, "event")
        assert live["kind"] == "session.cancelled"
        assert live["position"] > positions[-1]
        await socket.send(json.dumps({"type": "ping"}))
        await next_message(socket, "pong")  # nothing else was queued before it


async def test_topics_follow_who_may_open_the_iep(centre: Centre) -> None:
    async with websockets.connect(centre.events_url("p-layla")) as socket:
        for topic in (f"student:{SARA}", "therapist:t-huda", "user:p-john", "planets:mars"):
            await socket.send(json.dumps({"type": "subscribe", "topics": [topic]}))
            denied = await next_message(socket, "denied")
            assert denied["topic"] == topic
        await subscribe(socket, ["user:p-layla", f"student:{OMAR}"])

        # Access revoked: the topic is dropped at the next re-check.
        await centre.call("admin", "DELETE", f"/api/documents/{OMAR}/members/p-layla")
        assert await centre.app.state.events.endpoint.recheck() == 1
        assert (await next_message(socket, "denied"))["topic"] == f"student:{OMAR}"
        await centre.schedule()
        await socket.send(json.dumps({"type": "ping"}))
        await next_message(socket, "pong")  # the new session never reached her


async def test_a_therapists_week_topic_sees_every_student_of_theirs(local_centre: Centre) -> None:
    centre = local_centre
    async with websockets.connect(centre.events_url("t-huda")) as socket:
        await subscribe(socket, ["therapist:t-huda"])
        await centre.schedule()
        await centre.schedule(student=SARA, goals=["g-speech"], starts_at="2026-11-27T09:00:00Z")
        students = [
            (await next_message(socket, "event"))["data"]["session"]["student_id"] for _ in range(2)
        ]
        assert students == [OMAR, SARA]


@pytest.mark.parametrize(
    "frame",
    [
        b"\x00binary",
        "not json",
        json.dumps({"type": "subscribe", "topics": "student:x"}),
        "x" * 20_000,
    ],
)
async def test_a_client_that_lies_is_closed_alone(local_centre: Centre, frame: bytes | str) -> None:
    centre = local_centre
    async with (
        websockets.connect(centre.events_url("p-layla")) as liar,
        websockets.connect(centre.events_url("p-john")) as honest,
    ):
        await subscribe(honest, [f"student:{OMAR}"])
        await liar.send(frame)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await liar.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code >= 1003
        await centre.schedule()
        assert (await next_message(honest, "event"))["kind"] == "session.scheduled"


async def test_no_token_is_refused_at_the_upgrade(local_centre: Centre) -> None:
    centre = local_centre
    assert centre.server is not None
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with websockets.connect(f"ws://127.0.0.1:{centre.server.port}/events"):
            pass
    assert refused.value.response.status_code == 401


async def test_changes_are_broadcast_on_supabase_realtime(local_centre: Centre) -> None:
    centre = local_centre
    async with realtime() as fake, centre.running_stopped():  # one server per database
        centre.realtime_url = fake.url
        centre.tokens.clear()
        async with centre.running():
            created = (await centre.schedule()).json()
            await centre.sessions._realtime.idle()  # type: ignore[union-attr]
        centre.realtime_url = None
        centre.tokens.clear()
    topics = [(m["topic"], m["event"], m["payload"]["change"]) for m in fake.broadcasts]
    assert topics == [(f"sessions:{OMAR}", "session", "scheduled")]
    assert fake.broadcasts[0]["payload"]["session"]["id"] == created["id"]
    assert fake.broadcasts[0]["private"] is True
