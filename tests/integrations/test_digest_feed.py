"""The digests' feed reads the stored log off the sync path: over a 100,000-entry log it never
holds the event loop for more than 20 ms at a time, and after a restart it starts from its
checkpoint, never from the start of the log."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from collab_server.store import StoredDocument, UpdateRecord
from integrations.digest import DigestPolicy, DigestScheduler, render
from integrations.digest_feed import DigestFeed
from persistence import SideTables
from persistence.sqlite import SQLiteStore
from tests.integrations.conftest import DAYTIME, HUDA, OMAR, PARENT_EN
from tests.integrations.fakes import ManualClock, MemoryDirectory

DOCUMENT = "iep/long"
ENTRIES = 100_000


class ReadsRecorded:
    """The document store, noting where each log read started."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.read_after: list[int] = []

    async def updates_since(
        self, document: str, after_seq: int, limit: int = 10_000
    ) -> list[UpdateRecord]:
        self.read_after.append(after_seq)
        return await self.store.updates_since(document, after_seq, limit)

    async def load(self, document: str) -> StoredDocument:
        return await self.store.load(document)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def typed_log(count: int, start_seq: int = 1) -> list[UpdateRecord]:
    """A therapist typing notes keystroke by keystroke, with a goal added now and then."""
    doc: Doc[Any] = Doc()
    iep = doc.get("iep", type=Map)
    records: list[UpdateRecord] = []
    now = time.time()

    def record(user: str, change: Any) -> None:
        before = doc.get_state()
        change()
        seq = start_seq + len(records)
        records.append(UpdateRecord(DOCUMENT, seq, doc.get_update(before), user, now))

    def create() -> None:
        iep["notes"] = Text()
        iep["goals"] = Array()

    record(HUDA.user_id, create)
    while len(records) < count:
        if len(records) % 20_000 == 1:
            n = len(records)
            record(
                OMAR.user_id,
                lambda n=n: iep["goals"].append(Map({"id": f"g{n}", "title": f"Goal {n}"})),
            )
        else:
            record(HUDA.user_id, lambda: iep["notes"].insert(len(iep["notes"]), "a"))
    return records


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "collab.db")
    await opened.open()
    yield opened
    await opened.aclose()


def feed_over(store: SQLiteStore, documents: Any) -> DigestFeed:
    directory = MemoryDirectory()
    directory.add(HUDA, DOCUMENT, editor=True)
    directory.add(OMAR, DOCUMENT, editor=True)
    directory.add(PARENT_EN, DOCUMENT, digest=True)
    notifications = SideTables(store).notifications()
    scheduler = DigestScheduler(notifications, directory, DigestPolicy(), ManualClock(DAYTIME))
    return DigestFeed(scheduler, documents, delay_seconds=0)


async def longest_stall(work: Any) -> float:
    """Run `work` while a probe measures the longest the event loop went without serving it.

    Counted in the loop thread's CPU time, so time the machine gave other processes (this
    VM runs other work too) is not blamed on the code under test. The heap that earlier tests
    in this worker left behind is frozen first, as the server freezes its own at start
    (iep_collab/cli.py): a full collection over it is not the feed's pause.
    """
    stalls: list[float] = []
    done = asyncio.Event()
    gc.collect()
    gc.freeze()

    async def probe() -> None:
        while not done.is_set():
            asked = time.thread_time()
            await asyncio.sleep(0.001)
            stalls.append(time.thread_time() - asked)

    watching = asyncio.create_task(probe())
    try:
        await work
    finally:
        done.set()
        await watching
        gc.unfreeze()
    return max(stalls)


async def test_catching_up_a_long_log_never_stalls_the_loop_and_restarts_from_a_checkpoint(
    store: SQLiteStore,
) -> None:
    log = typed_log(ENTRIES + 10)
    for start in range(0, ENTRIES, 5_000):
        await store.append(log[start : start + 5_000])

    feed = feed_over(store, store)
    feed.notify(DOCUMENT, ENTRIES)
    stall = await longest_stall(feed.idle())
    await feed.aclose()
    print(f"longest event-loop stall over {ENTRIES} entries: {stall * 1000:.1f} ms")
    assert stall < 0.020, f"the event loop waited {stall * 1000:.1f} ms"
    window = feed.scheduler.window(DOCUMENT, PARENT_EN.user_id)
    assert window is not None and window.through_seq == ENTRIES
    message = render(
        feed.scheduler._windows[(DOCUMENT, PARENT_EN.user_id)].digest.in_order(),
        PARENT_EN.language,
        "https://iep.example.test",
    )
    assert message is not None
    assert "Goal 1" in message.text and OMAR.name in message.text and HUDA.name in message.text

    # A new process: the copy is rebuilt from the last checkpoint, not from seq 0.
    await store.append(log[ENTRIES:])
    recorded = ReadsRecorded(store)
    again = feed_over(store, recorded)
    await again.scheduler.restore()
    again.notify(DOCUMENT, ENTRIES + 10)
    await again.idle()
    await again.aclose()
    checkpoint = await again.scheduler.store.checkpoint(DOCUMENT)
    assert checkpoint is not None and checkpoint.seq >= ENTRIES - 1_000
    assert min(recorded.read_after) >= checkpoint.seq
    assert again.scheduler.window(DOCUMENT, PARENT_EN.user_id) is not None
    assert again.scheduler.window(DOCUMENT, PARENT_EN.user_id).through_seq == ENTRIES + 10


async def test_the_sync_path_reports_stored_entries_and_nothing_else(store: SQLiteStore) -> None:
    feed = feed_over(store, store)
    records: Sequence[UpdateRecord] = typed_log(3)
    await store.append(records)
    feed.notify(DOCUMENT, 3)
    await feed.idle()
    await feed.aclose()
    assert await feed.scheduler.store.watermark(DOCUMENT) == 3


async def test_a_document_nobody_gets_digests_of_is_not_read(store: SQLiteStore) -> None:
    records = [r._replace(document="iep/unwatched") for r in typed_log(1_200)]
    await store.append(records)
    recorded = ReadsRecorded(store)
    feed = feed_over(store, recorded)  # recipients only for DOCUMENT
    feed.notify("iep/unwatched", 1_200)
    await feed.idle()
    await feed.aclose()
    assert recorded.read_after == []
    assert await feed.scheduler.store.watermark("iep/unwatched") == 1_200
