"""The multi-node seam: an update stored by one node reaches the sockets of another node."""

from __future__ import annotations

from pycrdt import Text

from collab_server.app import create_app
from collab_server.cluster import RemoteUpdateSink
from collab_server.identity import PeerNodeOrigin
from collab_server.settings import load_settings
from persistence.memory import MemoryStore
from tests.support.servers import serve_in_process
from tests.support.yclient import connect


class LoopbackBus:
    """Two nodes in one process: what one publishes, the other is handed (as Redis would)."""

    def __init__(self) -> None:
        self.nodes: dict[str, RemoteUpdateSink] = {}

    def node(self, node_id: str) -> LoopbackNode:
        return LoopbackNode(self, node_id)


class LoopbackNode:
    def __init__(self, bus: LoopbackBus, node_id: str) -> None:
        self.bus = bus
        self.node_id = node_id
        self.published: list[str] = []

    async def start(self, deliver: RemoteUpdateSink) -> None:
        self.bus.nodes[self.node_id] = deliver

    def publish_update(self, document: str, update: bytes) -> None:
        self.published.append(document)
        for node_id, deliver in self.bus.nodes.items():
            if node_id != self.node_id:
                deliver(document, update, PeerNodeOrigin(self.node_id))

    async def aclose(self) -> None:
        self.bus.nodes.pop(self.node_id, None)


async def test_an_update_reaches_readers_on_another_node_and_is_stored_once() -> None:
    store = MemoryStore()
    bus = LoopbackBus()
    node_a, node_b = bus.node("a"), bus.node("b")
    settings = load_settings({}, database_url="memory://")
    app_a = create_app(settings, store=store, fanout=node_a)
    app_b = create_app(settings, store=store, fanout=node_b)
    async with serve_in_process(app_a) as a, serve_in_process(app_b) as b:
        async with connect(a.ws("iep/shared")) as writer, connect(b.ws("iep/shared")) as reader:
            writer.doc.get("notes", type=Text).insert(0, "from node a")
            await reader.wait_for(lambda: str(reader.doc.get("notes", type=Text)) == "from node a")
            registry_b = app_b.state.collab.registry
            assert registry_b.get_live("iep/shared").last_seq == 0  # node b stored nothing
        assert node_a.published == ["iep/shared"] and node_b.published == []
        assert [r.seq for r in (await store.load("iep/shared")).tail] == [1]
