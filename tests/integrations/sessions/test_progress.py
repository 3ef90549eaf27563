"""Progress updates after completed sessions: once per student and day, in the parent's
language, with CLDR plurals and the digits they prefer."""

from __future__ import annotations

from typing import Any

from tests.integrations.fakes import GraphCall
from tests.integrations.sessions.conftest import PEOPLE, Centre, at

LAYLA = PEOPLE["p-layla"]["phone"]
JOHN = PEOPLE["p-john"]["phone"]


def params(call: GraphCall) -> list[str]:
    assert call.body["template"]["name"] == "session_progress"
    return [p["text"] for p in call.body["template"]["components"][0]["parameters"]]


async def complete(centre: Centre, session: dict[str, Any], *measured: tuple[str, float]) -> None:
    response = await centre.call(
        "t-huda",
        "PATCH",
        f"/api/sessions/{session['id']}",
        {
            "status": "completed",
            "measurements": [
                {
                    "goal": goal,
                    "value": value,
                    "unit": "words correct per minute" if goal == "g-read" else "facts",
                }
                for goal, value in measured
            ],
        },
    )
    assert response.status_code == 200, response.text


async def test_one_update_a_day_joins_the_days_sessions(local_centre: Centre) -> None:
    centre = local_centre
    last_week = (await centre.schedule(starts_at="2026-11-25T14:00:00+03:00")).json()
    await complete(centre, last_week, ("g-read", 35))
    centre.clock.t = at("2026-11-25T12:00:00Z")
    await centre.run_jobs()
    assert len(centre.graph.to(JOHN)) == 1  # that day's own update

    centre.clock.t = at("2026-12-02T08:00:00Z")  # a week later: two sessions in one day
    morning = (await centre.schedule(starts_at="2026-12-02T12:00:00+03:00")).json()
    afternoon = (await centre.schedule(starts_at="2026-12-02T15:00:00+03:00")).json()
    centre.clock.t = at("2026-12-02T09:30:00Z")
    await complete(centre, morning, ("g-read", 40))
    centre.clock.t = at("2026-12-02T09:50:00Z")
    await complete(centre, afternoon, ("g-read", 42), ("g-math", 12))
    centre.clock.t = at("2026-12-02T10:30:00Z")  # 30 minutes after the first note
    await centre.run_jobs()
    await centre.run_jobs()

    john = params(centre.graph.to(JOHN)[-1])
    assert len(centre.graph.to(JOHN)) == 2
    assert john[0] == "\u2068Omar\u2069"
    assert john[1] == (
        "\u2068Reading fluency\u2069: 42 \u2068words correct per minute\u2069, up from 35 on "
        "25 Nov — goal: 60 · \u2068Math facts\u2069: 12 \u2068facts\u2069 — goal: 40"
    )
    layla = params(centre.graph.to(LAYLA)[-1])
    assert layla[1].startswith(
        "\u2068Reading fluency\u2069: ٤٢ \u2068words correct per minute\u2069، "
        "ارتفاعًا من ٣٥ في ٢٥ نوفمبر — الهدف: ٦٠"
    )


async def test_free_form_text_inside_the_window_has_the_plural_header(local_centre: Centre) -> None:
    centre = local_centre
    """A parent who wrote to us today gets text (no template), with the session count."""
    for phone in (LAYLA, JOHN):
        await centre.notifications.store.touch_inbound(phone, centre.clock.now())
    first = (await centre.schedule(starts_at="2026-11-25T14:00:00+03:00")).json()
    second = (await centre.schedule(starts_at="2026-11-25T15:00:00+03:00")).json()
    await complete(centre, first, ("g-read", 38))
    await complete(centre, second, ("g-read", 39))
    centre.clock.t = at("2026-11-25T10:31:00Z")
    await centre.run_jobs()
    john = centre.graph.to(JOHN)[0].body["text"]["body"]
    layla = centre.graph.to(LAYLA)[0].body["text"]["body"]
    assert john.startswith("\u2068Omar\u2069 today (2 sessions):\n• ")
    assert layla.startswith("\u200f\u2068Omar\u2069 اليوم (جلستان):\n")
    assert "/sessions?student=" in john


async def test_an_update_due_in_quiet_hours_waits_for_the_morning(local_centre: Centre) -> None:
    centre = local_centre
    centre.clock.t = at("2026-11-25T17:45:00Z")  # 20:45 in Riyadh, 17:45 in London
    evening = (await centre.schedule(starts_at="2026-11-25T21:00:00+03:00")).json()
    centre.clock.t = at("2026-11-25T18:05:00Z")
    await complete(centre, evening, ("g-read", 37))
    centre.clock.t = at("2026-11-25T18:40:00Z")  # 21:40 in Riyadh: quiet
    await centre.run_jobs()
    assert len(centre.graph.to(JOHN)) == 1 and centre.graph.to(LAYLA) == []
    centre.clock.t = at("2026-11-26T05:00:00Z")  # 08:00 in Riyadh
    await centre.run_jobs()
    assert len(centre.graph.to(LAYLA)) == 1
