"""People records in the SQLite file of the documents (the `people` table of 002_access.sql).

It shares the SQLiteStore's one connection, so its writes take turns with group commits.
"""

from __future__ import annotations

import time

from integrations.contracts import Person
from persistence.people_rows import PERSON_COLUMNS, person_from_row, person_row
from persistence.sqlite import SQLiteStore


class SQLitePeopleStore:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def person(self, user_id: str) -> Person | None:
        async with self._store.db.execute(
            f"SELECT {PERSON_COLUMNS} FROM people WHERE user_id = ?", (user_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return person_from_row(row) if row else None

    async def person_by_phone(self, phone: str) -> Person | None:
        # A shared number belongs to whoever was updated last (ties: the larger user id).
        async with self._store.db.execute(
            f"SELECT {PERSON_COLUMNS} FROM people WHERE phone = ? "
            "ORDER BY updated_at DESC, user_id DESC LIMIT 1",
            (phone,),
        ) as cursor:
            row = await cursor.fetchone()
        return person_from_row(row) if row else None

    async def put_person(self, person: Person) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                f"INSERT INTO people ({PERSON_COLUMNS}, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (user_id) DO UPDATE SET "
                "name = excluded.name, phone = excluded.phone, email = excluded.email, "
                "language = excluded.language, timezone = excluded.timezone, "
                "notify_whatsapp = excluded.notify_whatsapp, "
                "notify_email = excluded.notify_email, notify_in_app = excluded.notify_in_app, "
                "arabic_digits = excluded.arabic_digits, notify_sms = excluded.notify_sms, "
                "quiet_hours = excluded.quiet_hours, channel_order = excluded.channel_order, "
                "updated_at = excluded.updated_at",
                (*person_row(person), time.time()),
            )
