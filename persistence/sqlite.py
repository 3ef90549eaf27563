"""SQLite document store: the embedded default.

WAL with synchronous=NORMAL: a commit survives a crash of this process (the SIGKILL case)
though not a power cut; that is the documented trade of the embedded default. Appends reach
the intake journal (`persistence.journal`, the same guarantee) and the tables within
`drain_delay_seconds`; every read and transaction drains the journal first, so no reader of
this store sees the log without them.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import functools
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path
from typing import Any

import aiosqlite
import structlog

from collab_server.errors import LogConflict, StoreError
from collab_server.store import DocumentInfo, StoredDocument, UpdateRecord
from persistence.journal import ROTATE_BYTES, Journal, Segment
from persistence.migrations import migrations_for

log = structlog.get_logger("collab.sqlite")

_APPEND_SQL = "INSERT OR IGNORE INTO updates (document, seq, body, user_id, created_at) VALUES "
# SQLite allows 32,766 bound values per statement; 5 per entry, 4 per touched document.
_APPEND_CHUNK = 2_000
_TOUCH_CHUNK = 2_000
_TOUCH_SQL = (
    "INSERT INTO documents (name, last_seq, created_at, updated_at) VALUES {rows} "
    "ON CONFLICT (name) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq), "
    "updated_at = max(updated_at, excluded.updated_at)"
)
# A busy server drains this many records at once rather than waiting for the delay.
_DRAIN_NOW_RECORDS = 5_000
_DRAIN_RETRY_FIRST_SECONDS = 0.05
_DRAIN_RETRY_MAX_SECONDS = 5.0
# Documents whose last log position the store remembers (those used most recently).
_LAST_SEQ_DOCUMENTS = 100_000


class SQLiteStore:
    def __init__(
        self,
        path: Path | str,
        *,
        keep_history: bool = True,
        drain_delay_seconds: float = 0.05,
        journal_rotate_bytes: int = ROTATE_BYTES,
    ) -> None:
        self.path = Path(path)
        self.keep_history = keep_history
        self._db: aiosqlite.Connection | None = None
        self._journal = Journal(
            None if str(path) == ":memory:" else self.path, rotate_bytes=journal_rotate_bytes
        )
        # Journaled records not in the tables yet, and full segments to delete once a drain
        # commits (the live segment holds records until it fills, drained or not).
        self._undrained: list[UpdateRecord] = []
        self._draining: list[UpdateRecord] = []  # taken by the drain under way
        self._sealed: list[Segment] = []
        self._drain_delay = drain_delay_seconds
        self._drain_timer: asyncio.TimerHandle | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._drain_retry = _DRAIN_RETRY_FIRST_SECONDS
        # Drains, transactions and reads take turns on the one connection.
        self._lock = asyncio.Lock()
        self._documents_with_row: set[str] = set()  # `documents` rows this process has written
        # The last log position of each document this store loaded or appended to: an append
        # at a taken position is refused before anything is journaled (LRU-bounded).
        self._last_seq: collections.OrderedDict[str, int] = collections.OrderedDict()
        self._owner_lock: int | None = None

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StoreError("store is not open")
        return self._db

    async def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if str(self.path) != ":memory:":
            self._owner_lock = _lock_database(self.path)
        self._db = await aiosqlite.connect(self.path, isolation_level=None)
        await self._db.execute("PRAGMA journal_mode=WAL")
        await self._db.execute("PRAGMA synchronous=NORMAL")
        await self._db.execute("PRAGMA busy_timeout=5000")
        await self._migrate()
        for found in self._journal.recover():
            # What a process that died had acknowledged: into the tables before anything loads.
            async with self._begin() as db:
                created = await self._insert(db, found.records)
                if not self.keep_history:
                    await self._forget_folded(db, {record.document for record in found.records})
            self._documents_with_row.update(created)
            self._journal.retire(found)
            log.info(
                "journal_recovered", segment=found.segment.path.name, records=len(found.records)
            )

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
            async with self._begin() as tx:
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
        async with self._drained() as db, db.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    @contextlib.asynccontextmanager
    async def _drained(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection, every journaled record in its tables, other writers held off."""
        async with self._lock:
            await self._drain_locked()
            yield self.db

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._drained(), self._begin() as db:
            yield db

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[aiosqlite.Connection]:
        db = self.db
        await db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        await db.execute("COMMIT")

    async def aclose(self) -> None:
        while self._drain_timer is not None or self._drain_task is not None:
            if self._drain_timer is not None:
                self._drain_timer.cancel()
                self._drain_timer = None
            if self._drain_task is not None:
                await self._drain_task  # it may set a timer again: the loop cancels it
        if self._db is None:
            return
        try:
            async with self._lock:
                await self._drain_locked()
        except Exception:
            # The journal keeps them: the next start copies them in.
            log.exception("journal_drain_failed_at_close", records=len(self._undrained))
        for segment in self._sealed:
            segment.close()
        self._sealed.clear()
        self._journal.close(drained=not self._undrained)
        await self._db.close()
        self._db = None
        if self._owner_lock is not None:
            os.close(self._owner_lock)  # releases the lock: another server may start now
            self._owner_lock = None

    async def ping(self) -> None:
        # Readiness includes draining: a journal that cannot reach the tables is an outage.
        async with self._drained() as db:
            await db.execute("SELECT 1")

    async def load(self, document: str) -> StoredDocument:
        async with self._drained() as db:
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
        stored = StoredDocument(bytes(snapshot) if snapshot else None, snapshot_seq, tail)
        self._note_last_seq(document, stored.last_seq)
        return stored

    async def append(self, records: Sequence[UpdateRecord]) -> None:
        self.append_now(records)

    def append_now(self, records: Sequence[UpdateRecord]) -> None:
        if self._db is None:
            raise StoreError("store is not open")
        last_seq = self._last_seq
        conflicts: set[str] = set()
        replayed: set[tuple[str, int]] = set()
        for record in records:
            if last_seq.get(record.document, 0) >= record.seq:
                if self._already_stored(record):
                    replayed.add((record.document, record.seq))  # a retry: skip it
                else:
                    conflicts.add(record.document)
        if conflicts or replayed:
            records = [
                r
                for r in records
                if r.document not in conflicts and (r.document, r.seq) not in replayed
            ]
        if records:
            self._journal.write(records)
            self._undrained += records
            for record in records:
                self._note_last_seq(record.document, record.seq)
        if conflicts:
            raise LogConflict(conflicts)
        if len(self._undrained) >= _DRAIN_NOW_RECORDS:
            self._start_drain()
        elif self._drain_timer is None and self._drain_task is None:
            loop = asyncio.get_running_loop()
            self._drain_timer = loop.call_later(self._drain_delay, self._start_drain)

    def _already_stored(self, record: UpdateRecord) -> bool:
        """Whether this very record (same position, same bytes) is journaled or in the tables.

        Only a position at or below the last one this store wrote comes here: a retry or
        another writer, both rare, so the tables are read synchronously.
        """
        for held in (self._undrained, self._draining):
            for other in held:
                if other.document == record.document and other.seq == record.seq:
                    return other.update == record.update
        with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
            row = db.execute(
                "SELECT body FROM updates WHERE document = ? AND seq = ?",
                (record.document, record.seq),
            ).fetchone()
        return row is not None and bytes(row[0]) == record.update

    def _note_last_seq(self, document: str, seq: int) -> None:
        last_seq = self._last_seq
        if document in last_seq:
            last_seq.move_to_end(document)
        elif len(last_seq) >= _LAST_SEQ_DOCUMENTS:
            last_seq.popitem(last=False)
        last_seq[document] = max(seq, last_seq.get(document, 0))

    # -- draining the journal into the tables -----------------------------------------------

    def _start_drain(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.cancel()
            self._drain_timer = None
        if self._drain_task is None:  # a running drain schedules the next one when it ends
            self._drain_task = asyncio.create_task(self._drain_in_background(), name="drain")

    async def _drain_in_background(self) -> None:
        delay = self._drain_delay
        try:
            async with self._lock:
                await self._drain_locked()
            self._drain_retry = _DRAIN_RETRY_FIRST_SECONDS
            if len(self._undrained) >= _DRAIN_NOW_RECORDS:
                delay = 0.0
        except Exception:
            delay, self._drain_retry = (
                self._drain_retry,
                min(self._drain_retry * 2, _DRAIN_RETRY_MAX_SECONDS),
            )
            log.exception("journal_drain_failed", records=len(self._undrained), retry_in=delay)
        finally:
            self._drain_task = None
        if self._undrained and self._db is not None and self._drain_timer is None:
            self._drain_timer = asyncio.get_running_loop().call_later(delay, self._start_drain)

    async def _drain_locked(self) -> None:
        """Copy journaled records into the tables, then delete full segments; lock held."""
        # First, so that if it fails nothing has been taken: a segment sealed by a failed
        # drain waits in the list for one that commits.
        sealed = self._journal.seal_if_full()
        if sealed is not None:
            self._sealed.append(sealed)
        records, self._undrained = self._undrained, []
        if records:
            self._draining = records
            try:
                created = await self._insert_committed(records)
            except BaseException:
                self._undrained = records + self._undrained
                raise
            finally:
                self._draining = []
            self._documents_with_row.update(created)
        for segment in self._sealed:
            self._journal.remove(segment)
        self._sealed.clear()

    async def _insert_committed(self, records: Sequence[UpdateRecord]) -> Collection[str]:
        """Insert and commit; returns the documents given a row."""
        if len(records) <= _APPEND_CHUNK and all(
            record.document in self._documents_with_row for record in records
        ):
            # A lone statement is its own transaction: one trip to the connection's thread
            # instead of three (BEGIN, INSERT, COMMIT), each of which wakes both threads.
            cursor = await self.db.execute(_append_sql(len(records)), _append_params(records))
            if cursor.rowcount < len(records):
                await self._report_conflicts(self.db, records)
            return ()
        async with self._begin() as db:
            return await self._insert(db, records)

    async def _insert(
        self, db: aiosqlite.Connection, records: Sequence[UpdateRecord]
    ) -> Collection[str]:
        """Insert in the caller's transaction; returns the documents given a row, to note
        once it commits.

        Multi-row inserts of the entries, and a `documents` row for each document this process
        has not written one for yet: its activity (last seq, time) is read from the newest
        entry (the `document_activity` view), so a drain writes only the log's pages. Every
        row is idempotent, so copying a segment twice is harmless.
        """
        latest: dict[str, UpdateRecord] = {}
        for record in records:
            if record.document not in self._documents_with_row:
                latest[record.document] = record  # records of a document come in seq order
        for start in range(0, len(records), _APPEND_CHUNK):
            chunk = records[start : start + _APPEND_CHUNK]
            cursor = await db.execute(_append_sql(len(chunk)), _append_params(chunk))
            if cursor.rowcount < len(chunk):
                await self._report_conflicts(db, chunk)
        touched = [
            value
            for r in latest.values()
            for value in (r.document, r.seq, r.created_at, r.created_at)
        ]
        for start in range(0, len(touched), _TOUCH_CHUNK * 4):
            chunk_params = touched[start : start + _TOUCH_CHUNK * 4]
            sql = _TOUCH_SQL.format(rows=_placeholders(len(chunk_params) // 4, 4))
            await db.execute(sql, chunk_params)
        return latest.keys()

    async def _report_conflicts(
        self, db: aiosqlite.Connection, records: Sequence[UpdateRecord]
    ) -> None:
        """Some journaled records were already in the tables: a replay after a crash, with
        the same bytes. Other bytes at a position mean a second writer, which the database
        lock and `append_now` rule out: say so loudly, the log keeps its first entry."""
        wanted = {(r.document, r.seq): r.update for r in records}
        keys = [value for r in records for value in (r.document, r.seq)]
        sql = (
            "SELECT document, seq, body FROM updates WHERE (document, seq) IN "
            f"(VALUES {_placeholders(len(records), 2)})"
        )
        async with db.execute(sql, keys) as cursor:
            rows = await cursor.fetchall()
        for document, seq, body in rows:
            if bytes(body) != wanted[(document, seq)]:
                log.error("log_conflict_in_journal", document=document, seq=seq)

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
            # The compacted entries may be deleted: keep their activity on the document's row.
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

    async def _forget_folded(self, db: aiosqlite.Connection, documents: set[str]) -> None:
        """Delete entries a snapshot already holds: a journal copied in at start may hold
        some that were drained, then compacted away, before the process died."""
        for document in documents:
            await db.execute(
                "DELETE FROM updates WHERE document = ? AND seq <= "
                "(SELECT snapshot_seq FROM documents WHERE name = ?)",
                (document, document),
            )

    async def updates_since(
        self, document: str, after_seq: int, limit: int = 10_000
    ) -> list[UpdateRecord]:
        rows = await self.fetch_all(
            "SELECT seq, body, user_id, created_at FROM updates "
            "WHERE document = ? AND seq > ? ORDER BY seq LIMIT ?",
            (document, after_seq, limit),
        )
        return [UpdateRecord(document, r[0], bytes(r[1]), r[2], r[3]) for r in rows]

    async def list_documents(self) -> list[DocumentInfo]:
        rows = await self.fetch_all(
            "SELECT name, last_seq, updated_at FROM document_activity ORDER BY name"
        )
        return [DocumentInfo(r[0], r[1], r[2]) for r in rows]


@functools.lru_cache(maxsize=256)
def _append_sql(rows: int) -> str:
    return _APPEND_SQL + _placeholders(rows, 5)


def _append_params(records: Sequence[UpdateRecord]) -> list[object]:
    return [
        value for r in records for value in (r.document, r.seq, r.update, r.user_id, r.created_at)
    ]


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


def _lock_database(path: Path) -> int:
    """Hold `<database>.lock` for the life of the store: one server process per database file.

    Two processes on one file would each hand out the same log positions; the lock ends with
    the process, so a crash or a restart is never locked out.
    """
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StoreError(
            f"another server process (pid {holder}) already serves {path}; stop it first, "
            "or run several processes on PostgreSQL in cluster mode"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return fd
