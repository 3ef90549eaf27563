"""`WS /events`: one socket per browser tab, any number of authorised topics.

Client -> server, JSON text frames:

    {"type": "subscribe", "topics": ["student:centre/s-42/iep"], "after": 120}
    {"type": "unsubscribe", "topics": [...]}
    {"type": "ping"}

Server -> client:

    {"type": "event", "position": 121, "topic": ..., "kind": ..., "at": ..., "data": {...}}
    {"type": "subscribed", "topics": [...], "position": 130}   after the catch-up
    {"type": "denied", "topic": ..., "reason": ...}            refused, or access revoked
    {"type": "reset", "topics": [...], "position": 130}        `after` too old: reload state
    {"type": "pong"}

`after` is the last position the client saw (omit it on a first load: the reply's `position`
is where live delivery starts). Credentials are the sync socket's (`?token=` or a bearer
header). Limits: frame size, message rate, topics per socket, connections per user, and a
bounded send queue: a client that falls that far behind is closed with 1013 and catches up
from the log when it reconnects, so a slow reader costs memory up to the bound only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.types import Message
from starlette.websockets import WebSocket, WebSocketDisconnect

from collab_server.credentials import request_credentials
from collab_server.errors import Rejected
from collab_server.events import CatchUpTooOld, Event, EventHub
from collab_server.identity import Caller, CallerAuthenticator
from collab_server.limits import ConnectionCap, ConnectionRate, RateLimits
from collab_server.protocol import CloseCode
from collab_server.sync_endpoint import refuse

log = structlog.get_logger("collab.events")


# A page sends a few subscriptions and pings, never a stream: far below the sync socket's.
EVENT_SOCKET_RATES = RateLimits(
    messages_per_second=20,
    message_burst=200,
    bytes_per_second=256 * 1024,
    byte_burst=1024 * 1024,
)


@dataclass(frozen=True, slots=True)
class EventSocketLimits:
    max_frame_bytes: int = 16 * 1024
    max_topics: int = 200
    send_queue_events: int = 2_000
    rates: RateLimits = EVENT_SOCKET_RATES
    recheck_seconds: float = 30.0


class EventSocket:
    """One client socket: its topics, its send queue, its writer."""

    def __init__(self, websocket: WebSocket, caller: Caller, queue_limit: int) -> None:
        self.websocket = websocket
        self.caller = caller
        self.topics: set[str] = set()
        self._queue: asyncio.Queue[str] = asyncio.Queue(queue_limit)
        self._writer: asyncio.Task[None] | None = None
        self.close_code: int | None = None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write(), name="event-socket-writer")

    def deliver(self, event: Event) -> None:
        self.send(event.frame)

    def send(self, frame: str) -> None:
        if self.close_code is not None:
            return
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            log.warning("event_socket_behind", user=self.caller.user_id)
            self.close(CloseCode.TRY_AGAIN_LATER, "too far behind: reconnect to catch up")

    def text_of(self, message: Message, rate: ConnectionRate, max_bytes: int) -> str | None:
        """The text of a received frame within the limits; None when the socket is gone or
        was just closed for breaking one (the client is told which)."""
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        if text is None:
            self.close(CloseCode.UNSUPPORTED_DATA, "send JSON text frames")
            return None
        size = len(text.encode())
        if size > max_bytes:
            self.close(CloseCode.MESSAGE_TOO_BIG, "frame over size limit")
            return None
        if not rate.allow(size):
            self.close(CloseCode.RATE_LIMITED, "message rate limit exceeded")
            return None
        return str(text)

    def send_json(self, body: dict[str, Any]) -> None:
        self.send(json.dumps(body, ensure_ascii=False, separators=(",", ":")))

    def close(self, code: int, reason: str) -> None:
        if self.close_code is not None:
            return
        self.close_code = code
        asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        if self._writer is not None:
            self._writer.cancel()
        with contextlib.suppress(Exception):
            await self.websocket.close(code, reason)

    async def _write(self) -> None:
        try:
            while True:
                frame = await self._queue.get()
                await self.websocket.send_text(frame)
        except (WebSocketDisconnect, RuntimeError, OSError):
            self.close_code = self.close_code or CloseCode.GOING_AWAY

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer


class EventEndpoint:
    def __init__(
        self,
        hub: EventHub,
        authenticator: CallerAuthenticator,
        limits: EventSocketLimits | None = None,
    ) -> None:
        self.hub = hub
        self.authenticator = authenticator
        self.limits = limits or EventSocketLimits()
        self.cap = ConnectionCap(self.limits.rates.max_connections_per_user)
        self.sockets: set[EventSocket] = set()
        self._recheck: asyncio.Task[None] | None = None

    async def handle(self, websocket: WebSocket) -> None:
        try:
            caller = await self.authenticator.caller(request_credentials(websocket))
            self.cap.acquire(caller.user_id)
        except Rejected as exc:
            await refuse(websocket, exc.code, exc.reason)
            return
        socket = EventSocket(websocket, caller, self.limits.send_queue_events)
        expiry: asyncio.TimerHandle | None = None
        try:
            await websocket.accept()
            socket.start()
            self.sockets.add(socket)
            self._ensure_recheck()
            if caller.expires_at is not None:
                expiry = asyncio.get_running_loop().call_later(
                    max(0.0, caller.expires_at - time.time()),
                    socket.close,
                    CloseCode.UNAUTHORIZED,
                    "token expired",
                )
            await self._read(socket)
        finally:
            if expiry is not None:
                expiry.cancel()
            self.sockets.discard(socket)
            self.hub.unfollow(socket)
            self.cap.release(caller.user_id)
            await socket.aclose()

    async def _read(self, socket: EventSocket) -> None:
        rate = ConnectionRate(self.limits.rates)
        while socket.close_code is None:
            message = await socket.websocket.receive()
            text = socket.text_of(message, rate, self.limits.max_frame_bytes)
            if text is None:
                return
            try:
                request = json.loads(text)
                kind = request["type"] if isinstance(request, dict) else None
            except (ValueError, KeyError):
                kind = None
            if kind == "ping":
                socket.send_json({"type": "pong"})
            elif kind in ("subscribe", "unsubscribe"):
                topics = _topics(request.get("topics"))
                if topics is None:
                    socket.close(CloseCode.INVALID_PAYLOAD, "topics must be a list of strings")
                    return
                if kind == "unsubscribe":
                    self.hub.unfollow(socket, topics)
                    continue
                after = request.get("after")
                if after is not None and (not isinstance(after, int) or after < 0):
                    socket.close(CloseCode.INVALID_PAYLOAD, "after must be a position")
                    return
                await self._subscribe(socket, topics, after)
            else:
                socket.close(CloseCode.INVALID_PAYLOAD, "unknown message")
                return

    async def _subscribe(self, socket: EventSocket, topics: list[str], after: int | None) -> None:
        if len(socket.topics | set(topics)) > self.limits.max_topics:
            socket.close(CloseCode.POLICY_VIOLATION, "too many topics on one socket")
            return
        allowed = []
        for topic in topics:
            try:
                await self.hub.authorize(socket.caller, topic)
            except Rejected as exc:
                socket.send_json({"type": "denied", "topic": topic, "reason": exc.reason})
                continue
            allowed.append(topic)
        if not allowed:
            return
        try:
            position = await self.hub.follow(socket, allowed, after)
        except CatchUpTooOld:
            position = await self.hub.follow(socket, allowed, None)
            socket.send_json({"type": "reset", "topics": allowed, "position": position})
            return
        socket.send_json({"type": "subscribed", "topics": allowed, "position": position})

    def _ensure_recheck(self) -> None:
        if self._recheck is None:
            self._recheck = asyncio.create_task(self._recheck_loop(), name="event-recheck")

    async def _recheck_loop(self) -> None:
        while True:
            await asyncio.sleep(self.limits.recheck_seconds)
            try:
                await self.recheck()
            except Exception:
                log.exception("event_recheck_failed")

    async def recheck(self) -> int:
        """Drop topics whose policy now refuses the subscriber (access revoked)."""
        dropped = 0
        for socket in list(self.sockets):
            for topic in sorted(socket.topics):
                try:
                    await self.hub.authorize(socket.caller, topic)
                except Rejected as exc:
                    self.hub.unfollow(socket, [topic])
                    socket.send_json({"type": "denied", "topic": topic, "reason": exc.reason})
                    dropped += 1
        return dropped

    async def aclose(self) -> None:
        if self._recheck is not None:
            self._recheck.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recheck
            self._recheck = None
        for socket in list(self.sockets):
            socket.close(CloseCode.GOING_AWAY, "server shutting down")


def _topics(value: object) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        return None
    return list(dict.fromkeys(value))


class LiveEvents:
    """The hub, its socket endpoint and their lifetime (a `Service` of the app).

    Events older than `retention_seconds` are pruned at start and once a day.
    """

    PRUNE_EVERY_SECONDS = 24 * 3600.0

    def __init__(self, hub: EventHub, endpoint: EventEndpoint, *, retention_seconds: float) -> None:
        self.hub = hub
        self.endpoint = endpoint
        self.retention_seconds = retention_seconds
        self._prune_timer: asyncio.TimerHandle | None = None

    def routes(self) -> list[BaseRoute]:
        return [WebSocketRoute("/events", self.endpoint.handle)]

    async def start(self) -> None:
        await self.hub.start()
        await self._prune()

    async def _prune(self) -> None:
        try:
            pruned = await self.hub.log.prune(time.time() - self.retention_seconds)
            if pruned:
                log.info("events_pruned", events=pruned)
        except Exception:
            log.exception("events_prune_failed")
        loop = asyncio.get_running_loop()
        self._prune_timer = loop.call_later(
            self.PRUNE_EVERY_SECONDS, lambda: loop.create_task(self._prune())
        )

    async def aclose(self) -> None:
        if self._prune_timer is not None:
            self._prune_timer.cancel()
        await self.endpoint.aclose()
        await self.hub.aclose()
