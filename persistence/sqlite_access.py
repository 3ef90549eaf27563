"""Members in the SQLite file of the documents (tables from 002_access.sql).

It shares the SQLiteStore's one connection, so its writes take turns with group commits.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

import aiosqlite

from collab_server.access import DocumentAccess, LastOwner, Listing, Member, leaves_no_owner
from collab_server.identity import Role
from persistence.sqlite import SQLiteStore

# The list's columns of document_listing (as `l`); without a student name: not described.
_LISTED = "l.student_name, l.title, l.last_user_id, l.archived_at IS NOT NULL"


class SQLiteAccessStore:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def member(self, document: str, user_id: str) -> Member | None:
        async with self._store.db.execute(
            "SELECT document, user_id, role, digest FROM members "
            "WHERE document = ? AND user_id = ?",
            (document, user_id),
        ) as cursor:
            row = await cursor.fetchone()
        return _member(row) if row else None

    async def members(self, document: str) -> list[Member]:
        async with self._store.db.execute(
            "SELECT document, user_id, role, digest FROM members WHERE document = ? "
            "ORDER BY user_id",
            (document,),
        ) as cursor:
            rows = await cursor.fetchall()
        return [_member(row) for row in rows]

    async def memberships_of(self, user_ids: Collection[str]) -> list[Member]:
        found: list[Member] = []
        ids = list(user_ids)
        # SQLite binds at most 999 variables in older builds: query in slices.
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            async with self._store.db.execute(
                f"SELECT document, user_id, role, digest FROM members WHERE user_id IN ({marks})",
                chunk,
            ) as cursor:
                found += [_member(row) for row in await cursor.fetchall()]
        return found

    async def put_member(self, member: Member) -> bool:
        now = time.time()
        async with self._store.transaction() as db:
            await _keep_an_owner(db, member.document, member.user_id, member.role)
            async with db.execute(
                "SELECT 1 FROM members WHERE document = ? AND user_id = ?",
                (member.document, member.user_id),
            ) as cursor:
                existed = await cursor.fetchone() is not None
            await db.execute(
                "INSERT INTO members (document, user_id, role, digest, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (document, user_id) DO UPDATE SET "
                "role = excluded.role, digest = excluded.digest, updated_at = excluded.updated_at",
                (member.document, member.user_id, member.role.value, int(member.digest), now, now),
            )
        return not existed

    async def remove_member(self, document: str, user_id: str) -> bool:
        async with self._store.transaction() as db:
            await _keep_an_owner(db, document, user_id, None)
            cursor = await db.execute(
                "DELETE FROM members WHERE document = ? AND user_id = ?", (document, user_id)
            )
            removed = cursor.rowcount > 0
            await cursor.close()
        return removed

    async def claim_document(self, document: str, user_id: str) -> bool:
        now = time.time()
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO members (document, user_id, role, digest, created_at, updated_at) "
                "SELECT ?, ?, 'owner', 0, ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM members WHERE document = ?)",
                (document, user_id, now, now, document),
            )
            claimed = cursor.rowcount > 0
            await cursor.close()
        return claimed

    async def documents_for(self, user_id: str | None) -> list[DocumentAccess]:
        if user_id is None:
            sql = (
                f"SELECT n.name, 'owner', d.updated_at, {_LISTED} FROM "
                "(SELECT name FROM documents UNION SELECT document FROM members) AS n "
                "LEFT JOIN document_activity AS d ON d.name = n.name "
                "LEFT JOIN document_listing AS l ON l.document = n.name ORDER BY n.name"
            )
            params: tuple[Any, ...] = ()
        else:
            sql = (
                f"SELECT m.document, m.role, d.updated_at, {_LISTED} "
                "FROM members AS m "
                "LEFT JOIN document_activity AS d ON d.name = m.document "
                "LEFT JOIN document_listing AS l ON l.document = m.document "
                "WHERE m.user_id = ? ORDER BY m.document"
            )
            params = (user_id,)
        rows = await self._store.fetch_all(sql, params)  # reads the log: drains its journal
        return [
            DocumentAccess(
                r[0],
                Role(r[1]),
                r[2],
                Listing(r[3] or "", r[4] or "", r[5]) if r[3] is not None else None,
                bool(r[6]),
            )
            for r in rows
        ]

    async def describe(self, document: str, listing: Listing) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "INSERT INTO document_listing (document, student_name, title, last_user_id) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (document) DO UPDATE SET "
                "student_name = excluded.student_name, title = excluded.title, "
                "last_user_id = coalesce(excluded.last_user_id, last_user_id)",
                (document, listing.student_name, listing.title, listing.last_user_id),
            )

    async def archive(self, document: str, by: str | None) -> None:
        at = None if by is None else time.time()
        async with self._store.transaction() as db:
            await db.execute(
                "INSERT INTO document_listing (document, archived_at, archived_by) "
                "VALUES (?, ?, ?) ON CONFLICT (document) DO UPDATE SET "
                "archived_at = excluded.archived_at, archived_by = excluded.archived_by",
                (document, at, by),
            )


async def _keep_an_owner(
    db: aiosqlite.Connection, document: str, user_id: str, new_role: Role | None
) -> None:
    # Inside the store's write transaction: no other change of members runs in between.
    async with db.execute(
        "SELECT user_id FROM members WHERE document = ? AND role = 'owner'", (document,)
    ) as cursor:
        owners = [row[0] for row in await cursor.fetchall()]
    if leaves_no_owner(owners, user_id, new_role):
        raise LastOwner()


def _member(row: Any) -> Member:
    return Member(row[0], row[1], Role(row[2]), bool(row[3]))
