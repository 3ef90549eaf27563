"""Students' threads in the documents' Postgres schema (026_threads.sql).

A message, its outbox entries and its events are one transaction; the events take the event
log's lock, so positions follow commit order across processes.
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
from persistence.postgres import PostgresStore
from persistence.postgres_events import append_events
from persistence.sqlite_notifications import OUTBOX_COLUMNS, outbox_row
from persistence.thread_rows import (
    MESSAGE_COLUMNS,
    held_from_row,
    media_columns,
    message_from_row,
)


class PostgresThreadStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self.s = store.schema

    async def post(
        self, message: NewThreadMessage, compose: Compose, quota: Quota | None = None
    ) -> tuple[ThreadMessage, int]:
        async with self._store.pool.acquire() as conn, conn.transaction():
            if quota is not None:
                # One count at a time per author, so two nodes cannot both take the last one.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('thread-author:' || $1))",
                    message.author_id,
                )
                written = await conn.fetchval(
                    f"SELECT count(*) FROM {self.s}.thread_messages "
                    "WHERE author_id = $1 AND at > $2",
                    message.author_id,
                    quota.since,
                )
                if written >= quota.most:
                    raise OverQuota
            row = await conn.fetchrow(
                f"INSERT INTO {self.s}.thread_messages (student_id, author_id, author_name, "
                "from_family, body, channel, at, whatsapp_id, media_id, media_mime) "
                "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
                f"ON CONFLICT (whatsapp_id) DO NOTHING RETURNING {MESSAGE_COLUMNS}",
                message.student_id,
                message.author_id,
                message.author_name,
                message.from_family,
                message.body,
                message.channel,
                message.at,
                message.whatsapp_id,
                *media_columns(message.media),
            )
            if row is None:  # an incoming WhatsApp message stored before (Meta redelivers)
                seen = await conn.fetchrow(
                    f"SELECT {MESSAGE_COLUMNS} FROM {self.s}.thread_messages "
                    "WHERE whatsapp_id = $1",
                    message.whatsapp_id,
                )
                assert seen is not None  # the conflict was on this id
                return message_from_row(tuple(seen)), 0
            stored = message_from_row(tuple(row))
            sends = compose(stored)
            if sends.outbox:
                await conn.executemany(
                    f"INSERT INTO {self.s}.notification_outbox ({OUTBOX_COLUMNS}) "
                    f"VALUES ({_marks(15)}) ON CONFLICT (key) DO NOTHING",
                    [outbox_row(entry) for entry in sends.outbox],
                )
            return stored, await append_events(conn, self.s, sends.events)

    async def messages(self, student_id: str, before_id: int, limit: int) -> list[ThreadMessage]:
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {MESSAGE_COLUMNS} FROM {self.s}.thread_messages "
                "WHERE student_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                student_id,
                before_id,
                limit,
            )
        return [message_from_row(tuple(r)) for r in rows]

    async def mark_read(
        self, student_id: str, user_id: str, through_id: int, events: Sequence[NewEvent]
    ) -> int:
        async with self._store.pool.acquire() as conn, conn.transaction():
            status: str = await conn.execute(
                f"INSERT INTO {self.s}.thread_reads AS r VALUES ($1, $2, $3) "
                "ON CONFLICT (student_id, user_id) DO UPDATE SET through_id = excluded.through_id "
                "WHERE excluded.through_id > r.through_id",
                student_id,
                user_id,
                through_id,
            )
            if status.endswith(" 0"):
                return 0
            return await append_events(conn, self.s, events)

    async def reads(self, student_id: str) -> dict[str, int]:
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT user_id, through_id FROM {self.s}.thread_reads WHERE student_id = $1",
                student_id,
            )
        return {r["user_id"]: int(r["through_id"]) for r in rows}

    async def hold(self, held: HeldMessage, limit: int) -> int | None:
        async with self._store.pool.acquire() as conn, conn.transaction():
            # One parent's messages take turns: the count and the insert cannot interleave.
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtext('thread-held:' || $1))", held.user_id
            )
            waiting: int = await conn.fetchval(
                f"SELECT count(*) FROM {self.s}.thread_held WHERE user_id = $1", held.user_id
            )
            if waiting >= limit:
                return None
            status: str = await conn.execute(
                f"INSERT INTO {self.s}.thread_held VALUES ($1, $2, $3, $4, $5, $6) "
                "ON CONFLICT (whatsapp_id) DO NOTHING",
                held.whatsapp_id,
                held.user_id,
                held.body,
                held.at,
                *media_columns(held.media),
            )
        return waiting + (0 if status.endswith(" 0") else 1)

    async def take_held(self, user_id: str) -> list[HeldMessage]:
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"DELETE FROM {self.s}.thread_held WHERE user_id = $1 "
                "RETURNING user_id, whatsapp_id, body, at, media_id, media_mime",
                user_id,
            )
        held = [held_from_row(tuple(r)) for r in rows]
        return sorted(held, key=lambda h: h.at)

    async def keep_media(
        self, mime: str, data: bytes, at: float, uploaded_by: str | None = None
    ) -> int:
        async with self._store.pool.acquire() as conn:
            media_id: int = await conn.fetchval(
                f"INSERT INTO {self.s}.thread_media (mime, size, data, created_at, uploaded_by) "
                "VALUES ($1, $2, $3, $4, $5) RETURNING id",
                mime,
                len(data),
                data,
                at,
                uploaded_by,
            )
        return media_id

    async def drop_unsent_uploads(self, user_id: str, keep: int) -> int:
        async with self._store.pool.acquire() as conn:
            status: str = await conn.execute(
                f"DELETE FROM {self.s}.thread_media WHERE id IN (SELECT m.id FROM "
                f"{self.s}.thread_media AS m WHERE m.uploaded_by = $1 AND NOT EXISTS "
                f"(SELECT 1 FROM {self.s}.thread_messages WHERE media_id = m.id) "
                "ORDER BY m.id DESC OFFSET $2)",
                user_id,
                keep,
            )
        return int(status.rsplit(maxsplit=1)[-1])

    async def upload_of(self, media_id: int, user_id: str) -> str | None:
        async with self._store.pool.acquire() as conn:
            found = await conn.fetchval(
                f"SELECT m.mime FROM {self.s}.thread_media AS m WHERE m.id = $1 "
                f"AND m.uploaded_by = $2 AND NOT EXISTS (SELECT 1 FROM {self.s}.thread_messages "
                "WHERE media_id = m.id)",
                media_id,
                user_id,
            )
        return str(found) if found is not None else None

    async def media(self, student_id: str, media_id: int) -> tuple[str, bytes] | None:
        async with self._store.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT m.mime, m.data FROM {self.s}.thread_media AS m WHERE m.id = $1 AND "
                f"EXISTS (SELECT 1 FROM {self.s}.thread_messages "
                "WHERE media_id = m.id AND student_id = $2)",
                media_id,
                student_id,
            )
        return (str(row[0]), bytes(row[1])) if row is not None else None

    async def choose(self, user_id: str, student_id: str, until: float) -> None:
        async with self._store.pool.acquire() as conn:
            await conn.execute(
                f"INSERT INTO {self.s}.thread_choices VALUES ($1, $2, $3) ON CONFLICT (user_id) "
                "DO UPDATE SET student_id = excluded.student_id, until_at = excluded.until_at",
                user_id,
                student_id,
                until,
            )

    async def chosen(self, user_id: str, now: float) -> str | None:
        async with self._store.pool.acquire() as conn:
            found = await conn.fetchval(
                f"SELECT student_id FROM {self.s}.thread_choices "
                "WHERE user_id = $1 AND until_at > $2",
                user_id,
                now,
            )
        return str(found) if found is not None else None


def _marks(count: int) -> str:
    return ", ".join(f"${i}" for i in range(1, count + 1))
