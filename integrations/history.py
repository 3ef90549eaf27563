"""Who changed what: the attributed log grouped into editing sessions, with per-field changes.

A session is one person's edits less than `SESSION_GAP_SECONDS` apart (other people's edits
may interleave). Sessions are found from the log's metadata alone (no bodies), newest first;
then only the page's range of the log is replayed, from the nearest version at or before it
(a version's state is exact), one entry at a time: the sections an entry touched are read
again and compared field by field, so each session reports every field it changed with the
text before and after.

A closed session (its last edit older than the gap) never changes: its per-field changes are
stored once (`history_sessions`), when an editing session ends or the first time a page shows
it, and pages read them instead of replaying its part of the log again.

With `COLLAB_KEEP_HISTORY=false` compaction deletes the entries it folds: sessions before the
last snapshot are gone, and a page that reaches back there says `complete: false`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pycrdt import Doc, merge_updates

from collab_server.identity import is_server_change
from collab_server.store import DocumentStore, UpdateRecord
from integrations.iep_content import (
    V1_ROOT,
    flatten_section,
    item_titles,
    plain,
    probe_roots,
    section_of_root,
    sections,
    typed_roots,
)
from integrations.record_contracts import LogEntry, RecordStore
from integrations.versions import SESSION_GAP_SECONDS

_METADATA_CHUNK = 2_000
_MAX_METADATA_ROWS = 200_000  # a page never reads more of the log's index than this
_MERGE_RUN = 100
MAX_SESSIONS_PER_PAGE = 50


@dataclass
class FieldChange:
    path: str
    before: str | None  # None: the field did not exist (an item added)
    after: str | None  # None: the field is gone (an item removed)

    @property
    def kind(self) -> str:
        if self.before is None:
            return "added"
        if self.after is None:
            return "removed"
        return "edited"

    def to_json(self, titles: dict[str, str]) -> dict[str, Any]:
        before, after = self.before or "", self.after or ""
        start = 0
        while start < min(len(before), len(after)) and before[start] == after[start]:
            start += 1
        end = 0
        while (
            end < min(len(before), len(after)) - start
            and before[len(before) - 1 - end] == after[len(after) - 1 - end]
        ):
            end += 1
        parts = self.path.split("/")
        item = "/".join(parts[:2]) if len(parts) == 3 else None
        return {
            "path": self.path,
            "section": parts[0],
            "item": {"id": parts[1], "title": titles.get(item, "")} if item else None,
            "field": parts[-1] if len(parts) > 1 else parts[0],
            "kind": self.kind,
            "before": self.before,
            "after": self.after,
            "inserted": len(after) - start - end,
            "deleted": len(before) - start - end,
        }


@dataclass
class Session:
    user_id: str | None
    first_seq: int
    last_seq: int
    started_at: float
    ended_at: float
    edits: int = 1
    changes: dict[str, FieldChange] = field(default_factory=dict)

    def changes_json(self, titles: dict[str, str]) -> list[dict[str, Any]]:
        return [c.to_json(titles) for c in self.changes.values()]

    def to_json(self, name: str | None, changes: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": name,
            "server": self.user_id is None or is_server_change(self.user_id),
            "from_seq": self.first_seq,
            "to_seq": self.last_seq,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "edits": self.edits,
            "changes": changes,
        }


def group_sessions(entries: Iterable[LogEntry], gap: float = SESSION_GAP_SECONDS) -> list[Session]:
    """Sessions of entries given oldest first, in the order they started."""
    found: list[Session] = []
    open_by_user: dict[str | None, Session] = {}
    for entry in entries:
        current = open_by_user.get(entry.user_id)
        if current is not None and entry.created_at - current.ended_at < gap:
            current.last_seq = entry.seq
            current.ended_at = entry.created_at
            current.edits += 1
            continue
        current = Session(entry.user_id, entry.seq, entry.seq, entry.created_at, entry.created_at)
        open_by_user[entry.user_id] = current
        found.append(current)
    return found


class Replay:
    """A document replayed entry by entry, reporting the fields each entry changed."""

    def __init__(self, start_state: bytes | None, final_state: bytes) -> None:
        self.doc: Doc[Any] = Doc()
        if start_state:
            self.doc.apply_update(start_state)
        self.roots = typed_roots(self.doc, probe_roots(final_state))
        self._touched: set[str] = set()
        self._stale: set[str] = set()  # sections changed by entries applied without a diff
        self._fields = self._read(None)
        self._subscriptions = [
            (root, root.observe_deep(self._make_observer(name)))
            for name, root in self.roots.items()
        ]

    def _follow_new_roots(self) -> None:
        """Schema 2 adds a root the first time a field is written (`student/grade`): read and
        watch it from then on. Rare, so probing the whole state then is affordable."""
        new = [name for name in self.doc.keys() if name not in self.roots]  # noqa: SIM118
        if not new:
            return
        kinds = probe_roots(self.doc.get_update())
        found = typed_roots(self.doc, {n: k for n, k in kinds.items() if n in new})
        for name, root in found.items():
            self.roots[name] = root
            self._subscriptions.append((root, root.observe_deep(self._make_observer(name))))
            self._touched.add(section_of_root(name))

    def _make_observer(self, root_name: str) -> Callable[[Sequence[Any]], None]:
        def observe(events: Sequence[Any]) -> None:
            if root_name != V1_ROOT:
                self._touched.add(section_of_root(root_name))
                return
            for event in events:
                path = list(event.path)
                if path:
                    self._touched.add(str(path[0]))
                else:
                    self._touched.update(str(k) for k in getattr(event, "keys", {}))

        return observe

    def _read(self, only: set[str] | None) -> dict[str, dict[str, str]]:
        found = sections(self.roots)
        return {
            name: flatten_section(name, plain(value))
            for name, value in found.items()
            if only is None or name in only
        }

    def apply(self, update: bytes, diff: bool = True) -> list[FieldChange]:
        """Apply one entry; with `diff`, the fields it changed (reading what it touched)."""
        if diff and self._stale:
            fresh = self._read(self._stale)
            for name in self._stale:
                self._fields[name] = fresh.get(name, {})
            self._stale.clear()
        self._touched.clear()
        self.doc.apply_update(update)
        self._follow_new_roots()
        if not diff:
            self._stale |= self._touched
            return []
        if not self._touched:
            return []
        changes: list[FieldChange] = []
        fresh = self._read(set(self._touched))
        for name in self._touched:
            before = self._fields.get(name, {})
            after = fresh.get(name, {})
            for path in before.keys() | after.keys():
                old, new = before.get(path), after.get(path)
                if old != new:
                    changes.append(FieldChange(path, old, new))
            self._fields[name] = after
        return changes

    def titles(self) -> dict[str, str]:
        return item_titles({name: plain(value) for name, value in sections(self.roots).items()})

    def close(self) -> None:
        for root, subscription in self._subscriptions:
            root.unobserve(subscription)


@dataclass(frozen=True, slots=True)
class HistoryPage:
    sessions: list[dict[str, Any]]
    next_before: int | None
    complete: bool  # False: older history was deleted by compaction (keep_history off)


History = Callable[[str, int, int], Awaitable[Sequence[UpdateRecord]]]
Names = Callable[[str], Awaitable[str | None]]


@dataclass
class _FieldEditors:
    """One document replayed to `seq`, with who last changed each field."""

    replay: Replay
    seq: int
    edits: dict[str, tuple[str | None, float]]


class HistoryReader:
    _MAX_FIELD_CACHES = 8  # replayed documents kept to answer "last edited by" incrementally

    def __init__(
        self,
        records: RecordStore,
        store: DocumentStore,
        names: Names,
        *,
        gap_seconds: float = SESSION_GAP_SECONDS,
    ) -> None:
        self.records = records
        self.store = store
        self.names = names
        self.gap = gap_seconds
        self._field_editors: dict[str, _FieldEditors] = {}
        self._field_locks: dict[str, asyncio.Lock] = {}

    async def last_edits(self, document: str) -> dict[str, dict[str, Any]]:
        """Field path -> who changed it last and when (over the history the store holds)."""
        lock = self._field_locks.setdefault(document, asyncio.Lock())
        async with lock:
            cached = self._field_editors.pop(document, None)
            if cached is None:
                start_seq, start_state, _ = await self._start(document, 0)
                records = await self.store.updates_since(document, start_seq, 10_000_000)
                final: Doc[Any] = Doc()
                if start_state:
                    final.apply_update(start_state)
                bodies = [r.update for r in records]
                for start in range(0, len(bodies), _MERGE_RUN):
                    final.apply_update(merge_updates(*bodies[start : start + _MERGE_RUN]))
                replay = Replay(start_state, final.get_update())
                cached = _FieldEditors(replay, start_seq, {})
            else:
                records = list(await self.store.updates_since(document, cached.seq, 10_000_000))
            await asyncio.to_thread(self._attribute, cached, records)
            if len(self._field_editors) >= self._MAX_FIELD_CACHES:
                oldest = next(iter(self._field_editors))
                self._field_editors.pop(oldest).replay.close()
            self._field_editors[document] = cached
            edits = dict(cached.edits)
        names: dict[str, str | None] = {}
        out: dict[str, dict[str, Any]] = {}
        for path, (user_id, at) in edits.items():
            if user_id is not None and user_id not in names:
                names[user_id] = await self.names(user_id)
            out[path] = {"user_id": user_id, "name": names.get(user_id or ""), "at": at}
        return out

    @staticmethod
    def _attribute(cached: _FieldEditors, records: Sequence[UpdateRecord]) -> None:
        for record in records:
            for change in cached.replay.apply(record.update):
                if change.after is None:
                    cached.edits.pop(change.path, None)
                else:
                    cached.edits[change.path] = (record.user_id, record.created_at)
            cached.seq = record.seq

    async def page(
        self, document: str, before_seq: int | None = None, limit: int = 20
    ) -> HistoryPage:
        limit = max(1, min(limit, MAX_SESSIONS_PER_PAGE))
        before = before_seq if before_seq is not None else 2**62
        chosen, exhausted = await self._sessions(document, before, limit)
        if not chosen:
            return HistoryPage([], None, await self._whole_log(document))
        stored = await self.records.session_changes(document, [s.first_seq for s in chosen])
        changes: dict[int, list[dict[str, Any]]] = {}
        for session in chosen:
            found = stored.get(session.first_seq)
            if found is not None and found[0] == session.last_seq:
                changes[session.first_seq] = json.loads(found[1])
        missing = [s for s in chosen if s.first_seq not in changes]
        complete = True
        if missing:
            complete = await self._replay_sessions(document, missing, changes)
        names: dict[str, str | None] = {}
        for session in chosen:
            if session.user_id is not None and session.user_id not in names:
                names[session.user_id] = await self.names(session.user_id)
        out = [
            s.to_json(names.get(s.user_id) if s.user_id else None, changes[s.first_seq])
            for s in sorted(chosen, key=lambda s: s.last_seq, reverse=True)
        ]
        next_before = None if exhausted else min(s.last_seq for s in chosen)
        if exhausted:
            complete = complete and await self._whole_log(document)
        return HistoryPage(out, next_before, complete)

    async def summarise(self, document: str) -> None:
        """Store the changes of the newest page's closed sessions (an editing session ended)."""
        await self.page(document)

    async def _replay_sessions(
        self, document: str, missing: list[Session], changes: dict[int, list[dict[str, Any]]]
    ) -> bool:
        """Replay the log over `missing` sessions into `changes`, keeping the closed ones;
        False when the store no longer holds an exact start for them."""
        low = min(s.first_seq for s in missing) - 1
        high = max(s.last_seq for s in missing)
        start_seq, start_state, exact = await self._start(document, low)
        records = await self.store.updates_since(document, start_seq, high - start_seq)
        titles = await asyncio.to_thread(
            self._replay, missing, start_state, low, [r for r in records if r.seq <= high]
        )
        exact = exact and start_seq <= low
        closed_before = time.time() - self.gap
        keep: list[tuple[int, int, str]] = []
        for session in missing:
            found = session.changes_json(titles)
            changes[session.first_seq] = found
            if exact and session.ended_at <= closed_before:
                keep.append((session.first_seq, session.last_seq, json.dumps(found)))
        if keep:
            await self.records.keep_session_changes(document, keep)
        return exact

    async def _whole_log(self, document: str) -> bool:
        """Whether the store still holds the log from its first entry."""
        first = await self.records.first_log_seq(document)
        if first is not None:
            return first <= 1
        return (await self.store.load(document)).snapshot_seq == 0

    async def _sessions(self, document: str, before: int, limit: int) -> tuple[list[Session], bool]:
        """The `limit` sessions that ended last before `before`, and whether none is older.

        Read from the newest entry: a session that goes on past `before` (the previous page's
        oldest) must not come back cut short."""
        entries: list[LogEntry] = []  # newest first
        cursor = 2**62
        exhausted = False
        while len(entries) < _MAX_METADATA_ROWS:
            chunk = await self.records.log_entries(document, cursor, _METADATA_CHUNK)
            entries.extend(chunk)
            if len(chunk) < _METADATA_CHUNK:
                exhausted = True
            elif chunk:
                cursor = chunk[-1].seq
            grouped = group_sessions(reversed(entries), self.gap)
            found = [s for s in grouped if s.last_seq < before]
            if not found and exhausted:
                return [], True
            oldest_at = entries[-1].created_at
            # A session is whole once the log read reaches further back than the gap.
            confirmed = [s for s in found if exhausted or s.started_at - oldest_at >= self.gap]
            ranked = sorted(found, key=lambda s: s.last_seq, reverse=True)
            page: list[Session] = []
            for session in ranked:
                if session not in confirmed:
                    break
                page.append(session)
                if len(page) == limit:
                    break
            if len(page) == limit or exhausted:
                return page, exhausted and len(page) == len(found)
        return [], True

    async def _start(self, document: str, seq: int) -> tuple[int, bytes | None, bool]:
        """A state to replay from at or before `seq`: (its seq, its state, exact at `seq`?)."""
        found = await self.records.version_at_or_before(document, seq)
        first = await self.records.first_log_seq(document)
        if found is not None and (first is None or first <= found[0].seq + 1):
            return found[0].seq, found[1], True
        if first is None or first <= 1:
            return 0, None, True
        # The log was compacted away (history off): start from the stored snapshot.
        stored = await self.store.load(document)
        return stored.snapshot_seq, stored.snapshot, stored.snapshot_seq <= seq

    @staticmethod
    def _replay(
        chosen: list[Session],
        start_state: bytes | None,
        low: int,
        records: list[UpdateRecord],
    ) -> dict[str, str]:
        """Fill each chosen session's changes; returns item titles at the end."""
        before = [r.update for r in records if r.seq <= low]
        window = [r for r in records if r.seq > low]
        base: Doc[Any] = Doc()
        if start_state:
            base.apply_update(start_state)
        for start in range(0, len(before), _MERGE_RUN):
            base.apply_update(merge_updates(*before[start : start + _MERGE_RUN]))
        final: Doc[Any] = Doc()
        final.apply_update(base.get_update())
        for record in window:
            final.apply_update(record.update)
        replay = Replay(base.get_update(), final.get_update())
        spans = sorted(chosen, key=lambda s: s.first_seq)
        titles = replay.titles()  # then kept current from the title changes themselves
        try:
            for record in window:
                session = _session_of(spans, record)
                # Other people's entries in between are applied without reading fields.
                changes = replay.apply(record.update, diff=session is not None)
                for change in changes:
                    parts = change.path.split("/")
                    if len(parts) == 3 and parts[2] == "title":
                        titles[f"{parts[0]}/{parts[1]}"] = change.after or change.before or ""
                if session is None or not changes:
                    continue
                for change in changes:
                    kept = session.changes.get(change.path)
                    if kept is None:
                        session.changes[change.path] = change
                    else:
                        kept.after = change.after
                        if kept.before is None and kept.after is None:
                            del session.changes[change.path]  # added, then removed
            titles.update(replay.titles())  # items retitled by entries applied without a diff
        finally:
            replay.close()
        return titles


def _session_of(spans: list[Session], record: UpdateRecord) -> Session | None:
    for session in spans:
        if (
            session.user_id == record.user_id
            and session.first_seq <= record.seq <= session.last_seq
        ):
            return session
    return None
