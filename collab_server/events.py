"""Live subscriptions: a durable, ordered event log fanned out to authorised subscribers.

Features publish events on topics (`student:<id>`, `user:<id>`, ...) by writing them to the
`EventLog` in the same transaction as the change they describe, then `announce` the log's new
end. Clients hold one WebSocket (`/events`, see `event_socket.py`), subscribe to topics, and
receive each event once, in position order; a reconnecting client passes the last position it
saw and catches up from the log, so nothing is duplicated or skipped.

How order and completeness hold by construction:

- Positions are assigned by the database when an event row is inserted, and event-writing
  transactions are serialised (SQLite has one writer; Postgres takes an advisory lock first),
  so rows become visible in position order.
- The hub of each process keeps one cursor over the log. An announcement (local, or from
  another node through `EventSignal`) wakes one reader task that reads everything past the
  cursor and hands it to subscribers in order. Payloads never travel through the signal.
- A new subscriber is registered before it reads its catch-up; live events that arrive
  meanwhile wait in its buffer and are delivered only past what the catch-up sent.

Which topics someone may subscribe to is decided by a `TopicPolicy` per topic kind (the part
before the first `:`), registered by the feature that owns the kind. The hub knows nothing of
what the events mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from collab_server.cluster import Bus
from collab_server.errors import Rejected
from collab_server.identity import Caller
from collab_server.protocol import CloseCode

log = structlog.get_logger("collab.events")

MAX_TOPIC_LENGTH = 300
CATCH_UP_PAGE = 500


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to write: `data` is a JSON object, encoded once here."""

    topic: str
    kind: str
    data_json: str
    at: float

    @classmethod
    def of(cls, topic: str, kind: str, data: dict[str, Any], at: float) -> NewEvent:
        return cls(topic, kind, json.dumps(data, ensure_ascii=False, separators=(",", ":")), at)


@dataclass(frozen=True, slots=True)
class Event:
    """A stored event: its position orders it among every event of the log."""

    position: int
    topic: str
    kind: str
    data_json: str
    at: float
    # The WebSocket text frame, built once from the stored JSON, sent to every subscriber.
    frame: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "frame",
            f'{{"type":"event","position":{self.position},"topic":{json.dumps(self.topic)},'
            f'"kind":{json.dumps(self.kind)},"at":{self.at!r},"data":{self.data_json}}}',
        )

    @property
    def data(self) -> Any:
        return json.loads(self.data_json)


class EventLog(Protocol):
    """The durable log (implemented in `persistence/`, in the documents' database).

    A feature with its own store appends inside the transaction of its change (the stores'
    `append_events`), then calls `EventHub.announce`; one without uses `EventHub.publish`.
    """

    async def append(self, events: Sequence[NewEvent]) -> int:
        """Write `events` in one transaction; returns the last position (0: none)."""

    async def prune(self, before_at: float) -> int:
        """Forget events older than `before_at`; a client behind them gets a reset."""

    async def events_since(
        self, topics: Collection[str] | None, after: int, limit: int, through: int | None = None
    ) -> list[Event]:
        """Events past `after` (up to `through`) in position order; `topics=None`: all."""

    async def last_position(self) -> int:
        """The position of the newest event, 0 for an empty log."""

    async def first_position(self) -> int | None:
        """The oldest retained position (older ones were pruned); None for an empty log."""


class EventSignal(Protocol):
    """Tells every node's hub that the log grew: in-process (`LocalSignal`), or over the
    cluster's bus (`BusSignal`). It carries a position only: the events are read from the log."""

    def announce(self, position: int) -> None: ...

    def listen(self, callback: Callable[[int], None]) -> None: ...

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


class LocalSignal:
    """One process: an announcement reaches this process's hub at once."""

    def __init__(self) -> None:
        self._listeners: list[Callable[[int], None]] = []

    def announce(self, position: int) -> None:
        for listener in self._listeners:
            listener(position)

    def listen(self, callback: Callable[[int], None]) -> None:
        self._listeners.append(callback)

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        self._listeners.clear()


EVENTS_CHANNEL = "events"


class BusSignal(LocalSignal):
    """Cluster mode: announcements also go to every other process over the bus. The bus may
    lose them; the log's end is read every `check_seconds` too, so a lost one delays an event
    by at most that long and never loses it (the events themselves are always read from the
    log)."""

    def __init__(self, bus: Bus, log_: EventLog, check_seconds: float = 2.0) -> None:
        super().__init__()
        self.bus = bus
        self.log = log_
        self.check_seconds = check_seconds
        self._checker: asyncio.Task[None] | None = None

    def announce(self, position: int) -> None:
        super().announce(position)
        self.bus.publish(EVENTS_CHANNEL, str(position).encode())

    def _heard(self, data: bytes) -> None:
        try:
            position = int(data)
        except ValueError:
            log.warning("event_signal_garbled", size=len(data))
            return
        super().announce(position)

    async def start(self) -> None:
        await self.bus.subscribe(EVENTS_CHANNEL, self._heard)
        self._checker = asyncio.create_task(self._check(), name="event-signal-check")

    async def _check(self) -> None:
        while True:
            await asyncio.sleep(self.check_seconds)
            try:
                super().announce(await self.log.last_position())
            except Exception:
                log.exception("event_signal_check_failed")

    async def aclose(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._checker
            self._checker = None
        with contextlib.suppress(Exception):
            await self.bus.unsubscribe(EVENTS_CHANNEL)
        await super().aclose()


class TopicPolicy(Protocol):
    """May `caller` follow topic `kind:key`? Raise `Rejected` (4403) to refuse."""

    async def authorize(self, caller: Caller, key: str) -> None: ...


class TopicRefused(Rejected):
    def __init__(self, reason: str) -> None:
        super().__init__(CloseCode.FORBIDDEN, reason)


class OwnUserTopic:
    """`user:<id>`: a person's own topic (notification bell, ringing); admins may follow any."""

    async def authorize(self, caller: Caller, key: str) -> None:
        if not caller.is_admin and caller.user_id != key:
            raise TopicRefused("only your own user topic")


def split_topic(topic: str) -> tuple[str, str]:
    """`kind:key` -> (kind, key); raises ValueError for anything else."""
    kind, sep, key = topic.partition(":")
    if not sep or not kind or not key or len(topic) > MAX_TOPIC_LENGTH:
        raise ValueError("a topic looks like kind:key")
    return kind, key


class Subscriber(Protocol):
    """What the hub delivers to (one socket, in `event_socket.py`)."""

    topics: set[str]

    def deliver(self, event: Event) -> None:
        """Called in position order, for events of its topics; never awaits."""


@dataclass(eq=False)
class _Registration:
    subscriber: Subscriber
    last: int  # highest position handed over
    buffer: list[Event] | None = None  # a list while a catch-up runs


class EventHub:
    """Routes the log's new events to the subscribers of their topics (one per process)."""

    def __init__(self, log_: EventLog, signal: EventSignal | None = None) -> None:
        self.log = log_
        self.signal = signal or LocalSignal()
        self.policies: dict[str, TopicPolicy] = {}
        self._by_topic: dict[str, set[_Registration]] = {}
        self._registrations: dict[int, _Registration] = {}
        self._cursor = 0
        self._target = 0
        self._wake = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.signal.listen(self._advance)

    # -- features ---------------------------------------------------------------------------

    def register(self, kind: str, policy: TopicPolicy) -> None:
        """Let clients subscribe to `kind:*` topics, authorised by `policy`."""
        if kind in self.policies:
            raise ValueError(f"topic kind {kind!r} is already registered")
        self.policies[kind] = policy

    def announce(self, position: int) -> None:
        """A feature committed events up to `position`: deliver them (on every node)."""
        if position > 0:
            self.signal.announce(position)

    async def publish(self, events: Sequence[NewEvent]) -> int:
        """Write `events` to the log and deliver them; returns the last position."""
        position = await self.log.append(events)
        self.announce(position)
        return position

    async def authorize(self, caller: Caller, topic: str) -> None:
        try:
            kind, key = split_topic(topic)
        except ValueError as exc:
            raise TopicRefused(str(exc)) from None
        policy = self.policies.get(kind)
        if policy is None:
            raise TopicRefused(f"unknown topic kind {kind!r}")
        await policy.authorize(caller, key)

    # -- lifetime ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self.signal.start()
        self._cursor = self._target = await self.log.last_position()
        self._reader = asyncio.create_task(self._read_loop(), name="event-hub")

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        await self.signal.aclose()

    # -- subscribers ------------------------------------------------------------------------

    async def follow(
        self, subscriber: Subscriber, topics: Collection[str], after: int | None
    ) -> int:
        """Start delivering `topics` to `subscriber`, past position `after` (None: from now).

        The catch-up (events up to the hub's cursor) is delivered before this returns; later
        ones come from the reader, in order. Returns the position the subscriber is now at.
        Raises `CatchUpTooOld` when events past `after` were pruned: the client reloads.
        """
        registration = self._registrations.get(id(subscriber))
        if registration is None:
            registration = _Registration(subscriber, self._cursor)
            self._registrations[id(subscriber)] = registration
        new = [t for t in dict.fromkeys(topics) if t not in subscriber.topics]
        if not new:
            return registration.last
        through = self._cursor  # everything past it reaches the buffer through the reader
        if after is not None and after < through:
            first = await self.log.first_position()
            if first is not None and after < first - 1:
                raise CatchUpTooOld(first)
        was_live = registration.buffer is None
        if was_live:
            registration.buffer = []
        for topic in new:
            subscriber.topics.add(topic)
            self._by_topic.setdefault(topic, set()).add(registration)
        try:
            reached = after if after is not None else through
            while reached < through:
                page = await self.log.events_since(new, reached, CATCH_UP_PAGE, through)
                for event in page:
                    subscriber.deliver(event)
                if len(page) < CATCH_UP_PAGE:
                    break
                reached = page[-1].position
        except BaseException:
            self.unfollow(subscriber, new)
            raise
        finally:
            if was_live:
                buffered, registration.buffer = registration.buffer or [], None
                registration.last = max(registration.last, through)
                for event in buffered:
                    if event.position > registration.last:
                        registration.last = event.position
                        subscriber.deliver(event)
        return registration.last

    def unfollow(self, subscriber: Subscriber, topics: Collection[str] | None = None) -> None:
        """Stop delivering `topics` (default: all, and forget the subscriber)."""
        registration = self._registrations.get(id(subscriber))
        if registration is None:
            return
        dropping = list(subscriber.topics if topics is None else topics)
        for topic in dropping:
            subscriber.topics.discard(topic)
            holders = self._by_topic.get(topic)
            if holders is not None:
                holders.discard(registration)
                if not holders:
                    del self._by_topic[topic]
        if topics is None:
            del self._registrations[id(subscriber)]

    @property
    def subscriber_count(self) -> int:
        return len(self._registrations)

    # -- the reader -------------------------------------------------------------------------

    def _advance(self, position: int) -> None:
        if position > self._target:
            self._target = position
            self._wake.set()

    async def _read_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                while self._cursor < self._target:
                    page = await self.log.events_since(None, self._cursor, CATCH_UP_PAGE)
                    if not page:
                        break
                    for event in page:
                        self._dispatch(event)
                    self._cursor = page[-1].position
            except Exception:
                log.exception("event_read_failed", cursor=self._cursor)
                await asyncio.sleep(0.5)
                self._wake.set()

    def _dispatch(self, event: Event) -> None:
        for registration in list(self._by_topic.get(event.topic, ())):
            if registration.buffer is not None:
                registration.buffer.append(event)
            elif event.position > registration.last:
                registration.last = event.position
                registration.subscriber.deliver(event)


class CatchUpTooOld(Exception):
    """The client's position predates the oldest retained event."""

    def __init__(self, first_position: int) -> None:
        super().__init__(f"events before {first_position} are no longer kept")
        self.first_position = first_position
