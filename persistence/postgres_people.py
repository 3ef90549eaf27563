"""People records in the documents' Postgres schema (the `people` table of 002_access.sql).

It borrows the PostgresStore's pool; every statement is a single round trip.
"""

from __future__ import annotations

from integrations.contracts import Person
from persistence.people_rows import PERSON_COLUMNS, person_from_row, person_row
from persistence.postgres import PostgresStore


class PostgresPeopleStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        s = store.schema
        self._sql_person = f"SELECT {PERSON_COLUMNS} FROM {s}.people WHERE user_id = $1"
        # A shared number belongs to whoever was updated last (ties: the larger user id).
        self._sql_person_by_phone = (
            f"SELECT {PERSON_COLUMNS} FROM {s}.people WHERE phone = $1 "
            "ORDER BY updated_at DESC, user_id DESC LIMIT 1"
        )
        self._sql_put_person = (
            f"INSERT INTO {s}.people ({PERSON_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
            "ON CONFLICT (user_id) DO UPDATE SET "
            "name = excluded.name, phone = excluded.phone, email = excluded.email, "
            "language = excluded.language, timezone = excluded.timezone, "
            "notify_whatsapp = excluded.notify_whatsapp, notify_email = excluded.notify_email, "
            "notify_in_app = excluded.notify_in_app, arabic_digits = excluded.arabic_digits, "
            "notify_sms = excluded.notify_sms, quiet_hours = excluded.quiet_hours, "
            "channel_order = excluded.channel_order, updated_at = now()"
        )

    async def person(self, user_id: str) -> Person | None:
        async with self._store.pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_person, user_id)
        return person_from_row(tuple(row)) if row else None

    async def person_by_phone(self, phone: str) -> Person | None:
        async with self._store.pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_person_by_phone, phone)
        return person_from_row(tuple(row)) if row else None

    async def put_person(self, person: Person) -> None:
        async with self._store.pool.acquire() as conn:
            await conn.execute(self._sql_put_person, *person_row(person))
