"""The WhatsApp webhook: handshake, signatures over raw bytes, statuses, replies, STOP/START."""

from __future__ import annotations

import json
from typing import Any

import httpx

from integrations.contracts import Channel, OutboxState
from integrations.webhook import WEBHOOK_MAX_BODY_BYTES
from tests.integrations.conftest import (
    DOCUMENT,
    HUDA,
    OMAR,
    PARENT_AR,
    PARENT_EN,
    VERIFY_TOKEN,
    Harness,
    eventually,
    inbound_text,
    post_webhook,
    sign,
    status_event,
)
from tests.integrations.fakes import realtime, wait_until
from tests.integrations.test_outbox import huda_edits, layla_entry
from tests.support.rawhttp import declare_body, stream_body

LAYLA_PHONE = PARENT_AR.phone or ""
JOHN_PHONE = PARENT_EN.phone or ""


async def get(h: Harness, path: str, **kwargs: Any) -> httpx.Response:
    assert h.server is not None
    async with httpx.AsyncClient() as client:
        return await client.get(f"{h.server.http}{path}", **kwargs)


async def test_verification_handshake_echoes_the_challenge_only_for_our_token(
    harness: Harness,
) -> None:
    async with harness.running():
        good = await get(
            harness,
            "/webhooks/whatsapp",
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": VERIFY_TOKEN,
                "hub.challenge": "42",
            },
        )
        bad = await get(
            harness,
            "/webhooks/whatsapp",
            params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "42"},
        )
    assert (good.status_code, good.text) == (200, "42")
    assert bad.status_code == 403


async def test_signature_is_checked_over_the_raw_bytes(harness: Harness) -> None:
    arabic = inbound_text(LAYLA_PHONE, "شكرًا على التحديث، متى الموعد القادم؟", "wamid.AR1")
    # The same JSON re-serialised with ASCII escapes has a different signature.
    reserialised = json.dumps(json.loads(arabic)).encode()
    async with harness.running():
        good = await post_webhook(harness, arabic)
        missing = await post_webhook(harness, arabic, signature=None)
        wrong_secret = await post_webhook(harness, arabic, signature=sign(arabic, "other"))
        over_reserialised = await post_webhook(harness, arabic, signature=sign(reserialised))
        tampered = await post_webhook(
            harness, arabic.replace(b"AR1", b"AR2"), signature=sign(arabic)
        )

        async def shown_to_editors() -> bool:
            response = await get(
                harness, "/api/notifications", headers={"authorization": "Bearer user:t-huda"}
            )
            return len(response.json()["notifications"]) == 1

        await eventually(shown_to_editors)
    assert good.status_code == 200
    assert [r.status_code for r in (missing, wrong_secret, over_reserialised, tampered)] == [
        401,
        401,
        401,
        401,
    ]


async def test_a_parents_reply_reaches_the_editors_in_app_once(harness: Harness) -> None:
    text = "متى الجلسة القادمة؟"
    body = inbound_text(LAYLA_PHONE, text, "wamid.Q1")
    async with harness.running():
        assert (await post_webhook(harness, body)).status_code == 200
        assert (await post_webhook(harness, body)).status_code == 200  # Meta redelivers

        async def both_editors_told() -> bool:
            for editor in (HUDA, OMAR):
                response = await get(
                    harness,
                    "/api/notifications",
                    headers={"authorization": f"Bearer user:{editor.user_id}"},
                )
                if not response.json()["notifications"]:
                    return False
            return True

        await eventually(both_editors_told)
        assert harness.service is not None and harness.service.webhook is not None
        await harness.service.webhook.process_pending()
        huda = await get(
            harness, "/api/notifications", headers={"authorization": "Bearer user:t-huda"}
        )
        anonymous = await get(harness, "/api/notifications")
        parent = await get(
            harness, "/api/notifications", headers={"authorization": "Bearer user:p-layla"}
        )
    (note,) = huda.json()["notifications"]
    assert note["body"] == text and note["title"] == PARENT_AR.name
    assert note["document"] == DOCUMENT and note["kind"] == "whatsapp_reply"
    assert anonymous.status_code == 401
    assert parent.json()["notifications"] == []


async def test_statuses_only_move_forward_and_duplicates_are_ignored(
    backend_harness: Harness,
) -> None:
    h = backend_harness
    async with h.running() as service:
        await huda_edits(h)
        h.clock.advance(601)
        await service.tick()
        wamid = (await layla_entry(h)).provider_message_id
        assert wamid is not None and wamid.startswith("wamid.")
        for status in ("delivered", "delivered", "sent", "read", "delivered"):
            assert (await post_webhook(h, status_event(wamid, status))).status_code == 200
        assert service.webhook is not None

        async def settled() -> bool:
            assert service.webhook is not None
            await service.webhook.process_pending()
            return (await layla_entry(h)).delivery_status == "read"

        await eventually(settled)
        entry = await layla_entry(h)
    assert entry.state is OutboxState.SENT and entry.delivery_status == "read"


async def test_a_failed_status_records_metas_error_and_falls_back(harness: Harness) -> None:
    h = harness
    async with h.running() as service:
        await huda_edits(h)
        h.clock.advance(601)
        await service.tick()
        wamid = (await layla_entry(h)).provider_message_id
        assert wamid is not None
        failed = status_event(
            wamid, "failed", errors=[{"code": 131026, "title": "Message undeliverable"}]
        )
        await post_webhook(h, failed)

        async def fell_back() -> bool:
            return (await layla_entry(h)).channel is not Channel.WHATSAPP

        await eventually(fell_back)
        await service.tick()
        entry = await layla_entry(h)
    assert entry.last_error is not None
    assert entry.last_error.startswith("whatsapp: 131026: Message undeliverable; email: ")
    assert entry.state is OutboxState.SENT and entry.channel is Channel.IN_APP  # no SMTP here


async def opt(h: Harness, phone: str, word: str, message_id: str) -> None:
    assert h.service is not None and h.service.webhook is not None
    assert (await post_webhook(h, inbound_text(phone, word, message_id))).status_code == 200
    await h.service.webhook.process_pending()
    await h.service.tick()


async def test_stop_and_start_in_arabic_and_english(backend_harness: Harness) -> None:
    h = backend_harness
    async with h.running() as service:
        await opt(h, LAYLA_PHONE, "إيقاف", "wamid.S1")
        assert h.directory.people[PARENT_AR.user_id].whatsapp_opted_out
        await opt(h, JOHN_PHONE, "STOP", "wamid.S2")
        assert h.directory.people[PARENT_EN.user_id].whatsapp_opted_out

        # Opted out: the digest goes through the next channel, never WhatsApp.
        await huda_edits(h)
        h.clock.advance(601)
        await service.tick()
        layla = await layla_entry(h)
        assert layla.channel is Channel.IN_APP and layla.state is OutboxState.SENT

        h.clock.advance(10)
        await opt(h, LAYLA_PHONE, "ابدأ", "wamid.S3")
        await opt(h, JOHN_PHONE, "Start", "wamid.S4")
    assert not h.directory.people[PARENT_AR.user_id].whatsapp_opted_out
    assert not h.directory.people[PARENT_EN.user_id].whatsapp_opted_out
    layla_texts = [c.text for c in h.graph.to(LAYLA_PHONE)]
    john_texts = [c.text for c in h.graph.to(JOHN_PHONE)]
    assert len(layla_texts) == 2 and len(john_texts) == 2  # two confirmations, no digest
    assert layla_texts[0].startswith("لن تصلك") and layla_texts[1].startswith("ستصلك")
    assert john_texts[0].startswith("You will no longer") and "again" in john_texts[1]
    assert all(c.kind == "text" for c in h.graph.accepted)


async def test_replies_are_also_broadcast_on_supabase_realtime(harness: Harness) -> None:
    async with realtime() as fake:
        harness.supabase_url = fake.url
        async with harness.running():
            await post_webhook(harness, inbound_text(JOHN_PHONE, "See you Monday", "wamid.R1"))
            await wait_until(lambda: len(fake.broadcasts) == 2)
    topics = sorted(b["topic"] for b in fake.broadcasts)
    assert topics == ["notifications:t-huda", "notifications:t-omar"]
    assert all(b["event"] == "notification" for b in fake.broadcasts)
    assert fake.broadcasts[0]["payload"]["body"] == "See you Monday"


async def test_redeliveries_within_a_week_are_deduped_and_old_state_is_forgotten(
    harness: Harness,
) -> None:
    h = harness
    body = inbound_text(JOHN_PHONE, "Hello", "wamid.OLD")
    async with h.running() as service:
        assert service.webhook is not None and service.store is not None
        await post_webhook(h, body)
        await service.webhook.process_pending()
        h.clock.advance(7 * 24 * 3600)
        await post_webhook(h, body)  # Meta's last retry: still a duplicate
        await service.webhook.process_pending()
        assert not await service.store.first_seen("wamid.OLD", h.clock.now())
        h.clock.advance(2 * 24 * 3600)
        await post_webhook(h, inbound_text(JOHN_PHONE, "Hi", "wamid.NEW"))
        await service.webhook.process_pending()
        assert await service.store.first_seen("wamid.OLD", h.clock.now())  # forgotten
        huda = await get(h, "/api/notifications", headers={"authorization": "Bearer user:t-huda"})
    assert [n["body"] for n in huda.json()["notifications"]] == ["Hello", "Hi"]


async def test_an_unsigned_flood_is_refused_before_it_is_read(harness: Harness) -> None:
    """A 128 MiB unsigned POST used to be read whole before the signature check."""
    async with harness.running():
        assert harness.server is not None
        port = harness.server.port
        declared = await declare_body(port, "/webhooks/whatsapp", 128 * 1024 * 1024)
        status, sent = await stream_body(port, "/webhooks/whatsapp", 256 * 1024, max_chunks=512)
        # A real notification of Meta's largest size still goes through.
        large = inbound_text(LAYLA_PHONE, "ملاحظة " * 100_000, "wamid.LARGE")
        assert len(large) > 1024 * 1024
        accepted = await post_webhook(harness, large)
    assert declared == 413
    # What was written past the cap sits in the kernel's socket buffers, not in the server.
    assert status == 413 and sent < WEBHOOK_MAX_BODY_BYTES + 16 * 1024 * 1024
    assert accepted.status_code == 200
