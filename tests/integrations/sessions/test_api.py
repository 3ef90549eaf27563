"""The sessions API as therapists and parents use it, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from tests.integrations.sessions.conftest import OMAR, SARA, Centre


async def test_therapist_schedules_and_parents_read_only_their_child(centre: Centre) -> None:
    created = await centre.schedule()
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["student_name"] == "Omar"
    assert session["starts_at"] == "2026-11-27T13:00:00Z"  # stored and answered in UTC
    assert session["therapist_names"] == ["Ms. Huda"]
    other = await centre.schedule(
        student=SARA, goals=["g-speech"], starts_at="2026-11-27T10:00:00+03:00"
    )
    assert other.status_code == 201

    mine = await centre.call("p-layla", "GET", f"/api/students/{OMAR}/sessions")
    assert [s["id"] for s in mine.json()["sessions"]] == [session["id"]]
    assert (
        await centre.call("p-layla", "GET", f"/api/students/{SARA}/sessions")
    ).status_code == 403
    assert (await centre.call("p-mona", "GET", f"/api/sessions/{session['id']}")).status_code == 403

    for change in ({"status": "cancelled"}, {"starts_at": "2026-11-28T16:00:00+03:00"}):
        refused = await centre.call("p-layla", "PATCH", f"/api/sessions/{session['id']}", change)
        assert refused.status_code == 403
    refused = await centre.schedule(user="p-layla")
    assert refused.status_code == 403
    unchanged = await centre.call("t-huda", "GET", f"/api/sessions/{session['id']}")
    assert unchanged.json()["status"] == "scheduled"

    # A therapist's week shows only students the viewer may see.
    week = await centre.call(
        "p-layla", "GET", "/api/sessions?therapist=t-huda&from=2026-11-23T00:00:00Z"
    )
    assert [s["student_id"] for s in week.json()["sessions"]] == [OMAR]
    week = await centre.call("t-huda", "GET", "/api/sessions?from=2026-11-23T00:00:00Z")
    assert sorted(s["student_id"] for s in week.json()["sessions"]) == [OMAR, SARA]


async def test_bad_sessions_are_refused_with_the_reason(centre: Centre) -> None:
    past = await centre.schedule(starts_at="2026-11-25T09:00:00Z")
    assert past.status_code == 422
    assert past.json()["problems"]["starts_at"] == "must be in the future"

    naive = await centre.schedule(starts_at="2026-11-27T16:00:00")
    assert "starts_at" in naive.json()["problems"]

    unknown = await centre.schedule(goals=["g-read", "g-flying"])
    assert unknown.status_code == 422
    assert unknown.json()["problems"]["goals"] == "unknown goal: g-flying"

    odd = await centre.schedule(kind="astrology", duration_minutes=0, place={"moon": "crater"})
    assert set(odd.json()["problems"]) == {"kind", "duration_minutes", "place"}

    outsider = await centre.schedule(therapists=["p-layla"])
    assert outsider.json()["problems"]["therapists"] == "not an editor of this IEP: p-layla"

    first = await centre.schedule()
    assert first.status_code == 201
    # 16:30 Riyadh overlaps 16:00-16:45 for Ms. Huda, even for another student.
    overlap = await centre.schedule(
        student=SARA, goals=["g-speech"], starts_at="2026-11-27T13:30:00Z"
    )
    assert overlap.status_code == 422
    assert first.json()["id"] in overlap.json()["problems"]["therapists"]
    # Back to back is fine; so is the same time for another therapist.
    assert (await centre.schedule(starts_at="2026-11-27T16:45:00+03:00")).status_code == 201
    assert (await centre.schedule(therapists=["t-ali"])).status_code == 201

    cancelled = await centre.call(
        "t-huda", "PATCH", f"/api/sessions/{first.json()['id']}", {"status": "cancelled"}
    )
    assert cancelled.status_code == 200
    freed = await centre.schedule(
        student=SARA, goals=["g-speech"], starts_at="2026-11-27T13:30:00Z", duration_minutes=15
    )
    assert freed.status_code == 201
    again = await centre.call(
        "t-huda", "PATCH", f"/api/sessions/{first.json()['id']}", {"status": "confirmed"}
    )
    assert again.json()["problems"]["status"] == "a cancelled session cannot become confirmed"


async def test_two_tabs_booking_one_slot_at_once_get_one_session(centre: Centre) -> None:
    answers = await asyncio.gather(*(centre.schedule() for _ in range(2)))
    assert sorted(a.status_code for a in answers) == [201, 422]
    listed = await centre.call("t-huda", "GET", f"/api/students/{OMAR}/sessions")
    assert len(listed.json()["sessions"]) == 1


async def test_completing_records_progress_against_the_goal(local_centre: Centre) -> None:
    centre = local_centre
    session = (await centre.schedule()).json()
    path = f"/api/sessions/{session['id']}"
    early = await centre.call(
        "t-huda", "PATCH", path, {"measurements": [{"goal": "g-read", "value": 42, "unit": "wcpm"}]}
    )
    assert early.json()["problems"]["measurements"] == "only a completed session has measurements"
    bad = await centre.call(
        "t-huda",
        "PATCH",
        path,
        {"status": "completed", "measurements": [{"goal": "g-nope", "value": 1, "unit": ""}]},
    )
    assert bad.json()["problems"]["measurements[0]"] == "unknown goal: g-nope"
    done = await centre.call(
        "t-huda",
        "PATCH",
        path,
        {
            "status": "completed",
            "note": "Read two passages.",
            "measurements": [{"goal": "g-read", "value": 42, "unit": "words correct per minute"}],
            "version": session["version"],
        },
    )
    assert done.status_code == 200, done.text
    stale = await centre.call("t-huda", "PATCH", path, {"note": "x", "version": session["version"]})
    assert stale.status_code == 409

    progress = (await centre.call("p-layla", "GET", f"/api/students/{OMAR}/progress")).json()
    reading = next(g for g in progress["goals"] if g["id"] == "g-read")
    assert (reading["baseline"], reading["target"]) == (35, 60)
    assert [(p["value"], p["at"]) for p in reading["points"]] == [(42, "2026-11-27T13:00:00Z")]
