"""PostgreSQL store for the notification integrations, in the document store's schema.

It borrows the PostgresStore's pool; tables come from `003_notifications.sql`, applied by the
store at open.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from integrations.contracts import (
    Checkpoint,
    DigestWindow,
    InAppNotification,
    NumberBusy,
    OutboxEntry,
    Pace,
    PushSubscription,
    WebhookEvent,
)
from persistence.postgres import PostgresStore
from persistence.sqlite_notifications import (
    ACTIVE_STATES,
    OUTBOX_COLUMNS,
    notification,
    outbox_entry,
    outbox_row,
    window_row,
)
from persistence.sqlite_notifications import (
    NotClaimed as _NotClaimed,
)

_OUTBOX_VALUES = ", ".join(f"${i}" for i in range(1, 16))


class PostgresNotificationStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self.s = store.schema

    async def open(self) -> None:
        return None  # the pool and the tables are the document store's, opened with it

    async def aclose(self) -> None:
        return None

    async def _fetch(self, sql: str, *args: Any) -> list[Any]:
        async with self._store.pool.acquire() as conn:
            return list(await conn.fetch(sql, *args))

    async def _status(self, sql: str, *args: Any) -> str:
        async with self._store.pool.acquire() as conn:
            result: str = await conn.execute(sql, *args)
            return result

    # -- digest windows

    def _save_window_sql(self) -> str:
        return (
            f"INSERT INTO {self.s}.notification_windows AS w "
            "(document, recipient_id, first_at, last_at, from_seq, through_seq, summary) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) "
            "ON CONFLICT (document, recipient_id) DO UPDATE SET last_at = excluded.last_at, "
            "through_seq = greatest(w.through_seq, excluded.through_seq), "
            "summary = excluded.summary"
        )

    async def save_windows(
        self,
        document: str,
        through_seq: int,
        windows: Sequence[DigestWindow],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        async with self._store.pool.acquire() as conn, conn.transaction():
            if windows:
                await conn.executemany(self._save_window_sql(), [window_row(w) for w in windows])
            await conn.execute(
                f"INSERT INTO {self.s}.notification_watermarks AS m VALUES ($1, $2) "
                "ON CONFLICT (document) "
                "DO UPDATE SET through_seq = greatest(m.through_seq, excluded.through_seq)",
                document,
                through_seq,
            )
            if checkpoint is not None:
                await conn.execute(
                    f"INSERT INTO {self.s}.digest_checkpoints AS c VALUES ($1, $2, $3) "
                    "ON CONFLICT (document) DO UPDATE SET seq = excluded.seq, "
                    "state = excluded.state WHERE excluded.seq >= c.seq",
                    document,
                    checkpoint.seq,
                    checkpoint.state,
                )

    async def checkpoint(self, document: str) -> Checkpoint | None:
        rows = await self._fetch(
            f"SELECT seq, state FROM {self.s}.digest_checkpoints WHERE document = $1", document
        )
        return Checkpoint(int(rows[0][0]), bytes(rows[0][1])) if rows else None

    async def watermark(self, document: str) -> int | None:
        rows = await self._fetch(
            f"SELECT through_seq FROM {self.s}.notification_watermarks WHERE document = $1",
            document,
        )
        return int(rows[0][0]) if rows else None

    async def documents_behind_watermark(self) -> list[tuple[str, int]]:
        rows = await self._fetch(
            f"SELECT d.name, d.last_seq FROM {self.s}.documents AS d "
            f"LEFT JOIN {self.s}.notification_watermarks AS w ON w.document = d.name "
            "WHERE d.last_seq > coalesce(w.through_seq, 0)"
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    async def windows(self) -> list[DigestWindow]:
        rows = await self._fetch(
            "SELECT document, recipient_id, first_at, last_at, from_seq, through_seq, summary "
            f"FROM {self.s}.notification_windows"
        )
        return [DigestWindow(*r) for r in rows]

    async def close_window(self, window: DigestWindow, entry: OutboxEntry | None) -> bool:
        inserted = False
        async with self._store.pool.acquire() as conn, conn.transaction():
            if entry is not None:
                status = await conn.execute(
                    f"INSERT INTO {self.s}.notification_outbox ({OUTBOX_COLUMNS}) "
                    f"VALUES ({_OUTBOX_VALUES}) ON CONFLICT (key) DO NOTHING",
                    *outbox_row(entry),
                )
                inserted = status.endswith(" 1")
            await conn.execute(
                f"DELETE FROM {self.s}.notification_windows "
                "WHERE document = $1 AND recipient_id = $2",
                window.document,
                window.recipient_id,
            )
        return inserted

    # -- outbox

    async def enqueue(self, entry: OutboxEntry) -> bool:
        status = await self._status(
            f"INSERT INTO {self.s}.notification_outbox ({OUTBOX_COLUMNS}) "
            f"VALUES ({_OUTBOX_VALUES}) ON CONFLICT (key) DO NOTHING",
            *outbox_row(entry),
        )
        return status.endswith(" 1")

    async def due(self, now: float, limit: int) -> list[OutboxEntry]:
        rows = await self._fetch(
            f"SELECT {OUTBOX_COLUMNS} FROM {self.s}.notification_outbox "
            "WHERE state = ANY($1::text[]) AND next_attempt_at <= $2 "
            "ORDER BY next_attempt_at LIMIT $3",
            list(ACTIVE_STATES),
            now,
            limit,
        )
        return [outbox_entry(r) for r in rows]

    async def update(self, entry: OutboxEntry) -> None:
        row = outbox_row(entry)
        await self._status(
            f"UPDATE {self.s}.notification_outbox SET channels = $1, state = $2, attempts = $3, "
            "next_attempt_at = $4, last_error = $5, provider_message_id = $6, "
            "delivery_status = $7, use_template = $8, updated_at = $9 WHERE key = $10",
            *row[5:13],
            row[14],
            entry.key,
        )

    async def claim(
        self, seen: OutboxEntry, claimed: OutboxEntry, pace: Pace | None = None
    ) -> bool:
        row = outbox_row(claimed)
        try:
            async with self._store.pool.acquire() as conn, conn.transaction():
                if pace is not None:
                    # Of two processes asking at once, one gets the slot (row lock of the upsert).
                    taken = await conn.fetchval(
                        f"INSERT INTO {self.s}.whatsapp_pacing AS p VALUES ($1, $2) "
                        "ON CONFLICT (phone) DO UPDATE SET next_at = excluded.next_at "
                        "WHERE p.next_at <= $3 RETURNING next_at",
                        pace.key,
                        pace.now + pace.interval,
                        pace.now,
                    )
                    if taken is None:
                        free_at = await conn.fetchval(
                            f"SELECT next_at FROM {self.s}.whatsapp_pacing WHERE phone = $1",
                            pace.key,
                        )
                        raise NumberBusy(float(free_at) if free_at is not None else pace.now)
                status: str = await conn.execute(
                    f"UPDATE {self.s}.notification_outbox SET channels = $1, state = $2, "
                    "attempts = $3, next_attempt_at = $4, last_error = $5, "
                    "provider_message_id = $6, delivery_status = $7, use_template = $8, "
                    "updated_at = $9 "
                    "WHERE key = $10 AND state = $11 AND attempts = $12 AND next_attempt_at = $13",
                    *row[5:13],
                    row[14],
                    seen.key,
                    seen.state.value,
                    seen.attempts,
                    seen.next_attempt_at,
                )
                if not status.endswith(" 1"):
                    # Claimed elsewhere: give the slot back with the rest of the transaction.
                    raise _NotClaimed()
        except _NotClaimed:
            return False
        return True

    async def entry(self, key: str) -> OutboxEntry | None:
        rows = await self._fetch(
            f"SELECT {OUTBOX_COLUMNS} FROM {self.s}.notification_outbox WHERE key = $1", key
        )
        return outbox_entry(rows[0]) if rows else None

    async def entries(self, document: str) -> list[OutboxEntry]:
        rows = await self._fetch(
            f"SELECT {OUTBOX_COLUMNS} FROM {self.s}.notification_outbox WHERE document = $1 "
            "ORDER BY created_at, key",
            document,
        )
        return [outbox_entry(r) for r in rows]

    async def entry_by_provider_id(self, provider_message_id: str) -> OutboxEntry | None:
        rows = await self._fetch(
            f"SELECT {OUTBOX_COLUMNS} FROM {self.s}.notification_outbox "
            "WHERE provider_message_id = $1",
            provider_message_id,
        )
        return outbox_entry(rows[0]) if rows else None

    # -- WhatsApp state

    async def touch_inbound(self, phone: str, at: float) -> None:
        await self._status(
            f"INSERT INTO {self.s}.whatsapp_inbound AS w VALUES ($1, $2) ON CONFLICT (phone) "
            "DO UPDATE SET last_inbound_at = greatest(w.last_inbound_at, excluded.last_inbound_at)",
            phone,
            at,
        )

    async def last_inbound(self, phone: str) -> float | None:
        rows = await self._fetch(
            f"SELECT last_inbound_at FROM {self.s}.whatsapp_inbound WHERE phone = $1", phone
        )
        return float(rows[0][0]) if rows else None

    async def halt_whatsapp(self, reason: str, at: float) -> None:
        await self._status(
            f"INSERT INTO {self.s}.whatsapp_halt VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
            reason,
            at,
        )

    async def whatsapp_halt(self) -> tuple[str, float] | None:
        rows = await self._fetch(f"SELECT reason, at FROM {self.s}.whatsapp_halt")
        return (str(rows[0][0]), float(rows[0][1])) if rows else None

    async def resume_whatsapp(self) -> bool:
        return await self._status(f"DELETE FROM {self.s}.whatsapp_halt") != "DELETE 0"

    async def advance_status(
        self, message_id: str, status: str, rank: int, at: float, error: str | None
    ) -> bool:
        result = await self._status(
            f"INSERT INTO {self.s}.whatsapp_statuses AS s VALUES ($1, $2, $3, $4, $5) "
            "ON CONFLICT (message_id) DO UPDATE SET status = excluded.status, "
            "rank = excluded.rank, error = excluded.error, updated_at = excluded.updated_at "
            "WHERE excluded.rank > s.rank",
            message_id,
            status,
            rank,
            error,
            at,
        )
        return result.endswith(" 1")

    async def first_seen(self, message_id: str, at: float) -> bool:
        result = await self._status(
            f"INSERT INTO {self.s}.whatsapp_seen_messages VALUES ($1, $2) ON CONFLICT DO NOTHING",
            message_id,
            at,
        )
        return result.endswith(" 1")

    async def set_whatsapp_opt_out(self, user_id: str, opted_out: bool, at: float) -> None:
        await self._status(
            f"INSERT INTO {self.s}.whatsapp_opt_outs VALUES ($1, $2, $3) "
            "ON CONFLICT (user_id) DO UPDATE "
            "SET opted_out = excluded.opted_out, updated_at = excluded.updated_at",
            user_id,
            opted_out,
            at,
        )

    async def whatsapp_opted_out(self, user_id: str) -> bool:
        rows = await self._fetch(
            f"SELECT opted_out FROM {self.s}.whatsapp_opt_outs WHERE user_id = $1", user_id
        )
        return bool(rows[0][0]) if rows else False

    # -- webhook inbox

    async def add_webhook_event(self, body: bytes, at: float) -> int:
        rows = await self._fetch(
            f"INSERT INTO {self.s}.webhook_events (body, received_at) VALUES ($1, $2) RETURNING id",
            body,
            at,
        )
        return int(rows[0][0])

    async def unprocessed_webhook_events(self) -> list[WebhookEvent]:
        rows = await self._fetch(
            f"SELECT id, body, received_at FROM {self.s}.webhook_events "
            "WHERE processed_at IS NULL ORDER BY id"
        )
        return [WebhookEvent(int(r[0]), bytes(r[1]), float(r[2])) for r in rows]

    async def mark_webhook_event_processed(self, event_id: int) -> None:
        await self._status(
            f"UPDATE {self.s}.webhook_events SET processed_at = extract(epoch from now()) "
            "WHERE id = $1",
            event_id,
        )

    async def prune_webhook_state(self, before: float) -> None:
        async with self._store.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"DELETE FROM {self.s}.webhook_events "
                "WHERE processed_at IS NOT NULL AND received_at < $1",
                before,
            )
            await conn.execute(
                f"DELETE FROM {self.s}.whatsapp_seen_messages WHERE seen_at < $1", before
            )

    # -- in-app

    async def add_notification(
        self,
        user_id: str,
        *,
        document: str,
        kind: str,
        title: str,
        body: str,
        at: float,
        data: dict[str, str],
    ) -> int:
        rows = await self._fetch(
            f"INSERT INTO {self.s}.inapp_notifications "
            "(user_id, document, kind, title, body, data, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            user_id,
            document,
            kind,
            title,
            body,
            json.dumps(data, ensure_ascii=False),
            at,
        )
        return int(rows[0][0])

    async def notifications(
        self, user_id: str, after_id: int = 0, limit: int = 100
    ) -> list[InAppNotification]:
        rows = await self._fetch(
            "SELECT id, user_id, document, kind, title, body, data, created_at "
            f"FROM {self.s}.inapp_notifications WHERE user_id = $1 AND id > $2 "
            "ORDER BY id LIMIT $3",
            user_id,
            after_id,
            limit,
        )
        return [notification(r) for r in rows]

    async def recent_notifications(self, user_id: str, limit: int) -> list[InAppNotification]:
        rows = await self._fetch(
            "SELECT id, user_id, document, kind, title, body, data, created_at "
            f"FROM {self.s}.inapp_notifications WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
            user_id,
            limit,
        )
        return [notification(r) for r in rows]

    async def unread_notifications(self, user_id: str) -> tuple[int, int]:
        rows = await self._fetch(
            f"WITH r AS (SELECT coalesce((SELECT through_id FROM {self.s}.inapp_reads "
            "WHERE user_id = $1), 0) AS through) "
            f"SELECT r.through, (SELECT count(*) FROM {self.s}.inapp_notifications "
            "WHERE user_id = $1 AND id > r.through) FROM r",
            user_id,
        )
        return int(rows[0][0]), int(rows[0][1])

    async def mark_notifications_read(self, user_id: str, through_id: int) -> bool:
        status = await self._status(
            f"INSERT INTO {self.s}.inapp_reads AS r VALUES ($1, $2) ON CONFLICT (user_id) "
            "DO UPDATE SET through_id = excluded.through_id "
            "WHERE excluded.through_id > r.through_id",
            user_id,
            through_id,
        )
        return not status.endswith(" 0")

    async def add_push_subscription(self, subscription: PushSubscription, keep: int) -> None:
        async with self._store.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                f"INSERT INTO {self.s}.push_subscriptions VALUES ($1, $2, $3, $4, $5) "
                "ON CONFLICT (endpoint) DO UPDATE SET user_id = excluded.user_id, "
                "p256dh = excluded.p256dh, auth = excluded.auth, created_at = excluded.created_at",
                subscription.endpoint,
                subscription.user_id,
                subscription.p256dh,
                subscription.auth,
                time.time(),
            )
            await conn.execute(
                f"DELETE FROM {self.s}.push_subscriptions WHERE user_id = $1 AND endpoint NOT IN "
                f"(SELECT endpoint FROM {self.s}.push_subscriptions WHERE user_id = $1 "
                "ORDER BY created_at DESC LIMIT $2)",
                subscription.user_id,
                keep,
            )

    async def push_subscriptions(self, user_id: str) -> list[PushSubscription]:
        rows = await self._fetch(
            f"SELECT user_id, endpoint, p256dh, auth FROM {self.s}.push_subscriptions "
            "WHERE user_id = $1 ORDER BY created_at",
            user_id,
        )
        return [PushSubscription(*r) for r in rows]

    async def remove_push_subscription(self, endpoint: str) -> bool:
        status = await self._status(
            f"DELETE FROM {self.s}.push_subscriptions WHERE endpoint = $1", endpoint
        )
        return status != "DELETE 0"
