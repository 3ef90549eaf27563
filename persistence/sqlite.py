"""SQLite document store: the embedded default.

WAL with synchronous=NORMAL: a commit survives a crash of this process (the SIGKILL case)
though not a power cut; that is the documented trade of the embedded default.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from collab_server.errors import StoreError
from collab_server.store import DocumentInfo, StoredDocument, UpdateRecord
from persistence.migrations import migrations_for

_APPEND_SQL = "INSERT OR IGNORE INTO updates (document, seq, body, user_id, created_at) VALUES "
# SQLite allows 32,766 bound values per statement; 5 per entry, 4 per touched document.
_APPEND_CHUNK = 2_000
_TOUCH_CHUNK = 2_000
_TOUCH_SQL = (
    "INSERT INTO documents (name, last_seq, created_at, updated_at) VALUES {rows} "
    "ON CONFLICT (name) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq), "
    "updated_at = max(updated_at, excluded.updated_at)"
)
# About what SQLite's own auto-checkpoint (1,000 pages) would let the write-ahead log grow to.
_CHECKPOINT_BYTES = 4 * 1024 * 1024
_PAGE_BYTES = 4096  # SQLite's default page size


class SQLiteStore:
    def __init__(self, path: Path | str, *, keep_history: bool = True) -> None:
        self.path = Path(path)
        self.keep_history = keep_history
        self._db: aiosqlite.Connection | None = None
        # The group commit's own connection, used on the event loop: an append of a few rows
        # costs tens of microseconds, less than one hop to aiosqlite's thread and back.
        self._appender: sqlite3.Connection | None = None
        self._appended_since_checkpoint = 0
        # Writers take turns: the appender never waits on a transaction of the other connection.
        self._lock = asyncio.Lock()
        self._documents_with_row: set[str] = set()  # `documents` rows this process has written

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._migrate()
        self._appender = sqlite3.connect(self.path, isolation_level=None)
        self._appender.execute("PRAGMA synchronous=NORMAL")
        self._appender.execute("PRAGMA busy_timeout=5000")
        # Checkpoints copy and fsync pages: they run on aiosqlite's thread, never on the loop.
        self._appender.execute("PRAGMA wal_autocheckpoint=0")
        self._appended_since_checkpoint = 0

    async def _migrate(self) -> None:
        db = self.db
        await db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
        )
        async with db.execute("SELECT version FROM schema_migrations") as cursor:
            applied = {row[0] for row in await cursor.fetchall()}
        for migration in migrations_for("sqlite"):
            if migration.version in applied:
                continue
            async with self._transaction() as tx:
                for statement in _statements(migration.sql):
                    await tx.execute(statement)
                await tx.execute(
                    "INSERT OR IGNORE INTO schema_migrations VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )

    def transaction(self) -> contextlib.AbstractAsyncContextManager[aiosqlite.Connection]:
        """A write transaction that takes turns with the store's own (access, notifications)."""
        return self._transaction()

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """A read that waits for any open transaction, so it never sees one half done."""
        async with self._lock, self.db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        db = self.db
        async with self._lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    async def aclose(self) -> None:
        if self._appender is not None:
            self._appender.close()
            self._appender = None
        if self._db is not None:
            await self._db.close()
            self._db = None

    async def ping(self) -> None:
        await self.db.execute("SELECT 1")

    async def load(self, document: str) -> StoredDocument:
        db = self.db
        async with db.execute(
            "SELECT snapshot, snapshot_seq FROM documents WHERE name = ?", (document,)
        ) as cursor:
            row = await cursor.fetchone()
        snapshot, snapshot_seq = (row[0], row[1]) if row else (None, 0)
        async with db.execute(
            "SELECT seq, body, user_id, created_at FROM updates "
            "WHERE document = ? AND seq > ? ORDER BY seq",
            (document, snapshot_seq),
        ) as cursor:
            rows = await cursor.fetchall()
        tail = [UpdateRecord(document, r[0], bytes(r[1]), r[2], r[3]) for r in rows]
        return StoredDocument(bytes(snapshot) if snapshot else None, snapshot_seq, tail)

    async def append(self, records: Sequence[UpdateRecord]) -> None:
        # One transaction: multi-row inserts of the entries, and a `documents` row for each
        # document this process has not appended to yet. Its activity (last seq, time) is read
        # from the newest entry (the `document_activity` view), so a commit writes only the
        # log's pages. Every row is idempotent, so a retry after a failure is safe.
        appender = self._appender
        if appender is None:
            raise StoreError("store is not open")
        latest: dict[str, UpdateRecord] = {}
        for record in records:
            if record.document not in self._documents_with_row:
                latest[record.document] = record  # records of a document come in seq order
        touched = [
            value
            for r in latest.values()
            for value in (r.document, r.seq, r.created_at, r.created_at)
        ]
        # One statement is its own transaction (the usual case: known documents, one chunk).
        single = not touched and len(records) <= _APPEND_CHUNK
        async with self._lock:
            if not single:
                appender.execute("BEGIN")
            try:
                for start in range(0, len(records), _APPEND_CHUNK):
                    chunk = records[start : start + _APPEND_CHUNK]
                    params = [
                        value
                        for r in chunk
                        for value in (r.document, r.seq, r.update, r.user_id, r.created_at)
                    ]
                    appender.execute(_append_sql(len(chunk)), params)
                for start in range(0, len(touched), _TOUCH_CHUNK * 4):
                    chunk_params = touched[start : start + _TOUCH_CHUNK * 4]
                    sql = _TOUCH_SQL.format(rows=_placeholders(len(chunk_params) // 4, 4))
                    appender.execute(sql, chunk_params)
                if not single:
                    appender.execute("COMMIT")
            except BaseException:
                if appender.in_transaction:
                    appender.execute("ROLLBACK")
                raise
        self._documents_with_row.update(latest)
        # What the write-ahead log grew by: a page per document touched, whatever the rows.
        documents = len({r.document for r in records}) if len(records) > 1 else 1
        self._appended_since_checkpoint += (documents + 1) * _PAGE_BYTES + sum(
            len(r.update) for r in records
        )
        if self._appended_since_checkpoint >= _CHECKPOINT_BYTES:
            self._appended_since_checkpoint = 0
            await self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def compact(self, document: str, snapshot: bytes, through_seq: int) -> None:
        now = time.time()
        async with self._transaction() as db:
            await self._compact(db, document, snapshot, through_seq, now)

    async def _compact(
        self,
        db: aiosqlite.Connection,
        document: str,
        snapshot: bytes,
        through_seq: int,
        now: float,
    ) -> None:
        await db.execute(
            "INSERT INTO documents (name, snapshot, snapshot_seq, last_seq, created_at, "
            "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "snapshot = excluded.snapshot, snapshot_seq = excluded.snapshot_seq, "
            # The folded entries may be deleted: keep their activity on the document's row.
            "last_seq = max(documents.last_seq, excluded.last_seq), "
            "updated_at = max(documents.updated_at, "
            "coalesce((SELECT created_at FROM updates WHERE document = excluded.name "
            "AND seq <= excluded.snapshot_seq ORDER BY seq DESC LIMIT 1), 0)) "
            "WHERE excluded.snapshot_seq >= documents.snapshot_seq",
            (document, snapshot, through_seq, through_seq, now, now),
        )
        if not self.keep_history:
            await db.execute(
                "DELETE FROM updates WHERE document = ? AND seq <= ?", (document, through_seq)
            )

    async def updates_since(
        self, document: str, after_seq: int, limit: int = 10_000
    ) -> list[UpdateRecord]:
        async with self.db.execute(
            "SELECT seq, body, user_id, created_at FROM updates "
            "WHERE document = ? AND seq > ? ORDER BY seq LIMIT ?",
            (document, after_seq, limit),
        ) as cursor:
            rows = await cursor.fetchall()
        return [UpdateRecord(document, r[0], bytes(r[1]), r[2], r[3]) for r in rows]

    async def list_documents(self) -> list[DocumentInfo]:
        async with self.db.execute(
            "SELECT name, last_seq, updated_at FROM document_activity ORDER BY name"
        ) as cursor:
            rows = await cursor.fetchall()
        return [DocumentInfo(r[0], r[1], r[2]) for r in rows]


@functools.lru_cache(maxsize=256)
def _append_sql(rows: int) -> str:
    return _APPEND_SQL + _placeholders(rows, 5)


def _placeholders(rows: int, columns: int) -> str:
    row = "(" + ", ".join(["?"] * columns) + ")"
    return ", ".join([row] * rows)


def _statements(sql: str) -> list[str]:
    """Split a migration into statements; a trigger's body keeps its own semicolons."""
    statements: list[str] = []
    pending = ""
    for line in sql.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return statements
