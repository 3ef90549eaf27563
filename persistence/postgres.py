"""PostgreSQL document store (Supabase Postgres in production), through asyncpg.

Tables live in their own schema (default `collab`) so a Supabase project keeps them out of
the API-exposed `public` schema. Supabase's transaction-mode pooler cannot keep prepared
statements: set `statement_cache_size=0` for it (COLLAB_PG_STATEMENT_CACHE_SIZE).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from collab_server.errors import LogConflict, RecordsRefused, StoreError
from collab_server.store import DocumentInfo, StoredDocument, UpdateRecord
from persistence.migrations import migrations_for

log = structlog.get_logger("collab.postgres")

# Any fixed number works: it only serialises concurrent migrations of several server processes.
_MIGRATION_LOCK = 0x1E9C011AB


def _ts(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC)


class PostgresStore:
    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "collab",
        statement_cache_size: int = 100,
        max_pool_size: int = 10,
        keep_history: bool = True,
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.statement_cache_size = statement_cache_size
        self.max_pool_size = max_pool_size
        self.keep_history = keep_history
        self._pool: asyncpg.Pool | None = None
        s = schema
        self._sql_load_doc = f"SELECT snapshot, snapshot_seq FROM {s}.documents WHERE name = $1"
        self._sql_tail = (
            f"SELECT seq, body, user_id, created_at FROM {s}.updates "
            "WHERE document = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        )
        # One statement: its own transaction and one round trip, however many documents. It
        # returns the positions it inserted; a position it skipped is checked afterwards.
        self._sql_append = (
            f"WITH inserted AS (INSERT INTO {s}.updates (document, seq, body, user_id, created_at) "
            "SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::text[], "
            "$5::timestamptz[]) ON CONFLICT DO NOTHING RETURNING document, seq, created_at), "
            f"touched AS (INSERT INTO {s}.documents AS d (name, last_seq, updated_at) "
            "SELECT document, max(seq), max(created_at) FROM inserted GROUP BY document "
            "ON CONFLICT (name) DO UPDATE SET last_seq = greatest(d.last_seq, excluded.last_seq), "
            "updated_at = greatest(d.updated_at, excluded.updated_at)) "
            "SELECT count(*) FROM inserted"
        )
        self._sql_existing = (
            f"SELECT u.document, u.seq, u.body FROM {s}.updates AS u "
            "JOIN unnest($1::text[], $2::bigint[]) AS k(document, seq) "
            "ON u.document = k.document AND u.seq = k.seq"
        )
        self._sql_snapshot = (
            f"INSERT INTO {s}.documents AS d (name, snapshot, snapshot_seq, last_seq) "
            "VALUES ($1, $2, $3, $3) ON CONFLICT (name) DO UPDATE SET "
            "snapshot = excluded.snapshot, snapshot_seq = excluded.snapshot_seq "
            "WHERE excluded.snapshot_seq >= d.snapshot_seq"
        )

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise StoreError("store is not open")
        return self._pool

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=self.max_pool_size,
            statement_cache_size=self.statement_cache_size,
        )
        await self._migrate()

    async def _migrate(self) -> None:
        s = self.schema
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {s}.schema_migrations (version INT PRIMARY KEY, "
                "name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            rows = await conn.fetch(f"SELECT version FROM {s}.schema_migrations")
            applied = {row["version"] for row in rows}
            for migration in migrations_for("postgres"):
                if migration.version in applied:
                    continue
                await conn.execute(migration.sql.replace("{schema}", s))
                await conn.execute(
                    f"INSERT INTO {s}.schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def ping(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def load(self, document: str) -> StoredDocument:
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_load_doc, document)
            snapshot, snapshot_seq = (row["snapshot"], row["snapshot_seq"]) if row else (None, 0)
            rows = await conn.fetch(self._sql_tail, document, snapshot_seq, 2**62)
        tail = [_record(document, r) for r in rows]
        return StoredDocument(snapshot, snapshot_seq, tail)

    async def append(self, records: Sequence[UpdateRecord]) -> None:
        if not records:
            return
        async with self.pool.acquire() as conn:
            try:
                await self._append(conn, records)
                return
            except asyncpg.DataError:
                pass  # some record is invalid: find whose, and store everyone else's
            refused: set[str] = set()
            conflicts: set[str] = set()
            for document, own in _by_document(records).items():
                try:
                    await self._append(conn, own)
                except asyncpg.DataError:
                    log.error("records_refused", document=document, records=len(own))
                    refused.add(document)
                except LogConflict:
                    conflicts.add(document)
        if conflicts:
            raise LogConflict(conflicts)
        if refused:
            raise RecordsRefused(refused)

    async def _append(
        self, conn: PoolConnectionProxy[asyncpg.Record], records: Sequence[UpdateRecord]
    ) -> None:
        inserted = await conn.fetchval(
            self._sql_append,
            [r.document for r in records],
            [r.seq for r in records],
            [r.update for r in records],
            [r.user_id for r in records],
            [_ts(r.created_at) for r in records],
        )
        if inserted == len(records):
            return
        # Positions already taken (a new statement: it sees whatever committed meanwhile).
        # The same bytes are a replay; other bytes are another writer.
        rows = await conn.fetch(
            self._sql_existing, [r.document for r in records], [r.seq for r in records]
        )
        wanted = {(r.document, r.seq): r.update for r in records}
        conflicts = {r["document"] for r in rows if r["body"] != wanted[(r["document"], r["seq"])]}
        if conflicts:
            for document in conflicts:
                log.error("log_conflict", document=document)
            raise LogConflict(conflicts)

    async def compact(self, document: str, snapshot: bytes, through_seq: int) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(self._sql_snapshot, document, snapshot, through_seq)
            if not self.keep_history:
                await conn.execute(
                    f"DELETE FROM {self.schema}.updates WHERE document = $1 AND seq <= $2",
                    document,
                    through_seq,
                )

    async def updates_since(
        self, document: str, after_seq: int, limit: int = 10_000
    ) -> list[UpdateRecord]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(self._sql_tail, document, after_seq, limit)
        return [_record(document, r) for r in rows]

    async def last_seqs(self, documents: Collection[str]) -> dict[str, int]:
        """The last stored position of each of `documents` (cluster replicas' check)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT name, last_seq FROM {self.schema}.documents WHERE name = ANY($1::text[])",
                list(documents),
            )
        return {r["name"]: r["last_seq"] for r in rows}

    async def list_documents(self) -> list[DocumentInfo]:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT name, last_seq, updated_at FROM {self.schema}.documents ORDER BY name"
            )
        return [DocumentInfo(r["name"], r["last_seq"], r["updated_at"].timestamp()) for r in rows]


def _by_document(records: Sequence[UpdateRecord]) -> dict[str, list[UpdateRecord]]:
    grouped: dict[str, list[UpdateRecord]] = {}
    for record in records:
        grouped.setdefault(record.document, []).append(record)
    return grouped


def _record(document: str, row: asyncpg.Record) -> UpdateRecord:
    return UpdateRecord(
        document, row["seq"], row["body"], row["user_id"], row["created_at"].timestamp()
    )
