"""A running server with the notification integrations attached, driven by a manual clock."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from collab_server.app import create_app
from collab_server.body_limit import BodyLimits
from collab_server.settings import Settings
from collab_server.store import DocumentStore
from integrations.contracts import Channel, Language, Person
from integrations.digest import DigestPolicy, QuietHours
from integrations.email import SmtpConfig
from integrations.iep_schema import upgrade
from integrations.notifications import NotificationConfig, NotificationService
from integrations.outbox import OutboxPolicy
from integrations.webhook import WEBHOOK_BODY_LIMITS
from integrations.whatsapp import WhatsAppConfig
from persistence import SideTables, store_from_settings
from tests.integrations.fakes import (
    FakeGraphApi,
    ManualClock,
    MemoryDirectory,
    TokenUsers,
    graph_api,
    smtp_server,
)
from tests.support.servers import InProcessServer, serve_in_process
from tests.support.whatsapp import inbound_message, signature

DOCUMENT = "centre/student-42/iep-2026"
APP_SECRET = "app-secret"
VERIFY_TOKEN = "verify-me"
# Wednesday 25 November 2026, 10:00 UTC: 13:00 in Riyadh, daytime everywhere we test.
DAYTIME = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC).timestamp()

HUDA = Person("t-huda", "Ms. Huda", Language.ENGLISH)
OMAR = Person("t-omar", "عمر الحربي", Language.ARABIC)
PARENT_AR = Person(
    "p-layla",
    "ليلى",
    Language.ARABIC,
    "Asia/Riyadh",
    phone="+966500000001",
    email="layla@example.test",
    channels=frozenset({Channel.WHATSAPP, Channel.EMAIL, Channel.IN_APP}),
)
PARENT_EN = Person(
    "p-john",
    "John",
    Language.ENGLISH,
    "Europe/London",
    phone="+447700900002",
    email="john@example.test",
    channels=frozenset({Channel.WHATSAPP, Channel.EMAIL}),
)


@dataclass
class Harness:
    settings: Settings
    clock: ManualClock
    directory: MemoryDirectory
    graph: FakeGraphApi
    smtp_url: str | None = None
    supabase_url: str | None = None
    service: NotificationService | None = None
    server: InProcessServer | None = None
    store: DocumentStore | None = None
    alerts: list[str] = field(default_factory=list)

    def config(self, **digest: Any) -> NotificationConfig:
        policy = DigestPolicy(
            debounce_seconds=digest.get("debounce", 600.0),
            max_wait_seconds=digest.get("max_wait", 3600.0),
            quiet_hours=QuietHours.parse(digest.get("quiet", "21:00-08:00")),
            public_url="https://iep.example.test",
        )
        return NotificationConfig(
            digest=policy,
            whatsapp=WhatsAppConfig(self.graph.url, "test-token", "1234567890", "iep_digest"),
            whatsapp_app_secret=APP_SECRET,
            whatsapp_verify_token=VERIFY_TOKEN,
            smtp=SmtpConfig.from_url(self.smtp_url, "IEP <iep@example.test>")
            if self.smtp_url
            else None,
            supabase_url=self.supabase_url,
            supabase_service_key="service-role-key" if self.supabase_url else None,
            outbox=OutboxPolicy(rate_per_second=digest.get("rate", 80.0)),
            poll_interval_seconds=None,
            feed_delay_seconds=0.0,
        )

    def _service(
        self, store: DocumentStore, config: NotificationConfig
    ) -> tuple[NotificationService, TokenUsers]:
        users = TokenUsers({p.user_id: p.name for p in self.directory.people.values()})
        service = NotificationService(
            config,
            SideTables(store).notifications(),
            self.directory,
            store,
            users,
            clock=self.clock,
            on_alert=self.alerts.append,
        )
        return service, users

    @contextlib.asynccontextmanager
    async def running(self, **digest: Any) -> AsyncIterator[NotificationService]:
        """The server plus integrations; leaving it is a stop at any instant (state is in DB)."""
        store = store_from_settings(self.settings)
        service, users = self._service(store, self.config(**digest))
        app = create_app(
            self.settings,
            store=store,
            extensions=[service.extension],
            authenticator=users,
            extra_routes=service.routes(),
            body_limits=BodyLimits(by_path_prefix=WEBHOOK_BODY_LIMITS),
            upgrade=upgrade,
        )
        async with serve_in_process(app) as server:
            await service.start()
            self.service, self.server, self.store = service, server, store
            try:
                yield service
            finally:
                await service.aclose()

    @contextlib.asynccontextmanager
    async def process(
        self, config: NotificationConfig | None = None
    ) -> AsyncIterator[NotificationService]:
        """One server process's notifications alone (its own store connection, no sockets)."""
        store = store_from_settings(self.settings)
        await store.open()
        service, _ = self._service(store, config or self.config())
        await service.start()
        try:
            yield service
        finally:
            await service.aclose()
            await store.aclose()

    def ws(self, user_id: str) -> str:
        assert self.server is not None
        return f"{self.server.ws(DOCUMENT)}?token=user:{user_id}"

    def last_seq(self) -> int:
        assert self.server is not None
        live = self.server.app.state.collab.registry.get_live(DOCUMENT)
        return int(live.durable_seq) if live else 0


def people_directory() -> MemoryDirectory:
    directory = MemoryDirectory()
    directory.add(HUDA, DOCUMENT, editor=True)
    directory.add(OMAR, DOCUMENT, editor=True)
    directory.add(PARENT_AR, DOCUMENT, digest=True)
    directory.add(PARENT_EN, DOCUMENT, digest=True)
    return directory


@pytest.fixture
def sqlite_settings(tmp_path: Any) -> Settings:
    from collab_server.settings import load_settings

    return load_settings({}, database_url=f"sqlite:///{tmp_path}/collab.db")


@pytest.fixture
async def harness(sqlite_settings: Settings) -> AsyncIterator[Harness]:
    async with graph_api() as graph:
        yield Harness(sqlite_settings, ManualClock(DAYTIME), people_directory(), graph)


@pytest.fixture
def smtp() -> Iterator[tuple[Any, str]]:
    with smtp_server() as running:
        yield running


@pytest.fixture
async def backend_harness(store_settings: Settings) -> AsyncIterator[Harness]:
    """The harness on SQLite and on PostgreSQL."""
    async with graph_api() as graph:
        yield Harness(store_settings, ManualClock(DAYTIME), people_directory(), graph)


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return signature(body, secret)


def whatsapp_environment(database: Path, graph_url: str, **overrides: str) -> dict[str, str]:
    """The environment of a deployment with WhatsApp digests, pointed at our Graph API fake."""
    return {
        "DATABASE_URL": f"sqlite:///{database}",
        "WHATSAPP_API_URL": graph_url,
        "WHATSAPP_ACCESS_TOKEN": "test-token",
        "WHATSAPP_PHONE_NUMBER_ID": "1234567890",
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WHATSAPP_DIGEST_TEMPLATE": "iep_digest",
        "WHATSAPP_ACKNOWLEDGEMENT_TEMPLATE": "iep_acknowledgement",
        "COLLAB_DIGEST_DEBOUNCE_SECONDS": "0",
        "COLLAB_QUIET_HOURS": "off",
        **overrides,
    }


def inbound_text(phone: str, text: str, message_id: str) -> bytes:
    """A `messages` webhook as Meta sends it (compact JSON, UTF-8, not ASCII-escaped)."""
    return inbound_message(
        phone, message_id, {"type": "text", "text": {"body": text}}, profile_name="P"
    )


def status_event(
    message_id: str, status: str, *, errors: list[dict[str, Any]] | None = None
) -> bytes:
    value: dict[str, Any] = {
        "id": message_id,
        "status": status,
        "timestamp": "1764064800",
        "recipient_id": "966500000001",
    }
    if errors:
        value["errors"] = errors
    payload = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "WABA_ID",
                "changes": [
                    {
                        "field": "messages",
                        "value": {"messaging_product": "whatsapp", "statuses": [value]},
                    }
                ],
            }
        ],
    }
    return json.dumps(payload, separators=(",", ":")).encode()


async def post_webhook(h: Harness, body: bytes, signature: str | None = "sign") -> httpx.Response:
    assert h.server is not None
    headers = {"content-type": "application/json"}
    if signature == "sign":
        headers["x-hub-signature-256"] = sign(body)
    elif signature is not None:
        headers["x-hub-signature-256"] = signature
    async with httpx.AsyncClient() as client:
        return await client.post(
            f"{h.server.http}/webhooks/whatsapp", content=body, headers=headers
        )


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
    """Poll an async condition until it holds (webhook processing runs after the 200)."""

    async def poll() -> None:
        while not await check():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)
