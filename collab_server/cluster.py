"""Where a second server process joins: fan-out between nodes and who owns a document.

`DocumentOwnership` makes exactly one process the writer of a document's log, so the store
keeps one sequence per document: the registry acquires a document before loading it and
releases it after unloading it; a process that cannot acquire refuses the document's clients
(`OwnedElsewhere`, close 4503: the client retries). `NodeFanOut` publishes every durable
update of a document to the other nodes serving it and hands theirs to the registry, which
applies them with a `PeerNodeOrigin` and broadcasts them to its own sockets without storing
them again. One process alone (`SingleNode`) owns everything and has nobody to fan out to.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from collab_server.errors import Rejected
from collab_server.identity import PeerNodeOrigin
from collab_server.protocol import CloseCode

RemoteUpdateSink = Callable[[str, bytes, PeerNodeOrigin], None]
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


class NodeFanOut(Protocol):
    async def start(self, deliver: RemoteUpdateSink) -> None:
        """Begin receiving other nodes' updates; `deliver(document, update, origin)`."""

    def publish_update(self, document: str, update: bytes) -> None:
        """Send one durable update of `document` to the other nodes (must not block)."""

    async def aclose(self) -> None: ...


class DocumentOwnership(Protocol):
    async def start(self, lost: OwnershipLost) -> None: ...

    async def acquire(self, document: str) -> None:
        """Become the writer of `document`'s log, or raise `OwnedElsewhere`."""

    async def release(self, document: str) -> None: ...

    async def aclose(self) -> None: ...


class SingleNode:
    """The only process: owns every document, has nobody to fan out to."""

    async def start(self, deliver: RemoteUpdateSink | OwnershipLost) -> None:
        return None

    def publish_update(self, document: str, update: bytes) -> None:
        return None

    async def acquire(self, document: str) -> None:
        return None

    async def release(self, document: str) -> None:
        return None

    async def aclose(self) -> None:
        return None
