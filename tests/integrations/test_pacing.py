"""WhatsApp pacing and the account-wide stop hold for every process and over restarts: they
live in the store, not in one process's memory (SQLite and PostgreSQL, loopback Graph API)."""

from __future__ import annotations

import httpx
from starlette.applications import Starlette

from integrations.contracts import Channel, Language, Message, MessageKind, OutboxEntry
from integrations.notifications import NotificationService
from tests.integrations.conftest import DOCUMENT, PARENT_AR, PARENT_EN, Harness
from tests.support.servers import serve_in_process

LAYLA_PHONE = PARENT_AR.phone or ""


async def message_to(service: NotificationService, key: str, recipient: str) -> None:
    entry = OutboxEntry(
        key,
        DOCUMENT,
        recipient,
        MessageKind.DIGEST,
        Message(Language.ARABIC, "IEP", "تم تحديث الخطة", ("الخطة",)),
        (Channel.WHATSAPP,),
        next_attempt_at=service.clock.now(),
        created_at=service.clock.now(),
    )
    assert await service.outbox.enqueue(entry)


async def test_a_number_waits_six_seconds_whichever_process_sends_and_after_a_restart(
    backend_harness: Harness,
) -> None:
    h = backend_harness
    async with h.process() as first:
        await message_to(first, "a", PARENT_AR.user_id)
        assert await first.tick() == 1
    # Another process (or this one restarted) one second later: Layla's number is not free.
    h.clock.advance(1)
    async with h.process() as second:
        await message_to(second, "b", PARENT_AR.user_id)
        await message_to(second, "c", PARENT_EN.user_id)  # another number goes at once
        assert await second.tick() == 1
        assert len(h.graph.to(LAYLA_PHONE)) == 1
        h.clock.advance(4.9)
        assert await second.tick() == 0
        h.clock.advance(0.2)
        assert await second.tick() == 1
    assert len(h.graph.to(LAYLA_PHONE)) == 2


async def test_error_368_stops_whatsapp_for_every_process_until_an_admin_lifts_it(
    backend_harness: Harness,
) -> None:
    h = backend_harness
    async with h.process() as first:
        await message_to(first, "a", PARENT_AR.user_id)
        h.graph.fail_next(368)
        await first.tick()
    assert len(h.alerts) == 1 and "368" in h.alerts[0]
    h.clock.advance(60)
    async with h.process() as second:
        await message_to(second, "b", PARENT_EN.user_id)
        await second.tick()
        assert h.graph.accepted == []  # the stop outlived the process that met it
        admin = {"authorization": "Bearer admin:a-1"}
        async with (
            serve_in_process(Starlette(routes=second.routes())) as api,
            httpx.AsyncClient(base_url=api.http) as http,
        ):
            stop = await http.get("/api/notifications/whatsapp-halt", headers=admin)
            assert stop.status_code == 200 and "368" in stop.json()["reason"]
            parent = {"authorization": f"Bearer user:{PARENT_AR.user_id}"}
            refused = await http.delete("/api/notifications/whatsapp-halt", headers=parent)
            assert refused.status_code == 403
            lifted = await http.delete("/api/notifications/whatsapp-halt", headers=admin)
            assert lifted.status_code == 204
            after = await http.get("/api/notifications/whatsapp-halt", headers=admin)
            assert after.status_code == 404
        await message_to(second, "c", PARENT_EN.user_id)
        assert await second.tick() == 1
