"""The DocumentStore contract, run against SQLite and the real PostgreSQL."""

from __future__ import annotations

import time

import pytest
from pycrdt import Doc, Text

from collab_server.errors import LogConflict
from collab_server.settings import Settings
from collab_server.store import DocumentStore, UpdateRecord
from persistence import store_from_settings
from tests.persistence.updates import text_updates


def _rebuild(snapshot: bytes | None, tail: list[UpdateRecord]) -> str:
    doc = Doc()
    if snapshot:
        doc.apply_update(snapshot)
    for record in tail:
        doc.apply_update(record.update)
    return str(doc.get("notes", type=Text))


async def test_append_then_load_returns_the_attributed_log(store: DocumentStore) -> None:
    updates = text_updates(3)
    now = time.time()
    await store.append(
        [UpdateRecord("iep/1", i + 1, u, "user-a", now) for i, u in enumerate(updates)]
    )
    loaded = await store.load("iep/1")
    assert loaded.snapshot is None
    assert [r.seq for r in loaded.tail] == [1, 2, 3]
    assert {r.user_id for r in loaded.tail} == {"user-a"}
    assert _rebuild(None, loaded.tail) == "0,1,2,"
    assert (await store.load("other")).tail == []


async def test_one_append_can_carry_several_documents(store: DocumentStore) -> None:
    a1, a2 = text_updates(2)
    b = text_updates(3)[2]
    await store.append(
        [
            UpdateRecord("a", 1, a1, None, time.time()),
            UpdateRecord("b", 1, b, "u", time.time()),
            UpdateRecord("a", 2, a2, "u", time.time()),
        ]
    )
    names = {info.name: info.last_seq for info in await store.list_documents()}
    assert names == {"a": 2, "b": 1}
    assert [r.seq for r in (await store.load("a")).tail] == [1, 2]


async def test_listing_shows_each_documents_latest_activity_through_compaction(
    store: DocumentStore,
) -> None:
    first, second, third = text_updates(3)
    await store.append([UpdateRecord("a", 1, first, "u", 100.0)])
    await store.append([UpdateRecord("a", 2, second, "u", 200.0)])
    await store.append([UpdateRecord("a", 3, third, "u", 300.0)])
    listed = {info.name: (info.last_seq, info.updated_at) for info in await store.list_documents()}
    assert listed == {"a": (3, 300.0)}
    await store.compact("a", b"\x00\x00", 3)  # the folded entries may be deleted
    listed = {info.name: (info.last_seq, info.updated_at) for info in await store.list_documents()}
    assert listed["a"][0] == 3 and listed["a"][1] is not None and listed["a"][1] >= 300.0


async def test_a_retried_append_is_idempotent(store: DocumentStore) -> None:
    update = text_updates(1)[0]
    record = UpdateRecord("doc", 1, update, None, time.time())
    await store.append([record])
    await store.append([record])
    assert len((await store.load("doc")).tail) == 1


async def test_a_taken_position_with_other_bytes_is_a_conflict_and_fails_alone(
    store: DocumentStore,
) -> None:
    first, other, later, elsewhere = text_updates(4)
    now = time.time()
    await store.load("iep/taken")  # a store checks the documents it serves
    await store.append([UpdateRecord("iep/taken", 1, first, "u1", now)])
    with pytest.raises(LogConflict) as conflict:
        await store.append(
            [
                UpdateRecord("iep/taken", 1, other, "u2", now),  # another writer's seq 1
                UpdateRecord("iep/elsewhere", 1, elsewhere, "u3", now),
            ]
        )
    assert conflict.value.documents == {"iep/taken"}
    assert [r.update for r in (await store.load("iep/taken")).tail] == [first]
    assert [r.update for r in (await store.load("iep/elsewhere")).tail] == [elsewhere]
    await store.append([UpdateRecord("iep/taken", 2, later, "u1", now)])  # the log goes on
    assert [r.seq for r in (await store.load("iep/taken")).tail] == [1, 2]


async def test_compaction_keeps_updates_after_the_snapshot(store: DocumentStore) -> None:
    updates = text_updates(6)
    now = time.time()
    records = [UpdateRecord("doc", i + 1, u, "u", now) for i, u in enumerate(updates)]
    await store.append(records[:4])
    snapshot_doc = Doc()
    for record in records[:4]:
        snapshot_doc.apply_update(record.update)
    await store.compact("doc", snapshot_doc.get_update(), 4)
    await store.append(records[4:])
    loaded = await store.load("doc")
    assert loaded.snapshot_seq == 4
    assert [r.seq for r in loaded.tail] == [5, 6]
    assert loaded.last_seq == 6
    assert _rebuild(loaded.snapshot, loaded.tail) == "0,1,2,3,4,5,"
    # History stays by default: the attributed log is the legal record.
    assert [r.seq for r in await store.updates_since("doc", 0)] == [1, 2, 3, 4, 5, 6]


async def test_an_older_compaction_never_replaces_a_newer_snapshot(store: DocumentStore) -> None:
    updates = text_updates(2)
    await store.append([UpdateRecord("doc", i + 1, u, None, 0.0) for i, u in enumerate(updates)])
    full = Doc()
    for update in updates:
        full.apply_update(update)
    await store.compact("doc", full.get_update(), 2)
    await store.compact("doc", b"\x00\x00", 1)
    loaded = await store.load("doc")
    assert loaded.snapshot_seq == 2
    assert _rebuild(loaded.snapshot, loaded.tail) == "0,1,"


async def test_migrations_apply_again_without_harm(store_settings: Settings) -> None:
    for _ in range(2):
        again = store_from_settings(store_settings)
        await again.open()
        await again.ping()
        await again.aclose()
