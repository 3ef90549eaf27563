"""Calls' rings in the documents' Postgres schema (034_call_rings.sql); rings and their events
are one transaction, the events under the event log's lock."""

from __future__ import annotations

from collections.abc import Sequence

from collab_server.events import NewEvent
from integrations.calls.records import Answer, CallQuota, Ring, TooManyCalls
from persistence.postgres import PostgresStore
from persistence.postgres_events import append_events
from persistence.sqlite_calls import RING_COLUMNS, ring_from_row


class PostgresCallStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self.s = store.schema

    async def keep(
        self, rings: Sequence[Ring], events: Sequence[NewEvent], quota: CallQuota | None = None
    ) -> int:
        async with self._store.pool.acquire() as conn, conn.transaction():
            if quota is not None and rings:
                caller = rings[0].caller_id
                # One count at a time per caller, so two tabs cannot both take the last one.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('call-caller:' || $1))", caller
                )
                started = await conn.fetchval(
                    f"SELECT count(DISTINCT call_id) FROM {self.s}.call_rings "
                    "WHERE caller_id = $1 AND at > $2",
                    caller,
                    quota.since,
                )
                if started >= quota.most:
                    raise TooManyCalls
            await conn.executemany(
                f"INSERT INTO {self.s}.call_rings ({RING_COLUMNS}) "
                "VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT DO NOTHING",
                [(r.call_id, r.student_id, r.caller_id, r.user_id, r.at) for r in rings],
            )
            return await append_events(conn, self.s, events)

    async def answer(self, call_id: str, user_id: str, answer: Answer) -> Ring | None:
        async with self._store.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                f"SELECT {RING_COLUMNS} FROM {self.s}.call_rings "
                "WHERE call_id = $1 AND user_id = $2 FOR UPDATE",
                call_id,
                user_id,
            )
            if row is None:
                return None
            await conn.execute(
                f"UPDATE {self.s}.call_rings SET answer = $3 "
                "WHERE call_id = $1 AND user_id = $2 AND answer IS NULL",
                call_id,
                user_id,
                answer.value,
            )
        return ring_from_row(tuple(row))

    async def rang(self, call_id: str) -> list[Ring]:
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {RING_COLUMNS} FROM {self.s}.call_rings WHERE call_id = $1 "
                "ORDER BY at, user_id",
                call_id,
            )
        return [ring_from_row(tuple(r)) for r in rows]

    async def ringing(self, user_id: str, rung_since: float) -> list[Ring]:
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {RING_COLUMNS} FROM {self.s}.call_rings "
                "WHERE user_id = $1 AND answer IS NULL AND at > $2 ORDER BY at",
                user_id,
                rung_since,
            )
        return [ring_from_row(tuple(r)) for r in rows]

    async def take_missed(self, rung_before: float, limit: int) -> list[Ring]:
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"UPDATE {self.s}.call_rings SET answer = 'missed' WHERE (call_id, user_id) IN ("
                f"SELECT call_id, user_id FROM {self.s}.call_rings "
                "WHERE answer IS NULL AND at < $1 ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED) "
                f"RETURNING {RING_COLUMNS}",
                rung_before,
                limit,
            )
        return [ring_from_row(tuple(r)) for r in rows]
