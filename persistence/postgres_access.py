"""Members in the documents' Postgres schema (tables from 002_access.sql).

It borrows the PostgresStore's pool; every statement is a single round trip or one short
transaction, so it works behind Supabase's transaction-mode pooler as well.
"""

from __future__ import annotations

from collections.abc import Collection

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from collab_server.access import DocumentAccess, LastOwner, Listing, Member, leaves_no_owner
from collab_server.identity import Role
from persistence.postgres import PostgresStore

_MEMBER_COLUMNS = "document, user_id, role, digest"
# The list's columns of document_listing (as `l`); without a student name: not described.
_LISTED = "l.student_name, l.title, l.last_user_id, l.archived_at IS NOT NULL AS archived"


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
        # Locks the document's owners (in one order: two such transactions never deadlock)
        # until the change commits: of two owners removing each other, the second one sees
        # the first removal and is refused.
        self._sql_lock_owners = (
            f"SELECT user_id FROM {s}.members WHERE document = $1 AND role = 'owner' "
            "ORDER BY user_id FOR UPDATE"
        )
        self._sql_claim = (
            f"INSERT INTO {s}.members (document, user_id, role) SELECT $1, $2, 'owner' "
            f"WHERE NOT EXISTS (SELECT 1 FROM {s}.members WHERE document = $1) "
            "ON CONFLICT DO NOTHING"
        )
        self._sql_documents_all = (
            f"SELECT n.name, 'owner' AS role, d.updated_at, {_LISTED} FROM "
            f"(SELECT name FROM {s}.documents UNION SELECT document FROM {s}.members) AS n "
            f"LEFT JOIN {s}.documents AS d ON d.name = n.name "
            f"LEFT JOIN {s}.document_listing AS l ON l.document = n.name ORDER BY n.name"
        )
        self._sql_documents_of = (
            f"SELECT m.document AS name, m.role, d.updated_at, {_LISTED} FROM {s}.members AS m "
            f"LEFT JOIN {s}.documents AS d ON d.name = m.document "
            f"LEFT JOIN {s}.document_listing AS l ON l.document = m.document "
            "WHERE m.user_id = $1 ORDER BY m.document"
        )
        self._sql_describe = (
            f"INSERT INTO {s}.document_listing AS l (document, student_name, title, last_user_id) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (document) DO UPDATE SET "
            "student_name = excluded.student_name, title = excluded.title, "
            "last_user_id = coalesce(excluded.last_user_id, l.last_user_id)"
        )
        self._sql_archive = (
            f"INSERT INTO {s}.document_listing (document, archived_at, archived_by) "
            "VALUES ($1, CASE WHEN $2::text IS NULL THEN NULL ELSE now() END, $2) "
            "ON CONFLICT (document) DO UPDATE SET "
            "archived_at = excluded.archived_at, archived_by = excluded.archived_by"
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
        async with self._store.pool.acquire() as conn, conn.transaction():
            await self._keep_an_owner(conn, member.document, member.user_id, member.role)
            inserted: bool = await conn.fetchval(
                self._sql_put_member,
                member.document,
                member.user_id,
                member.role.value,
                member.digest,
            )
        return inserted

    async def remove_member(self, document: str, user_id: str) -> bool:
        async with self._store.pool.acquire() as conn, conn.transaction():
            await self._keep_an_owner(conn, document, user_id, None)
            status: str = await conn.execute(self._sql_remove_member, document, user_id)
        return status != "DELETE 0"

    async def _keep_an_owner(
        self,
        conn: PoolConnectionProxy[asyncpg.Record],
        document: str,
        user_id: str,
        new_role: Role | None,
    ) -> None:
        owners = [row["user_id"] for row in await conn.fetch(self._sql_lock_owners, document)]
        if leaves_no_owner(owners, user_id, new_role):
            raise LastOwner()

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
                (
                    Listing(r["student_name"], r["title"] or "", r["last_user_id"])
                    if r["student_name"] is not None
                    else None
                ),
                r["archived"],
            )
            for r in rows
        ]

    async def describe(self, document: str, listing: Listing) -> None:
        async with self._store.pool.acquire() as conn:
            await conn.execute(
                self._sql_describe,
                document,
                listing.student_name,
                listing.title,
                listing.last_user_id,
            )

    async def archive(self, document: str, by: str | None) -> None:
        async with self._store.pool.acquire() as conn:
            await conn.execute(self._sql_archive, document, by)


def _member(row: asyncpg.Record) -> Member:
    return Member(row["document"], row["user_id"], Role(row["role"]), row["digest"])
