"""Versions, acknowledgements and the audit trail in the documents' Postgres schema (tables from
009_records.sql, where a trigger refuses any UPDATE or DELETE of audit events)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collab_server.audit import AuditEvent, StoredAuditEvent
from integrations.record_contracts import Acknowledgement, AckState, LogEntry, Version
from persistence.postgres import PostgresStore
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


def _values(count: int) -> str:
    return ", ".join(f"${i}" for i in range(1, count + 1))


class PostgresRecordStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self.s = store.schema

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._store.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def _execute(self, sql: str, *args: Any) -> str:
        async with self._store.pool.acquire() as conn:
            result: str = await conn.execute(sql, *args)
            return result

    # -- versions

    async def add_version(self, version: Version, state: bytes) -> None:
        await self._execute(
            f"INSERT INTO {self.s}.versions ({VERSION_COLUMNS}, state) VALUES ({_values(11)})",
            *version_row(version),
            state,
        )

    async def versions(self, document: str) -> list[Version]:
        rows = await self._fetch(
            f"SELECT {VERSION_COLUMNS} FROM {self.s}.versions WHERE document = $1 "
            "ORDER BY seq DESC, created_at DESC",
            document,
        )
        return [version_from_row(tuple(r)) for r in rows]

    async def version(self, document: str, version_id: str) -> tuple[Version, bytes] | None:
        rows = await self._fetch(
            f"SELECT {VERSION_COLUMNS}, state FROM {self.s}.versions "
            "WHERE document = $1 AND id = $2",
            document,
            version_id,
        )
        return (version_from_row(tuple(rows[0])), bytes(rows[0][10])) if rows else None

    async def version_at_or_before(self, document: str, seq: int) -> tuple[Version, bytes] | None:
        rows = await self._fetch(
            f"SELECT {VERSION_COLUMNS}, state FROM {self.s}.versions "
            "WHERE document = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1",
            document,
            seq,
        )
        return (version_from_row(tuple(rows[0])), bytes(rows[0][10])) if rows else None

    async def latest_version(self, document: str) -> Version | None:
        rows = await self._fetch(
            f"SELECT {VERSION_COLUMNS} FROM {self.s}.versions WHERE document = $1 "
            "ORDER BY seq DESC, created_at DESC LIMIT 1",
            document,
        )
        return version_from_row(tuple(rows[0])) if rows else None

    # -- the log

    async def log_entries(self, document: str, before_seq: int, limit: int) -> list[LogEntry]:
        rows = await self._fetch(
            f"SELECT seq, user_id, created_at FROM {self.s}.updates "
            "WHERE document = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
            document,
            before_seq,
            limit,
        )
        return [LogEntry(int(r[0]), r[1], r[2].timestamp()) for r in rows]

    async def first_log_seq(self, document: str) -> int | None:
        rows = await self._fetch(
            f"SELECT seq FROM {self.s}.updates WHERE document = $1 ORDER BY seq LIMIT 1",
            document,
        )
        return int(rows[0][0]) if rows else None

    async def session_changes(
        self, document: str, first_seqs: Sequence[int]
    ) -> dict[int, tuple[int, str]]:
        if not first_seqs:
            return {}
        rows = await self._fetch(
            f"SELECT first_seq, last_seq, changes FROM {self.s}.history_sessions "
            "WHERE document = $1 AND first_seq = ANY($2::bigint[])",
            document,
            list(first_seqs),
        )
        return {int(r[0]): (int(r[1]), str(r[2])) for r in rows}

    async def keep_session_changes(
        self, document: str, sessions: Sequence[tuple[int, int, str]]
    ) -> None:
        async with self._store.pool.acquire() as conn:
            await conn.executemany(
                f"INSERT INTO {self.s}.history_sessions (document, first_seq, last_seq, changes) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (document, first_seq) DO NOTHING",
                [(document, *session) for session in sessions],
            )

    # -- acknowledgements

    async def add_acknowledgements(self, requests: Sequence[Acknowledgement]) -> list[str]:
        inserted: list[str] = []
        async with self._store.pool.acquire() as conn, conn.transaction():
            for ack in requests:
                status = await conn.execute(
                    f"INSERT INTO {self.s}.acknowledgements ({ACK_COLUMNS}) "
                    f"VALUES ({_values(13)}) ON CONFLICT DO NOTHING",
                    *ack_row(ack),
                )
                if status.endswith(" 1"):
                    inserted.append(ack.id)
        return inserted

    async def acknowledgement(self, ack_id: str) -> Acknowledgement | None:
        rows = await self._fetch(
            f"SELECT {ACK_COLUMNS} FROM {self.s}.acknowledgements WHERE id = $1", ack_id
        )
        return ack_from_row(tuple(rows[0])) if rows else None

    async def acknowledgements(
        self, document: str, version_id: str | None
    ) -> list[Acknowledgement]:
        rows = await self._fetch(
            f"SELECT {ACK_COLUMNS} FROM {self.s}.acknowledgements WHERE document = $1 "
            "AND ($2::text IS NULL OR version_id = $2) ORDER BY requested_at, recipient_id",
            document,
            version_id,
        )
        return [ack_from_row(tuple(r)) for r in rows]

    async def answer_acknowledgement(
        self, ack_id: str, state: AckState, comment: str | None, channel: str | None, at: float
    ) -> bool:
        status = await self._execute(
            f"UPDATE {self.s}.acknowledgements SET state = $1, comment = $2, channel = $3, "
            "answered_at = $4, next_reminder_at = NULL WHERE id = $5 AND state = 'pending'",
            state.value,
            comment,
            channel,
            at,
            ack_id,
        )
        return status.endswith(" 1")

    async def due_reminders(self, now: float, limit: int) -> list[Acknowledgement]:
        rows = await self._fetch(
            f"SELECT {ACK_COLUMNS} FROM {self.s}.acknowledgements "
            "WHERE next_reminder_at <= $1 ORDER BY next_reminder_at LIMIT $2",
            now,
            limit,
        )
        return [ack_from_row(tuple(r)) for r in rows]

    async def next_reminder_due(self) -> float | None:
        rows = await self._fetch(
            f"SELECT min(next_reminder_at) FROM {self.s}.acknowledgements "
            "WHERE next_reminder_at IS NOT NULL"
        )
        return None if not rows or rows[0][0] is None else float(rows[0][0])

    async def claim_reminder(self, ack_id: str, due_at: float, next_at: float | None) -> bool:
        status = await self._execute(
            f"UPDATE {self.s}.acknowledgements SET reminders_sent = reminders_sent + 1, "
            "next_reminder_at = $1 WHERE id = $2 AND state = 'pending' "
            "AND next_reminder_at = $3",
            next_at,
            ack_id,
            due_at,
        )
        return status.endswith(" 1")

    # -- audit (collab_server.audit.AuditLog)

    async def append_audit(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        async with self._store.pool.acquire() as conn:
            await conn.executemany(
                f"INSERT INTO {self.s}.audit_events ({AUDIT_COLUMNS}) VALUES ({_values(7)})",
                [audit_row(e) for e in events],
            )

    async def audit_events(
        self, document: str, before_id: int | None, limit: int
    ) -> list[StoredAuditEvent]:
        rows = await self._fetch(
            f"SELECT id, {AUDIT_COLUMNS} FROM {self.s}.audit_events "
            "WHERE document = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
            document,
            before_id if before_id is not None else 2**62,
            limit,
        )
        return [audit_from_row(tuple(r)) for r in rows]
