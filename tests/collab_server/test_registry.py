"""One live copy per document: a document anyone holds is never unloaded, and a joiner that
arrives while it is being unloaded waits and gets a fresh copy with everything stored.

Each interleaving is forced with events and the loop's own order, never with sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pycrdt import Doc, Text

from collab_server.app import create_app
from collab_server.document import AwarenessChange
from collab_server.hooks import AwarenessPayload, Extension, Hooks, StorePayload, UnloadPayload
from collab_server.identity import ConnectionOrigin, ServerOrigin, is_server_change
from collab_server.metrics import Metrics
from collab_server.registry import Registry, RegistryLimits
from collab_server.settings import load_settings
from persistence import store_from_settings
from persistence.memory import MemoryStore
from tests.support.servers import serve_in_process
from tests.support.yclient import connect


class HeldUnload(Extension):
    """Its `on_unload` waits until the test lets it go: an unload caught half-way."""

    name = "held-unload"

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def on_unload(self, payload: UnloadPayload) -> None:
        self.started.set()
        await self.release.wait()


@pytest.fixture
async def registry() -> AsyncIterator[Registry]:
    running = Registry(MemoryStore(), Hooks([]), Metrics(), RegistryLimits(unload_grace_seconds=0))
    await running.start()
    yield running
    await running.aclose()


def type_into(registry: Registry, name: str, text: str) -> None:
    """An edit as a socket's would arrive: applied to the live document, then stored."""
    live = registry.get_live(name)
    assert live is not None
    source: Doc[Any] = Doc()
    source.apply_update(live.doc.get_update())
    before = source.get_state()
    notes = source.get("notes", type=Text)
    notes.insert(len(notes), text)
    live.apply(source.get_update(before), ConnectionOrigin("c1", "u1", "Huda"))


def notes_of(registry: Registry, name: str) -> str:
    live = registry.get_live(name)
    assert live is not None
    return str(live.doc.get("notes", type=Text))


async def test_a_holder_that_has_not_joined_yet_keeps_the_document(registry: Registry) -> None:
    # One socket joined and left while another was still in its handshake (acquired, not
    # joined): the first one's release must not unload what the second holds.
    first = await registry.acquire("iep/a")
    handshaking = await registry.acquire("iep/a")
    type_into(registry, "iep/a", "kept")
    registry.release(first)
    await registry.settle()
    assert registry.get_live("iep/a") is handshaking
    registry.release(handshaking)


async def test_an_acquire_in_the_turn_the_unload_timer_fires_keeps_the_copy(
    registry: Registry,
) -> None:
    live = await registry.acquire("iep/b")
    type_into(registry, "iep/b", "typed")
    await live.wait_durable()
    registry.release(live)  # grace 0: the unload timer is due at once
    again = await registry.acquire("iep/b")  # no await before it counts as a holder
    await registry.settle()
    assert again is live and registry.get_live("iep/b") is live
    registry.release(again)
    await registry.settle()
    assert registry.get_live("iep/b") is None  # unloaded once nobody holds it


async def test_a_joiner_during_an_unload_waits_and_loads_what_was_stored() -> None:
    held = HeldUnload()
    registry = Registry(
        MemoryStore(), Hooks([held]), Metrics(), RegistryLimits(unload_grace_seconds=0)
    )
    await registry.start()
    try:
        first = await registry.acquire("iep/c")
        type_into(registry, "iep/c", "before the unload")
        await first.wait_durable()
        registry.release(first)
        await held.started.wait()  # the unload is under way, past the holders check
        joiner = asyncio.ensure_future(registry.acquire("iep/c"))
        await asyncio.sleep(0)  # let the joiner run as far as it can: it must be waiting
        assert not joiner.done()
        held.release.set()
        second = await joiner
        assert second is not first
        assert str(second.doc.get("notes", type=Text)) == "before the unload"
        assert second.last_seq == first.last_seq == 1
        type_into(registry, "iep/c", ", and after")
        await second.wait_durable()
        assert notes_of(registry, "iep/c") == "before the unload, and after"
        assert registry.metrics.log_conflicts._value.get() == 0
        registry.release(second)
    finally:
        await registry.aclose()


async def test_joins_and_leaves_with_no_grace_period_lose_no_acknowledged_edit(
    tmp_path: Path,
) -> None:
    """Sockets come and go in waves on a few documents that unload the moment they are free."""
    settings = load_settings(
        {}, database_url=f"sqlite:///{tmp_path}/collab.db", unload_grace_seconds=0
    )
    app = create_app(settings, store=store_from_settings(settings))
    documents = [f"iep/churn-{n}" for n in range(4)]
    acknowledged: dict[str, list[str]] = {name: [] for name in documents}

    async def write(name: str, token: str) -> None:
        async with connect(server.ws(name)) as writer:
            notes = writer.doc.get("notes", type=Text)
            notes.insert(len(notes), f"{token} ")
            # Stored once a newcomer sees it: a joiner's step 2 holds only stored content.
            async with connect(server.ws(name)) as check:
                await check.wait_for(lambda: token in str(check.doc.get("notes", type=Text)))
        acknowledged[name].append(token)

    async with serve_in_process(app) as server:
        for wave in range(20):
            await asyncio.gather(
                *(write(name, f"w{wave}-{name[-1]}-{k}") for name in documents for k in range(2))
            )
        assert app.state.collab.metrics.log_conflicts._value.get() == 0

    store = store_from_settings(settings)
    await store.open()
    try:
        for name in documents:
            stored = await store.load(name)
            doc: Doc[Any] = Doc()
            if stored.snapshot:
                doc.apply_update(stored.snapshot)
            for record in stored.tail:
                doc.apply_update(record.update)
            text = str(doc.get("notes", type=Text))
            assert all(token in text for token in acknowledged[name]), name
            assert len(acknowledged[name]) == 40
    finally:
        await store.aclose()


class SlowObserver(Extension):
    """An integration whose database has stopped answering."""

    name = "slow"

    def __init__(self) -> None:
        self.awareness_calls = 0
        self.stored: list[int] = []
        self.unblock = asyncio.Event()

    async def on_awareness(self, payload: AwarenessPayload) -> None:
        self.awareness_calls += 1
        await self.unblock.wait()

    async def on_store(self, payload: StorePayload) -> None:
        self.stored.append(payload.last_seq)


async def test_a_slow_extension_holds_a_bounded_queue_and_what_is_shed_is_counted() -> None:
    slow = SlowObserver()
    metrics = Metrics()
    registry = Registry(MemoryStore(), Hooks([slow]), metrics, RegistryLimits(hook_queue_max=10))
    await registry.start()
    try:
        live = await registry.acquire("iep/busy")
        socket = SimpleNamespace(id="c1")
        for clock in range(1_000):  # cursor moves while the extension is stuck
            registry.notify_awareness(live, socket, AwarenessChange((), (clock,), ()))  # type: ignore[arg-type]
        for n in range(50):
            type_into(registry, "iep/busy", f"{n} ")
        await live.wait_durable()
        assert metrics.hooks_shed.labels("on_awareness")._value.get() >= 1_000 - 10 - 1
        slow.unblock.set()

        async def all_stored_reported() -> None:  # store notifications coalesce, none lost
            while not slow.stored or slow.stored[-1] < 50:
                await asyncio.sleep(0.01)

        await asyncio.wait_for(all_stored_reported(), 5)
        assert slow.awareness_calls <= 11
        registry.release(live)
    finally:
        await registry.aclose()


async def test_a_change_the_server_makes_is_logged_as_the_servers(registry: Registry) -> None:
    live = await registry.acquire("iep/migrated")
    source: Doc[Any] = Doc()
    source.get("notes", type=Text).insert(0, "migrated")
    live.apply(source.get_update(), ServerOrigin("migration"))
    await live.wait_durable()
    (record,) = await registry.store.updates_since("iep/migrated", 0)
    assert record.user_id == "server:migration" and is_server_change(record.user_id)
    registry.release(live)
