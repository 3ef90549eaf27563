"""Members and people in the documents' Postgres schema (tables from 002_access.sql).

It borrows the PostgresStore's pool; every statement is a single round trip, so it works
behind Supabase's transaction-mode pooler as well.
"""

from __future__ import annotations

from collections.abc import Collection

import asyncpg

from collab_server.access import Channels, DocumentAccess, Language, Member, Person
from collab_server.identity import Role
from persistence.postgres import PostgresStore

_MEMBER_COLUMNS = "document, user_id, role, digest"
_PERSON_COLUMNS = (
    "user_id, name, phone, email, language, timezone, notify_whatsapp, notify_email, notify_in_app"
)


class PostgresAccessStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        s = store.schema
        self._sql_member = (
            f"SELECT {_MEMBER_COLUMNS} FROM {s}.members WHERE document = $1 AND user_id = $2"
        )
        self._sql_members = (
            f"SELECT {_MEMBER_COLUMNS} FROM {s}.members WHERE document = $1 ORDER BY user_id"
        )
        self._sql_memberships = (
            f"SELECT {_MEMBER_COLUMNS} FROM {s}.members WHERE user_id = ANY($1::text[])"
        )
        # xmax = 0 only for a freshly inserted row: tells insert from update in one statement.
        self._sql_put_member = (
            f"INSERT INTO {s}.members AS m (document, user_id, role, digest) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (document, user_id) DO UPDATE SET "
            "role = excluded.role, digest = excluded.digest, updated_at = now() "
            "RETURNING (xmax = 0) AS inserted"
        )
        self._sql_remove_member = f"DELETE FROM {s}.members WHERE document = $1 AND user_id = $2"
        self._sql_claim = (
            f"INSERT INTO {s}.members (document, user_id, role) SELECT $1, $2, 'owner' "
            f"WHERE NOT EXISTS (SELECT 1 FROM {s}.members WHERE document = $1) "
            "ON CONFLICT DO NOTHING"
        )
        self._sql_documents_all = (
            "SELECT n.name, 'owner' AS role, d.updated_at FROM "
            f"(SELECT name FROM {s}.documents UNION SELECT document FROM {s}.members) AS n "
            f"LEFT JOIN {s}.documents AS d ON d.name = n.name ORDER BY n.name"
        )
        self._sql_documents_of = (
            f"SELECT m.document AS name, m.role, d.updated_at FROM {s}.members AS m "
            f"LEFT JOIN {s}.documents AS d ON d.name = m.document "
            "WHERE m.user_id = $1 ORDER BY m.document"
        )
        self._sql_person = f"SELECT {_PERSON_COLUMNS} FROM {s}.people WHERE user_id = $1"
        # A shared number belongs to whoever was updated last (ties: the larger user id).
        self._sql_person_by_phone = (
            f"SELECT {_PERSON_COLUMNS} FROM {s}.people WHERE phone = $1 "
            "ORDER BY updated_at DESC, user_id DESC LIMIT 1"
        )
        self._sql_put_person = (
            f"INSERT INTO {s}.people ({_PERSON_COLUMNS}) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (user_id) DO UPDATE SET "
            "name = excluded.name, phone = excluded.phone, email = excluded.email, "
            "language = excluded.language, timezone = excluded.timezone, "
            "notify_whatsapp = excluded.notify_whatsapp, notify_email = excluded.notify_email, "
            "notify_in_app = excluded.notify_in_app, updated_at = now()"
        )

    async def member(self, document: str, user_id: str) -> Member | None:
        async with self._store.pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_member, document, user_id)
        return _member(row) if row else None

    async def members(self, document: str) -> list[Member]:
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(self._sql_members, document)
        return [_member(row) for row in rows]

    async def memberships_of(self, user_ids: Collection[str]) -> list[Member]:
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(self._sql_memberships, list(user_ids))
        return [_member(row) for row in rows]

    async def put_member(self, member: Member) -> bool:
        async with self._store.pool.acquire() as conn:
            inserted: bool = await conn.fetchval(
                self._sql_put_member,
                member.document,
                member.user_id,
                member.role.value,
                member.digest,
            )
        return inserted

    async def remove_member(self, document: str, user_id: str) -> bool:
        async with self._store.pool.acquire() as conn:
            status: str = await conn.execute(self._sql_remove_member, document, user_id)
        return status != "DELETE 0"

    async def claim_document(self, document: str, user_id: str) -> bool:
        async with self._store.pool.acquire() as conn:
            status: str = await conn.execute(self._sql_claim, document, user_id)
        return status == "INSERT 0 1"

    async def documents_for(self, user_id: str | None) -> list[DocumentAccess]:
        async with self._store.pool.acquire() as conn:
            if user_id is None:
                rows = await conn.fetch(self._sql_documents_all)
            else:
                rows = await conn.fetch(self._sql_documents_of, user_id)
        return [
            DocumentAccess(
                r["name"],
                Role(r["role"]),
                r["updated_at"].timestamp() if r["updated_at"] is not None else None,
            )
            for r in rows
        ]

    async def person(self, user_id: str) -> Person | None:
        async with self._store.pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_person, user_id)
        return _person(row) if row else None

    async def person_by_phone(self, phone: str) -> Person | None:
        async with self._store.pool.acquire() as conn:
            row = await conn.fetchrow(self._sql_person_by_phone, phone)
        return _person(row) if row else None

    async def put_person(self, person: Person) -> None:
        channels = person.channels
        async with self._store.pool.acquire() as conn:
            await conn.execute(
                self._sql_put_person,
                person.user_id,
                person.name,
                person.phone,
                person.email,
                person.language.value,
                person.timezone,
                channels.whatsapp,
                channels.email,
                channels.in_app,
            )


def _member(row: asyncpg.Record) -> Member:
    return Member(row["document"], row["user_id"], Role(row["role"]), row["digest"])


def _person(row: asyncpg.Record) -> Person:
    return Person(
        user_id=row["user_id"],
        name=row["name"],
        phone=row["phone"],
        email=row["email"],
        language=Language(row["language"]),
        timezone=row["timezone"],
        channels=Channels(row["notify_whatsapp"], row["notify_email"], row["notify_in_app"]),
    )
