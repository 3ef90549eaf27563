"""The live subscription log in the documents' Postgres schema (020_events.sql).

Event-writing transactions take one advisory lock before inserting, held until they commit:
positions (a sequence) are then assigned and made visible in the same order, so a reader that
has seen position N has seen every event before it (collab_server/events.py relies on this).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from collab_server.events import Event, NewEvent
from persistence.postgres import PostgresStore

# Any fixed number: it only orders event writers among themselves.
EVENTS_LOCK = 0x1E9E0E17


async def append_events(
    conn: asyncpg.Connection | PoolConnectionProxy, schema: str, events: Sequence[NewEvent]
) -> int:
    """Insert in the caller's transaction; returns the last position written (0: none)."""
    if not events:
        return 0
    await conn.execute("SELECT pg_advisory_xact_lock($1)", EVENTS_LOCK)
    last: int = await conn.fetchval(
        f"WITH inserted AS (INSERT INTO {schema}.events (topic, kind, data, at) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::float8[]) "
        "RETURNING position) SELECT max(position) FROM inserted",
        [e.topic for e in events],
        [e.kind for e in events],
        [e.data_json for e in events],
        [e.at for e in events],
    )
    return last


def _event(row: asyncpg.Record) -> Event:
    return Event(row["position"], row["topic"], row["kind"], row["data"], row["at"])


class PostgresEventLog:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self.s = store.schema

    async def append(self, events: Sequence[NewEvent]) -> int:
        async with self._store.pool.acquire() as conn, conn.transaction():
            return await append_events(conn, self.s, events)

    async def events_since(
        self, topics: Collection[str] | None, after: int, limit: int, through: int | None = None
    ) -> list[Event]:
        bound = through if through is not None else 2**62
        async with self._store.pool.acquire() as conn:
            if topics is None:
                rows = await conn.fetch(
                    f"SELECT * FROM {self.s}.events WHERE position > $1 AND position <= $2 "
                    "ORDER BY position LIMIT $3",
                    after,
                    bound,
                    limit,
                )
            else:
                rows = await conn.fetch(
                    f"SELECT * FROM {self.s}.events WHERE topic = ANY($1::text[]) "
                    "AND position > $2 AND position <= $3 ORDER BY position LIMIT $4",
                    list(topics),
                    after,
                    bound,
                    limit,
                )
        return [_event(r) for r in rows]

    async def last_position(self) -> int:
        async with self._store.pool.acquire() as conn:
            value = await conn.fetchval(f"SELECT max(position) FROM {self.s}.events")
        return int(value or 0)

    async def first_position(self) -> int | None:
        async with self._store.pool.acquire() as conn:
            value = await conn.fetchval(f"SELECT min(position) FROM {self.s}.events")
        return int(value) if value is not None else None

    async def prune(self, before_at: float) -> int:
        async with self._store.pool.acquire() as conn:
            status: str = await conn.execute(
                f"DELETE FROM {self.s}.events WHERE at < $1 "
                f"AND position < (SELECT max(position) FROM {self.s}.events)",
                before_at,
            )
        return int(status.rsplit(maxsplit=1)[-1])
