"""Web Push: a person's browsers get their notifications, encrypted for each browser and
signed with our VAPID key; a subscription the push service dropped is dropped here too."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from py_vapid import Vapid
from starlette.applications import Starlette

from integrations.push import PushConfig, b64url
from tests.integrations.conftest import DOCUMENT, PARENT_AR, Harness
from tests.integrations.fakes import FakePushService, push_service
from tests.support.servers import serve_in_process

LAYLA = {"authorization": f"Bearer user:{PARENT_AR.user_id}"}


@pytest.fixture
async def pushes() -> AsyncIterator[FakePushService]:
    async with push_service() as fake:
        yield fake


def vapid_key() -> str:
    vapid = Vapid()
    vapid.generate_keys()
    return b64url(vapid.private_key.private_numbers().private_value.to_bytes(32, "big"))


async def test_notifications_reach_each_browser_and_dropped_ones_are_forgotten(
    backend_harness: Harness, pushes: FakePushService
) -> None:
    h = backend_harness
    push = PushConfig(vapid_key(), "mailto:it@centre.example")
    config = dataclasses.replace(h.config(), push=push, push_services=(pushes.url,))
    async with (
        h.process(config) as service,
        serve_in_process(Starlette(routes=service.routes())) as api,
        httpx.AsyncClient(base_url=api.http) as http,
    ):
        key = await http.get("/api/push/key", headers=LAYLA)
        assert key.json()["public_key"] == push.public_key()
        phone, laptop = pushes.subscribe(), pushes.subscribe()
        for browser in (phone, laptop):
            added = await http.post("/api/push/subscriptions", json=browser, headers=LAYLA)
            assert added.status_code == 201, added.text
        # Only browsers' push services: never an address a client picks.
        elsewhere = {**phone, "endpoint": "http://10.0.0.5/internal"}
        refused = await http.post("/api/push/subscriptions", json=elsewhere, headers=LAYLA)
        assert refused.status_code == 422 and "endpoint" in refused.json()["problems"]
        short = {**phone, "keys": {"p256dh": "AAAA", "auth": phone["keys"]["auth"]}}
        refused = await http.post("/api/push/subscriptions", json=short, headers=LAYLA)
        assert "keys.p256dh" in refused.json()["problems"]

        pushes.gone.add(laptop["endpoint"].rsplit("/", 1)[1])  # that browser unsubscribed
        await service.notifier.notify(
            PARENT_AR.user_id,
            document=DOCUMENT,
            kind="thread_message",
            title="Ms. Huda",
            body="عمر قرأ ٤٠ كلمة اليوم",
        )
        (received,) = pushes.received[phone["endpoint"].rsplit("/", 1)[1]]
        assert received["title"] == "Ms. Huda" and received["body"] == "عمر قرأ ٤٠ كلمة اليوم"
        assert received["url"].endswith("#messages")
        kept = await service.store.push_subscriptions(PARENT_AR.user_id)
        assert [s.endpoint for s in kept] == [phone["endpoint"]]

        other = {"authorization": "Bearer user:p-john"}
        gone = await http.request(
            "DELETE", "/api/push/subscriptions", json={"endpoint": phone["endpoint"]}, headers=other
        )
        assert gone.status_code == 404  # not John's to remove
        mine = await http.request(
            "DELETE", "/api/push/subscriptions", json={"endpoint": phone["endpoint"]}, headers=LAYLA
        )
        assert mine.status_code == 204
        assert await service.store.push_subscriptions(PARENT_AR.user_id) == []
