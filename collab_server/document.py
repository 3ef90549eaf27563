"""One live document: the Y doc, awareness states, its connections, message dispatch.

Why not pycrdt-websocket's YRoom: it relays awareness without knowing which connection owns
which awareness client (so no snapshot for joiners and no removal when a socket drops), applies
updates with no transaction origin (no attribution) and broadcasts before anything is stored.
Here an update is applied inside `doc.transaction(origin=...)`, handed to the registry's group
commit, and only broadcast once durable (see `Registry`). The document reports back through
the `on_update` callback and never imports the registry.

Why no `doc.observe`: pycrdt builds a TransactionEvent for every observer on every transaction,
and encoding its update slices the squashed text items it just grew, which costs time in
proportion to the text's length. The bytes a client sent are already the update, so those are
what is stored and relayed; only an update that can be a no-op (deletions alone, as every
reconnecting client sends) is checked against the document's delete set first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from pycrdt import Doc, create_awareness_message, create_sync_message, merge_updates

from collab_server.connection import Connection
from collab_server.errors import AwarenessLimitExceeded, ProtocolError
from collab_server.frames import frame_binary
from collab_server.identity import Origin
from collab_server.join_budget import UNBOUNDED, JoinBudget
from collab_server.protocol import (
    AuthMessage,
    AwarenessEntry,
    AwarenessMessage,
    CloseCode,
    QueryAwarenessMessage,
    SavedCheckMessage,
    SyncMessage,
    SyncStep,
    check_state_vector,
    decode_awareness_update,
    decode_message,
    encode_awareness_update,
    encode_permission_denied,
    encode_saved,
    sync_step2_head,
)
from collab_server.store import StoredDocument

log = structlog.get_logger("collab.document")

EMPTY_UPDATE = b"\x00\x00"
# y-websocket uses one awareness client per document and keeps it across reconnects; a few
# more cover a tab that reloads onto the same socket. Bounds what one connection can make
# every joiner receive, and what its departure broadcasts.
MAX_AWARENESS_CLIENTS_PER_CONNECTION = 4
REMOTE_OWNER_MARK = "@"  # local connection ids are hex: never start with it
_LOAD_MERGE_RUN = 100

UpdateSink = Callable[["LiveDocument", bytes, Origin], None]
# Cluster mode: a replica's client update goes to the owner instead of being applied here; an
# awareness change accepted from a local socket goes to the other processes.
ClientSink = Callable[["LiveDocument", Connection, bytes], None]


@dataclass(frozen=True, slots=True)
class AwarenessChange:
    added: tuple[int, ...]
    updated: tuple[int, ...]
    removed: tuple[int, ...]


@dataclass(slots=True)
class _AwarenessSlot:
    clock: int
    state_json: str
    connection_id: str
    user_id: str | None  # whose presence it is: only their own connections may take it over


@dataclass(slots=True)
class LogCounter:
    """Log entries (durable, past the snapshot) that compaction would fold in."""

    updates: int = 0
    nbytes: int = 0


@dataclass(eq=False)
class LiveDocument:
    name: str
    doc: Doc[Any]
    last_seq: int  # highest sequence number assigned
    durable_seq: int  # highest sequence number committed to the store
    on_update: UpdateSink
    connections: set[Connection] = field(default_factory=set)
    log_counter: LogCounter = field(default_factory=LogCounter)
    compacting: bool = False
    holders: int = 0  # acquired and not yet released (see Registry.acquire)
    _connections_by_id: dict[str, Connection] = field(default_factory=dict)
    _awareness: dict[int, _AwarenessSlot] = field(default_factory=dict)
    _owned: dict[str, set[int]] = field(default_factory=dict)  # local connection id -> its IDs
    # Replies to joiners are counted against it from computed to drained (join_budget.py).
    join_budget: JoinBudget = field(default_factory=lambda: JoinBudget(UNBOUNDED))
    # The whole document as one framed sync step 2: every fresh joiner until the next change
    # gets these same bytes, so a join neither re-encodes nor copies the document.
    _full_step2: bytes | None = None
    # (sequence number, callback): called once everything through that number is stored.
    _durable_waiters: list[tuple[int, Callable[[], None]]] = field(default_factory=list)
    # Joiners whose sync step 2 waits for the store: (sequence number, socket, framed reply).
    _waiting_joiners: list[tuple[int, Connection, bytes]] = field(default_factory=list)
    # Cluster mode only (`collab_server.replication`); None and empty for one process.
    forward: ClientSink | None = None  # set while a replica: the owner applies client updates
    awareness_out: ClientSink | None = None
    unstored_submits: set[str] = field(default_factory=set)  # forwarded, not yet stored
    _submit_waiters: list[tuple[frozenset[str], Callable[[], None]]] = field(default_factory=list)

    @classmethod
    def from_stored(
        cls,
        name: str,
        stored: StoredDocument,
        on_update: UpdateSink,
        join_budget: JoinBudget | None = None,
    ) -> LiveDocument:
        doc: Doc[Any] = Doc()
        if stored.snapshot:
            doc.apply_update(stored.snapshot)
        # Merging small runs first lets yrs squash consecutive edits before integrating them:
        # a long typed log loads many times faster than update by update (or one
        # transaction), and without merge_updates' quadratic cost on the whole log.
        tail = [record.update for record in stored.tail]
        for start in range(0, len(tail), _LOAD_MERGE_RUN):
            doc.apply_update(merge_updates(*tail[start : start + _LOAD_MERGE_RUN]))
        live = cls(name, doc, stored.last_seq, stored.last_seq, on_update)
        if join_budget is not None:
            live.join_budget = join_budget
        live.log_counter = LogCounter(len(stored.tail), sum(len(r.update) for r in stored.tail))
        return live

    def release(self) -> None:
        """Drop cached state and waiters so the document can be freed.

        Only an unloaded (fully stored) or shut-down document is released; a step 2 still
        waiting for the store then goes nowhere, as its socket is closed too.
        """
        self._full_step2 = None
        self._durable_waiters.clear()
        self._give_back_waiting_joiners()
        self._submit_waiters.clear()

    # -- changes --------------------------------------------------------------------------

    def apply(self, update: bytes, origin: Origin) -> None:
        """Apply an update and report it unless it changed nothing.

        Raises ValueError if it does not decode (nothing is applied, nothing reported).
        """
        if update == EMPTY_UPDATE:
            return
        if not update:
            raise ValueError("empty update")
        # No struct section: deletions only. A reconnecting client sends its whole delete set
        # this way, mostly known already; anything else carries new structs, or structs still
        # waiting for their dependencies, and is kept as sent.
        deletions_only = update[0] == 0
        before = self._delete_set() if deletions_only else b""
        with self.doc.transaction(origin=origin):
            self.doc.apply_update(update)
        if deletions_only and self._delete_set() == before:
            return
        self._full_step2 = None
        self.on_update(self, update, origin)

    def change(self, edit: Callable[[Doc[Any]], bool], origin: Origin) -> bool:
        """The server edits the document itself: `edit` runs in one transaction and returns
        whether it changed anything; the change is then stored and relayed like a client's.

        Only the process that owns the document may call it (see `Registry`).
        """
        before = self.doc.get_state()
        deletions = self._delete_set()
        changed = False
        try:
            with self.doc.transaction(origin=origin):
                changed = edit(self.doc)
        except Exception:
            # Whatever it did before failing is in memory: store it too, never serve unstored.
            changed = self.doc.get_state() != before or self._delete_set() != deletions
            raise
        finally:
            if changed:
                self._full_step2 = None
                self.on_update(self, self.doc.get_update(before), origin)
        return changed

    def _changes_nothing(self, update: bytes) -> bool:
        """Deletions only, every one of them known here already."""
        if update[0] != 0:
            return False
        known = self._delete_set()
        try:
            return merge_updates(known, update) == known
        except ValueError:
            return False

    def _delete_set(self) -> bytes:
        # An update from the current state holds no structs: only the delete set.
        return self.doc.get_update(self.doc.get_state())

    def full_step2(self) -> bytes:
        """The whole document as a framed sync step 2, encoded once per change."""
        if self._full_step2 is None:
            update = self.doc.get_update()
            self._full_step2 = frame_binary(sync_step2_head(len(update)), update)
        return self._full_step2

    def mark_durable(self, seq: int) -> None:
        self.durable_seq = max(self.durable_seq, seq)
        if self._waiting_joiners:
            durable = self.durable_seq
            joined = [(c, reply) for wanted, c, reply in self._waiting_joiners if wanted <= durable]
            if joined:
                self._waiting_joiners = [w for w in self._waiting_joiners if w[0] > durable]
                for connection, reply in joined:
                    self._send_step2(connection, reply)
        if self._durable_waiters:
            ready = [call for wanted, call in self._durable_waiters if wanted <= self.durable_seq]
            if ready:
                self._durable_waiters = [
                    (wanted, call)
                    for wanted, call in self._durable_waiters
                    if wanted > self.durable_seq
                ]
                for call in ready:
                    call()

    def when_durable(self, call: Callable[[], None]) -> None:
        """Call `call` once everything applied so far is in the store (at once if it is).

        On a replica, also every update its clients forwarded so far (see `settle_submit`).
        """
        if self.unstored_submits:
            self._submit_waiters.append((frozenset(self.unstored_submits), call))
        elif self.durable_seq >= self.last_seq:
            call()
        else:
            self._durable_waiters.append((self.last_seq, call))

    def settle_submit(self, submit_id: str) -> None:
        """A forwarded update is stored (or was refused): wake who waited for it."""
        self.unstored_submits.discard(submit_id)
        if not self._submit_waiters:
            return
        waiting = self._submit_waiters
        self._submit_waiters = []
        for ids, call in waiting:
            if ids & self.unstored_submits:
                self._submit_waiters.append((ids, call))
            else:
                self.when_durable(call)

    def abandon_joiners(self, code: int, reason: str) -> None:
        """Close the sockets still waiting for their step 2 (the store is not answering)."""
        waiting = self._give_back_waiting_joiners()
        for connection in waiting:
            connection.close(code, reason)

    def _give_back_waiting_joiners(self) -> list[Connection]:
        waiting, self._waiting_joiners = self._waiting_joiners, []
        for _, _, reply in waiting:
            self.join_budget.give_back(len(reply))
        return [connection for _, connection, _ in waiting]

    async def wait_durable(self) -> None:
        if self.durable_seq >= self.last_seq and not self.unstored_submits:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not waiter.done():
                waiter.set_result(None)

        self.when_durable(wake)
        await waiter

    def broadcast(self, frame: bytes, exclude: Connection | None = None) -> int:
        wire = frame_binary(frame)  # framed once for every reader
        sent = 0
        for connection in self.connections:
            if connection is not exclude:
                connection.send(frame, wire)
                sent += 1
        return sent

    def connection_by_id(self, connection_id: str) -> Connection | None:
        return self._connections_by_id.get(connection_id)

    # -- connections ----------------------------------------------------------------------

    async def join(self, connection: Connection) -> None:
        self.connections.add(connection)
        self._connections_by_id[connection.id] = connection
        connection.send(create_sync_message(self.doc))
        if self._awareness:
            connection.send(create_awareness_message(self._encode_awareness(list(self._awareness))))

    def leave(self, connection: Connection) -> AwarenessChange | None:
        """Remove a connection and broadcast the removal of the awareness clients it owned."""
        self.connections.discard(connection)
        self._connections_by_id.pop(connection.id, None)
        owned = sorted(self._owned.pop(connection.id, ()))
        if not owned:
            return None
        removals = [
            AwarenessEntry(client_id, self._awareness.pop(client_id).clock, "null")
            for client_id in owned
        ]
        removal = encode_awareness_update(removals)
        self.broadcast(create_awareness_message(removal))
        if self.awareness_out is not None:
            self.awareness_out(self, connection, removal)
        return AwarenessChange((), (), tuple(owned))

    def receive(self, connection: Connection, frame: bytes) -> AwarenessChange | None:
        """Handle one frame from a client. Raises ProtocolError for a malformed frame."""
        message = decode_message(frame)
        if isinstance(message, SyncMessage):
            self._receive_sync(connection, message)
            return None
        if isinstance(message, AwarenessMessage):
            return self._receive_awareness(connection, message.update)
        if isinstance(message, QueryAwarenessMessage):
            if self._awareness:
                connection.send(
                    create_awareness_message(self._encode_awareness(list(self._awareness)))
                )
            return None
        if isinstance(message, SavedCheckMessage):
            self._receive_saved_check(connection, message.check_id)
            return None
        if isinstance(message, AuthMessage):
            raise ProtocolError("clients may not send auth messages")
        raise ProtocolError("unhandled message")

    def _receive_sync(self, connection: Connection, message: SyncMessage) -> None:
        if message.step is SyncStep.STEP1:
            state_vector = message.payload
            check_state_vector(state_vector)
            self.join_budget.admit(lambda: self._answer_step1(connection, state_vector))
            return
        update = message.payload
        if update == EMPTY_UPDATE:
            return
        if not connection.identity.can_write:
            # A viewer's step 2 on reconnect carries its whole delete set: not a change.
            if not self._changes_nothing(update):
                connection.send(encode_permission_denied("read-only access: changes are not saved"))
            return
        if self.forward is not None:
            self.forward(self, connection, update)
            return
        try:
            self.apply(update, connection.origin)
        except ValueError as exc:
            raise ProtocolError(f"invalid update: {exc}") from exc

    def _receive_saved_check(self, connection: Connection, check_id: int) -> None:
        """Answer once everything applied so far (this socket's updates included: frames are
        handled in order) is in the store. One wait per socket, however often it asks."""
        waiting = connection.saved_check is not None
        connection.saved_check = check_id
        if waiting:
            connection.saved_check_newer = True
        else:
            self.when_durable(lambda: self._confirm_saved(connection))

    def _confirm_saved(self, connection: Connection) -> None:
        if connection.saved_check_newer:
            # Asked again after more updates: wait for those too, then answer the newest.
            connection.saved_check_newer = False
            self.when_durable(lambda: self._confirm_saved(connection))
            return
        check_id, connection.saved_check = connection.saved_check, None
        if check_id is not None and connection.is_open:
            connection.send(encode_saved(check_id))

    def _answer_step1(self, connection: Connection, state_vector: bytes) -> None:
        """Compute a joiner's step 2 (its turn in the join budget has come); never raises."""
        if not connection.is_open:
            return
        if state_vector == b"\x00":
            reply = self.full_step2()
        else:
            try:
                diff = self.doc.get_update(state_vector)
            except ValueError:
                connection.close(CloseCode.INVALID_PAYLOAD, "invalid state vector")
                return
            reply = frame_binary(sync_step2_head(len(diff)), diff)
        self.join_budget.take(len(reply))
        # The reply holds only what is applied now; it goes out once all of that is stored,
        # so a joiner never sees an update a crash could lose. Later updates reach it by
        # broadcast, which waits for the store too.
        if self.durable_seq >= self.last_seq:
            self._send_step2(connection, reply)
        else:
            self._waiting_joiners.append((self.last_seq, connection, reply))

    def _send_step2(self, connection: Connection, reply: bytes) -> None:
        connection.send_framed(reply)
        self.join_budget.give_back_when_drained(connection, len(reply))

    def _receive_awareness(self, connection: Connection, update: bytes) -> AwarenessChange | None:
        entries = decode_awareness_update(update)
        user_id = connection.identity.user_id
        owned = self._owned.setdefault(connection.id, set())
        accepted: list[AwarenessEntry] = []
        added: list[int] = []
        updated: list[int] = []
        removed: list[int] = []
        for entry in entries:
            slot = self._awareness.get(entry.client_id)
            if slot is not None and not (
                entry.clock > slot.clock or (entry.clock == slot.clock and entry.is_removal)
            ):
                continue  # stale: Yjs ignores it too
            if slot is not None and slot.connection_id != connection.id:
                # A reconnecting client reclaims its presence before the server has noticed
                # that its old socket died; nobody may replace or remove another person's.
                if slot.user_id != user_id or slot.connection_id.startswith(REMOTE_OWNER_MARK):
                    continue
                self._disown(slot.connection_id, entry.client_id)
            accepted.append(entry)
            if entry.is_removal:
                if slot is not None:
                    del self._awareness[entry.client_id]
                    owned.discard(entry.client_id)
                    removed.append(entry.client_id)
                continue
            if entry.client_id not in owned:
                if len(owned) >= MAX_AWARENESS_CLIENTS_PER_CONNECTION:
                    raise AwarenessLimitExceeded(
                        f"a connection may hold at most {MAX_AWARENESS_CLIENTS_PER_CONNECTION}"
                        " awareness clients"
                    )
                owned.add(entry.client_id)
            self._awareness[entry.client_id] = _AwarenessSlot(
                entry.clock, entry.state_json, connection.id, user_id
            )
            (updated if slot is not None else added).append(entry.client_id)
        if not accepted:
            return None
        # Echo to everyone, the sender included: y-websocket drops a link that hears nothing.
        forward = update if len(accepted) == len(entries) else encode_awareness_update(accepted)
        self.broadcast(create_awareness_message(forward))
        if self.awareness_out is not None:
            self.awareness_out(self, connection, forward)
        return AwarenessChange(tuple(added), tuple(updated), tuple(removed))

    def _disown(self, connection_id: str, client_id: int) -> None:
        ids = self._owned.get(connection_id)
        if ids is not None:
            ids.discard(client_id)

    # -- presence from other server processes (cluster mode) -----------------------------

    def apply_remote_awareness(self, owner: str, user_id: str | None, update: bytes) -> None:
        """Another process's client changed its presence; `owner` names that process and
        socket (`remote_owner`). Raises ProtocolError for a malformed update."""
        accepted: list[AwarenessEntry] = []
        for entry in decode_awareness_update(update):
            slot = self._awareness.get(entry.client_id)
            if slot is not None and not (
                entry.clock > slot.clock or (entry.clock == slot.clock and entry.is_removal)
            ):
                continue
            if (
                slot is not None
                and not slot.connection_id.startswith(REMOTE_OWNER_MARK)
                and slot.user_id != user_id
            ):
                continue  # another person's presence on one of our sockets: not theirs to take
            accepted.append(entry)
            if slot is not None:
                self._disown(slot.connection_id, entry.client_id)
            if entry.is_removal:
                self._awareness.pop(entry.client_id, None)
            else:
                self._awareness[entry.client_id] = _AwarenessSlot(
                    entry.clock, entry.state_json, owner, user_id
                )
        if accepted:
            self.broadcast(create_awareness_message(encode_awareness_update(accepted)))

    def local_awareness(self) -> bytes | None:
        """The presence of this process's own sockets, as one awareness update."""
        local = [
            cid
            for cid, slot in self._awareness.items()
            if not slot.connection_id.startswith(REMOTE_OWNER_MARK)
        ]
        return self._encode_awareness(local) if local else None

    def drop_remote_awareness(self, node_id: str) -> int:
        """A process is gone: remove its clients' presence here and tell the sockets."""
        prefix = remote_owner(node_id, "")
        gone = [
            cid for cid, slot in self._awareness.items() if slot.connection_id.startswith(prefix)
        ]
        if not gone:
            return 0
        removals = [AwarenessEntry(cid, self._awareness.pop(cid).clock, "null") for cid in gone]
        self.broadcast(create_awareness_message(encode_awareness_update(removals)))
        return len(gone)

    def _encode_awareness(self, client_ids: list[int]) -> bytes:
        return encode_awareness_update(
            [
                AwarenessEntry(cid, self._awareness[cid].clock, self._awareness[cid].state_json)
                for cid in client_ids
            ]
        )


def remote_owner(node_id: str, connection_id: str) -> str:
    """The owner of a presence entry made on another process (never a local socket's id)."""
    return f"{REMOTE_OWNER_MARK}{node_id}/{connection_id}"
