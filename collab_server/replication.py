"""Cluster mode: one writer per document, replicas forward, the bus carries, the store decides.

Every process serving a document subscribes to its channel. The one holding the document's
ownership lock (the owner) assigns log positions exactly as a lone process does and, once a
change is stored, publishes it (STORED, with its position). Any other process holds a replica:
a copy that only ever contains stored changes, applied in position order. A replica's client
edit is not applied there: it is forwarded (SUBMIT, with an id) and kept until the owner's
STORED carrying that id comes back (or an ACK for a duplicate or a change that changed
nothing); only then does it count as stored. Unanswered submits are sent again every second;
the owner remembers recent ids per document and never logs one twice.

The bus may lose anything: a replica that sees a position beyond the next one, or whose
document's last position in the store is ahead (checked every two seconds for all replicas in
one query), reads the missing entries from the store. Ownership moves when the owner unloads
(RELEASED) or dies (its lock goes with its database session): replicas whose submits go
unanswered, or that see a node's lease lapse, try the lock; the winner reads the store to its
end, becomes the owner and applies the submits it still holds as its own clients' edits.

Presence crosses processes tagged with the process it came from, and is removed everywhere
when that process's lease lapses. See docs/decisions.md ("Cluster mode").
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from collab_server import cluster_wire as wire
from collab_server.cluster import Bus, DocumentOwnership, OwnedElsewhere
from collab_server.connection import Connection
from collab_server.document import LiveDocument, remote_owner
from collab_server.errors import ProtocolError, Rejected
from collab_server.identity import (
    ConnectionOrigin,
    Origin,
    PeerNodeOrigin,
    ServerOrigin,
    SubmittedOrigin,
    server_user_id,
)
from collab_server.metrics import Metrics
from collab_server.protocol import CloseCode
from collab_server.store import StoredDocument, UpdateRecord

if TYPE_CHECKING:
    from collab_server.registry import Registry

log = structlog.get_logger("collab.replication")

RESEND_SECONDS = 1.0  # a submit with no answer for this long is sent again
TICK_SECONDS = 0.5
CHECK_EVERY_TICKS = 4  # the store's last positions of all replicas, every two seconds
MAX_SUBMITS = 2000  # forwarded and unanswered, per document; past it writers get 1013
MAX_SUBMIT_BYTES = 32 * 1024 * 1024
MAX_AHEAD = 2000  # stored changes held while an earlier one is missing
RECENT_SUBMITS = 4096  # submit ids the owner remembers per document
FILL_BATCH = 1000
STORED_THROUGH_SECONDS = 0.5  # "stored through N" notices to the jobs leader, coalesced


class ClusterStore(Protocol):
    """What replicas read from the document store beyond loading."""

    async def load(self, document: str) -> StoredDocument: ...

    async def updates_since(
        self, document: str, after_seq: int, limit: int = 10_000
    ) -> list[UpdateRecord]: ...

    async def last_seqs(self, documents: Collection[str]) -> dict[str, int]:
        """The last stored position of each of `documents` that has one."""


@dataclass(slots=True)
class _Submit:
    connection_id: str
    update: bytes
    user_id: str | None
    display_name: str
    sent_at: float
    done_at: int | None = None  # acknowledged: stored at or before this position


@dataclass(eq=False)
class _Shared:
    """One document this process serves in cluster mode."""

    name: str
    live: LiveDocument | None = None  # None while loading
    owner: bool = False
    ahead: dict[int, wire.Stored] = field(default_factory=dict)
    early: list[wire.Submit] = field(default_factory=list)  # submits seen while loading
    submits: OrderedDict[str, _Submit] = field(default_factory=OrderedDict)
    submit_bytes: int = 0
    recent: OrderedDict[str, int] = field(default_factory=OrderedDict)
    filling: bool = False
    promoting: bool = False
    probed_at: float = 0.0


def doc_channel(document: str) -> str:
    return f"doc:{document}"


def node_channel(node_id: str) -> str:
    return f"node:{node_id}"


GLOBAL_CHANNEL = "global"

Revocation = Callable[[str, str, str | None], None]
StoredNotice = Callable[[str, int], None]


class Replication:
    def __init__(
        self,
        registry: Registry,
        bus: Bus,
        ownership: DocumentOwnership,
        store: ClusterStore,
        metrics: Metrics,
    ) -> None:
        self.registry = registry
        self.bus = bus
        self.node = bus.node_id
        self.ownership = ownership
        self.store = store
        self.metrics = metrics
        self._docs: dict[str, _Shared] = {}
        self._ids = itertools.count(1)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._through: dict[str, int] = {}
        self._through_timer: asyncio.TimerHandle | None = None
        self.on_revoke: list[Revocation] = []
        self.on_stored_through: list[StoredNotice] = []

    # -- lifetime -------------------------------------------------------------------------

    async def start(self) -> None:
        await self.bus.start(self)
        await self.bus.subscribe(node_channel(self.node), self._on_node_message)
        await self.bus.subscribe(GLOBAL_CHANNEL, self._on_global_message)
        self._ticker = asyncio.create_task(self._tick(), name="replication")

    async def aclose(self) -> None:
        """Let go of every document owned here and say so, so replicas take over at once."""
        if self._ticker is not None:
            self._ticker.cancel()
        for task in list(self._tasks):
            task.cancel()
        self._flush_through()
        for shared in list(self._docs.values()):
            if shared.owner:
                with contextlib.suppress(Exception):
                    await self.ownership.release(shared.name)
                self.bus.publish(doc_channel(shared.name), wire.encode(wire.Released(shared.name)))
        self._docs.clear()
        await self.bus.aclose()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def role(self, document: str) -> str | None:
        """ "owner", "replica" or None (not live here)."""
        shared = self._docs.get(document)
        if shared is None or shared.live is None:
            return None
        return "owner" if shared.owner else "replica"

    # -- loading and unloading ------------------------------------------------------------

    async def load(self, name: str) -> LiveDocument:
        shared = _Shared(name)
        self._docs[name] = shared
        channel = doc_channel(name)
        # Subscribed before the store is read: nothing stored after the read can be missed.
        subscribed = await self.bus.subscribe(
            channel, lambda data: self._on_doc_message(name, data)
        )
        try:
            try:
                await self.ownership.acquire(name)
                owner = True
            except OwnedElsewhere:
                if not subscribed:
                    raise Rejected(
                        CloseCode.TRY_AGAIN_LATER,
                        "this IEP is open on another server process that cannot be reached "
                        "right now; retrying",
                    ) from None
                owner = False
            try:
                live = await self.registry._load_owned(name, None if owner else self._as_replica)
            except BaseException:
                if owner:
                    await self.ownership.release(name)
                raise
        except BaseException:
            if self._docs.get(name) is shared:
                del self._docs[name]
            await self.bus.unsubscribe(channel)
            raise
        shared.live = live
        shared.owner = owner
        live.awareness_out = self._publish_awareness
        if owner:
            early, shared.early = shared.early, []
            for submit in early:
                self._receive_submit(shared, submit)
        else:
            self._drain_ahead(shared)
        # Who is already present on the other processes.
        self.bus.publish(channel, wire.encode(_query(name, self.node)))
        log.info("cluster_document_loaded", document=name, role=self.role(name))
        return live

    def _as_replica(self, live: LiveDocument) -> None:
        live.forward = self._forward

    async def unloaded(self, live: LiveDocument) -> None:
        """The registry unloaded `live` (everything it applied is stored)."""
        shared = self._docs.get(live.name)
        if shared is None or shared.live is not live:
            return
        del self._docs[live.name]
        await self.bus.unsubscribe(doc_channel(live.name))
        if shared.owner:
            await self.ownership.release(live.name)
            self.bus.publish(doc_channel(live.name), wire.encode(wire.Released(live.name)))

    def dropped(self, live: LiveDocument) -> None:
        """The registry stopped serving `live` at once (ownership lost, a log conflict)."""
        shared = self._docs.get(live.name)
        if shared is None or shared.live is not live:
            return
        del self._docs[live.name]

        async def let_go() -> None:
            try:
                await self.bus.unsubscribe(doc_channel(live.name))
                if shared.owner:
                    await self.ownership.release(live.name)
            except Exception as exc:
                # Dropped because the database or the bus went away: nothing left to release.
                log.warning("replica_let_go_failed", document=live.name, why=type(exc).__name__)

        self._spawn(let_go())

    # -- the owner ------------------------------------------------------------------------

    def stored(self, live: LiveDocument, record: UpdateRecord, origin: Origin) -> None:
        """The owner stored `record`: tell the replicas (called once per record, in order)."""
        node = connection = submit = ""
        if isinstance(origin, SubmittedOrigin):
            node, connection, submit = origin.node_id, origin.connection_id, origin.submit_id
            if node == self.node:  # held by this process as a replica before it took over
                live.settle_submit(submit)
        elif isinstance(origin, ConnectionOrigin):
            node, connection = self.node, origin.connection_id
        message = wire.Stored(
            live.name, record.seq, record.update, node, connection, submit, int(time.time() * 1000)
        )
        self.bus.publish(doc_channel(live.name), wire.encode(message))

    def stored_through(self, document: str, seq: int) -> None:
        """For the jobs leader (digests): coalesced, sent every STORED_THROUGH_SECONDS."""
        self._through[document] = seq
        if self._through_timer is None:
            self._through_timer = asyncio.get_running_loop().call_later(
                STORED_THROUGH_SECONDS, self._flush_through
            )

    def _flush_through(self) -> None:
        self._through_timer = None
        through, self._through = self._through, {}
        for document, seq in through.items():
            self.bus.publish(GLOBAL_CHANNEL, wire.encode(wire.StoredThrough(document, seq)))

    def _receive_submit(self, shared: _Shared, submit: wire.Submit) -> None:
        live = shared.live
        assert live is not None
        reply = node_channel(submit.node)
        known = shared.recent.get(submit.submit)
        if known is not None:
            self.bus.publish(reply, wire.encode(wire.Ack(shared.name, submit.submit, known)))
            return
        if not self.registry.writes_admitted:
            return  # the store is far behind: the replica keeps it and sends it again
        before = live.last_seq
        origin = SubmittedOrigin(
            submit.connection, submit.user_id, submit.display_name, submit.node, submit.submit
        )
        try:
            live.apply(submit.update, origin)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # pycrdt raises a Rust PanicException on some input
            log.warning("submit_refused", document=shared.name, node=submit.node)
            reason = f"invalid update: {type(exc).__name__}"
            self.bus.publish(reply, wire.encode(wire.Refused(shared.name, submit.submit, reason)))
            return
        shared.recent[submit.submit] = live.last_seq
        if len(shared.recent) > RECENT_SUBMITS:
            shared.recent.popitem(last=False)
        if live.last_seq == before:  # changed nothing: nothing will be stored for it
            self.bus.publish(reply, wire.encode(wire.Ack(shared.name, submit.submit, before)))

    # -- a replica ------------------------------------------------------------------------

    def _forward(self, live: LiveDocument, connection: Connection, update: bytes) -> None:
        shared = self._docs.get(live.name)
        if shared is None or shared.live is not live:
            return
        if shared.owner:  # promoted since the frame was read
            live.apply(update, connection.origin)
            return
        if len(shared.submits) >= MAX_SUBMITS or (
            shared.submit_bytes + len(update) > MAX_SUBMIT_BYTES
        ):
            self.metrics.writes_refused.inc()
            connection.close(
                CloseCode.TRY_AGAIN_LATER,
                "the server process that stores this IEP is not answering; try again later",
            )
            return
        submit_id = f"{self.node}.{next(self._ids)}"
        identity = connection.identity
        pending = _Submit(
            connection.id, update, identity.user_id, identity.display_name, time.monotonic()
        )
        shared.submits[submit_id] = pending
        shared.submit_bytes += len(update)
        live.unstored_submits.add(submit_id)
        self._send_submit(shared, submit_id, pending)

    def forward_server_change(self, live: LiveDocument, update: bytes, origin: Origin) -> None:
        """The server changed a replica's copy (e.g. a migration at load): the owner logs it
        like a client's edit, attributed to the server."""
        shared = self._docs.get(live.name)
        if shared is None:
            return
        user_id = origin.user_id if isinstance(origin, ConnectionOrigin) else None
        if isinstance(origin, ServerOrigin):
            user_id = server_user_id(origin.reason)
        submit_id = f"{self.node}.{next(self._ids)}"
        pending = _Submit("", update, user_id, "server", time.monotonic())
        shared.submits[submit_id] = pending
        shared.submit_bytes += len(update)
        live.unstored_submits.add(submit_id)
        self._send_submit(shared, submit_id, pending)

    def _send_submit(self, shared: _Shared, submit_id: str, pending: _Submit) -> None:
        message = wire.Submit(
            shared.name,
            submit_id,
            pending.update,
            pending.user_id,
            pending.display_name,
            self.node,
            pending.connection_id,
        )
        self.bus.publish(doc_channel(shared.name), wire.encode(message))

    def _settle(self, shared: _Shared, submit_id: str) -> None:
        pending = shared.submits.pop(submit_id, None)
        if pending is None:
            return
        shared.submit_bytes -= len(pending.update)
        if shared.live is not None:
            shared.live.settle_submit(submit_id)

    def _settle_acknowledged(self, shared: _Shared) -> None:
        live = shared.live
        if live is None:
            return
        done = [
            sid
            for sid, s in shared.submits.items()
            if s.done_at is not None and s.done_at <= live.last_seq
        ]
        for submit_id in done:
            self._settle(shared, submit_id)

    def _receive_stored(self, shared: _Shared, stored: wire.Stored) -> None:
        live = shared.live
        if live is None or shared.filling or stored.seq > live.last_seq + 1:
            if (live is None or stored.seq > live.last_seq) and len(shared.ahead) < MAX_AHEAD:
                shared.ahead[stored.seq] = stored
            if live is not None and not shared.filling:
                self._spawn(self._fill(shared))
            return
        if stored.seq <= live.last_seq:
            if stored.node == self.node and stored.submit:
                self._settle(shared, stored.submit)
            return
        self._apply_stored(shared, stored, from_bus=True)
        if shared.ahead:
            self._drain_ahead(shared)

    def _apply_stored(self, shared: _Shared, stored: wire.Stored, *, from_bus: bool) -> None:
        live = shared.live
        assert live is not None
        exclude = stored.connection if stored.node == self.node and stored.connection else None
        try:
            live.apply(stored.update, PeerNodeOrigin(stored.node, exclude))
        except ValueError:
            log.error("stored_update_invalid", document=shared.name, seq=stored.seq)
        live.last_seq = stored.seq
        live.mark_durable(stored.seq)
        live.log_counter.updates += 1
        live.log_counter.nbytes += len(stored.update)
        if from_bus:
            lag = time.time() - stored.committed_at_ms / 1000
            self.metrics.cluster_fanout_lag.observe(max(0.0, lag))
        if stored.node == self.node and stored.submit:
            self._settle(shared, stored.submit)
        if shared.submits:
            self._settle_acknowledged(shared)

    def _drain_ahead(self, shared: _Shared) -> None:
        live = shared.live
        if live is None:
            return
        while shared.ahead:
            for seq in [s for s in shared.ahead if s <= live.last_seq]:
                stale = shared.ahead.pop(seq)
                if stale.node == self.node and stale.submit:
                    self._settle(shared, stale.submit)
            following = shared.ahead.pop(live.last_seq + 1, None)
            if following is None:
                break
            self._apply_stored(shared, following, from_bus=True)
        if shared.ahead and not shared.filling:
            self._spawn(self._fill(shared))

    async def _fill(self, shared: _Shared) -> None:
        """Read from the store what the bus did not bring, in order."""
        live = shared.live
        if live is None or shared.filling or shared.owner:
            return
        shared.filling = True
        try:
            while self._docs.get(shared.name) is shared and not shared.owner:
                records = await self.store.updates_since(shared.name, live.last_seq, FILL_BATCH)
                if records and records[0].seq != live.last_seq + 1:
                    await self._resync_from_snapshot(shared)
                    continue
                for record in records:
                    self._apply_record(shared, record)
                self.metrics.cluster_gap_fills.inc(len(records))
                if len(records) < FILL_BATCH:
                    break
        except Exception:
            log.exception("gap_fill_failed", document=shared.name)
        finally:
            shared.filling = False
        if self._docs.get(shared.name) is shared and not shared.owner:
            self._drain_ahead(shared)

    def _apply_record(self, shared: _Shared, record: UpdateRecord) -> None:
        stored = wire.Stored(
            shared.name, record.seq, record.update, "", "", "", int(record.created_at * 1000)
        )
        self._apply_stored(shared, stored, from_bus=False)

    async def _resync_from_snapshot(self, shared: _Shared) -> None:
        """The entries after this copy's position are gone (history off): take the snapshot."""
        live = shared.live
        assert live is not None
        stored = await self.store.load(shared.name)
        log.warning("replica_resynced_from_snapshot", document=shared.name, seq=stored.snapshot_seq)
        if stored.snapshot:
            with contextlib.suppress(ValueError):
                live.apply(stored.snapshot, PeerNodeOrigin(""))
        live.last_seq = max(live.last_seq, stored.snapshot_seq)
        live.mark_durable(live.last_seq)

    # -- ownership moves ------------------------------------------------------------------

    async def _try_promote(self, shared: _Shared) -> None:
        live = shared.live
        if live is None or shared.owner or shared.promoting:
            return
        shared.promoting = True
        shared.probed_at = time.monotonic()
        try:
            try:
                await self.ownership.acquire(shared.name)
            except OwnedElsewhere:
                return
            if self._docs.get(shared.name) is not shared:
                await self.ownership.release(shared.name)
                return
            while shared.filling:  # noqa: ASYNC110 (a fill under way takes one query)
                await asyncio.sleep(0.01)
            shared.filling = True
            try:
                while True:  # the lock is ours: nobody else appends any more
                    records = await self.store.updates_since(shared.name, live.last_seq, FILL_BATCH)
                    if records and records[0].seq != live.last_seq + 1:
                        await self._resync_from_snapshot(shared)
                        continue
                    for record in records:
                        self._apply_record(shared, record)
                    if len(records) < FILL_BATCH:
                        break
            finally:
                shared.filling = False
            self._become_owner(shared, live)
        except Exception:
            log.exception("promotion_failed", document=shared.name)
        finally:
            shared.promoting = False

    def _become_owner(self, shared: _Shared, live: LiveDocument) -> None:
        shared.owner = True
        shared.ahead.clear()
        live.forward = None
        live.durable_seq = live.last_seq
        held = list(shared.submits.items())
        shared.submits.clear()
        shared.submit_bytes = 0
        self.metrics.cluster_promotions.inc()
        log.info("document_promoted", document=shared.name, seq=live.last_seq, held=len(held))
        for submit_id, pending in held:
            if pending.done_at is not None and pending.done_at <= live.last_seq:
                live.settle_submit(submit_id)
                continue
            before = live.last_seq
            origin = SubmittedOrigin(
                pending.connection_id,
                pending.user_id,
                pending.display_name,
                self.node,
                submit_id,
            )
            try:
                live.apply(pending.update, origin)
            except ValueError:
                self._refuse_locally(live, submit_id, pending.connection_id)
                continue
            if live.last_seq == before:
                live.settle_submit(submit_id)
        self.registry.maybe_compact(live)

    def _refuse_locally(self, live: LiveDocument, submit_id: str, connection_id: str) -> None:
        live.settle_submit(submit_id)
        connection = live.connection_by_id(connection_id)
        if connection is not None:
            connection.close(CloseCode.INVALID_PAYLOAD, "invalid update")

    # -- presence -------------------------------------------------------------------------

    def _publish_awareness(self, live: LiveDocument, connection: Connection, update: bytes) -> None:
        message = wire.Awareness(
            live.name, self.node, connection.id, connection.identity.user_id, update
        )
        self.bus.publish(doc_channel(live.name), wire.encode(message))

    def _answer_presence_query(self, shared: _Shared) -> None:
        live = shared.live
        if live is None:
            return
        local = live.local_awareness()
        if local is not None:
            message = wire.Awareness(shared.name, self.node, "", None, local)
            self.bus.publish(doc_channel(shared.name), wire.encode(message))

    # -- the bus's messages ---------------------------------------------------------------

    def _on_doc_message(self, name: str, data: bytes) -> None:
        shared = self._docs.get(name)
        if shared is None:
            return
        message = _decoded(data)
        if isinstance(message, wire.Stored):
            if not shared.owner:
                self._receive_stored(shared, message)
        elif isinstance(message, wire.Submit):
            if shared.owner:
                self._receive_submit(shared, message)
            elif shared.live is None and len(shared.early) < MAX_SUBMITS:
                shared.early.append(message)
        elif isinstance(message, wire.Awareness):
            if message.node == self.node:
                return
            if message.connection == _QUERY:
                self._answer_presence_query(shared)
                return
            if shared.live is not None:
                try:
                    shared.live.apply_remote_awareness(
                        remote_owner(message.node, message.connection),
                        message.user_id,
                        message.update,
                    )
                except ProtocolError:
                    log.error("remote_awareness_invalid", document=name, node=message.node)
        elif isinstance(message, wire.Released) and not shared.owner and shared.live is not None:
            self._spawn(self._try_promote(shared))

    def _on_node_message(self, data: bytes) -> None:
        message = _decoded(data)
        if isinstance(message, wire.Ack):
            shared = self._docs.get(message.document)
            if shared is None:
                return
            pending = shared.submits.get(message.submit)
            if pending is not None:
                pending.done_at = message.seq
                self._settle_acknowledged(shared)
        elif isinstance(message, wire.Refused):
            shared = self._docs.get(message.document)
            if shared is None:
                return
            pending = shared.submits.get(message.submit)
            self._settle(shared, message.submit)
            if pending is not None and shared.live is not None:
                connection = shared.live.connection_by_id(pending.connection_id)
                if connection is not None:
                    connection.close(CloseCode.INVALID_PAYLOAD, message.reason[:120])

    def _on_global_message(self, data: bytes) -> None:
        message = _decoded(data)
        if isinstance(message, wire.Revoke):
            for revoke in self.on_revoke:
                revoke(message.document, message.user_id, message.role)
        elif isinstance(message, wire.StoredThrough):
            for notice in self.on_stored_through:
                notice(message.document, message.seq)

    def publish_revocation(self, document: str, user_id: str, role: str | None) -> None:
        self.bus.publish(GLOBAL_CHANNEL, wire.encode(wire.Revoke(document, user_id, role)))

    # -- BusEvents ------------------------------------------------------------------------

    def node_gone(self, node_id: str) -> None:
        removed = 0
        for shared in list(self._docs.values()):
            if shared.live is None:
                continue
            removed += shared.live.drop_remote_awareness(node_id)
            if not shared.owner:
                self._spawn(self._try_promote(shared))
        log.warning("cluster_node_gone", node=node_id, presence_removed=removed)

    def reconnected(self) -> None:
        log.info("cluster_bus_reconnected", documents=len(self._docs))
        for shared in list(self._docs.values()):
            if shared.live is None:
                continue
            self.bus.publish(doc_channel(shared.name), wire.encode(_query(shared.name, self.node)))
            self._answer_presence_query(shared)
            if not shared.owner:
                for pending in shared.submits.values():
                    pending.sent_at = 0.0
                self._spawn(self._fill(shared))

    # -- the periodic checks --------------------------------------------------------------

    async def _tick(self) -> None:
        for turn in itertools.count():
            await asyncio.sleep(TICK_SECONDS)
            try:
                self._resend_overdue()
                if turn % CHECK_EVERY_TICKS == 0:
                    await self._check_positions()
            except Exception:
                log.exception("replication_tick_failed")

    def _resend_overdue(self) -> None:
        now = time.monotonic()
        for shared in list(self._docs.values()):
            if shared.owner or not shared.submits:
                continue
            overdue = [
                (sid, s)
                for sid, s in shared.submits.items()
                if s.done_at is None and now - s.sent_at >= RESEND_SECONDS
            ]
            for submit_id, pending in overdue:
                pending.sent_at = now
                self._send_submit(shared, submit_id, pending)
            if overdue:
                self.metrics.cluster_submits_resent.inc(len(overdue))
                if now - shared.probed_at >= RESEND_SECONDS:
                    self._spawn(self._try_promote(shared))  # is anybody the owner?

    async def _check_positions(self) -> None:
        replicas = {
            name: shared
            for name, shared in self._docs.items()
            if not shared.owner and shared.live is not None
        }
        if not replicas:
            return
        stored = await self.store.last_seqs(list(replicas))
        for name, seq in stored.items():
            shared = replicas[name]
            if shared.live is not None and seq > shared.live.last_seq and not shared.filling:
                self._spawn(self._fill(shared))


_QUERY = "?"  # an Awareness message with this connection asks the others for their presence


def _query(document: str, node: str) -> wire.Awareness:
    return wire.Awareness(document, node, _QUERY, None, b"")


def _decoded(data: bytes) -> wire.Message | None:
    """A message from another process; None (logged) if it does not decode."""
    try:
        return wire.decode(data)
    except ProtocolError as exc:
        log.error("cluster_message_invalid", error=str(exc))
        return None
