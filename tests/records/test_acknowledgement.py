"""Parents' acknowledgement end to end (WhatsApp through the loopback Graph API), and the
reminder schedule shared by two server processes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from collab_server.audit import AuditRecorder
from collab_server.settings import Settings
from iep_collab.composition import build_app
from integrations.acknowledgement import AcknowledgementService, AckPolicy
from integrations.contracts import Channel, Language, Person
from integrations.record_contracts import AckState, Version, VersionKind
from integrations.settings import load_notification_settings
from persistence import SideTables, store_from_settings
from tests.integrations.conftest import whatsapp_environment
from tests.integrations.fakes import FakeGraphApi, ManualClock, MemoryDirectory, graph_api
from tests.records.conftest import DOC, OMAR, OWNER, PARENT, create_sections, make_team, section
from tests.support.servers import serve_in_process
from tests.support.tokens import FakeSupabase, auth_settings

FATHER = "p-john"


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    async with graph_api() as fake:
        yield fake


async def wait_for(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_parents_acknowledge_or_ask_a_question_through_whatsapp(
    store_settings: Settings, supabase: FakeSupabase, graph: FakeGraphApi, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    env = whatsapp_environment(tmp_path / "unused.db", graph.url)
    notifications = load_notification_settings(
        {k: v for k, v in env.items() if k != "DATABASE_URL"},
        public_url="https://iep.example.test",
    )
    app = build_app(auth_settings(store_settings, supabase), notifications)
    async with (
        serve_in_process(app) as server,
        httpx.AsyncClient(base_url=server.http) as http,
    ):
        team = await make_team(http, supabase)
        for user_id, phone, language in (
            (PARENT, "+966500000001", "ar"),
            (FATHER, "+447911123456", "en"),
        ):
            record = {
                "name": "ليلى" if language == "ar" else "John",
                "language": language,
                "phone": phone,
                "channels": {"whatsapp": True, "in_app": True},
            }
            assert (
                await http.put(f"/api/people/{user_id}", json=record, headers=team.admin)
            ).is_success
        await http.put(
            f"/api/documents/{DOC}/members/{FATHER}",
            json={"role": "viewer", "digest": True},
            headers=team.admin,
        )
        async with team.editor(OWNER) as huda:
            create_sections(huda.doc, "Yusuf's IEP 2026", "en")
            with huda.doc.transaction():
                section(huda.doc, "student")["name"] = "Yusuf"
            named = await http.post(
                f"/api/documents/{DOC}/versions",
                json={"name": "Final — meeting of 1 December"},
                headers=team.auth(OWNER),
            )
        version = named.json()
        send_url = f"/api/documents/{DOC}/versions/{version['id']}/acknowledgements"
        sent = await http.post(send_url, headers=team.auth(OWNER))
        assert sent.status_code == 201
        requests = {r["recipient_id"]: r for r in sent.json()["requested"]}
        assert set(requests) == {PARENT, FATHER}
        again = await http.post(send_url, headers=team.auth(OWNER))
        assert again.json()["requested"] == []  # one request per version and parent

        async def both_delivered() -> bool:
            return len(graph.accepted) >= 2

        await wait_for(both_delivered)
        by_phone = {call.to: call for call in graph.accepted}
        arabic = by_phone["966500000001"].body["template"]
        assert arabic["name"] == "iep_acknowledgement"
        assert arabic["language"] == {"code": "ar"}
        params = [p["text"] for p in arabic["components"][0]["parameters"]]
        assert params[1] == "Final — meeting of 1 December"
        assert params[2] == f"https://iep.example.test/ack/{requests[PARENT]['id']}"

        parent = team.auth(PARENT)
        opened = await http.get(f"/api/acknowledgements/{requests[PARENT]['id']}", headers=parent)
        assert opened.json()["content"]["student"]["name"] == "Yusuf"
        listed = await http.get(f"/api/documents/{DOC}/versions", headers=parent)
        assert [v["id"] for v in listed.json()["versions"]] == [version["id"]]
        # Someone else cannot answer for her.
        not_hers = await http.post(
            f"/api/acknowledgements/{requests[PARENT]['id']}",
            json={"answer": "acknowledged"},
            headers=team.auth(FATHER),
        )
        assert not_hers.status_code == 403
        asked = await http.post(
            f"/api/acknowledgements/{requests[PARENT]['id']}",
            json={"answer": "question", "comment": "هل يمكن زيادة جلسات النطق؟"},
            headers=parent,
        )
        assert asked.status_code == 200
        assert asked.json()["state"] == "question"
        assert asked.json()["channel"] == "whatsapp"
        twice = await http.post(
            f"/api/acknowledgements/{requests[PARENT]['id']}",
            json={"answer": "acknowledged"},
            headers=parent,
        )
        assert twice.status_code == 409
        read = await http.post(
            f"/api/acknowledgements/{requests[FATHER]['id']}",
            json={"answer": "acknowledged"},
            headers=team.auth(FATHER),
        )
        assert read.json()["state"] == "acknowledged"

        inbox = await http.get("/api/notifications", headers=team.auth(OMAR))
        questions = [
            n for n in inbox.json()["notifications"] if n["kind"] == "acknowledgement_question"
        ]
        assert [n["body"] for n in questions] == ["هل يمكن زيادة جلسات النطق؟"]
        assert "ليلى" in questions[0]["title"]

        status = await http.get(
            f"/api/documents/{DOC}/acknowledgements",
            params={"version": version["id"]},
            headers=team.auth(OWNER),
        )
        rows = {r["recipient_id"]: r for r in status.json()["acknowledgements"]}
        assert rows[PARENT]["state"] == "question"
        assert rows[PARENT]["content_sha256"] == version["content_sha256"]
        assert rows[FATHER]["state"] == "acknowledged" and rows[FATHER]["answered_at"]
        assert rows[FATHER]["delivery"]["channel"] == "whatsapp"
        assert (
            await http.get(f"/api/documents/{DOC}/acknowledgements", headers=parent)
        ).status_code == 403

        audit = (await http.get(f"/api/documents/{DOC}/audit", headers=team.auth(OWNER))).json()
        answered = [e for e in audit["events"] if e["action"] == "acknowledgement_answered"]
        assert {(e["actor_id"], e["details"]["answer"]) for e in answered} == {
            (PARENT, "question"),
            (FATHER, "acknowledged"),
        }
        assert all(e["details"]["content_sha256"] == version["content_sha256"] for e in answered)
        sent_events = [e for e in audit["events"] if e["action"] == "acknowledgement_sent"]
        assert {e["details"]["recipient_id"] for e in sent_events} == {PARENT, FATHER}


async def test_reminders_go_after_three_days_at_most_twice_once_across_two_processes(
    store_settings: Settings,
) -> None:
    store = store_from_settings(store_settings)
    await store.open()
    side = SideTables(store)
    records, notifications = side.records(), side.notifications()
    await notifications.open()
    try:
        clock = ManualClock(1_800_000_000.0)
        directory = MemoryDirectory()
        parent = Person(
            PARENT,
            "ليلى",
            Language.ARABIC,
            phone="+966500000001",
            channels=frozenset({Channel.WHATSAPP}),
        )
        directory.add(parent, DOC, digest=True)
        version = Version(
            "v1", DOC, 0, "Final", "", VersionKind.NAMED, OWNER, "Ms. Huda", clock.now(), "00" * 32
        )
        await records.add_version(version, b"\x00\x00")
        day = 86400.0

        def process() -> AcknowledgementService:
            return AcknowledgementService(
                records,
                directory,
                enqueue=notifications.enqueue,
                outbox_entry=notifications.entry,
                wake_outbox=lambda: None,
                notifier=_NoNotifier(),
                audit=AuditRecorder(records),
                clock=clock,
                policy=AckPolicy(remind_after_seconds=3 * day, max_reminders=2),
                run_loop=False,
            )

        first, second = process(), process()
        (request,) = await first.send(version, "Yusuf", requested_by=OWNER, address=None)
        assert await first.run_reminders() == 0
        clock.advance(3 * day - 60)
        assert await asyncio.gather(first.run_reminders(), second.run_reminders()) == [0, 0]
        counts = []
        for _ in range(3):
            clock.advance(3 * day)
            counts.append(sum(await asyncio.gather(first.run_reminders(), second.run_reminders())))
        assert counts == [1, 1, 0]
        keys = sorted(e.key for e in await notifications.entries(DOC))
        assert keys == [f"ack:{request.id}:0", f"ack:{request.id}:1", f"ack:{request.id}:2"]
        reminder = await notifications.entry(f"ack:{request.id}:1")
        assert reminder is not None and reminder.message.text.startswith("تذكير")

        # An answer ends the schedule.
        later = Version(
            "v2", DOC, 0, "v2", "", VersionKind.NAMED, OWNER, "H", clock.now(), "11" * 32
        )
        await records.add_version(later, b"\x00\x00")
        (other,) = await first.send(later, "Yusuf", requested_by=OWNER, address=None)
        answered = await records.answer_acknowledgement(
            other.id, AckState.ACKNOWLEDGED, None, None, clock.now()
        )
        assert answered
        clock.advance(4 * day)
        assert await first.run_reminders() == 0
        await first.audit.aclose()
        await second.audit.aclose()
    finally:
        await notifications.aclose()
        await store.aclose()


class _NoNotifier:
    async def notify(self, user_id: str, **_: object) -> int:
        return 0
