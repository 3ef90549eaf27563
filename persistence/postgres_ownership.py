"""One writer per document across server processes on one Postgres database.

A process that loads a document takes a session-level advisory lock on it, on a connection of
its own, and releases it when the document is unloaded. Another process asking for the same
document is refused (`OwnedElsewhere`), so two processes never hand out the same log
positions. A lock ends with its session: a process that dies (SIGKILL, a crash) lets go at
once, and one whose machine vanishes within about ten seconds (TCP keepalives), so a restart
or a rolling deploy is never locked out. If the lock connection itself is lost, every lock is
gone: the registry is told, and drops what it holds.

Locks are keyed by a 64-bit hash of schema and document name; two names sharing a hash would
only make one of them wait for the other's process, never share a log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

import asyncpg
import structlog
from asyncpg.pool import PoolConnectionProxy

from collab_server.cluster import OwnedElsewhere, OwnershipLost
from persistence.postgres import PostgresStore

log = structlog.get_logger("collab.ownership")

# The server notices a dead client within idle + interval * count seconds.
_KEEPALIVES = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
}
_HASH_SEED = 0x1E9C


class PostgresOwnership:
    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._conn: asyncpg.Connection | None = None
        self._owned: set[str] = set()
        self._lost: OwnershipLost | None = None
        # The lock connection runs one statement at a time.
        self._turn = asyncio.Lock()

    async def start(self, lost: OwnershipLost) -> None:
        self._lost = lost

    async def acquire(self, document: str) -> None:
        async with self._turn:
            conn = await self._connection()
            taken = await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, $2))",
                self._key(document),
                _HASH_SEED,
            )
            if not taken:
                raise OwnedElsewhere()
            self._owned.add(document)

    async def release(self, document: str) -> None:
        async with self._turn:
            if document not in self._owned:
                return
            self._owned.discard(document)
            conn = self._conn
            if conn is None or conn.is_closed():
                return  # the session is gone, and its locks with it
            await conn.execute(
                "SELECT pg_advisory_unlock(hashtextextended($1, $2))",
                self._key(document),
                _HASH_SEED,
            )

    async def ping(self) -> None:
        async with self._turn:
            conn = await self._connection()
            await conn.fetchval("SELECT 1")

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            await conn.close()  # ends the session: every lock goes with it
        self._owned.clear()

    def _key(self, document: str) -> str:
        return f"{self.store.schema}/{document}"

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is not None and not self._conn.is_closed():
            return self._conn
        conn = await asyncpg.connect(
            self.store.dsn,
            statement_cache_size=self.store.statement_cache_size,
            server_settings=_KEEPALIVES,
        )
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        return conn

    def _terminated(self, conn: asyncpg.Connection | PoolConnectionProxy[Any]) -> None:
        if conn is not self._conn:
            return
        lost: Collection[str] = frozenset(self._owned)
        self._owned.clear()
        self._conn = None
        log.error("document_ownership_lost", documents=len(lost))
        if lost and self._lost is not None:
            self._lost(lost)


class PostgresJobsLock:
    """The cluster's jobs lock: a session advisory lock on a connection of its own."""

    def __init__(self, store: PostgresStore) -> None:
        self.store = store
        self._conn: asyncpg.Connection | None = None
        self._held = False

    async def try_acquire(self) -> bool:
        conn = self._conn
        if conn is None or conn.is_closed():
            self._held = False  # the session ended, and the lock with it
            conn = await asyncpg.connect(
                self.store.dsn,
                statement_cache_size=self.store.statement_cache_size,
                server_settings=_KEEPALIVES,
            )
            self._conn = conn
        if self._held:
            await conn.fetchval("SELECT 1")  # still our session: still our lock
            return True
        self._held = bool(
            await conn.fetchval(
                "SELECT pg_try_advisory_lock(hashtextextended($1, $2))",
                f"{self.store.schema}#jobs",
                _HASH_SEED,
            )
        )
        return self._held

    async def release(self) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        self._held = False
        if conn is not None and not conn.is_closed():
            await conn.close()
