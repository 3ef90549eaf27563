"""Where a second server node joins: fan-out between nodes and who owns a document.

One node serves everything today (`SingleNode`). A multi-node deployment (e.g. over Redis)
implements both interfaces: `NodeFanOut` publishes every durable update of a document to the
other nodes serving it and hands theirs to the registry, which applies them with a
`PeerNodeOrigin` and broadcasts them to its own sockets without storing them again;
`DocumentOwnership` makes exactly one node the writer of a document's log, so the store keeps
one sequence per document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from collab_server.identity import PeerNodeOrigin

RemoteUpdateSink = Callable[[str, bytes, PeerNodeOrigin], None]


class NodeFanOut(Protocol):
    async def start(self, deliver: RemoteUpdateSink) -> None:
        """Begin receiving other nodes' updates; `deliver(document, update, origin)`."""

    def publish_update(self, document: str, update: bytes) -> None:
        """Send one durable update of `document` to the other nodes (must not block)."""

    async def aclose(self) -> None: ...


class DocumentOwnership(Protocol):
    async def acquire(self, document: str) -> None:
        """Become the writer of `document`'s log, or raise `Rejected` to refuse the load."""

    async def release(self, document: str) -> None: ...


class SingleNode:
    """The only node: owns every document, has nobody to fan out to."""

    async def start(self, deliver: RemoteUpdateSink) -> None:
        return None

    def publish_update(self, document: str, update: bytes) -> None:
        return None

    async def acquire(self, document: str) -> None:
        return None

    async def release(self, document: str) -> None:
        return None

    async def aclose(self) -> None:
        return None
