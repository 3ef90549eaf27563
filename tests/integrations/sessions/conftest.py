"""A therapy centre on a real server: two students' IEPs with goals, therapists and parents
with people records, WhatsApp through the loopback Graph API, time on a manual clock."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from pycrdt import Array, Doc, Map
from starlette.applications import Starlette

from collab_server.settings import Settings, load_settings
from collab_server.store import UpdateRecord
from iep_collab.composition import build_app
from integrations.notifications import NotificationService
from integrations.sessions.service import SessionService
from integrations.settings import load_notification_settings
from persistence import store_from_settings
from tests.integrations.conftest import APP_SECRET, sign, whatsapp_environment
from tests.integrations.fakes import FakeGraphApi, ManualClock, graph_api
from tests.support.servers import InProcessServer, serve_in_process
from tests.support.tokens import FakeSupabase, auth_settings, bearer
from tests.support.whatsapp import inbound_message

OMAR = "centre/omar/iep-2026"
SARA = "centre/sara/iep-2026"
# Wednesday 25 November 2026, 10:00 UTC: 13:00 in Riyadh, 10:00 in London.
DAYTIME = dt.datetime(2026, 11, 25, 10, 0, tzinfo=dt.UTC).timestamp()

PEOPLE: dict[str, dict[str, Any]] = {
    "t-huda": {"name": "Ms. Huda", "language": "en", "timezone": "Asia/Riyadh"},
    "t-ali": {"name": "علي", "language": "ar", "timezone": "Asia/Riyadh"},
    "p-layla": {
        "name": "ليلى",
        "language": "ar",
        "timezone": "Asia/Riyadh",
        "phone": "+966501234567",
        "channels": {"whatsapp": True, "in_app": True},
        "digits": "arabic",
    },
    "p-john": {
        "name": "John",
        "language": "en",
        "timezone": "Europe/London",
        "phone": "+447911123456",
        "channels": {"whatsapp": True, "in_app": True},
    },
    "p-mona": {
        "name": "Mona",
        "language": "en",
        "timezone": "Asia/Dubai",
        "phone": "+971501234567",
        "channels": {"whatsapp": True},
    },
}
MEMBERS = {
    OMAR: {"t-huda": "owner", "t-ali": "editor", "p-layla": "viewer", "p-john": "viewer"},
    SARA: {"t-huda": "owner", "p-mona": "viewer"},
}
GOALS = {
    OMAR: [
        ("g-read", "Reading fluency", "35 words correct per minute", "60 words correct per minute"),
        ("g-math", "Math facts", "10 facts", "40 facts"),
    ],
    SARA: [("g-speech", "Two-word phrases", "5", "20")],
}
NAMES = {OMAR: "Omar", SARA: "سارة"}
TEMPLATES = {
    "WHATSAPP_REMINDER_TEMPLATE": "session_reminder",
    "WHATSAPP_SESSION_MOVED_TEMPLATE": "session_moved",
    "WHATSAPP_PROGRESS_TEMPLATE": "session_progress",
    "WHATSAPP_MESSAGE_TEMPLATE": "thread_message",
}


def iep_update(student: str) -> bytes:
    doc: Doc[Any] = Doc()
    iep = doc.get("iep", type=Map)
    with doc.transaction():
        iep["meta"] = Map({"title": f"IEP {NAMES[student]}", "language": "en"})
        iep["student"] = Map({"name": NAMES[student]})
        iep["goals"] = Array(
            [
                Map({"id": g, "title": t, "baseline": b, "target": target, "area": ""})
                for g, t, b, target in GOALS[student]
            ]
        )
    return doc.get_update()


async def seed(settings: Settings) -> None:
    """The two IEPs, stored before the server starts."""
    store = store_from_settings(settings)
    await store.open()
    try:
        await store.append(
            [UpdateRecord(s, 1, iep_update(s), "t-huda", time.time()) for s in (OMAR, SARA)]
        )
    finally:
        await store.aclose()


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).timestamp()


@dataclass
class Centre:
    settings: Settings
    supabase: FakeSupabase
    graph: FakeGraphApi
    clock: ManualClock
    realtime_url: str | None = None
    server: InProcessServer | None = None
    client: httpx.AsyncClient | None = None
    tokens: dict[str, str] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=dict)  # more settings, from next start
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @property
    def app(self) -> Starlette:
        assert self.server is not None
        return self.server.app

    @property
    def sessions(self) -> SessionService:
        service: SessionService = self.app.state.sessions
        return service

    @property
    def notifications(self) -> NotificationService:
        service: NotificationService = self.app.state.notifications
        return service

    def token(self, user: str) -> str:
        if user not in self.tokens:
            # Signed by the fake project; issued by whichever URL the server knows as Supabase.
            issuer = f"{self.realtime_url}/auth/v1" if self.realtime_url else None
            claims = {"app_metadata": {"role": "admin"}} if user == "admin" else {}
            self.tokens[user] = self.supabase.token(user, issuer=issuer, **claims)
        return self.tokens[user]

    async def call(self, user: str, method: str, path: str, body: Any = None) -> httpx.Response:
        assert self.client is not None
        return await self.client.request(method, path, json=body, headers=bearer(self.token(user)))

    async def schedule(self, user: str = "t-huda", student: str = OMAR, **fields: Any) -> Any:
        body = {
            "therapists": ["t-huda"],
            "starts_at": "2026-11-27T16:00:00+03:00",
            "duration_minutes": 45,
            "place": {"room": "Room 3"},
            "kind": "speech",
            "goals": ["g-read"],
            **fields,
        }
        return await self.call(user, "POST", f"/api/students/{student}/sessions", body)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Centre]:
        environment = {**whatsapp_environment(self.settings.sqlite_path(), self.graph.url)}
        environment.pop("DATABASE_URL")
        environment.update(TEMPLATES)
        environment["COLLAB_QUIET_HOURS"] = "21:00-08:00"
        environment["COLLAB_PROGRESS_UPDATE_DELAY_MINUTES"] = "30"
        environment.update(self.environment)
        settings = self.settings
        if self.realtime_url:
            from pydantic import SecretStr

            settings = settings.model_copy(
                update={
                    "supabase_url": self.realtime_url,
                    "supabase_service_key": SecretStr("service-role-key"),
                    "supabase_jwks_url": self.supabase.jwks_url,
                }
            )
        app = build_app(
            settings,
            load_notification_settings(environment),
            clock=self.clock,
            timers=False,
        )
        async with (
            serve_in_process(app) as server,
            httpx.AsyncClient(base_url=server.http) as client,
        ):
            self.server, self.client = server, client
            try:
                yield self
            finally:
                self.server, self.client = None, None

    @contextlib.asynccontextmanager
    async def running_stopped(self) -> AsyncIterator[None]:
        """Stop the server for the block (a restart), then serve again from the same database."""
        await self._exit()
        yield
        await self._enter()

    async def _enter(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        await self._stack.enter_async_context(self.running())

    async def _exit(self) -> None:
        await self._stack.aclose()

    async def set_up_people(self) -> None:
        for user, record in PEOPLE.items():
            response = await self.call("admin", "PUT", f"/api/people/{user}", record)
            assert response.status_code == 200, response.text
        for student, members in MEMBERS.items():
            for user, role in members.items():
                response = await self.call(
                    "admin",
                    "PUT",
                    f"/api/documents/{student}/members/{user}",
                    {"role": role, "digest": False},  # digests are not under test here
                )
                assert response.status_code in (200, 201), response.text

    async def run_jobs(self) -> int:
        """Run due session jobs, then send what the outbox has due (as the timers would)."""
        ran = await self.sessions.jobs.run_due()
        await self.notifications.tick()
        return ran

    async def button(
        self, phone: str, payload: str, message_id: str, text: str = "Confirm"
    ) -> None:
        await self.incoming(
            phone,
            message_id,
            {"type": "button", "button": {"payload": payload, "text": text}},
        )

    async def incoming(self, phone: str, message_id: str, content: dict[str, Any]) -> None:
        """A WhatsApp message from `phone` as Meta posts it, signed; processed on return."""
        body = inbound_message(phone, message_id, content)
        assert self.client is not None
        response = await self.client.post(
            "/webhooks/whatsapp",
            content=body,
            headers={"x-hub-signature-256": sign(body, APP_SECRET)},
        )
        assert response.status_code == 200
        webhook = self.notifications.webhook
        assert webhook is not None
        await webhook.process_pending()  # after the background task, if it ran first

    def events_url(self, user: str) -> str:
        assert self.server is not None
        return f"ws://127.0.0.1:{self.server.port}/events?token={self.token(user)}"


async def next_message(socket: Any, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    """The next server message of `kind` (`event`, `subscribed`, ...), skipping none silently:
    any other type first fails the test."""
    raw = await __import__("asyncio").wait_for(socket.recv(), timeout)
    message: dict[str, Any] = json.loads(raw)
    assert message["type"] == kind, message
    return message


@pytest.fixture
async def centre(store_settings: Settings, supabase: FakeSupabase) -> AsyncIterator[Centre]:
    """The centre on SQLite and on PostgreSQL (what the stores decide: rules, claims, restarts)."""
    async for found in _centre(store_settings, supabase):
        yield found


@pytest.fixture
async def local_centre(tmp_path: Path, supabase: FakeSupabase) -> AsyncIterator[Centre]:
    """The centre on SQLite only, for what no store decides (rendering, time zones)."""
    settings = load_settings({}, database_url=f"sqlite:///{tmp_path}/collab.db")
    async for found in _centre(settings, supabase):
        yield found


async def _centre(store_settings: Settings, supabase: FakeSupabase) -> AsyncIterator[Centre]:
    settings = auth_settings(store_settings, supabase)
    await seed(settings)
    async with graph_api() as graph:
        found = Centre(settings, supabase, graph, ManualClock(DAYTIME))
        await found._enter()
        try:
            await found.set_up_people()
            yield found
        finally:
            await found._exit()


__all__ = ["OMAR", "SARA", "Centre", "at", "centre", "local_centre", "next_message", "websockets"]
