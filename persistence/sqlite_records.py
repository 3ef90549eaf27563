"""Versions, acknowledgements and the audit trail in the SQLite file of the documents (tables
from 009_records.sql). It shares the SQLiteStore's one connection and drains its journal before
reading the log, so a history never misses an acknowledged update."""

from __future__ import annotations

from collections.abc import Sequence

from collab_server.audit import AuditEvent, StoredAuditEvent
from integrations.record_contracts import Acknowledgement, AckState, LogEntry, Version
from persistence.record_rows import (
    ACK_COLUMNS,
    AUDIT_COLUMNS,
    VERSION_COLUMNS,
    ack_from_row,
    ack_row,
    audit_from_row,
    audit_row,
    version_from_row,
    version_row,
)
from persistence.sqlite import SQLiteStore


class SQLiteRecordStore:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    # -- versions

    async def add_version(self, version: Version, state: bytes) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                f"INSERT INTO versions ({VERSION_COLUMNS}, state) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*version_row(version), state),
            )

    async def versions(self, document: str) -> list[Version]:
        rows = await self._store.fetch_all(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE document = ? "
            "ORDER BY seq DESC, created_at DESC",
            (document,),
        )
        return [version_from_row(r) for r in rows]

    async def version(self, document: str, version_id: str) -> tuple[Version, bytes] | None:
        rows = await self._store.fetch_all(
            f"SELECT {VERSION_COLUMNS}, state FROM versions WHERE document = ? AND id = ?",
            (document, version_id),
        )
        return (version_from_row(rows[0]), bytes(rows[0][10])) if rows else None

    async def version_at_or_before(self, document: str, seq: int) -> tuple[Version, bytes] | None:
        rows = await self._store.fetch_all(
            f"SELECT {VERSION_COLUMNS}, state FROM versions WHERE document = ? AND seq <= ? "
            "ORDER BY seq DESC LIMIT 1",
            (document, seq),
        )
        return (version_from_row(rows[0]), bytes(rows[0][10])) if rows else None

    async def latest_version(self, document: str) -> Version | None:
        rows = await self._store.fetch_all(
            f"SELECT {VERSION_COLUMNS} FROM versions WHERE document = ? "
            "ORDER BY seq DESC, created_at DESC LIMIT 1",
            (document,),
        )
        return version_from_row(rows[0]) if rows else None

    # -- the log

    async def log_entries(self, document: str, before_seq: int, limit: int) -> list[LogEntry]:
        rows = await self._store.fetch_all(
            "SELECT seq, user_id, created_at FROM updates WHERE document = ? AND seq < ? "
            "ORDER BY seq DESC LIMIT ?",
            (document, before_seq, limit),
        )
        return [LogEntry(int(r[0]), r[1], float(r[2])) for r in rows]

    async def first_log_seq(self, document: str) -> int | None:
        rows = await self._store.fetch_all(
            "SELECT seq FROM updates WHERE document = ? ORDER BY seq LIMIT 1", (document,)
        )
        return int(rows[0][0]) if rows else None

    async def session_changes(
        self, document: str, first_seqs: Sequence[int]
    ) -> dict[int, tuple[int, str]]:
        if not first_seqs:
            return {}
        marks = ", ".join("?" * len(first_seqs))
        rows = await self._store.fetch_all(
            "SELECT first_seq, last_seq, changes FROM history_sessions "
            f"WHERE document = ? AND first_seq IN ({marks})",
            (document, *first_seqs),
        )
        return {int(r[0]): (int(r[1]), str(r[2])) for r in rows}

    async def keep_session_changes(
        self, document: str, sessions: Sequence[tuple[int, int, str]]
    ) -> None:
        async with self._store.transaction() as db:
            await db.executemany(
                "INSERT INTO history_sessions (document, first_seq, last_seq, changes) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (document, first_seq) DO NOTHING",
                [(document, *session) for session in sessions],
            )

    # -- acknowledgements

    async def add_acknowledgements(self, requests: Sequence[Acknowledgement]) -> list[str]:
        inserted: list[str] = []
        async with self._store.transaction() as db:
            for ack in requests:
                cursor = await db.execute(
                    f"INSERT OR IGNORE INTO acknowledgements ({ACK_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    ack_row(ack),
                )
                if cursor.rowcount:
                    inserted.append(ack.id)
        return inserted

    async def acknowledgement(self, ack_id: str) -> Acknowledgement | None:
        rows = await self._store.fetch_all(
            f"SELECT {ACK_COLUMNS} FROM acknowledgements WHERE id = ?", (ack_id,)
        )
        return ack_from_row(rows[0]) if rows else None

    async def acknowledgements(
        self, document: str, version_id: str | None
    ) -> list[Acknowledgement]:
        if version_id is None:
            rows = await self._store.fetch_all(
                f"SELECT {ACK_COLUMNS} FROM acknowledgements WHERE document = ? "
                "ORDER BY requested_at, recipient_id",
                (document,),
            )
        else:
            rows = await self._store.fetch_all(
                f"SELECT {ACK_COLUMNS} FROM acknowledgements WHERE document = ? "
                "AND version_id = ? ORDER BY requested_at, recipient_id",
                (document, version_id),
            )
        return [ack_from_row(r) for r in rows]

    async def answer_acknowledgement(
        self, ack_id: str, state: AckState, comment: str | None, channel: str | None, at: float
    ) -> bool:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "UPDATE acknowledgements SET state = ?, comment = ?, channel = ?, "
                "answered_at = ?, next_reminder_at = NULL WHERE id = ? AND state = 'pending'",
                (state.value, comment, channel, at, ack_id),
            )
            return bool(cursor.rowcount)

    async def due_reminders(self, now: float, limit: int) -> list[Acknowledgement]:
        rows = await self._store.fetch_all(
            f"SELECT {ACK_COLUMNS} FROM acknowledgements WHERE next_reminder_at <= ? "
            "ORDER BY next_reminder_at LIMIT ?",
            (now, limit),
        )
        return [ack_from_row(r) for r in rows]

    async def next_reminder_due(self) -> float | None:
        rows = await self._store.fetch_all(
            "SELECT min(next_reminder_at) FROM acknowledgements WHERE next_reminder_at IS NOT NULL"
        )
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    async def claim_reminder(self, ack_id: str, due_at: float, next_at: float | None) -> bool:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "UPDATE acknowledgements SET reminders_sent = reminders_sent + 1, "
                "next_reminder_at = ? WHERE id = ? AND state = 'pending' "
                "AND next_reminder_at = ?",
                (next_at, ack_id, due_at),
            )
            return bool(cursor.rowcount)

    # -- audit (collab_server.audit.AuditLog)

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        async with self._store.transaction() as db:
            await db.executemany(
                f"INSERT INTO audit_events ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [audit_row(e) for e in events],
            )

    async def audit_events(
        self, document: str, before_id: int | None, limit: int
    ) -> list[StoredAuditEvent]:
        rows = await self._store.fetch_all(
            f"SELECT id, {AUDIT_COLUMNS} FROM audit_events WHERE document = ? AND id < ? "
            "ORDER BY id DESC LIMIT ?",
            (document, before_id if before_id is not None else 2**62, limit),
        )
        return [audit_from_row(r) for r in rows]
