"""The live subscription hub on its own: catch-up, ordering across topics, slow readers."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Sequence

from collab_server.event_socket import EventSocket
from collab_server.events import Event, EventHub, NewEvent
from collab_server.identity import Caller
from collab_server.protocol import CloseCode


class ListLog:
    """The EventLog contract over a list (the stores are tested through the features)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.reads = 0

    async def append(self, events: Sequence[NewEvent]) -> int:
        for new in events:
            position = len(self.events) + 1
            self.events.append(Event(position, new.topic, new.kind, new.data_json, new.at))
        return len(self.events)

    async def events_since(
        self, topics: Collection[str] | None, after: int, limit: int, through: int | None = None
    ) -> list[Event]:
        self.reads += 1
        await asyncio.sleep(0)  # a database read yields: live events may arrive meanwhile
        return [
            e
            for e in self.events
            if e.position > after
            and (through is None or e.position <= through)
            and (topics is None or e.topic in topics)
        ][:limit]

    async def last_position(self) -> int:
        return len(self.events)

    async def first_position(self) -> int | None:
        return 1 if self.events else None

    async def prune(self, before_at: float) -> int:
        return 0


class Recorder:
    def __init__(self) -> None:
        self.topics: set[str] = set()
        self.got: list[int] = []

    def deliver(self, event: Event) -> None:
        self.got.append(event.position)


def event(topic: str) -> NewEvent:
    return NewEvent.of(topic, "changed", {}, 0.0)


async def settle(hub: EventHub, log: ListLog) -> None:
    while hub._cursor < len(log.events):  # the reader has handed everything over
        await asyncio.sleep(0)


async def test_a_new_topic_catches_up_while_live_events_keep_coming() -> None:
    log = ListLog()
    hub = EventHub(log)
    await hub.start()
    reader = Recorder()
    await hub.publish([event("a:1"), event("b:1"), event("a:1")])  # 1 2 3
    await hub.follow(reader, ["a:1"], 0)
    await settle(hub, log)
    assert reader.got == [1, 3]

    # Subscribing to b:1 from position 0 while a:1 keeps changing: b's past arrives once,
    # every a:1 event arrives once, none is skipped.
    follow = asyncio.create_task(hub.follow(reader, ["b:1"], 0))
    await hub.publish([event("a:1")])  # 4, during the catch-up
    await follow
    await hub.publish([event("b:1"), event("a:1")])  # 5 6
    await settle(hub, log)
    assert sorted(reader.got) == [1, 2, 3, 4, 5, 6]
    assert len(reader.got) == len(set(reader.got))
    await hub.aclose()


class SlowSocket:
    def __init__(self) -> None:
        self.closed: tuple[int, str] | None = None

    async def send_text(self, data: str) -> None:
        await asyncio.Event().wait()  # never reads

    async def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


async def test_a_reader_that_falls_behind_is_closed_not_buffered_without_end() -> None:
    socket = SlowSocket()
    subscriber = EventSocket(socket, Caller("p-1"), queue_limit=10)  # type: ignore[arg-type]
    subscriber.start()
    for position in range(1, 20):
        subscriber.deliver(Event(position, "a:1", "changed", "{}", 0.0))
    for _ in range(3):
        await asyncio.sleep(0)
    assert socket.closed is not None
    assert socket.closed[0] == CloseCode.TRY_AGAIN_LATER
    await subscriber.aclose()
