"""The digests' feed: stored log entries -> attributed ChangeSets -> recipients' windows."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import structlog
from pycrdt import Doc, merge_updates

from collab_server.hooks import Extension, StorePayload
from collab_server.identity import ConnectionOrigin, Origin, ServerOrigin, is_server_change
from collab_server.store import DocumentStore, UpdateRecord
from integrations.contracts import Checkpoint
from integrations.digest import DigestScheduler
from integrations.iep import ChangeSet, DocumentWatch

log = structlog.get_logger("collab.integrations.feed")

# A batch of log entries read at once; a checkpoint every this many entries recorded.
_BATCH = 500
_CHECKPOINT_EVERY = 1_000
# Longest the feed computes before it lets the event loop serve sockets.
_SLICE_SECONDS = 0.005
# Consecutive entries of one person applied as one change (their ChangeSets would merge).
_RUN = 100
# Documents whose own copy the feed keeps in memory (the least recently used go first).
_READERS = 64
_RETRY_SECONDS = 5.0
# Entries of a document nobody gets digests of between two writes of its watermark.
_PASS_OVER = 500


class _Reader:
    """The digests' own copy of one document, at log position `seq`."""

    def __init__(self, document: str, doc: Doc[Any], seq: int) -> None:
        self.document = document
        self.doc = doc
        self.seq = seq
        self.since_checkpoint = 0
        self.watch = DocumentWatch(document, doc)

    def close(self) -> None:
        self.watch.close()


class DigestFeed(Extension):
    """Reads each document's stored log after its watermark and records what parents get.

    The sync path only reports "stored through seq N" (`on_store`, coalesced per document);
    this feed reads the new entries in batches, applies them to a copy of the document of its
    own (so deleted items keep their titles), turns them into attributed ChangeSets and saves
    the windows, the watermark and now and then the copy itself (a checkpoint) in one
    transaction: exactly once across crashes, never reading the log from its start, and
    never holding the event loop for more than a few milliseconds at a time.
    """

    name = "digests"
    priority = 200

    def __init__(
        self,
        scheduler: DigestScheduler,
        documents: DocumentStore,
        *,
        delay_seconds: float = 1.0,
    ) -> None:
        self.scheduler = scheduler
        self.documents = documents
        self.delay_seconds = delay_seconds  # lets a burst of keystrokes become one batch
        self._behind: dict[str, int] = {}  # document -> stored through (bounded by documents)
        self._readers: OrderedDict[str, _Reader] = OrderedDict()
        self._passed: dict[str, int] = {}  # watermarks of documents nobody gets digests of
        self._checkpoints: dict[str, Checkpoint] = {}  # of evicted copies, saved next batch
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        # False on a process that does not lead the jobs (cluster mode): the leader records.
        self.active = True

    async def on_store(self, payload: StorePayload) -> None:
        self.notify(payload.document, payload.last_seq)

    def notify(self, document: str, through_seq: int) -> None:
        """Log entries of `document` up to `through_seq` are stored: record them."""
        if not self.active:
            return
        self._behind[document] = max(self._behind.get(document, 0), through_seq)
        self._idle.clear()
        self._wake.set()
        if self._worker is None and not self._closed:
            self._worker = asyncio.create_task(self._work(), name="digest-feed")

    async def idle(self) -> None:
        """Return once every entry reported so far is recorded."""
        if self._worker is not None:
            await self._idle.wait()

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            retry: dict[str, int] = {}
            while self._behind:
                document, through = self._behind.popitem()
                try:
                    await self._consume(document, through)
                except Exception:
                    log.exception("digest_feed_failed", document=document)
                    self._forget(document)
                    retry[document] = through
            try:
                await self._save_evicted()
            except Exception:
                log.exception("digest_checkpoint_failed")
            if retry:
                # The stores failed: nothing was recorded past the watermark; try later.
                asyncio.get_running_loop().call_later(_RETRY_SECONDS, self._retry, retry)
            elif not self._behind:
                self._idle.set()

    def _retry(self, documents: dict[str, int]) -> None:
        for document, through in documents.items():
            self.notify(document, through)

    async def _consume(self, document: str, through: int) -> None:
        if not await self.scheduler.directory.digest_recipient_ids(document):
            await self._pass_over(document, through)
            return
        reader = await self._reader(document)
        while reader.seq < through:
            records = await self.documents.updates_since(document, reader.seq, _BATCH)
            if not records:
                break
            if records[0].seq != reader.seq + 1:
                reader = await self._skip_missing_history(reader)
                continue
            changes = await self._changes(reader, records)
            reader.seq = records[-1].seq
            reader.since_checkpoint += len(records)
            checkpoint = None
            if reader.since_checkpoint >= _CHECKPOINT_EVERY:
                checkpoint = Checkpoint(reader.seq, reader.doc.get_update())
                reader.since_checkpoint = 0
            await self.scheduler.record(document, changes, reader.seq, checkpoint)

    async def _save_evicted(self) -> None:
        """Checkpoints of copies that left memory, each saved with its own watermark."""
        while self._checkpoints:
            document, checkpoint = self._checkpoints.popitem()
            await self.scheduler.record(document, [], checkpoint.seq, checkpoint)

    async def _pass_over(self, document: str, through: int) -> None:
        """Nobody gets digests of `document`: its entries are not read at all, and the
        watermark moves every _PASS_OVER entries (a recipient added later may get the last
        few as news). Its copy, now behind, leaves memory."""
        self._forget(document)
        watermark = self._passed.get(document)
        if watermark is None:
            watermark = await self.scheduler.store.watermark(document) or 0
        if through - watermark >= _PASS_OVER:
            await self.scheduler.record(document, [], through)
            watermark = through
        self._passed[document] = watermark
        if len(self._passed) > _READERS * 16:
            self._passed.pop(next(iter(self._passed)))

    async def _changes(self, reader: _Reader, records: Sequence[UpdateRecord]) -> list[ChangeSet]:
        names = await self._names(
            {
                r.user_id
                for r in records
                if r.user_id is not None and not is_server_change(r.user_id)
            }
        )
        changes: list[ChangeSet] = []
        started = time.perf_counter()
        for run in _runs(records):
            user_id = run[0].user_id
            origin: Origin = (
                ConnectionOrigin("log", user_id, names.get(user_id, user_id))
                if user_id is not None and not is_server_change(user_id)
                else ServerOrigin("log")  # the server's (or an anonymous) change: not news
            )
            update = run[0].update if len(run) == 1 else merge_updates(*(r.update for r in run))
            with reader.doc.transaction(origin=origin):
                reader.doc.apply_update(update)
            change = reader.watch.take_last()
            if change is not None:
                last = run[-1]
                changes.append(dataclasses.replace(change, seq=last.seq, at=last.created_at))
            if time.perf_counter() - started > _SLICE_SECONDS:
                await asyncio.sleep(0)
                started = time.perf_counter()
        return changes

    async def _names(self, user_ids: set[str]) -> dict[str, str]:
        names = {}
        for user_id in user_ids:
            person = await self.scheduler.directory.person(user_id)
            names[user_id] = person.name if person is not None else user_id
        return names

    async def _reader(self, document: str) -> _Reader:
        """The document's copy at its watermark: from memory, else checkpoint + log."""
        reader = self._readers.get(document)
        if reader is not None:
            self._readers.move_to_end(document)
            return reader
        watermark = await self.scheduler.store.watermark(document) or 0
        checkpoint = self._checkpoints.pop(document, None)
        if checkpoint is None:
            checkpoint = await self.scheduler.store.checkpoint(document)
        doc: Doc[Any] = Doc()
        seq = 0
        if checkpoint is not None and checkpoint.seq <= watermark:
            doc.apply_update(checkpoint.state)
            seq = checkpoint.seq
        while seq < watermark:  # recorded already: rebuild quietly, in merged runs
            records = await self.documents.updates_since(
                document, seq, min(_BATCH, watermark - seq)
            )
            if not records or records[0].seq != seq + 1:
                return self._keep(await self._from_snapshot(document, watermark))
            started = time.perf_counter()
            for start in range(0, len(records), _RUN):
                doc.apply_update(merge_updates(*(r.update for r in records[start : start + _RUN])))
                if time.perf_counter() - started > _SLICE_SECONDS:
                    await asyncio.sleep(0)
                    started = time.perf_counter()
            seq = records[-1].seq
        return self._keep(_Reader(document, doc, seq))

    async def _from_snapshot(self, document: str, watermark: int) -> _Reader:
        """History the copy needs was deleted (COLLAB_KEEP_HISTORY=false): start from the
        document's snapshot; changes between the watermark and it are not digested."""
        stored = await self.documents.load(document)
        doc: Doc[Any] = Doc()
        if stored.snapshot:
            doc.apply_update(stored.snapshot)
        if stored.snapshot_seq > watermark:
            log.warning(
                "digest_history_missing", document=document, skipped_through=stored.snapshot_seq
            )
        return _Reader(document, doc, max(stored.snapshot_seq, watermark))

    async def _skip_missing_history(self, reader: _Reader) -> _Reader:
        self._forget(reader.document)
        fresh = await self._from_snapshot(reader.document, reader.seq)
        await self.scheduler.record(reader.document, [], fresh.seq)
        return self._keep(fresh)

    def _keep(self, reader: _Reader) -> _Reader:
        self._passed.pop(reader.document, None)
        self._readers[reader.document] = reader
        while len(self._readers) > _READERS:
            _, evicted = self._readers.popitem(last=False)
            evicted.close()
            if evicted.since_checkpoint:
                # Its next use starts from here instead of replaying up to 1,000 entries.
                self._checkpoints[evicted.document] = Checkpoint(
                    evicted.seq, evicted.doc.get_update()
                )
        return reader

    def _forget(self, document: str) -> None:
        reader = self._readers.pop(document, None)
        if reader is not None:
            reader.close()

    async def aclose(self, drain_seconds: float = 5.0) -> None:
        """Record what is reported (bounded), then stop."""
        self._closed = True
        if self._worker is None:
            return
        self.delay_seconds = 0.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), drain_seconds)
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        self._worker = None
        for document in list(self._readers):
            self._forget(document)


def _runs(records: Sequence[UpdateRecord]) -> list[Sequence[UpdateRecord]]:
    """Consecutive entries of one person (at most _RUN), in log order."""
    runs: list[Sequence[UpdateRecord]] = []
    start = 0
    for index in range(1, len(records) + 1):
        if (
            index == len(records)
            or records[index].user_id != records[start].user_id
            or index - start >= _RUN
        ):
            runs.append(records[start:index])
            start = index
    return runs
