"""In-app notifications: a per-user list on our server, plus Supabase Realtime broadcast.

`GET /api/notifications?after=ID` returns the caller's notifications newer than ID (poll with
the last id seen). When `SUPABASE_URL` and a service key are configured, each notification is
also broadcast on the topic `notifications:<user_id>` through Realtime's REST endpoint, so an
open browser hears it at once. `GET /api/notifications/outbox?document=…` (admins) shows every
message of a document: state, channel, attempts and last error.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from collab_server.credentials import request_credentials
from collab_server.errors import Rejected
from collab_server.events import NewEvent
from collab_server.identity import Caller, CallerAuthenticator
from collab_server.protocol import CloseCode
from integrations.contracts import (
    Channel,
    Clock,
    InAppNotification,
    NotificationStore,
    OutboxEntry,
    OutcomeKind,
    Person,
    SendOutcome,
)

if TYPE_CHECKING:
    from integrations.push import WebPusher

log = structlog.get_logger("collab.integrations.inapp")

BROADCAST_PATH = "/realtime/v1/api/broadcast"
BELL_SIZE = 20

Publish = Callable[[Sequence[NewEvent]], Awaitable[int]]


class SupabaseBroadcaster:
    def __init__(
        self,
        supabase_url: str,
        service_key: str,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._client = httpx.AsyncClient(
            base_url=supabase_url.rstrip("/"),
            headers={"apikey": service_key, "Authorization": f"Bearer {service_key}"},
            timeout=5.0,
            transport=transport,
        )

    async def broadcast(self, user_id: str, payload: dict[str, Any]) -> None:
        await self.send(f"notifications:{user_id}", "notification", payload)

    async def send(self, topic: str, event: str, payload: dict[str, Any]) -> None:
        """One message on a private Realtime topic (raises httpx.HTTPError on failure)."""
        body = {"messages": [{"topic": topic, "event": event, "payload": payload, "private": True}]}
        response = await self._client.post(BROADCAST_PATH, json=body)
        response.raise_for_status()

    async def aclose(self) -> None:
        await self._client.aclose()


def _push_message(item: InAppNotification) -> dict[str, Any]:
    """What the service worker shows: short, with where a click goes."""
    path = "/"
    if item.document:
        path = "/doc/" + "/".join(quote(part) for part in item.document.split("/"))
        if item.kind == "thread_message":
            path += "#messages"
    return {"id": item.id, "title": item.title, "body": item.body[:200], "url": path}


def notification_json(item: InAppNotification) -> dict[str, Any]:
    return {
        "id": item.id,
        "document": item.document,
        "kind": item.kind,
        "title": item.title,
        "body": item.body,
        "created_at": item.created_at,
        "data": item.data,
    }


class InAppNotifier:
    """Writes in-app notifications and pushes them; also the IN_APP outbox channel."""

    channel = Channel.IN_APP

    def __init__(
        self,
        store: NotificationStore,
        clock: Clock,
        broadcaster: SupabaseBroadcaster | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.broadcaster = broadcaster
        # The live events' publish (topic `user:<id>`): the bell in every open tab.
        self.publish: Publish | None = None
        self.pusher: WebPusher | None = None  # the person's browsers with no tab open

    async def notify(
        self,
        user_id: str,
        *,
        document: str,
        kind: str,
        title: str,
        body: str,
        data: dict[str, str] | None = None,
    ) -> int:
        at = self.clock.now()
        data = data or {}
        notification_id = await self.store.add_notification(
            user_id, document=document, kind=kind, title=title, body=body, at=at, data=data
        )
        item = InAppNotification(notification_id, user_id, document, kind, title, body, at, data)
        if self.broadcaster is not None:
            try:
                await self.broadcaster.broadcast(user_id, notification_json(item))
            except httpx.HTTPError as exc:
                # The stored notification is the record; the push is a convenience.
                log.warning("realtime_broadcast_failed", error=type(exc).__name__)
        await self.announce(user_id, "notification", notification_json(item))
        if self.pusher is not None:
            try:
                await self.pusher.push(user_id, _push_message(item))
            except Exception:
                log.exception("push_failed")
        return notification_id

    async def announce(self, user_id: str, kind: str, data: dict[str, Any]) -> None:
        """Tell the person's open pages (a page that misses it reads the list again)."""
        if self.publish is None:
            return
        try:
            await self.publish([NewEvent.of(f"user:{user_id}", kind, data, self.clock.now())])
        except Exception:
            log.exception("notification_event_failed")

    async def send(self, entry: OutboxEntry, person: Person) -> SendOutcome:
        notification_id = await self.notify(
            person.user_id,
            document=entry.document,
            kind=entry.kind.value,
            title=entry.message.subject,
            body=entry.message.text,
            data={"link": entry.message.link, "key": entry.key},
        )
        return SendOutcome(OutcomeKind.SENT, provider_message_id=f"inapp:{notification_id}")

    async def aclose(self) -> None:
        if self.broadcaster is not None:
            await self.broadcaster.aclose()
        if self.pusher is not None:
            await self.pusher.aclose()


async def _authenticate(authenticator: CallerAuthenticator, request: Request) -> Caller | Response:
    try:
        return await authenticator.caller(request_credentials(request))
    except Rejected as exc:
        status = 403 if exc.code == CloseCode.FORBIDDEN else 401
        return JSONResponse({"error": exc.reason}, status_code=status)


def outbox_json(entry: OutboxEntry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "document": entry.document,
        "recipient_id": entry.recipient_id,
        "kind": entry.kind.value,
        "state": entry.state.value,
        "channel": entry.channel.value if entry.channel else None,
        "remaining_channels": [c.value for c in entry.channels],
        "attempts": entry.attempts,
        "last_error": entry.last_error,
        "delivery_status": entry.delivery_status,
        "created_at": entry.created_at,
        "updated_at": entry.updated_at,
    }


def notification_routes(
    store: NotificationStore, authenticator: CallerAuthenticator, notifier: InAppNotifier
) -> list[BaseRoute]:
    async def list_notifications(request: Request) -> Response:
        caller = await _authenticate(authenticator, request)
        if isinstance(caller, Response):
            return caller
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            return JSONResponse({"error": "after must be an integer"}, status_code=400)
        items = await store.notifications(caller.user_id, after)
        return JSONResponse({"notifications": [notification_json(i) for i in items]})

    async def bell(request: Request) -> Response:
        """The unread count and the newest notifications."""
        caller = await _authenticate(authenticator, request)
        if isinstance(caller, Response):
            return caller
        through, unread = await store.unread_notifications(caller.user_id)
        recent = await store.recent_notifications(caller.user_id, BELL_SIZE)
        return JSONResponse(
            {
                "unread": unread,
                "read_through": through,
                "recent": [notification_json(i) for i in recent],
            }
        )

    async def mark_read(request: Request) -> Response:
        caller = await _authenticate(authenticator, request)
        if isinstance(caller, Response):
            return caller
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = None
        through = body.get("through") if isinstance(body, dict) else None
        if not isinstance(through, int) or isinstance(through, bool) or through < 0:
            return JSONResponse(
                {"error": "invalid marker", "problems": {"through": "a notification id"}},
                status_code=422,
            )
        # Never past the newest: a marker far ahead would hide notifications still to come.
        newest = await store.recent_notifications(caller.user_id, 1)
        through = min(through, newest[0].id if newest else 0)
        if await store.mark_notifications_read(caller.user_id, through):
            await notifier.announce(caller.user_id, "notifications.read", {"through": through})
        return Response(status_code=204)

    async def list_outbox(request: Request) -> Response:
        caller = await _authenticate(authenticator, request)
        if isinstance(caller, Response):
            return caller
        if not caller.is_admin:
            return JSONResponse({"error": "admins only"}, status_code=403)
        document = request.query_params.get("document")
        if not document:
            return JSONResponse({"error": "document is required"}, status_code=400)
        entries = await store.entries(document)
        return JSONResponse({"document": document, "messages": [outbox_json(e) for e in entries]})

    async def whatsapp_halt(request: Request) -> Response:
        """Admins: why WhatsApp sending is stopped (GET), or lift the stop (DELETE)."""
        caller = await _authenticate(authenticator, request)
        if isinstance(caller, Response):
            return caller
        if not caller.is_admin:
            return JSONResponse({"error": "admins only"}, status_code=403)
        if request.method == "DELETE":
            lifted = await store.resume_whatsapp()
            if lifted:
                log.warning("whatsapp_resumed", by=caller.user_id)
            return Response(status_code=204) if lifted else _not_halted()
        halt = await store.whatsapp_halt()
        if halt is None:
            return _not_halted()
        return JSONResponse({"reason": halt[0], "since": halt[1]})

    return [
        Route("/api/notifications", list_notifications, methods=["GET"]),
        Route("/api/notifications/outbox", list_outbox, methods=["GET"]),
        Route("/api/notifications/bell", bell, methods=["GET"]),
        Route("/api/notifications/read", mark_read, methods=["POST"]),
        Route("/api/notifications/whatsapp-halt", whatsapp_halt, methods=["GET", "DELETE"]),
    ]


def _not_halted() -> Response:
    return JSONResponse({"error": "WhatsApp is not stopped"}, status_code=404)
