"""Durable, paced delivery against the loopback Cloud API (and a real SMTP server)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx

from integrations.contracts import Channel, OutboxState
from tests.integrations.conftest import (
    DOCUMENT,
    HUDA,
    PARENT_AR,
    PARENT_EN,
    Harness,
    eventually,
    inbound_text,
    post_webhook,
)
from tests.integrations.edits import add_item, create_sections
from tests.integrations.fakes import wait_until
from tests.support.yclient import connect

LAYLA_PHONE = PARENT_AR.phone or ""
JOHN_PHONE = PARENT_EN.phone or ""


async def wait_recorded(h: Harness, through_seq: int) -> None:
    """Until the log holds `through_seq` and the parent's digest window has recorded it."""
    await wait_until(lambda: h.last_seq() >= through_seq)

    def recorded() -> bool:
        assert h.service is not None
        window = h.service.scheduler.window(DOCUMENT, PARENT_AR.user_id)
        return window is not None and window.through_seq >= through_seq

    await wait_until(recorded)


async def huda_edits(h: Harness) -> None:
    async with connect(h.ws(HUDA.user_id)) as huda:
        create_sections(huda, "Sara")
        add_item(huda, "goals", "g1", "Reading fluency")
        await wait_recorded(h, through_seq=2)


async def layla_entry(h: Harness) -> Any:
    assert h.service is not None
    entries = [e for e in await h.service.store.entries(DOCUMENT) if e.recipient_id == "p-layla"]
    assert len(entries) == 1
    return entries[0]


async def test_a_crash_between_outbox_write_and_send_sends_once_after_restart(
    backend_harness: Harness,
) -> None:
    h = backend_harness
    async with h.running() as service:
        await huda_edits(h)
        h.clock.advance(601)
        assert await service.scheduler.flush_due() == 2  # written, and then the process dies
    assert h.graph.accepted == []
    async with h.running() as service:
        assert await service.tick() == 2
        h.clock.advance(3600)
        assert await service.tick() == 0
    async with h.running() as service:  # and again: nothing left to send
        assert await service.tick() == 0
    assert len(h.graph.to(LAYLA_PHONE)) == 1
    assert len(h.graph.to(JOHN_PHONE)) == 1


async def test_a_send_lost_mid_flight_is_confirmed_by_the_status_webhook_not_resent(
    harness: Harness,
) -> None:
    h = harness
    async with h.running() as service:
        await huda_edits(h)
        h.clock.advance(601)
        await service.scheduler.flush_due()
        entry = await layla_entry(h)
        # Claimed and posted, but the process died before the response was recorded.
        h.graph.accepted.clear()
        await service.store.update(
            replace(
                entry,
                state=OutboxState.SENDING,
                attempts=1,
                next_attempt_at=h.clock.now() + 120,
            )
        )
        body = (
            b'{"entry":[{"changes":[{"value":{"statuses":[{"id":"wamid.LOST","status":"sent",'
            b'"timestamp":"1","biz_opaque_callback_data":"' + entry.key.encode() + b'"}]}}]}]}'
        )
        assert (await post_webhook(h, body)).status_code == 200

        async def confirmed() -> bool:
            return (await layla_entry(h)).state is OutboxState.SENT

        await eventually(confirmed)
        h.clock.advance(600)  # the lease has long expired
        await service.tick()
    assert h.graph.to(LAYLA_PHONE) == []


async def test_pair_rate_limit_is_retried_with_backoff_and_delivered_once(
    harness: Harness,
) -> None:
    h = harness
    async with h.running() as service:
        await huda_edits(h)
        h.clock.advance(601)
        h.graph.fail_next(131056)  # (business, consumer) pair rate limit
        await service.tick()
        assert [code for _, code in h.graph.rejected] == [131056]
        entry = await layla_entry(h)
        assert entry.state is OutboxState.PENDING and entry.last_error.startswith("131056")
        assert await service.tick() == 0  # backing off: no hammering
        assert len(h.graph.rejected) == 1
        h.clock.advance(10)
        assert await service.tick() == 1
        h.clock.advance(3600)
        assert await service.tick() == 0
        entry = await layla_entry(h)
    assert len(h.graph.to(LAYLA_PHONE)) == 1
    assert entry.state is OutboxState.SENT and entry.attempts == 2


async def test_every_retryable_error_class_is_retried_until_delivered(harness: Harness) -> None:
    h = harness
    retryable = [130429, 4, 80007, 1, 2, 131000, 131016]
    async with h.running() as service:
        await huda_edits(h)
        h.clock.advance(601)
        for code in retryable:
            h.graph.script = [code]
            await service.tick()
            h.clock.advance(1000)  # past any backoff (capped at 15 minutes)
        await service.tick()
        entry = await layla_entry(h)
    assert entry.state is OutboxState.SENT
    assert len(h.graph.to(LAYLA_PHONE)) == 1
    assert entry.attempts == len(retryable) + 1


async def test_one_number_gets_at_most_one_message_per_six_seconds(harness: Harness) -> None:
    h = harness
    async with h.running() as service:
        await huda_edits(h)
        h.clock.advance(601)
        assert await service.tick() == 2
        # A second digest for Layla right after the first must wait out the pair interval.
        await huda_edits_more(h)
        h.clock.advance(601)
        assert await service.tick() == 2
        assert len(h.graph.to(LAYLA_PHONE)) == 2


async def huda_edits_more(h: Harness) -> None:
    async with connect(h.ws(HUDA.user_id)) as huda:
        add_item(huda, "goals", "g2", "Math facts")
        await wait_recorded(h, through_seq=3)


async def test_window_closed_131047_is_resent_as_the_template(harness: Harness) -> None:
    h = harness
    async with h.running() as service:
        # Layla wrote to us: the 24-hour window is open, so a free-form text is tried first.
        response = await post_webhook(h, inbound_text(LAYLA_PHONE, "شكرا", "wamid.IN1"))
        assert response.status_code == 200
        await huda_edits(h)
        h.clock.advance(601)
        h.graph.fail_next(131047)
        await service.tick()
        h.clock.advance(6)  # the pair interval
        await service.tick()
    ((rejected, code),) = h.graph.rejected
    assert code == 131047 and rejected.kind == "text"
    (delivered,) = h.graph.to(LAYLA_PHONE)
    assert delivered.kind == "template"
    assert delivered.body["template"]["name"] == "iep_digest"
    assert delivered.body["template"]["language"]["code"] == "ar"


async def test_inside_the_window_a_digest_is_free_form_text(harness: Harness) -> None:
    h = harness
    async with h.running() as service:
        await post_webhook(h, inbound_text(JOHN_PHONE, "Thanks!", "wamid.IN2"))
        await huda_edits(h)
        h.clock.advance(601)
        await service.tick()
    (john,) = h.graph.to(JOHN_PHONE)
    assert john.kind == "text"
    assert john.text.startswith("Changes to \u2068Sara\u2069:\n• ")
    (layla,) = h.graph.to(LAYLA_PHONE)
    assert layla.kind == "template"  # Layla has not written: her window is closed


async def test_undeliverable_131026_falls_back_to_email_over_smtp(
    harness: Harness, smtp: tuple[Any, str]
) -> None:
    inbox, url = smtp
    h = harness
    h.smtp_url = url
    async with h.running() as service:
        await huda_edits(h)
        h.clock.advance(601)
        h.graph.fail_next(131026)
        await service.tick()
        await service.tick()  # the email attempt is due at once
        await wait_until(lambda: len(inbox.messages) == 1)
        entry = await layla_entry(h)
        assert h.server is not None
        async with httpx.AsyncClient() as client:
            shown = await client.get(
                f"{h.server.http}/api/notifications/outbox",
                params={"document": DOCUMENT},
                headers={"authorization": "Bearer admin:a1"},
            )
            refused = await client.get(
                f"{h.server.http}/api/notifications/outbox",
                params={"document": DOCUMENT},
                headers={"authorization": "Bearer user:p-layla"},
            )
    (mail,) = inbox.messages
    assert mail["To"] == "layla@example.test"
    assert "تحديث على الخطة" in str(mail["Subject"])
    assert "Reading fluency" in mail.get_content()
    assert entry.state is OutboxState.SENT and entry.channel is Channel.EMAIL
    assert entry.last_error.startswith("whatsapp: 131026")
    assert refused.status_code == 403
    layla_row = next(m for m in shown.json()["messages"] if m["recipient_id"] == "p-layla")
    assert layla_row["state"] == "sent" and layla_row["channel"] == "email"
    assert layla_row["attempts"] == 2 and "131026" in layla_row["last_error"]


async def test_contract_errors_fail_without_retrying_and_fall_back(harness: Harness) -> None:
    h = harness
    async with h.running() as service:
        await huda_edits(h)
        h.clock.advance(601)
        h.graph.fail_next(131048, 100)  # spam-rate limit, invalid parameter
        await service.tick()
        await service.tick()
        layla = await layla_entry(h)
        john = [e for e in await service.store.entries(DOCUMENT) if e.recipient_id == "p-john"]
    # Layla falls back to email then in-app (no SMTP configured here: in-app delivers).
    assert layla.state is OutboxState.SENT and layla.channel is Channel.IN_APP
    # John has WhatsApp and email only; with no SMTP configured nothing is left.
    assert john[0].state is OutboxState.FAILED and "email is not configured" in john[0].last_error
    assert len(h.graph.rejected) == 2 and h.graph.accepted == []


async def test_368_stops_every_whatsapp_send_and_alerts(harness: Harness) -> None:
    h = harness
    async with h.running() as service:
        await huda_edits(h)
        h.clock.advance(601)
        h.graph.fail_next(368)
        await service.tick()
        await service.tick()
    assert len(h.alerts) == 1 and "368" in h.alerts[0]
    assert len(h.graph.rejected) == 1 and h.graph.accepted == []  # the other parent was spared


async def test_the_global_rate_cap_defers_what_exceeds_it(harness: Harness) -> None:
    h = harness
    async with h.running(rate=1.0) as service:  # one message per second overall
        await huda_edits(h)
        h.clock.advance(601)
        assert await service.tick() == 1
        assert await service.tick() == 0  # the bucket is empty: no send, no error
        h.clock.advance(1)
        assert await service.tick() == 1
    assert len(h.graph.accepted) == 2 and h.graph.rejected == []
