"""Where a second server process joins: who owns a document, and the bus between processes.

`DocumentOwnership` makes exactly one process the writer of a document's log, so the store
keeps one sequence per document: the registry acquires a document before loading it and
releases it after unloading it. Alone, a process that cannot acquire refuses the document's
clients (`OwnedElsewhere`, close 4503: the client retries). In cluster mode (`Bus` given) it
serves the document as a replica instead (`collab_server.replication`). One process alone
(`SingleNode`) owns everything.

`Bus` is what cluster mode needs from its transport (Redis in `cluster/`): bytes published on
named channels to the processes subscribed to them, a lease per process with a callback when
one lapses, and the per-user connection counts of every live process. It may lose any message
and everything it holds at any moment: nothing on it is the only copy of anything.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from collab_server.errors import Rejected
from collab_server.protocol import CloseCode

# Called when ownership of these documents ended without a release (e.g. the database
# session that held it died): the registry must stop writing them at once.
OwnershipLost = Callable[[Collection[str]], None]


class OwnedElsewhere(Rejected):
    def __init__(self) -> None:
        super().__init__(
            CloseCode.SERVED_ELSEWHERE,
            "this IEP is open on another server process; retrying (several processes need "
            "cluster mode)",
        )


class DocumentOwnership(Protocol):
    async def start(self, lost: OwnershipLost) -> None: ...

    async def acquire(self, document: str) -> None:
        """Become the writer of `document`'s log, or raise `OwnedElsewhere`."""

    async def ping(self) -> None:
        """Raise if ownership cannot be asked for right now (readiness)."""

    async def release(self, document: str) -> None: ...

    async def aclose(self) -> None: ...


class SingleNode:
    """The only process: owns every document."""

    async def start(self, lost: OwnershipLost) -> None:
        return None

    async def acquire(self, document: str) -> None:
        return None

    async def release(self, document: str) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


BusHandler = Callable[[bytes], None]


class BusEvents(Protocol):
    """What a bus tells the process that started it."""

    def node_gone(self, node_id: str) -> None:
        """`node_id`'s lease lapsed: it is dead or cut off (its counts are dropped too)."""

    def reconnected(self) -> None:
        """The bus was down and is back: anything may have been missed meanwhile."""


class Bus(Protocol):
    node_id: str

    async def start(self, events: BusEvents) -> None:
        """Connect, begin heartbeats; raises if the bus cannot be reached at start."""

    async def subscribe(self, channel: str, handler: BusHandler) -> bool:
        """Deliver `channel`'s messages to `handler` (in order), from now if the bus is up
        (True, once subscribed), else from when it is back (False)."""

    async def unsubscribe(self, channel: str) -> None: ...

    def publish(self, channel: str, data: bytes) -> None:
        """Send without waiting (in order per channel); lost if the bus is down."""

    def live_nodes(self) -> frozenset[str]:
        """Processes whose lease was current at the last heartbeat (this one included)."""

    @property
    def connected(self) -> bool: ...

    async def ping(self) -> None:
        """Raise if the bus cannot answer right now (readiness)."""

    async def add_connection(self, user_id: str, limit: int) -> bool:
        """Count one more connection of `user_id` on this process unless the user already
        has `limit` on all live processes together; False: refused. True if the bus is down
        (each process still enforces the limit on its own)."""

    def remove_connection(self, user_id: str) -> None: ...

    async def aclose(self) -> None: ...
