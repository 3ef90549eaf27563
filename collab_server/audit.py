"""The audit trail: who opened, exported, sent, answered or changed access to an IEP, when and
from where. Append-only: the interface has no way to change or delete an event, and the
stores' tables refuse it (triggers).

`AuditRecorder` batches: a socket join queues its event and goes on (the join path stays as
cheap as it was); one task writes whatever is queued in one transaction, at once. Callers that
answer a request about a record (an export, an acknowledgement) await `record_now`, so the
response is sent only once the event is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

import structlog

from collab_server.hooks import ConnectPayload, Extension

log = structlog.get_logger("collab.audit")


class AuditAction(StrEnum):
    DOCUMENT_CREATED = "document_created"
    DOCUMENT_OPENED = "document_opened"
    DOCUMENT_ARCHIVED = "document_archived"
    DOCUMENT_UNARCHIVED = "document_unarchived"
    VERSION_NAMED = "version_named"
    VERSION_VIEWED = "version_viewed"
    VERSION_EXPORTED = "version_exported"
    VERSION_RESTORED = "version_restored"
    ACKNOWLEDGEMENT_SENT = "acknowledgement_sent"
    ACKNOWLEDGEMENT_ANSWERED = "acknowledgement_answered"
    ACKNOWLEDGEMENT_REMINDED = "acknowledgement_reminded"
    MEMBER_ADDED = "member_added"
    MEMBER_CHANGED = "member_changed"
    MEMBER_REMOVED = "member_removed"


@dataclass(frozen=True, slots=True)
class AuditEvent:
    document: str
    action: AuditAction
    actor_id: str | None
    actor_name: str | None = None
    address: str | None = None  # the client's IP as the server saw it
    at: float = field(default_factory=time.time)
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredAuditEvent:
    id: int
    event: AuditEvent

    def to_json(self) -> dict[str, Any]:
        e = self.event
        return {
            "id": self.id,
            "document": e.document,
            "action": e.action.value,
            "actor_id": e.actor_id,
            "actor_name": e.actor_name,
            "address": e.address,
            "at": e.at,
            "details": dict(e.details),
        }


class AuditLog(Protocol):
    """Where events are kept (beside the documents, in `persistence/`)."""

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        """Store the events in one transaction."""

    async def audit_events(
        self, document: str, before_id: int | None, limit: int
    ) -> list[StoredAuditEvent]:
        """Newest first; `before_id` pages back."""


class MemoryAuditLog:
    def __init__(self) -> None:
        self._events: list[StoredAuditEvent] = []

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        for event in events:
            self._events.append(StoredAuditEvent(len(self._events) + 1, event))

    async def audit_events(
        self, document: str, before_id: int | None, limit: int
    ) -> list[StoredAuditEvent]:
        found = [
            e
            for e in reversed(self._events)
            if e.event.document == document and (before_id is None or e.id < before_id)
        ]
        return found[:limit]


class AuditRecorder(Extension):
    """Records events through one writer task; also records every socket that opens an IEP."""

    name = "audit"
    priority = 50
    _MAX_QUEUED = 100_000  # a store outage must not grow memory without bound

    def __init__(self, store: AuditLog) -> None:
        self.store = store
        self._queue: list[AuditEvent] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._queued_total = 0
        self._written_total = 0
        self._wake: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None

    def record(self, event: AuditEvent) -> None:
        if len(self._queue) >= self._MAX_QUEUED:
            log.error("audit_queue_full", dropped_action=event.action.value)
            return
        self._queue.append(event)
        self._queued_total += 1
        self._start()

    async def record_now(self, event: AuditEvent) -> None:
        """Record and wait until the event is stored (raises if the store fails)."""
        self.record(event)
        await self.flush()

    async def flush(self) -> None:
        if self._written_total >= self._queued_total:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((self._queued_total, waiter))
        self._start()
        await waiter

    async def on_connect(self, payload: ConnectPayload) -> None:
        identity = payload.identity
        self.record(
            AuditEvent(
                payload.document,
                AuditAction.DOCUMENT_OPENED,
                identity.user_id,
                identity.display_name,
                payload.address,
                details={"role": identity.role.value},
            )
        )

    def _start(self) -> None:
        if self._wake is None:
            self._wake = asyncio.Event()
        self._wake.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop(), name="audit-writer")

    async def _write_loop(self) -> None:
        assert self._wake is not None
        delay = 0.05
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                batch = self._queue[:1000]
                try:
                    await self.store.append_audit(batch)
                except Exception as exc:
                    log.exception("audit_write_failed", events=len(batch), retry_in=delay)
                    self._fail_waiters(exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                    continue
                delay = 0.05
                del self._queue[: len(batch)]
                self._written_total += len(batch)
                self._wake_waiters()

    def _wake_waiters(self) -> None:
        ready = [w for upto, w in self._waiters if upto <= self._written_total]
        self._waiters = [(u, w) for u, w in self._waiters if u > self._written_total]
        for waiter in ready:
            if not waiter.done():
                waiter.set_result(None)

    def _fail_waiters(self, exc: Exception) -> None:
        waiters, self._waiters = self._waiters, []
        for _, waiter in waiters:
            if not waiter.done():
                waiter.set_exception(exc)

    async def aclose(self) -> None:
        if self._queue:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.flush(), 5.0)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
