"""Extensions run in priority order, may veto a connection, and never break sync by failing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import websockets
from pycrdt import Text

from collab_server.app import create_app
from collab_server.errors import Rejected
from collab_server.hooks import (
    ConnectPayload,
    Extension,
    LoadPayload,
    StorePayload,
    UnloadPayload,
)
from collab_server.protocol import CloseCode
from collab_server.settings import load_settings
from persistence.memory import MemoryStore
from tests.support.servers import serve_in_process
from tests.support.yclient import connect


class Recorder(Extension):
    def __init__(self, name: str, priority: int, calls: list[str]) -> None:
        self.name = name
        self.priority = priority
        self.calls = calls
        self.stored: list[StorePayload] = []
        self.unloaded = asyncio.Event()

    async def on_connect(self, payload: ConnectPayload) -> None:
        self.calls.append(f"{self.name}:connect")
        if payload.document.startswith("forbidden"):
            raise Rejected(CloseCode.FORBIDDEN, "not a member")

    async def on_load(self, payload: LoadPayload) -> None:
        self.calls.append(f"{self.name}:load")

    async def on_store(self, payload: StorePayload) -> None:
        self.stored.append(payload)

    async def on_unload(self, payload: UnloadPayload) -> None:
        self.unloaded.set()


class Broken(Extension):
    name = "broken"

    async def on_connect(self, payload: ConnectPayload) -> None:
        raise RuntimeError("bug in an integration")

    async def on_store(self, payload: StorePayload) -> None:
        raise RuntimeError("bug in an integration")


async def test_hooks_order_veto_isolation_and_attribution(tmp_path: Path) -> None:
    calls: list[str] = []
    late, early = Recorder("late", 200, calls), Recorder("early", 10, calls)
    settings = load_settings({}, database_url="memory://", unload_grace_seconds=0.01)
    app = create_app(settings, store=MemoryStore(), extensions=[late, Broken(), early])
    async with serve_in_process(app) as server:
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(server.ws("forbidden/doc")):
                pass
        assert refused.value.response.status_code == 403
        assert "early:load" not in calls  # vetoed before the document was loaded

        async with connect(server.ws("iep/hooks")) as writer, connect(server.ws("iep/hooks")) as r:
            writer.doc.get("notes", type=Text).insert(0, "hi")
            await r.wait_for(lambda: str(r.doc.get("notes", type=Text)) == "hi")
            while not late.stored:
                await asyncio.sleep(0.01)
        await asyncio.wait_for(early.unloaded.wait(), 5)

    assert calls == [
        "early:connect",  # vetoed: the later extension is never asked
        "early:connect",
        "late:connect",
        "early:load",
        "late:load",
        "early:connect",
        "late:connect",  # second client: the document is already live
    ]
    assert early.stored[0].document == "iep/hooks"
    assert early.stored[0].first_seq == 1 and early.stored[0].updates == 1
    assert late.stored == early.stored  # after a broken extension failed on the same call
