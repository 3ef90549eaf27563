"""Document lifecycle: load, group-commit, broadcast, compact, unload.

Durability order for every change: apply to the in-memory doc (validates it) -> append to the
store -> broadcast. Appends are batched: a store that is durable without awaiting (SQLite's
journal, memory) takes everything applied in one event-loop turn at the start of the next;
for the others one committer task puts whatever arrives while a commit is running into the
next transaction. Either way a busy server commits many updates at once and an idle one
commits each immediately. A failing store keeps everything in memory, reports not-ready and
retries with backoff; no update is broadcast before it is stored.

One live copy per document, one writer per log: a document is held from `acquire` to
`release` (a socket is a holder from before its handshake until it is gone) and is unloaded
only when nobody holds it; an `acquire` during an unload waits for it and loads afresh. Across
processes `DocumentOwnership` decides who may load it. A document whose records the store
refuses, or whose log positions another writer took, is dropped alone: its sockets are closed
(their clients still hold every unacknowledged change and resend it on reconnect) and every
other document goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

import structlog
from pycrdt import Doc, create_update_message

from collab_server.cluster import Bus, DocumentOwnership, SingleNode
from collab_server.connection import Connection
from collab_server.document import AwarenessChange, LiveDocument
from collab_server.errors import DocumentsFailed, LogConflict, Rejected
from collab_server.hooks import (
    AwarenessPayload,
    DisconnectPayload,
    Hooks,
    LoadPayload,
    StorePayload,
    UnloadPayload,
)
from collab_server.identity import (
    ConnectionOrigin,
    Origin,
    PeerNodeOrigin,
    ServerOrigin,
    is_server_change,
    server_user_id,
)
from collab_server.join_budget import JoinBudget
from collab_server.metrics import Metrics
from collab_server.protocol import CloseCode
from collab_server.replication import ClusterStore, Replication
from collab_server.store import DocumentStore, ImmediateAppend, UpdateRecord

log = structlog.get_logger("collab.registry")

# How long a log conflict keeps /readyz at 503.
CONFLICT_ALERT_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class RegistryLimits:
    unload_grace_seconds: float = 30.0
    compact_max_updates: int = 1000
    compact_max_bytes: int = 4 * 1024 * 1024
    group_commit_window_seconds: float = 0.0
    store_retry_max_seconds: float = 5.0
    # While the store fails, writes held in memory stop at this many bytes (then 1013).
    max_unstored_bytes: int = 64 * 1024 * 1024
    # Hook calls (awareness, disconnects) waiting for slow extensions; beyond it they are shed.
    hook_queue_max: int = 10_000


# Brings a loaded document up to the current schema (in one transaction); returns whether it
# changed anything. The application's, not the core's: the core knows no schema.
DocumentUpgrade = Callable[[Doc[Any]], bool]
UPGRADE_ORIGIN = ServerOrigin("upgrade")


@dataclass(slots=True)
class _Pending:
    live: LiveDocument
    record: UpdateRecord
    origin: Origin


class Registry:
    def __init__(
        self,
        store: DocumentStore,
        hooks: Hooks,
        metrics: Metrics,
        limits: RegistryLimits,
        *,
        ownership: DocumentOwnership | None = None,
        bus: Bus | None = None,
        cluster_store: ClusterStore | None = None,
        join_budget: JoinBudget | None = None,
        upgrade: DocumentUpgrade | None = None,
    ) -> None:
        self.store = store
        self.upgrade = upgrade
        self.join_budget = join_budget
        self.ownership: DocumentOwnership = ownership or SingleNode()
        # Cluster mode: replicas and owners over a bus; None for one process (no cost then).
        self.replication: Replication | None = None
        if bus is not None:
            if cluster_store is None:
                raise ValueError("cluster mode needs a store replicas can read (Postgres)")
            self.replication = Replication(self, bus, self.ownership, cluster_store, metrics)
        self.hooks = hooks
        self.metrics = metrics
        self.limits = limits
        self.store_healthy = True
        self.store_error: str | None = None  # why the last append failed, while it fails
        self.closing = False
        self._live: dict[str, LiveDocument] = {}
        self._loading: dict[str, asyncio.Future[None]] = {}
        self._unloading: dict[str, asyncio.Future[None]] = {}
        self._unload_timers: dict[str, asyncio.TimerHandle] = {}
        self._pending: list[_Pending] = []
        self._unstored_bytes = 0  # updates applied and not yet stored, in flight included
        self._wake_committer = asyncio.Event()
        # A store that is durable without awaiting commits with no task switch (see
        # `ImmediateAppend`); others, and a configured commit window, go through the committer.
        self._append_now = (
            store.append_now
            if isinstance(store, ImmediateAppend) and not limits.group_commit_window_seconds
            else None
        )
        self._commit_scheduled = False
        self._committer: asyncio.Task[None] | None = None
        # Store notifications coalesce per document (bounded by the live documents); the
        # other hook calls queue up to a bound and are shed beyond it, with a metric.
        self._stored: dict[str, StorePayload] = {}
        self._hook_calls: deque[Callable[[], Awaitable[None]]] = deque()
        self._wake_hooks = asyncio.Event()
        self._hook_runner: asyncio.Task[None] | None = None
        self._compactions: dict[LiveDocument, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._conflicts: deque[float] = deque(maxlen=1000)

    async def start(self) -> None:
        self._committer = asyncio.create_task(self._commit_loop(), name="group-commit")
        self._hook_runner = asyncio.create_task(self._run_hooks(), name="hooks")
        await self.ownership.start(self._ownership_lost)
        if self.replication is not None:
            await self.replication.start()

    # -- documents ------------------------------------------------------------------------

    def get_live(self, name: str) -> LiveDocument | None:
        return self._live.get(name)

    @property
    def live_documents(self) -> dict[str, LiveDocument]:
        return self._live

    async def acquire(self, name: str) -> LiveDocument:
        """Hold the live document, loading it once even when many connections join at once.

        Every `acquire` is paired with one `release`; a held document is never unloaded.
        """
        while True:
            unloading = self._unloading.get(name)
            if unloading is not None:
                await asyncio.shield(unloading)
                continue
            live = self._live.get(name)
            if live is not None:
                live.holders += 1
                self._cancel_unload(name)
                return live
            loading = self._loading.get(name)
            if loading is not None:
                await asyncio.shield(loading)  # raises what the load raised
                continue
            loading = asyncio.get_running_loop().create_future()
            self._loading[name] = loading
            try:
                live = await self._load(name)
            except BaseException as exc:
                loading.set_exception(exc)
                loading.exception()  # retrieved: waiters get it, nobody else needs to
                raise
            finally:
                del self._loading[name]
            loading.set_result(None)
            live.holders += 1
            return live

    def release(self, live: LiveDocument) -> None:
        """The end of one `acquire`: the last holder out starts the unload grace period."""
        live.holders -= 1
        if live.holders == 0 and self._live.get(live.name) is live:
            self._schedule_unload(live)

    @contextlib.asynccontextmanager
    async def using(self, name: str) -> AsyncIterator[LiveDocument]:
        """The live document for work without a socket (taking a version): loaded if needed,
        and let go after the unload grace if nobody connects meanwhile."""
        live = await self.acquire(name)
        try:
            yield live
        finally:
            self.release(live)

    async def _load(self, name: str) -> LiveDocument:
        if self.replication is not None:
            return await self.replication.load(name)
        await self.ownership.acquire(name)
        try:
            return await self._load_owned(name)
        except BaseException:
            await self.ownership.release(name)
            raise

    async def _load_owned(
        self, name: str, setup: Callable[[LiveDocument], None] | None = None
    ) -> LiveDocument:
        """Load `name` from the store (its owner, or in cluster mode a replica: `setup`)."""
        started = time.perf_counter()
        stored = await self.store.load(name)
        self.metrics.store_latency.labels("load").observe(time.perf_counter() - started)
        live = LiveDocument.from_stored(name, stored, self._on_update, self.join_budget)
        if setup is not None:
            setup(live)
        try:
            await self.hooks.on_load(LoadPayload(name, live.doc, live.last_seq))
        except Rejected:
            live.release()
            raise
        self._live[name] = live
        self.metrics.documents_loaded.set(len(self._live))
        log.info("document_loaded", document=name, seq=live.last_seq, tail=len(stored.tail))
        # Only the owner writes: a replica sees the owner's upgrade through the log.
        if setup is None and self.upgrade is not None:
            try:
                if live.change(self.upgrade, UPGRADE_ORIGIN):
                    log.info("document_upgraded", document=name, seq=live.last_seq)
            except Exception:
                log.exception("document_upgrade_failed", document=name)
        self.maybe_compact(live)
        return live

    async def connect(self, live: LiveDocument, connection: Connection) -> None:
        await live.join(connection)
        self.metrics.connections.inc()

    async def disconnect(self, live: LiveDocument, connection: Connection) -> None:
        if connection not in live.connections:
            return
        change = live.leave(connection)
        self.metrics.connections.dec()
        if change is not None:
            self.notify_awareness(live, connection, change)
        if self.hooks.has("on_disconnect"):
            payload = DisconnectPayload(
                live.name,
                connection.id,
                connection.identity,
                connection.close_code or CloseCode.NORMAL,
            )
            self._queue_hook(lambda: self.hooks.on_disconnect(payload), "on_disconnect")

    def notify_awareness(
        self, live: LiveDocument, connection: Connection, change: AwarenessChange
    ) -> None:
        if self.hooks.has("on_awareness"):
            payload = AwarenessPayload(
                live.name, connection.id, change.added, change.updated, change.removed
            )
            self._queue_hook(lambda: self.hooks.on_awareness(payload), "on_awareness")

    @property
    def writes_admitted(self) -> bool:
        """False while the store fails and the writes it has not taken reach their bound."""
        return self.store_healthy or self._unstored_bytes < self.limits.max_unstored_bytes

    def recent_conflicts(self, now: float | None = None) -> int:
        """Log conflicts in the last CONFLICT_ALERT_SECONDS."""
        since = (time.monotonic() if now is None else now) - CONFLICT_ALERT_SECONDS
        return sum(1 for at in self._conflicts if at >= since)

    # -- unload ---------------------------------------------------------------------------

    def _schedule_unload(self, live: LiveDocument) -> None:
        self._cancel_unload(live.name)
        loop = asyncio.get_running_loop()
        self._unload_timers[live.name] = loop.call_later(
            self.limits.unload_grace_seconds, lambda: self._spawn(self._unload(live))
        )

    def _cancel_unload(self, name: str) -> None:
        timer = self._unload_timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    async def _unload(self, live: LiveDocument) -> None:
        name = live.name
        self._unload_timers.pop(name, None)
        if live.holders or self._live.get(name) is not live:
            return  # held again since the timer was set, or already gone
        if live.durable_seq < live.last_seq or live.compacting:
            self._schedule_unload(live)  # never drop what the store has not taken yet
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._unloading[name] = done
        del self._live[name]
        self.metrics.documents_loaded.set(len(self._live))
        try:
            await self.hooks.on_unload(UnloadPayload(name, live.doc))
            live.release()
            if self.replication is not None:
                await self.replication.unloaded(live)
            else:
                await self.ownership.release(name)
            log.info("document_unloaded", document=name)
        except Exception:
            log.exception("document_unload_failed", document=name)
        finally:
            del self._unloading[name]
            done.set_result(None)

    def _drop(self, live: LiveDocument, code: CloseCode, reason: str) -> None:
        """Stop serving `live` at once, without storing what it holds (see the module doc)."""
        if self._live.get(live.name) is not live:
            return
        del self._live[live.name]
        self.metrics.documents_loaded.set(len(self._live))
        self._cancel_unload(live.name)
        kept = [item for item in self._pending if item.live is not live]
        self._unstored_bytes -= sum(
            len(item.record.update) for item in self._pending if item.live is live
        )
        self._pending = kept
        compaction = self._compactions.pop(live, None)
        if compaction is not None:
            compaction.cancel()
        for connection in list(live.connections):
            connection.close(code, reason)
        live.release()
        if self.replication is not None:
            self.replication.dropped(live)
        self._spawn(self.hooks.on_unload(UnloadPayload(live.name, live.doc)))
        log.error("document_dropped", document=live.name, code=int(code), reason=reason)

    def _ownership_lost(self, documents: Collection[str]) -> None:
        for name in documents:
            live = self._live.get(name)
            if live is not None:
                self._drop(live, CloseCode.SERVED_ELSEWHERE, "this server lost the document")

    # -- changes and group commit ---------------------------------------------------------

    def _on_update(self, live: LiveDocument, update: bytes, origin: Origin) -> None:
        if isinstance(origin, PeerNodeOrigin):
            # Stored by the process that owns the document before it was published; the
            # replica's own client that sent it has it already.
            exclude = live.connection_by_id(origin.connection_id) if origin.connection_id else None
            sent = live.broadcast(create_update_message(update), exclude)
            self.metrics.updates_out.inc(sent)
            return
        if live.forward is not None:
            # A replica never writes the log: a change the server made here goes to the owner.
            assert self.replication is not None
            self.replication.forward_server_change(live, update, origin)
            return
        live.last_seq += 1
        user_id = (
            origin.user_id
            if isinstance(origin, ConnectionOrigin)
            else server_user_id(origin.reason)
        )
        record = UpdateRecord(live.name, live.last_seq, update, user_id, time.time())
        self._pending.append(_Pending(live, record, origin))
        self._unstored_bytes += len(update)
        if self._append_now is not None and self.store_healthy:
            if not self._commit_scheduled:
                # Next loop turn: updates from every socket read in this turn share the commit.
                self._commit_scheduled = True
                asyncio.get_running_loop().call_soon(self._commit_now)
        else:
            self._wake_committer.set()

    def _commit_now(self) -> None:
        assert self._append_now is not None
        self._commit_scheduled = False
        batch, self._pending = self._pending, []
        if not batch:
            return
        started = time.perf_counter()
        try:
            self._append_now([item.record for item in batch])
        except DocumentsFailed as exc:
            self._partly_committed(batch, exc, started)
            return
        except Exception as exc:
            self._commit_failed(batch, exc, retry_in=0.0)
            self._wake_committer.set()  # the committer retries with backoff
            return
        self._committed(batch, started)

    async def _commit_loop(self) -> None:
        delay = 0.05
        while True:
            await self._wake_committer.wait()
            if self.limits.group_commit_window_seconds:
                await asyncio.sleep(self.limits.group_commit_window_seconds)
            self._wake_committer.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            started = time.perf_counter()
            try:
                await self.store.append([item.record for item in batch])
            except DocumentsFailed as exc:
                delay = 0.05
                self._partly_committed(batch, exc, started)
                continue
            except Exception as exc:
                self._commit_failed(batch, exc, retry_in=delay)
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, self.limits.store_retry_max_seconds)
                self._wake_committer.set()
                continue
            delay = 0.05
            self._committed(batch, started)

    def _commit_failed(self, batch: list[_Pending], exc: Exception, retry_in: float) -> None:
        self.store_healthy = False
        self.store_error = f"{type(exc).__name__}: {exc}"[:200]
        self._pending = batch + self._pending
        self.metrics.store_failures.labels("append").inc()
        log.exception("store_append_failed", updates=len(batch), retry_in=retry_in)
        if not self.writes_admitted:
            # Past the bound, a joiner of these documents would wait with no end in sight.
            for live in {item.live for item in self._pending}:
                live.abandon_joiners(
                    CloseCode.TRY_AGAIN_LATER, "the server cannot store changes right now"
                )

    def _partly_committed(
        self, batch: list[_Pending], exc: DocumentsFailed, started: float
    ) -> None:
        """Everything but `exc.documents` is stored; those are dropped alone."""
        stored = [item for item in batch if item.record.document not in exc.documents]
        if stored:
            self._committed(stored, started)
        else:
            self.store_healthy = True  # the store answered: it is the records that failed
        self._unstored_bytes -= sum(
            len(item.record.update) for item in batch if item.record.document in exc.documents
        )
        conflict = isinstance(exc, LogConflict)
        label = "log_conflict" if conflict else "records_refused"
        self.metrics.store_failures.labels(label).inc()
        if conflict:
            self.metrics.log_conflicts.inc(len(exc.documents))
            self._conflicts.append(time.monotonic())
        code = CloseCode.SERVED_ELSEWHERE if conflict else CloseCode.INTERNAL_ERROR
        reason = (
            "another server process wrote this IEP; reconnecting"
            if conflict
            else "your latest changes could not be stored"
        )
        for live in {item.live for item in batch if item.record.document in exc.documents}:
            self._drop(live, code, reason)

    def _committed(self, batch: list[_Pending], started: float) -> None:
        if not self.store_healthy:
            log.info("store_recovered")
        self.store_healthy = True
        self.store_error = None
        elapsed = time.perf_counter() - started
        self._after_commit(batch)
        # Counted after the broadcast: readers should not wait for our metrics.
        self.metrics.store_latency.labels("append").observe(elapsed)
        self.metrics.commit_batch.observe(len(batch))

    def _after_commit(self, batch: list[_Pending]) -> None:
        stored: dict[LiveDocument, list[UpdateRecord]] = {}  # per document, in seq order
        delivered = 0
        unstored = 0
        for item in batch:
            live, record = item.live, item.record
            unstored += len(record.update)
            live.mark_durable(record.seq)
            live.log_counter.updates += 1
            live.log_counter.nbytes += len(record.update)
            stored.setdefault(live, []).append(record)
            exclude = None
            if isinstance(item.origin, ConnectionOrigin):
                exclude = live.connection_by_id(item.origin.connection_id)
            delivered += live.broadcast(create_update_message(record.update), exclude)
            if self.replication is not None:
                self.replication.stored(live, record, item.origin)
        self._unstored_bytes -= unstored
        self.metrics.updates_in.inc(len(batch))
        self.metrics.updates_out.inc(delivered)
        wants_store = self.hooks.has("on_store")
        for live, records in stored.items():
            if wants_store:
                self._note_stored(live.name, records)
            if self.replication is not None:
                self.replication.stored_through(live.name, records[-1].seq)
            self.maybe_compact(live)

    # -- hooks ----------------------------------------------------------------------------

    def _note_stored(self, document: str, records: list[UpdateRecord]) -> None:
        earlier = self._stored.get(document)
        nbytes = sum(len(r.update) for r in records)
        person = next(
            (r.user_id for r in reversed(records) if r.user_id and not is_server_change(r.user_id)),
            None,
        )
        if earlier is None:
            payload = StorePayload(
                document, records[0].seq, records[-1].seq, len(records), nbytes, person
            )
        else:
            payload = StorePayload(
                document,
                earlier.first_seq,
                records[-1].seq,
                earlier.updates + len(records),
                earlier.nbytes + nbytes,
                person or earlier.last_user_id,
            )
        self._stored[document] = payload
        self._wake_hooks.set()

    def _queue_hook(self, call: Callable[[], Awaitable[None]], hook: str) -> None:
        if len(self._hook_calls) >= self.limits.hook_queue_max:
            self.metrics.hooks_shed.labels(hook).inc()
            log.warning("hook_call_shed", hook=hook, queued=len(self._hook_calls))
            return
        self._hook_calls.append(call)
        self._wake_hooks.set()

    async def _run_hooks(self) -> None:
        # One runner keeps hook calls in order without stalling the committer.
        while True:
            await self._wake_hooks.wait()
            self._wake_hooks.clear()
            while self._stored or self._hook_calls:
                if self._stored:
                    stored, self._stored = self._stored, {}
                    for payload in stored.values():
                        await self.hooks.on_store(payload)
                if self._hook_calls:
                    await self._hook_calls.popleft()()

    # -- compaction -----------------------------------------------------------------------

    def maybe_compact(self, live: LiveDocument) -> None:
        """Fold the log into a snapshot once it is long enough (the owner only)."""
        if live.forward is not None:
            return  # a replica never writes the store
        counter = live.log_counter
        over = (
            counter.updates >= self.limits.compact_max_updates
            or counter.nbytes >= self.limits.compact_max_bytes
        )
        if over and not live.compacting:
            live.compacting = True
            task = asyncio.ensure_future(self._compact(live))
            self._compactions[live] = task
            task.add_done_callback(lambda _: self._compactions.pop(live, None))

    async def _compact(self, live: LiveDocument) -> None:
        try:
            # The snapshot is exactly the log's state through `through`: taken together, and
            # written only once every entry up to it is stored.
            through = live.last_seq
            snapshot = live.doc.get_update()
            folded_updates, folded_bytes = live.log_counter.updates, live.log_counter.nbytes
            await live.wait_durable()
            started = time.perf_counter()
            await self.store.compact(live.name, snapshot, through)
            self.metrics.store_latency.labels("compact").observe(time.perf_counter() - started)
            self.metrics.compactions.inc()
            live.log_counter.updates -= folded_updates
            live.log_counter.nbytes -= folded_bytes
            log.info(
                "document_compacted",
                document=live.name,
                through_seq=through,
                updates=folded_updates,
                snapshot_bytes=len(snapshot),
            )
        except Exception:
            self.metrics.store_failures.labels("compact").inc()
            log.exception("compaction_failed", document=live.name)
            return
        finally:
            live.compacting = False
        # Updates committed while this compaction ran may already be over the threshold again.
        if self._live.get(live.name) is live:
            self.maybe_compact(live)

    # -- lifetime -------------------------------------------------------------------------

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def settle(self) -> None:
        """Wait for the unloads and compactions under way or already due to finish."""
        loop = asyncio.get_running_loop()
        while True:
            running = [*self._background, *self._compactions.values()]
            if running:
                await asyncio.wait(running)
            elif any(t.when() <= loop.time() for t in self._unload_timers.values()):
                await asyncio.sleep(0)  # a due timer runs in the loop's next turn
            else:
                return

    async def flush(self, within_seconds: float = 10.0) -> bool:
        """Wait until every applied update is durable; False if the store did not take them."""
        deadline = time.monotonic() + within_seconds
        for live in list(self._live.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(live.wait_durable(), remaining)
            except TimeoutError:
                return False
        return True

    async def close_connections(self, code: int, reason: str) -> None:
        connections = [c for live in self._live.values() for c in live.connections]
        for connection in connections:
            connection.close(code, reason)
        for connection in connections:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.closed(), 2.0)

    async def aclose(self) -> None:
        self.closing = True
        flushed = await self.flush()
        if not flushed:
            # Never acknowledged: their authors' clients still hold them and resend them.
            log.error("shutdown_with_unstored_updates", pending=len(self._pending))
        for timer in self._unload_timers.values():
            timer.cancel()
        tasks = [self._committer, self._hook_runner, *self._background]
        for task in [*tasks, *self._compactions.values()]:
            if task is not None:
                task.cancel()
        for live in list(self._live.values()):
            live.release()
        self._live.clear()
        if self.replication is not None:
            await self.replication.aclose()
        await self.ownership.aclose()
