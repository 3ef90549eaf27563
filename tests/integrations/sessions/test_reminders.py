"""Reminders and "session moved" notices through the outbox to the loopback Graph API, with
a manual clock: time zones (one with daylight saving), quiet hours, moves, cancellations,
restarts, the lateness rule, and the parents' button replies."""

from __future__ import annotations

import json

import websockets

from integrations.sessions.records import JobState
from tests.integrations.fakes import GraphCall
from tests.integrations.sessions.conftest import OMAR, PEOPLE, Centre, at, next_message

LAYLA = PEOPLE["p-layla"]["phone"]
JOHN = PEOPLE["p-john"]["phone"]


def template(call: GraphCall) -> tuple[str, str, list[str], list[str]]:
    body = call.body["template"]
    params = [p["text"] for p in body["components"][0]["parameters"]]
    buttons = [c["parameters"][0]["payload"] for c in body["components"][1:]]
    return body["name"], body["language"]["code"], params, buttons


async def test_each_parent_gets_both_reminders_in_their_language(local_centre: Centre) -> None:
    centre = local_centre
    session = (await centre.schedule()).json()  # Friday 27 Nov, 16:00 in Riyadh
    await centre.run_jobs()
    assert centre.graph.accepted == []

    centre.clock.t = at("2026-11-26T13:00:00Z")  # 24 hours before
    await centre.run_jobs()
    name, language, params, buttons = template(centre.graph.to(LAYLA)[0])
    assert (name, language) == ("session_reminder", "ar")
    assert params[0] == "\u2068Omar\u2069"
    assert params[2] == "الجمعة ٢٧ نوفمبر، ١٦:٠٠"  # her zone, her Arabic digits
    assert buttons == [f"session-confirm:{session['id']}", f"session-decline:{session['id']}"]
    name, language, params, _ = template(centre.graph.to(JOHN)[0])
    assert (name, language) == ("session_reminder", "en")
    assert params[1:3] == ["\u2068Ms. Huda\u2069", "Fri 27 Nov, 13:00"]  # London
    assert params[3] == "in \u2068Room 3\u2069"

    centre.clock.t = at("2026-11-27T11:00:00Z")  # 2 hours before
    await centre.run_jobs()
    assert len(centre.graph.to(LAYLA)) == len(centre.graph.to(JOHN)) == 2
    await centre.run_jobs()  # sent once
    assert len(centre.graph.accepted) == 4


async def test_local_times_follow_daylight_saving(local_centre: Centre) -> None:
    centre = local_centre
    async with centre.running_stopped():  # the outbox's pacing never sees time go back
        centre.clock.t = at("2026-10-22T10:00:00Z")
    # London leaves summer time on Sunday 25 October 2026.
    before = await centre.schedule(starts_at="2026-10-24T16:00:00+01:00")
    after = await centre.schedule(starts_at="2026-10-26T16:00:00+00:00")
    assert before.json()["starts_at"] == "2026-10-24T15:00:00Z"
    assert after.json()["starts_at"] == "2026-10-26T16:00:00Z"
    for reminder_at in ("2026-10-23T15:00:00Z", "2026-10-25T16:00:00Z"):
        centre.clock.t = at(reminder_at)
        await centre.run_jobs()
    john = [template(c)[2][2] for c in centre.graph.to(JOHN)]
    layla = [template(c)[2][2] for c in centre.graph.to(LAYLA)]
    assert john == ["Sat 24 Oct, 16:00", "Mon 26 Oct, 16:00"]
    assert layla == ["السبت ٢٤ أكتوبر، ١٨:٠٠", "الاثنين ٢٦ أكتوبر، ١٩:٠٠"]


async def test_quiet_hours_hold_the_day_before_reminder_not_the_last_one(
    local_centre: Centre,
) -> None:
    centre = local_centre
    await centre.schedule(starts_at="2026-11-27T07:00:00+03:00")  # 04:00 UTC
    centre.clock.t = at("2026-11-26T04:00:00Z")  # 07:00 Riyadh, 04:00 London: both asleep
    await centre.run_jobs()
    assert centre.graph.accepted == []
    centre.clock.t = at("2026-11-26T05:00:00Z")  # 08:00 in Riyadh
    await centre.notifications.tick()
    assert len(centre.graph.to(LAYLA)) == 1 and centre.graph.to(JOHN) == []
    centre.clock.t = at("2026-11-26T08:00:00Z")  # 08:00 in London
    await centre.notifications.tick()
    assert len(centre.graph.to(JOHN)) == 1

    centre.clock.t = at("2026-11-27T02:00:00Z")  # 05:00 Riyadh, 02:00 London: still sent
    await centre.run_jobs()
    assert len(centre.graph.to(LAYLA)) == len(centre.graph.to(JOHN)) == 2


async def test_a_move_sends_one_notice_and_only_the_new_reminders(centre: Centre) -> None:
    session = (await centre.schedule()).json()
    moved = await centre.call(
        "t-huda",
        "PATCH",
        f"/api/sessions/{session['id']}",
        {"starts_at": "2026-11-29T10:00:00+03:00"},
    )
    assert moved.json()["status"] == "scheduled"
    await centre.run_jobs()
    name, _, params, _ = template(centre.graph.to(JOHN)[0])
    assert name == "session_moved"
    assert params[1:3] == ["Fri 27 Nov, 13:00", "Sun 29 Nov, 07:00"]
    assert template(centre.graph.to(LAYLA)[0])[2][1:3] == [
        "الجمعة ٢٧ نوفمبر، ١٦:٠٠",
        "الأحد ٢٩ نوفمبر، ١٠:٠٠",
    ]
    centre.clock.t = at("2026-11-26T13:00:00Z")  # when the old 24-hour reminder was due
    await centre.run_jobs()
    assert len(centre.graph.accepted) == 2
    centre.clock.t = at("2026-11-28T07:00:00Z")  # 24 hours before the new time
    await centre.run_jobs()
    centre.clock.t = at("2026-11-28T08:00:00Z")  # and John's morning in London
    await centre.notifications.tick()
    reminders = [template(c) for c in centre.graph.accepted[2:]]
    assert [r[0] for r in reminders] == ["session_reminder", "session_reminder"]
    assert "Sun 29 Nov, 07:00" in [r[2][2] for r in reminders]


async def test_a_cancelled_session_sends_nothing_even_what_was_waiting(centre: Centre) -> None:
    early = (await centre.schedule(starts_at="2026-11-27T07:00:00+03:00")).json()
    centre.clock.t = at("2026-11-26T04:00:00Z")  # its reminders wait for the morning
    await centre.run_jobs()
    await centre.call("t-huda", "PATCH", f"/api/sessions/{early['id']}", {"status": "cancelled"})
    for moment in ("2026-11-26T05:00:00Z", "2026-11-26T08:00:00Z", "2026-11-27T02:00:00Z"):
        centre.clock.t = at(moment)
        await centre.run_jobs()
    assert centre.graph.accepted == []
    outbox = await centre.call("admin", "GET", f"/api/notifications/outbox?document={OMAR}")
    assert {m["state"] for m in outbox.json()["messages"]} == {"failed"}


async def test_reminders_scheduled_before_a_restart_are_sent_after_it(centre: Centre) -> None:
    await centre.schedule()
    async with centre.running_stopped():
        centre.clock.t = at("2026-11-26T13:05:00Z")
    await centre.run_jobs()
    assert len(centre.graph.accepted) == 2


async def test_a_reminder_more_than_30_minutes_late_is_dropped(centre: Centre) -> None:
    late = (await centre.schedule()).json()
    on_time = (await centre.schedule(starts_at="2026-11-27T17:00:00+03:00")).json()
    centre.clock.t = at("2026-11-26T14:29:00Z")  # 89 and 29 minutes after their 24h times
    await centre.run_jobs()
    assert len(centre.graph.accepted) == 2
    assert all(f"session-confirm:{on_time['id']}" in template(c)[3] for c in centre.graph.accepted)
    jobs = await centre.sessions.store.jobs_of(late["id"])
    assert [j.state for j in jobs] == [JobState.DROPPED, JobState.PENDING]


async def test_button_replies_confirm_or_flag_the_session_live(centre: Centre) -> None:
    session = (await centre.schedule()).json()
    centre.clock.t = at("2026-11-26T13:00:00Z")
    await centre.run_jobs()
    async with websockets.connect(centre.events_url("t-huda")) as screen:
        await screen.send(json.dumps({"type": "subscribe", "topics": [f"student:{OMAR}"]}))
        await next_message(screen, "subscribed")

        await centre.button(LAYLA, f"session-confirm:{session['id']}", "wamid.in1", "تأكيد")
        confirmed = await next_message(screen, "event")
        assert confirmed["kind"] == "session.confirmed"
        assert confirmed["data"]["session"]["status"] == "confirmed"

        await centre.button(JOHN, f"session-decline:{session['id']}", "wamid.in2", "Can't come")
        flagged = await next_message(screen, "event")
        assert flagged["kind"] == "session.flagged"
        assert flagged["data"]["session"]["attention"] == "parent_cannot_come"
        # Meta delivers twice sometimes: the same press changes nothing more.
        await centre.button(JOHN, f"session-decline:{session['id']}", "wamid.in2", "Can't come")
        await screen.send(json.dumps({"type": "ping"}))
        await next_message(screen, "pong")

    # A parent of another child cannot touch this session.
    await centre.button(PEOPLE["p-mona"]["phone"], f"session-confirm:{session['id']}", "wamid.in3")
    await centre.notifications.webhook.process_pending()  # type: ignore[union-attr]
    current = (await centre.call("t-huda", "GET", f"/api/sessions/{session['id']}")).json()
    assert (current["status"], current["attention"]) == ("confirmed", "parent_cannot_come")
    bell = await centre.call("t-huda", "GET", "/api/notifications")
    assert [n["kind"] for n in bell.json()["notifications"]] == ["session_flagged"]
