"""Calls as the people in them see the server: a ring, the signalling between two tabs, who
is in the call, a decline, a missed call's note, and those who may not join."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from integrations.calls.service import CALLS_WINDOW_SECONDS, MAX_CALLS, RING_SECONDS, CallService
from integrations.calls.signalling import IDLE_SECONDS
from tests.integrations.fakes import push_service
from tests.integrations.sessions.conftest import OMAR, Centre, next_message
from tests.integrations.test_push import vapid_key


def calls_url(centre: Centre, user: str, call: str, student: str = OMAR) -> str:
    assert centre.server is not None
    return (
        f"ws://127.0.0.1:{centre.server.port}/calls"
        f"?student={student}&call={call}&token={centre.token(user)}"
    )


@contextlib.asynccontextmanager
async def ringing(centre: Centre, user: str) -> AsyncIterator[ClientConnection]:
    """The person's open page, listening on their own topic (rings come there)."""
    async with websockets.connect(centre.events_url(user)) as page:
        await page.send(json.dumps({"type": "subscribe", "topics": [f"user:{user}"]}))
        await next_message(page, "subscribed")
        yield page


async def start(centre: Centre, user: str, invite: list[str], student: str = OMAR) -> str:
    answer = await centre.call(user, "POST", f"/api/students/{student}/calls", {"invite": invite})
    assert answer.status_code == 201, answer.text
    call: str = answer.json()["call"]
    return call


async def thread_bodies(centre: Centre, student: str = OMAR) -> list[str]:
    answer = await centre.call("t-huda", "GET", f"/api/students/{student}/thread")
    return [m["body"] for m in answer.json()["messages"]]


def calls(centre: Centre) -> CallService:
    service: CallService = centre.app.state.calls
    return service


async def test_a_call_rings_connects_both_tabs_and_a_missed_ring_leaves_a_note(
    centre: Centre,
) -> None:
    people = await centre.call("t-huda", "GET", f"/api/students/{OMAR}/calls/people")
    assert {p["name"]: p["family"] for p in people.json()["people"]} == {
        "علي": False,
        "ليلى": True,
        "John": True,
    }
    async with ringing(centre, "p-layla") as layla_page, ringing(centre, "t-ali") as ali_page:
        call = await start(centre, "t-huda", ["p-layla", "t-ali"])
        ring = (await next_message(layla_page, "event"))["data"]
        assert (ring["call"], ring["from"], ring["student"]) == (call, "Ms. Huda", "Omar")
        assert (await next_message(ali_page, "event"))["data"]["call"] == call

        async with websockets.connect(calls_url(centre, "t-huda", call)) as huda:
            welcome = await next_message(huda, "welcome")
            assert welcome["peers"] == []
            async with websockets.connect(calls_url(centre, "p-layla", call)) as layla:
                hello = await next_message(layla, "welcome")
                assert [p["name"] for p in hello["peers"]] == ["Ms. Huda"]
                joined = await next_message(huda, "joined")
                assert (joined["peer"], joined["name"]) == (hello["peer"], "ليلى")
                # Her other tabs stop ringing: she answered.
                answered = await next_message(layla_page, "event")
                assert answered["kind"] == "call.answered"
                assert answered["data"]["answer"] == "joined"

                offer = {"description": {"type": "offer", "sdp": "v=0\r\n"}}
                await layla.send(
                    json.dumps({"type": "signal", "to": welcome["peer"], "data": offer})
                )
                relayed = await next_message(huda, "signal")
                assert relayed == {"type": "signal", "from": hello["peer"], "data": offer}
                await huda.send(json.dumps({"type": "state", "muted": True}))
                muted = await next_message(layla, "state")
                assert muted["peer"] == welcome["peer"] and muted["muted"] is True
            assert (await next_message(huda, "left"))["peer"] == hello["peer"]
        # The last one left: Ali, still being rung, missed it; his ringing stops.
        stopped = await next_message(ali_page, "event")
        assert stopped["kind"] == "call.answered" and stopped["data"]["answer"] == "missed"
    bodies = await thread_bodies(centre)
    assert bodies[0] == "📞 علي: missed call · مكالمة فائتة"
    assert not any("ليلى" in b for b in bodies)  # she answered
    # A team member's missed call is the team's business: no message to the family for it.
    await centre.notifications.tick()
    assert centre.graph.accepted == []


async def test_a_decline_reaches_the_caller_and_an_unanswered_parent_hears_of_it(
    centre: Centre,
) -> None:
    async with ringing(centre, "t-huda") as huda_page:
        call = await start(centre, "t-huda", ["p-layla", "p-john"])
        declined = await centre.call(
            "p-layla", "POST", f"/api/students/{OMAR}/calls/{call}/decline"
        )
        assert declined.status_code == 204
        told = await next_message(huda_page, "event")
        assert told["kind"] == "call.declined" and told["data"]["name"] == "ليلى"
    # John never answers: after the ring time his missed call is in the thread, and he is
    # told on his own channel (he is family).
    assert await calls(centre).sweep() == 0
    centre.clock.advance(RING_SECONDS + 1)
    assert await calls(centre).sweep() == 1
    assert await calls(centre).sweep() == 0  # each ring is missed once
    bodies = await thread_bodies(centre)
    assert bodies == ["📞 John: missed call · مكالمة فائتة"]
    await centre.notifications.tick()
    (to_john,) = centre.graph.to("+447911123456")  # the thread's message, as a template
    assert to_john.body["biz_opaque_callback_data"].startswith("thread:")


async def test_only_the_students_people_join_and_a_lying_client_harms_only_itself(
    centre: Centre,
) -> None:
    refused = await centre.call("p-mona", "POST", f"/api/students/{OMAR}/calls", {"invite": []})
    assert refused.status_code == 403
    stranger = await centre.call(
        "t-huda", "POST", f"/api/students/{OMAR}/calls", {"invite": ["p-mona"]}
    )
    assert stranger.status_code == 422 and "invite" in stranger.json()["problems"]
    call = await start(centre, "t-huda", ["p-layla"])
    with pytest.raises(websockets.InvalidStatus) as denied:
        async with websockets.connect(calls_url(centre, "p-mona", call)):
            pass
    assert denied.value.response.status_code == 403
    with pytest.raises(websockets.InvalidStatus) as bad:
        async with websockets.connect(calls_url(centre, "t-huda", "x")):
            pass
    assert bad.value.response.status_code == 400

    async with websockets.connect(calls_url(centre, "t-huda", call)) as huda:
        await next_message(huda, "welcome")
        for lie in (
            "not json",
            json.dumps({"type": "signal", "to": "someone", "data": {"script": "x"}}),
            json.dumps({"type": "state", "muted": "yes"}),
            "x" * (70 * 1024),
        ):
            async with websockets.connect(calls_url(centre, "p-layla", call)) as liar:
                await next_message(liar, "welcome")
                await next_message(huda, "joined")
                await liar.send(lie)
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await liar.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code in (1007, 1009)
                assert (await next_message(huda, "left"))["type"] == "left"
        # Huda is still in the call and served.
        await huda.send(json.dumps({"type": "ping"}))
        assert (await next_message(huda, "pong"))["type"] == "pong"


async def test_six_people_at_most(centre: Centre) -> None:
    call = await start(centre, "t-huda", ["t-ali"])
    async with contextlib.AsyncExitStack() as stack:
        for user in ("t-huda", "t-ali", "p-layla", "p-john", "admin", "t-huda"):
            tab = await stack.enter_async_context(websockets.connect(calls_url(centre, user, call)))
            await next_message(tab, "welcome")
        async with websockets.connect(calls_url(centre, "t-ali", call)) as seventh:
            with pytest.raises(websockets.ConnectionClosed) as full:
                await seventh.recv()
            assert full.value.rcvd is not None and full.value.rcvd.code == 4409


async def test_a_person_with_push_allowed_is_rung_on_their_browser_too(centre: Centre) -> None:
    async with push_service() as pushes:
        async with centre.running_stopped():
            centre.environment.update(
                {
                    "VAPID_PRIVATE_KEY": vapid_key(),
                    "VAPID_SUBJECT": "mailto:it@centre.example",
                    "COLLAB_PUSH_SERVICES": pushes.url,
                }
            )
        browser = pushes.subscribe()
        added = await centre.call("p-layla", "POST", "/api/push/subscriptions", browser)
        assert added.status_code == 201, added.text
        call = await start(centre, "t-huda", ["p-layla"])
        (pushed,) = pushes.received[browser["endpoint"].rsplit("/", 1)[1]]
        assert pushed["title"] == "Ms. Huda" and "Omar" in pushed["body"]
        assert pushed["url"] == f"/doc/{OMAR}#call={call}"  # the page offers to join


async def test_a_silent_tab_is_taken_out_of_the_call(centre: Centre) -> None:
    call = await start(centre, "t-huda", ["p-layla"])
    async with (
        websockets.connect(calls_url(centre, "t-huda", call)) as huda,
        websockets.connect(calls_url(centre, "p-layla", call)) as layla,
    ):
        await next_message(huda, "welcome")
        layla_peer = (await next_message(layla, "welcome"))["peer"]
        await next_message(huda, "joined")
        # Huda's page pings as pages do; Layla's tab froze and sends nothing.
        for _ in range(int(IDLE_SECONDS / 1.5) + 2):
            await huda.send(json.dumps({"type": "ping"}))
            message = json.loads(await asyncio.wait_for(huda.recv(), 5))
            if message["type"] == "left":
                break
            assert message["type"] == "pong"
            await asyncio.sleep(1.5)  # a page's ping interval
        assert message == {"type": "left", "peer": layla_peer}


async def test_one_person_cannot_ring_a_family_without_end(centre: Centre) -> None:
    for _ in range(MAX_CALLS):
        await start(centre, "t-huda", ["p-layla"])
    again = await centre.call(
        "t-huda", "POST", f"/api/students/{OMAR}/calls", {"invite": ["p-layla"]}
    )
    assert again.status_code == 429 and "wait" in again.json()["error"]
    # Another member still calls; later Huda may again.
    await start(centre, "t-ali", ["p-layla"])
    centre.clock.advance(CALLS_WINDOW_SECONDS + 1)
    await start(centre, "t-huda", ["p-layla"])


async def test_a_parent_removed_from_the_iep_is_taken_out_of_its_call(centre: Centre) -> None:
    async with centre.running_stopped():
        centre.settings = centre.settings.model_copy(update={"membership_recheck_seconds": 0.5})
    call = await start(centre, "t-huda", ["p-john"])
    async with (
        websockets.connect(calls_url(centre, "t-huda", call)) as huda,
        websockets.connect(calls_url(centre, "p-john", call)) as john,
    ):
        await next_message(huda, "welcome")
        await next_message(john, "welcome")
        await next_message(huda, "joined")
        removed = await centre.call("admin", "DELETE", f"/api/documents/{OMAR}/members/p-john")
        assert removed.status_code in (200, 204), removed.text
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:  # his page keeps pinging until the server takes him out
                await john.send(json.dumps({"type": "ping"}))
                await asyncio.wait_for(john.recv(), 5)
                await asyncio.sleep(0.2)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403
        assert (await next_message(huda, "left"))["type"] == "left"


async def test_a_page_opened_after_the_ring_still_rings_until_it_is_answered_or_over(
    centre: Centre,
) -> None:
    call = await start(centre, "t-huda", ["p-layla", "p-john"])

    async def ringing(user: str) -> list[str]:
        answer = await centre.call(user, "GET", "/api/calls/ringing")
        assert answer.status_code == 200, answer.text
        return [f"{r['from']} → {r['student']}" for r in answer.json()["rings"]]

    assert await ringing("p-layla") == ["Ms. Huda → Omar"]
    assert await ringing("t-ali") == []  # not rung
    await centre.call("p-layla", "POST", f"/api/students/{OMAR}/calls/{call}/decline")
    assert await ringing("p-layla") == []
    centre.clock.advance(RING_SECONDS + 1)
    assert await ringing("p-john") == []  # over: a missed call now
