"""Calls' rings in the documents' SQLite file (034_call_rings.sql); rings and their events are
one `BEGIN IMMEDIATE` transaction on the store's one connection."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from collab_server.events import NewEvent
from integrations.calls.records import Answer, CallQuota, Ring, TooManyCalls
from persistence.sqlite import SQLiteStore
from persistence.sqlite_events import append_events

RING_COLUMNS = "call_id, student_id, caller_id, user_id, at, answer"


def ring_from_row(row: Sequence[Any]) -> Ring:
    return Ring(
        str(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        float(row[4]),
        Answer(row[5]) if row[5] is not None else None,
    )


class SQLiteCallStore:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def keep(
        self, rings: Sequence[Ring], events: Sequence[NewEvent], quota: CallQuota | None = None
    ) -> int:
        async with self._store.transaction() as db:
            if quota is not None and rings:
                async with db.execute(
                    "SELECT count(DISTINCT call_id) FROM call_rings WHERE caller_id = ? AND at > ?",
                    (rings[0].caller_id, quota.since),
                ) as cursor:
                    row = await cursor.fetchone()
                if row is not None and row[0] >= quota.most:
                    raise TooManyCalls
            await db.executemany(
                f"INSERT OR IGNORE INTO call_rings ({RING_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL)",
                [(r.call_id, r.student_id, r.caller_id, r.user_id, r.at) for r in rings],
            )
            return await append_events(db, events)

    async def answer(self, call_id: str, user_id: str, answer: Answer) -> Ring | None:
        async with self._store.transaction() as db:
            async with db.execute(
                f"SELECT {RING_COLUMNS} FROM call_rings WHERE call_id = ? AND user_id = ?",
                (call_id, user_id),
            ) as cursor:
                row = await cursor.fetchone()
            if row is None:
                return None
            await db.execute(
                "UPDATE call_rings SET answer = ? "
                "WHERE call_id = ? AND user_id = ? AND answer IS NULL",
                (answer.value, call_id, user_id),
            )
        return ring_from_row(row)

    async def rang(self, call_id: str) -> list[Ring]:
        rows = await self._store.fetch_all(
            f"SELECT {RING_COLUMNS} FROM call_rings WHERE call_id = ? ORDER BY at, user_id",
            (call_id,),
        )
        return [ring_from_row(r) for r in rows]

    async def ringing(self, user_id: str, rung_since: float) -> list[Ring]:
        rows = await self._store.fetch_all(
            f"SELECT {RING_COLUMNS} FROM call_rings "
            "WHERE user_id = ? AND answer IS NULL AND at > ? ORDER BY at",
            (user_id, rung_since),
        )
        return [ring_from_row(r) for r in rows]

    async def take_missed(self, rung_before: float, limit: int) -> list[Ring]:
        async with (
            self._store.transaction() as db,
            db.execute(
                "UPDATE call_rings SET answer = 'missed' WHERE rowid IN ("
                "SELECT rowid FROM call_rings WHERE answer IS NULL AND at < ? "
                f"ORDER BY at LIMIT ?) RETURNING {RING_COLUMNS}",
                (rung_before, limit),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return [ring_from_row(r) for r in rows]
