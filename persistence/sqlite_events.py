"""The live subscription log in the documents' SQLite file (020_events.sql).

Features append events inside their own transaction (`append_events`), beside the change they
describe; SQLite has one writer, so positions become visible in order.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import aiosqlite

from collab_server.events import Event, NewEvent
from persistence.sqlite import SQLiteStore

_COLUMNS = "position, topic, kind, data, at"


async def append_events(db: aiosqlite.Connection, events: Sequence[NewEvent]) -> int:
    """Insert in the caller's transaction; returns the last position written (0: none)."""
    last = 0
    for event in events:
        cursor = await db.execute(
            "INSERT INTO events (topic, kind, data, at) VALUES (?, ?, ?, ?)",
            (event.topic, event.kind, event.data_json, event.at),
        )
        last = int(cursor.lastrowid or 0)
    return last


def _event(row: Sequence[Any]) -> Event:
    return Event(int(row[0]), row[1], row[2], row[3], float(row[4]))


class SQLiteEventLog:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def append(self, events: Sequence[NewEvent]) -> int:
        async with self._store.transaction() as db:
            return await append_events(db, events)

    async def events_since(
        self, topics: Collection[str] | None, after: int, limit: int, through: int | None = None
    ) -> list[Event]:
        bound = through if through is not None else 2**62
        if topics is None:
            sql = f"SELECT {_COLUMNS} FROM events WHERE position > ? AND position <= ? "
            params: list[Any] = [after, bound]
        else:
            wanted = list(topics)
            if not wanted:
                return []
            marks = ",".join("?" * len(wanted))
            sql = (
                f"SELECT {_COLUMNS} FROM events WHERE topic IN ({marks}) "
                "AND position > ? AND position <= ? "
            )
            params = [*wanted, after, bound]
        rows = await self._store.fetch_all(sql + "ORDER BY position LIMIT ?", (*params, limit))
        return [_event(r) for r in rows]

    async def last_position(self) -> int:
        rows = await self._store.fetch_all("SELECT max(position) FROM events")
        return int(rows[0][0] or 0)

    async def first_position(self) -> int | None:
        rows = await self._store.fetch_all("SELECT min(position) FROM events")
        return int(rows[0][0]) if rows[0][0] is not None else None

    async def prune(self, before_at: float) -> int:
        """Forget events older than `before_at` (keeping the newest, which holds the end)."""
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "DELETE FROM events WHERE at < ? AND position < (SELECT max(position) FROM events)",
                (before_at,),
            )
            return int(cursor.rowcount)
