"""Students' threads in the documents' SQLite file (026_threads.sql).

It shares the SQLiteStore's one connection: a message, its outbox entries and its events are
one `BEGIN IMMEDIATE` transaction, so events get their positions in commit order.
"""

from __future__ import annotations

from collections.abc import Sequence

from collab_server.events import NewEvent
from integrations.threads.records import (
    Compose,
    HeldMessage,
    NewThreadMessage,
    OverQuota,
    Quota,
    ThreadMessage,
)
from persistence.sqlite import SQLiteStore
from persistence.sqlite_events import append_events
from persistence.sqlite_notifications import OUTBOX_COLUMNS, outbox_row
from persistence.thread_rows import (
    MESSAGE_COLUMNS,
    held_from_row,
    media_columns,
    message_from_row,
)


class SQLiteThreadStore:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def post(
        self, message: NewThreadMessage, compose: Compose, quota: Quota | None = None
    ) -> tuple[ThreadMessage, int]:
        async with self._store.transaction() as db:
            if quota is not None:
                async with db.execute(
                    "SELECT count(*) FROM thread_messages WHERE author_id = ? AND at > ?",
                    (message.author_id, quota.since),
                ) as cursor:
                    row = await cursor.fetchone()
                if row is not None and row[0] >= quota.most:
                    raise OverQuota
            if message.whatsapp_id is not None:
                async with db.execute(
                    f"SELECT {MESSAGE_COLUMNS} FROM thread_messages WHERE whatsapp_id = ?",
                    (message.whatsapp_id,),
                ) as cursor:
                    seen = await cursor.fetchone()
                if seen is not None:
                    return message_from_row(seen), 0
            cursor = await db.execute(
                "INSERT INTO thread_messages (student_id, author_id, author_name, from_family, "
                "body, channel, at, whatsapp_id, media_id, media_mime) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    message.student_id,
                    message.author_id,
                    message.author_name,
                    int(message.from_family),
                    message.body,
                    message.channel,
                    message.at,
                    message.whatsapp_id,
                    *media_columns(message.media),
                ),
            )
            stored = ThreadMessage(
                int(cursor.lastrowid or 0),
                message.student_id,
                message.author_id,
                message.author_name,
                message.from_family,
                message.body,
                message.channel,
                message.at,
                message.media,
            )
            await cursor.close()
            sends = compose(stored)
            await db.executemany(
                f"INSERT OR IGNORE INTO notification_outbox ({OUTBOX_COLUMNS}) "
                f"VALUES ({', '.join('?' * 15)})",
                [outbox_row(entry) for entry in sends.outbox],
            )
            return stored, await append_events(db, sends.events)

    async def messages(self, student_id: str, before_id: int, limit: int) -> list[ThreadMessage]:
        rows = await self._store.fetch_all(
            f"SELECT {MESSAGE_COLUMNS} FROM thread_messages WHERE student_id = ? AND id < ? "
            "ORDER BY id DESC LIMIT ?",
            (student_id, before_id, limit),
        )
        return [message_from_row(r) for r in rows]

    async def mark_read(
        self, student_id: str, user_id: str, through_id: int, events: Sequence[NewEvent]
    ) -> int:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO thread_reads VALUES (?, ?, ?) ON CONFLICT (student_id, user_id) "
                "DO UPDATE SET through_id = excluded.through_id "
                "WHERE excluded.through_id > thread_reads.through_id",
                (student_id, user_id, through_id),
            )
            moved = cursor.rowcount > 0
            await cursor.close()
            return await append_events(db, events) if moved else 0

    async def reads(self, student_id: str) -> dict[str, int]:
        rows = await self._store.fetch_all(
            "SELECT user_id, through_id FROM thread_reads WHERE student_id = ?", (student_id,)
        )
        return {r[0]: int(r[1]) for r in rows}

    async def hold(self, held: HeldMessage, limit: int) -> int | None:
        async with self._store.transaction() as db:
            async with db.execute(
                "SELECT count(*) FROM thread_held WHERE user_id = ?", (held.user_id,)
            ) as cursor:
                row = await cursor.fetchone()
            waiting = int(row[0]) if row else 0
            if waiting >= limit:
                return None
            cursor = await db.execute(
                "INSERT OR IGNORE INTO thread_held VALUES (?, ?, ?, ?, ?, ?)",
                (held.whatsapp_id, held.user_id, held.body, held.at, *media_columns(held.media)),
            )
            added = cursor.rowcount
            await cursor.close()
        return waiting + added

    async def take_held(self, user_id: str) -> list[HeldMessage]:
        async with (
            self._store.transaction() as db,
            db.execute(
                "DELETE FROM thread_held WHERE user_id = ? "
                "RETURNING user_id, whatsapp_id, body, at, media_id, media_mime",
                (user_id,),
            ) as cursor,
        ):
            rows = await cursor.fetchall()
        return sorted((held_from_row(r) for r in rows), key=_held_at)

    async def keep_media(
        self, mime: str, data: bytes, at: float, uploaded_by: str | None = None
    ) -> int:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO thread_media (mime, size, data, created_at, uploaded_by) "
                "VALUES (?, ?, ?, ?, ?)",
                (mime, len(data), data, at, uploaded_by),
            )
            media_id = int(cursor.lastrowid or 0)
            await cursor.close()
        return media_id

    async def drop_unsent_uploads(self, user_id: str, keep: int) -> int:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "DELETE FROM thread_media WHERE id IN (SELECT m.id FROM thread_media AS m "
                "WHERE m.uploaded_by = ? AND NOT EXISTS "
                "(SELECT 1 FROM thread_messages WHERE media_id = m.id) "
                "ORDER BY m.id DESC LIMIT -1 OFFSET ?)",
                (user_id, keep),
            )
            dropped = cursor.rowcount
            await cursor.close()
        return max(dropped, 0)

    async def upload_of(self, media_id: int, user_id: str) -> str | None:
        rows = await self._store.fetch_all(
            "SELECT m.mime FROM thread_media AS m WHERE m.id = ? AND m.uploaded_by = ? AND "
            "NOT EXISTS (SELECT 1 FROM thread_messages WHERE media_id = m.id)",
            (media_id, user_id),
        )
        return str(rows[0][0]) if rows else None

    async def media(self, student_id: str, media_id: int) -> tuple[str, bytes] | None:
        rows = await self._store.fetch_all(
            "SELECT m.mime, m.data FROM thread_media AS m WHERE m.id = ? AND EXISTS "
            "(SELECT 1 FROM thread_messages WHERE media_id = m.id AND student_id = ?)",
            (media_id, student_id),
        )
        return (str(rows[0][0]), bytes(rows[0][1])) if rows else None

    async def choose(self, user_id: str, student_id: str, until: float) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "INSERT INTO thread_choices VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE "
                "SET student_id = excluded.student_id, until_at = excluded.until_at",
                (user_id, student_id, until),
            )

    async def chosen(self, user_id: str, now: float) -> str | None:
        rows = await self._store.fetch_all(
            "SELECT student_id FROM thread_choices WHERE user_id = ? AND until_at > ?",
            (user_id, now),
        )
        return str(rows[0][0]) if rows else None


def _held_at(held: HeldMessage) -> float:
    return held.at
