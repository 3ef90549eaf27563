"""Versions: the IEP's state at an exact log position, stored whole with its content hash.

A version is taken from the live document at the position it has reached (its state holds
exactly the log entries up to `seq`), once those entries are durable; the state is stored with
the version, so it rebuilds byte for byte whatever compaction (or `COLLAB_KEEP_HISTORY=false`)
does to the log later. A version is also recorded automatically when an editing session ends
(one person, no edit for `SESSION_GAP_SECONDS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog

from collab_server.hooks import Extension, StorePayload
from collab_server.identity import is_server_change
from collab_server.registry import Registry
from integrations.iep_content import content_of_state, content_sha256
from integrations.record_contracts import RecordStore, Version, VersionKind

log = structlog.get_logger("collab.integrations.versions")

SESSION_GAP_SECONDS = 300.0
MAX_NAME = 200
MAX_NOTE = 2000
AUTO_VERSION_NAME = "auto"


@dataclass(frozen=True, slots=True)
class OpenedVersion:
    version: Version
    state: bytes
    content: dict[str, Any]


class VersionService:
    def __init__(self, records: RecordStore) -> None:
        self.records = records
        self._registry: Registry | None = None

    def attach(self, registry: Registry) -> None:
        self._registry = registry

    @property
    def registry(self) -> Registry:
        if self._registry is None:
            raise RuntimeError("VersionService.attach(registry) was not called")
        return self._registry

    async def current_state(self, document: str) -> tuple[int, bytes]:
        """(seq, state) of the document now, once every entry up to seq is durable."""
        async with self.registry.using(document) as live:
            # Both read in one step: the state holds exactly the entries up to seq.
            seq, state = live.last_seq, live.doc.get_update()
            await live.wait_durable()
        return seq, state

    async def take(
        self,
        document: str,
        *,
        name: str,
        note: str = "",
        kind: VersionKind = VersionKind.NAMED,
        author_id: str | None,
        author_name: str,
    ) -> Version:
        seq, state = await self.current_state(document)
        data = await asyncio.to_thread(content_of_state, state)
        version = Version(
            id=uuid.uuid4().hex,
            document=document,
            seq=seq,
            name=name[:MAX_NAME],
            note=note[:MAX_NOTE],
            kind=kind,
            author_id=author_id,
            author_name=author_name,
            created_at=time.time(),
            content_sha256=content_sha256(data),
        )
        await self.records.add_version(version, state)
        log.info("version_recorded", document=document, seq=seq, kind=kind.value)
        return version

    async def open(self, document: str, version_id: str) -> OpenedVersion | None:
        found = await self.records.version(document, version_id)
        if found is None:
            return None
        version, state = found
        return OpenedVersion(version, state, content_of_state(state))

    async def current(self, document: str) -> tuple[int, dict[str, Any]]:
        seq, state = await self.current_state(document)
        return seq, content_of_state(state)


NameLookup = Callable[[str], Awaitable[str | None]]


class SessionVersions(Extension):
    """Records an automatic version when an editing session ends.

    Each document has at most one timer, due when its earliest open session would end; a
    change only moves a number. Sessions live in memory: after a restart, the next session
    of the document ends with a version that covers what was left open.
    """

    name = "session-versions"
    priority = 300

    def __init__(
        self,
        versions: VersionService,
        names: NameLookup,
        *,
        gap_seconds: float = SESSION_GAP_SECONDS,
        clock: Callable[[], float] = time.time,
        session_ended: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.versions = versions
        self.names = names
        self.session_ended = session_ended  # e.g. the history stores the session's changes
        self.gap = gap_seconds
        self.clock = clock
        # document -> user -> (last change time, display name)
        self._open: dict[str, dict[str, tuple[float, str]]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def on_store(self, payload: StorePayload) -> None:
        # Stored changes only say which entries; who made them is read from the log when the
        # document has been quiet for the gap (no read per keystroke).
        self._open.setdefault(payload.document, {})[""] = (self.clock(), "")
        if payload.document not in self._timers:
            self._arm(payload.document, self.clock() + self.gap)

    def _arm(self, document: str, due: float) -> None:
        loop = asyncio.get_running_loop()
        self._timers[document] = loop.call_later(max(0.0, due - self.clock()), self._fire, document)

    def _fire(self, document: str) -> None:
        self._timers.pop(document, None)
        task = asyncio.ensure_future(self._end_sessions(document))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _end_sessions(self, document: str) -> None:
        now = self.clock()
        sessions = self._open.get(document, {})
        ended = [(u, at, n) for u, (at, n) in sessions.items() if now - at >= self.gap]
        for user_id, _, _ in ended:
            del sessions[user_id]
        if sessions:
            self._arm(document, min(at for at, _ in sessions.values()) + self.gap)
        else:
            self._open.pop(document, None)
        if not ended:
            return
        try:
            last = await self.versions.records.log_entries(document, 2**62, 1)
            if not last or last[0].user_id is None or is_server_change(last[0].user_id):
                return
            user_id, display_name = last[0].user_id, last[0].user_id
            latest = await self.versions.records.latest_version(document)
            seq, _ = await self.versions.current_state(document)
            if latest is not None and latest.seq >= seq:
                return  # nothing changed since the last version
            name = await self.names(user_id) or display_name
            await self.versions.take(
                document,
                name=AUTO_VERSION_NAME,
                kind=VersionKind.AUTO,
                author_id=user_id,
                author_name=name,
            )
        except Exception:
            log.exception("auto_version_failed", document=document)
            return
        if self.session_ended is not None:
            try:
                await self.session_ended(document)
            except Exception:
                log.exception("session_end_failed", document=document)

    async def end_all_now(self) -> None:
        """End every open session (tests, and a clean stop)."""
        for document in list(self._open):
            timer = self._timers.pop(document, None)
            if timer is not None:
                timer.cancel()
            sessions = self._open.get(document, {})
            for user_id, (at, name) in list(sessions.items()):
                sessions[user_id] = (at - self.gap, name)
            await self._end_sessions(document)

    async def aclose(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
