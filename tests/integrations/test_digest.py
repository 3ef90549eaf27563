"""Parents' digests end to end: real y-websocket editors -> the server -> the change observer ->
debounce windows -> the outbox -> a loopback WhatsApp Cloud API."""

from __future__ import annotations

import dataclasses
import datetime as dt

from integrations.contracts import DigestWindow, Language, OutboxState, Person
from integrations.digest import DigestPolicy, QuietHours
from tests.integrations.conftest import (
    DOCUMENT,
    HUDA,
    OMAR,
    PARENT_AR,
    PARENT_EN,
    Harness,
)
from tests.integrations.edits import add_item, create_sections, has_sections, items, notes
from tests.integrations.fakes import wait_until
from tests.support.yclient import connect


async def settle(h: Harness, seq: int) -> None:
    """Wait until the server stored `seq` updates and the observer handed them all over."""
    assert h.service is not None
    await wait_until(lambda: h.last_seq() >= seq)

    def recorded() -> bool:
        assert h.service is not None
        windows = [h.service.scheduler.window(DOCUMENT, p.user_id) for p in (PARENT_AR, PARENT_EN)]
        # Hooks run in commit order: once any window covers `seq`, every earlier change is in.
        return max((w.through_seq for w in windows if w is not None), default=0) >= seq

    await wait_until(recorded)


async def two_therapists_burst(h: Harness) -> int:
    """50 edits by two therapists (plus the section set-up); returns the last log seq."""
    async with connect(h.ws(HUDA.user_id)) as huda, connect(h.ws(OMAR.user_id)) as omar:
        create_sections(huda, "Sara — IEP 2026")
        await omar.wait_for(lambda: has_sections(omar))
        add_item(huda, "goals", "g1", "Reading fluency")
        add_item(huda, "goals", "g2", "Math facts")
        for i in range(23):
            notes(huda).insert(len(notes(huda)), f"h{i} ")
        await omar.wait_for(lambda: len(items(omar, "goals")) == 2)
        add_item(omar, "accommodations", "a1", "وقت إضافي")
        title = items(omar, "goals")[0]["title"]
        title.insert(len(title), " (grade 3)")
        for _ in range(23):
            notes(omar).insert(0, "ع")
        expected = 1 + 25 + 25
        await settle(h, expected)
        return expected


def message_text(h: Harness, phone: str | None) -> str:
    assert phone is not None
    calls = h.graph.to(phone)
    assert len(calls) == 1, [c.body for c in calls]
    return calls[0].text


async def test_a_burst_of_edits_becomes_one_digest_per_parent_in_their_language(
    harness: Harness,
) -> None:
    async with harness.running() as service:
        await two_therapists_burst(harness)
        assert await service.tick() == 0  # the window is still open
        harness.clock.advance(599)
        assert await service.tick() == 0
        harness.clock.advance(2)
        assert await service.tick() == 2
        harness.clock.advance(3600)
        assert await service.tick() == 0  # nothing is sent twice

    arabic = message_text(harness, PARENT_AR.phone)
    english = message_text(harness, PARENT_EN.phone)
    for text in (arabic, english):
        assert "Ms. Huda" in text and "عمر الحربي" in text
        assert "https://iep.example.test/doc/centre/student-42/iep-2026" in text
    # Outside the 24-hour window: the approved template, in each parent's language.
    ar_call, en_call = (
        harness.graph.to(PARENT_AR.phone or "")[0],
        harness.graph.to(PARENT_EN.phone or "")[0],
    )
    assert ar_call.kind == en_call.kind == "template"
    assert ar_call.body["template"]["language"]["code"] == "ar"
    assert en_call.body["template"]["language"]["code"] == "en"
    assert (
        "Goals: 2 items added (\u2068Reading fluency (grade 3)\u2069, \u2068Math facts\u2069)"
        in (english)
    )
    assert "Accommodations: 1 item added (\u2068وقت إضافي\u2069)" in english
    assert "الأهداف: أُضيف عنصران" in arabic  # CLDR "two" form
    assert "الملاحظات: أُضيف 105 أحرف — " in arabic  # CLDR "few" (n % 100 in 3..10)
    assert "Notes: edited (+105 characters)" in english
    assert "schemaVersion" not in english


async def test_a_parents_own_edits_are_left_out_of_their_digest(harness: Harness) -> None:
    async with harness.running() as service:
        async with connect(harness.ws(HUDA.user_id)) as huda:
            create_sections(huda, "Sara")
            add_item(huda, "goals", "g1", "Reading fluency")
            async with connect(harness.ws(PARENT_EN.user_id)) as john:
                await john.wait_for(lambda: len(items(john, "goals")) == 1)
                add_item(john, "goals", "g9", "Practice at home")
                await settle(harness, 3)
        harness.clock.advance(601)
        assert await service.tick() == 2
    john_text = message_text(harness, PARENT_EN.phone)
    layla_text = message_text(harness, PARENT_AR.phone)
    assert "Practice at home" not in john_text and "John" not in john_text
    assert "Reading fluency" in john_text
    assert "Practice at home" in layla_text and "John" in layla_text


async def test_only_a_parents_own_edits_send_them_nothing(harness: Harness) -> None:
    async with harness.running() as service:
        async with connect(harness.ws(PARENT_EN.user_id)) as john:
            create_sections(john, "Sara")
            await settle(harness, 1)
        harness.clock.advance(601)
        assert await service.tick() == 1  # Layla hears about John's change
    assert harness.graph.to(PARENT_EN.phone or "") == []


async def test_a_digest_due_in_quiet_hours_waits_for_the_morning(harness: Harness) -> None:
    # 17:55 UTC: 20:55 in Riyadh (quiet from 21:00), 17:55 in London.
    harness.clock.t = dt.datetime(2026, 11, 25, 17, 55, tzinfo=dt.UTC).timestamp()
    async with harness.running() as service:
        async with connect(harness.ws(HUDA.user_id)) as huda:
            create_sections(huda, "Sara")
            await settle(harness, 1)
        harness.clock.advance(601)
        assert await service.tick() == 1
        assert len(harness.graph.to(PARENT_EN.phone or "")) == 1
        # 07:59 next morning in Riyadh is still quiet; 08:00 is not.
        harness.clock.t = dt.datetime(2026, 11, 26, 4, 59, tzinfo=dt.UTC).timestamp()
        assert await service.tick() == 0
        harness.clock.advance(60)
        assert await service.tick() == 1
    assert len(harness.graph.to(PARENT_AR.phone or "")) == 1


async def test_max_wait_caps_a_window_that_never_goes_quiet(harness: Harness) -> None:
    async with harness.running(quiet="") as service, connect(harness.ws(HUDA.user_id)) as huda:
        create_sections(huda, "Sara")
        for i in range(6):  # an edit every 9 minutes keeps the debounce open
            await settle(harness, 1 + i)
            harness.clock.advance(540)
            assert await service.tick() == 0
            notes(huda).insert(0, "x")
        await settle(harness, 7)
        # 63 minutes after the first change, 9 after the last: max wait, not debounce.
        harness.clock.advance(540)
        assert await service.tick() == 2


async def test_pending_changes_survive_a_restart_inside_the_window(harness: Harness) -> None:
    async with harness.running():
        last = await two_therapists_burst(harness)
    # A new process: nothing in memory, the window and the log are in the database.
    async with harness.running() as service:
        harness.clock.advance(601)
        assert await service.tick() == 2
        entries = await service.store.entries(DOCUMENT)
    assert {e.state for e in entries} == {OutboxState.SENT}
    english = message_text(harness, PARENT_EN.phone)
    assert "Ms. Huda" in english and "عمر الحربي" in english
    assert "Reading fluency (grade 3)" in english and last == 51


def test_a_persons_own_quiet_hours_decide_when_their_digest_comes() -> None:
    """The centre is quiet 21:00-08:00; Layla's own 22:00-06:00 (in Riyadh) replace them, and
    'off' means any time."""
    policy = DigestPolicy(600.0, 3600.0, QuietHours.parse("21:00-08:00"))
    # The edit at 19:00 UTC = 22:00 in Riyadh: inside both her hours and the centre's.
    edited = dt.datetime(2026, 11, 25, 19, 0, tzinfo=dt.UTC).timestamp()
    window = DigestWindow("doc", "p", edited, edited, 1, 1)
    base = Person("p", "ليلى", Language.ARABIC, "Asia/Riyadh")
    centre = policy.due_at(window, base)
    own = policy.due_at(window, dataclasses.replace(base, quiet_hours="22:00-06:00"))
    never = policy.due_at(window, dataclasses.replace(base, quiet_hours="off"))
    local = dt.timezone(dt.timedelta(hours=3))
    assert dt.datetime.fromtimestamp(centre, local).hour == 8
    assert dt.datetime.fromtimestamp(own, local).hour == 6
    assert never == edited + 600
