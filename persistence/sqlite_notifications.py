"""SQLite store for the notification integrations (outbox, digest windows, webhook inbox).

It shares the SQLiteStore's one connection (tables from 003_notifications.sql, applied by the
store at open), so its writes take turns with group commits instead of contending for the lock.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from integrations.contracts import (
    Channel,
    Checkpoint,
    DigestWindow,
    InAppNotification,
    Language,
    Message,
    MessageKind,
    NumberBusy,
    OutboxEntry,
    OutboxState,
    Pace,
    PushSubscription,
    WebhookEvent,
)
from persistence.sqlite import SQLiteStore

OUTBOX_COLUMNS = (
    "key, document, recipient_id, kind, message, channels, state, attempts, next_attempt_at, "
    "last_error, provider_message_id, delivery_status, use_template, created_at, updated_at"
)


def message_json(message: Message) -> str:
    return json.dumps(
        {
            "language": message.language.value,
            "subject": message.subject,
            "text": message.text,
            "template_params": list(message.template_params),
            "link": message.link,
            "template": message.template,
            "buttons": list(message.buttons),
            "choices": [list(choice) for choice in message.choices],
            "button": message.button,
            "attachment": message.attachment,
            "attachment_type": message.attachment_type,
        },
        ensure_ascii=False,
    )


def message_from_json(raw: str) -> Message:
    data = json.loads(raw)
    return Message(
        Language(data["language"]),
        data["subject"],
        data["text"],
        tuple(data.get("template_params", ())),
        data.get("link", ""),
        data.get("template", ""),
        tuple(data.get("buttons", ())),
        tuple((str(c[0]), str(c[1])) for c in data.get("choices", ())),
        data.get("button", ""),
        int(data.get("attachment", 0)),
        data.get("attachment_type", ""),
    )


def outbox_row(entry: OutboxEntry) -> tuple[Any, ...]:
    return (
        entry.key,
        entry.document,
        entry.recipient_id,
        entry.kind.value,
        message_json(entry.message),
        ",".join(c.value for c in entry.channels),
        entry.state.value,
        entry.attempts,
        entry.next_attempt_at,
        entry.last_error,
        entry.provider_message_id,
        entry.delivery_status,
        int(entry.use_template),
        entry.created_at,
        entry.updated_at,
    )


def outbox_entry(row: Sequence[Any]) -> OutboxEntry:
    return OutboxEntry(
        key=row[0],
        document=row[1],
        recipient_id=row[2],
        kind=MessageKind(row[3]),
        message=message_from_json(row[4]),
        channels=tuple(Channel(c) for c in row[5].split(",") if c),
        state=OutboxState(row[6]),
        attempts=int(row[7]),
        next_attempt_at=float(row[8]),
        last_error=row[9],
        provider_message_id=row[10],
        delivery_status=row[11],
        use_template=bool(row[12]),
        created_at=float(row[13]),
        updated_at=float(row[14]),
    )


class NotClaimed(Exception):
    """Inside a claim's transaction: the row was claimed elsewhere, roll back."""


async def _take_slot(db: Any, pace: Pace) -> None:
    """The number's send slot, in the caller's transaction, or `NumberBusy`."""
    async with db.execute(
        "INSERT INTO whatsapp_pacing AS p VALUES (?, ?) ON CONFLICT (phone) DO UPDATE "
        "SET next_at = excluded.next_at WHERE p.next_at <= ? RETURNING next_at",
        (pace.key, pace.now + pace.interval, pace.now),
    ) as cursor:
        if await cursor.fetchone() is not None:
            return
    async with db.execute(
        "SELECT next_at FROM whatsapp_pacing WHERE phone = ?", (pace.key,)
    ) as cur:
        row = await cur.fetchone()
    raise NumberBusy(float(row[0]) if row else pace.now)


def notification(row: Sequence[Any]) -> InAppNotification:
    return InAppNotification(
        int(row[0]), row[1], row[2], row[3], row[4], row[5], float(row[7]), json.loads(row[6])
    )


SAVE_WINDOW = (
    "INSERT INTO notification_windows "
    "(document, recipient_id, first_at, last_at, from_seq, through_seq, summary) "
    "VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (document, recipient_id) DO UPDATE SET last_at = excluded.last_at, "
    "through_seq = max(through_seq, excluded.through_seq), summary = excluded.summary"
)


def window_row(window: DigestWindow) -> tuple[Any, ...]:
    return (
        window.document,
        window.recipient_id,
        window.first_at,
        window.last_at,
        window.from_seq,
        window.through_seq,
        window.summary,
    )


ACTIVE_STATES = (OutboxState.PENDING.value, OutboxState.SENDING.value)


class SQLiteNotificationStore:
    def __init__(self, store: SQLiteStore, *, owns_store: bool = False) -> None:
        self._store = store
        # Only a store made for notifications alone (memory:// documents) is opened here;
        # a shared one opens and closes with the documents.
        self._owns_store = owns_store

    async def open(self) -> None:
        if self._owns_store:
            await self._store.open()

    async def aclose(self) -> None:
        if self._owns_store:
            await self._store.aclose()

    # -- digest windows

    async def save_windows(
        self,
        document: str,
        through_seq: int,
        windows: Sequence[DigestWindow],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        async with self._store.transaction() as db:
            for window in windows:
                await db.execute(SAVE_WINDOW, window_row(window))
            await db.execute(
                "INSERT INTO notification_watermarks VALUES (?, ?) ON CONFLICT (document) "
                "DO UPDATE SET through_seq = max(through_seq, excluded.through_seq)",
                (document, through_seq),
            )
            if checkpoint is not None:
                await db.execute(
                    "INSERT INTO digest_checkpoints VALUES (?, ?, ?) ON CONFLICT (document) "
                    "DO UPDATE SET seq = excluded.seq, state = excluded.state "
                    "WHERE excluded.seq >= digest_checkpoints.seq",
                    (document, checkpoint.seq, checkpoint.state),
                )

    async def checkpoint(self, document: str) -> Checkpoint | None:
        rows = await self._store.fetch_all(
            "SELECT seq, state FROM digest_checkpoints WHERE document = ?", (document,)
        )
        return Checkpoint(int(rows[0][0]), bytes(rows[0][1])) if rows else None

    async def watermark(self, document: str) -> int | None:
        rows = await self._store.fetch_all(
            "SELECT through_seq FROM notification_watermarks WHERE document = ?", (document,)
        )
        return int(rows[0][0]) if rows else None

    async def documents_behind_watermark(self) -> list[tuple[str, int]]:
        rows = await self._store.fetch_all(
            "SELECT a.name, a.last_seq FROM document_activity AS a "
            "LEFT JOIN notification_watermarks AS w ON w.document = a.name "
            "WHERE a.last_seq > coalesce(w.through_seq, 0)"
        )
        return [(str(r[0]), int(r[1])) for r in rows]

    async def windows(self) -> list[DigestWindow]:
        rows = await self._store.fetch_all(
            "SELECT document, recipient_id, first_at, last_at, from_seq, through_seq, summary "
            "FROM notification_windows"
        )
        return [DigestWindow(*r) for r in rows]

    async def close_window(self, window: DigestWindow, entry: OutboxEntry | None) -> bool:
        inserted = False
        async with self._store.transaction() as db:
            if entry is not None:
                cursor = await db.execute(
                    f"INSERT OR IGNORE INTO notification_outbox ({OUTBOX_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    outbox_row(entry),
                )
                inserted = cursor.rowcount == 1
            await db.execute(
                "DELETE FROM notification_windows WHERE document = ? AND recipient_id = ?",
                (window.document, window.recipient_id),
            )
        return inserted

    # -- outbox

    async def enqueue(self, entry: OutboxEntry) -> bool:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                f"INSERT OR IGNORE INTO notification_outbox ({OUTBOX_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                outbox_row(entry),
            )
            return cursor.rowcount == 1

    async def due(self, now: float, limit: int) -> list[OutboxEntry]:
        rows = await self._store.fetch_all(
            f"SELECT {OUTBOX_COLUMNS} FROM notification_outbox "
            "WHERE state IN (?, ?) AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
            (*ACTIVE_STATES, now, limit),
        )
        return [outbox_entry(r) for r in rows]

    async def update(self, entry: OutboxEntry) -> None:
        row = outbox_row(entry)
        async with self._store.transaction() as db:
            await db.execute(
                "UPDATE notification_outbox SET channels = ?, state = ?, attempts = ?, "
                "next_attempt_at = ?, last_error = ?, provider_message_id = ?, "
                "delivery_status = ?, use_template = ?, updated_at = ? WHERE key = ?",
                (*row[5:13], row[14], entry.key),
            )

    async def claim(
        self, seen: OutboxEntry, claimed: OutboxEntry, pace: Pace | None = None
    ) -> bool:
        row = outbox_row(claimed)
        try:
            async with self._store.transaction() as db:
                if pace is not None:
                    await _take_slot(db, pace)
                cursor = await db.execute(
                    "UPDATE notification_outbox SET channels = ?, state = ?, attempts = ?, "
                    "next_attempt_at = ?, last_error = ?, provider_message_id = ?, "
                    "delivery_status = ?, use_template = ?, updated_at = ? "
                    "WHERE key = ? AND state = ? AND attempts = ? AND next_attempt_at = ?",
                    (
                        *row[5:13],
                        row[14],
                        seen.key,
                        seen.state.value,
                        seen.attempts,
                        seen.next_attempt_at,
                    ),
                )
                if cursor.rowcount != 1:
                    raise NotClaimed()  # and the slot goes back with the rollback
        except NotClaimed:
            return False
        return True

    async def entry(self, key: str) -> OutboxEntry | None:
        rows = await self._store.fetch_all(
            f"SELECT {OUTBOX_COLUMNS} FROM notification_outbox WHERE key = ?", (key,)
        )
        return outbox_entry(rows[0]) if rows else None

    async def entries(self, document: str) -> list[OutboxEntry]:
        rows = await self._store.fetch_all(
            f"SELECT {OUTBOX_COLUMNS} FROM notification_outbox WHERE document = ? "
            "ORDER BY created_at, key",
            (document,),
        )
        return [outbox_entry(r) for r in rows]

    async def entry_by_provider_id(self, provider_message_id: str) -> OutboxEntry | None:
        rows = await self._store.fetch_all(
            f"SELECT {OUTBOX_COLUMNS} FROM notification_outbox WHERE provider_message_id = ?",
            (provider_message_id,),
        )
        return outbox_entry(rows[0]) if rows else None

    # -- WhatsApp state

    async def touch_inbound(self, phone: str, at: float) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "INSERT INTO whatsapp_inbound VALUES (?, ?) ON CONFLICT (phone) DO UPDATE SET "
                "last_inbound_at = max(last_inbound_at, excluded.last_inbound_at)",
                (phone, at),
            )

    async def last_inbound(self, phone: str) -> float | None:
        rows = await self._store.fetch_all(
            "SELECT last_inbound_at FROM whatsapp_inbound WHERE phone = ?", (phone,)
        )
        return float(rows[0][0]) if rows else None

    async def halt_whatsapp(self, reason: str, at: float) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "INSERT INTO whatsapp_halt VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING",
                (reason, at),
            )

    async def whatsapp_halt(self) -> tuple[str, float] | None:
        rows = await self._store.fetch_all("SELECT reason, at FROM whatsapp_halt", ())
        return (str(rows[0][0]), float(rows[0][1])) if rows else None

    async def resume_whatsapp(self) -> bool:
        async with self._store.transaction() as db:
            cursor = await db.execute("DELETE FROM whatsapp_halt")
            lifted = cursor.rowcount > 0
            await cursor.close()
        return lifted

    async def advance_status(
        self, message_id: str, status: str, rank: int, at: float, error: str | None
    ) -> bool:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO whatsapp_statuses VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (message_id) DO UPDATE SET status = excluded.status, "
                "rank = excluded.rank, error = excluded.error, updated_at = excluded.updated_at "
                "WHERE excluded.rank > whatsapp_statuses.rank",
                (message_id, status, rank, error, at),
            )
            return cursor.rowcount == 1

    async def first_seen(self, message_id: str, at: float) -> bool:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "INSERT OR IGNORE INTO whatsapp_seen_messages VALUES (?, ?)", (message_id, at)
            )
            return cursor.rowcount == 1

    async def set_whatsapp_opt_out(self, user_id: str, opted_out: bool, at: float) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "INSERT INTO whatsapp_opt_outs VALUES (?, ?, ?) ON CONFLICT (user_id) DO UPDATE "
                "SET opted_out = excluded.opted_out, updated_at = excluded.updated_at",
                (user_id, int(opted_out), at),
            )

    async def whatsapp_opted_out(self, user_id: str) -> bool:
        rows = await self._store.fetch_all(
            "SELECT opted_out FROM whatsapp_opt_outs WHERE user_id = ?", (user_id,)
        )
        return bool(rows[0][0]) if rows else False

    # -- webhook inbox

    async def add_webhook_event(self, body: bytes, at: float) -> int:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO webhook_events (body, received_at) VALUES (?, ?)", (body, at)
            )
            return int(cursor.lastrowid or 0)

    async def unprocessed_webhook_events(self) -> list[WebhookEvent]:
        rows = await self._store.fetch_all(
            "SELECT id, body, received_at FROM webhook_events WHERE processed_at IS NULL "
            "ORDER BY id"
        )
        return [WebhookEvent(int(r[0]), bytes(r[1]), float(r[2])) for r in rows]

    async def mark_webhook_event_processed(self, event_id: int) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "UPDATE webhook_events "
                "SET processed_at = (julianday('now') - 2440587.5) * 86400.0 WHERE id = ?",
                (event_id,),
            )

    async def prune_webhook_state(self, before: float) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "DELETE FROM webhook_events WHERE processed_at IS NOT NULL AND received_at < ?",
                (before,),
            )
            await db.execute("DELETE FROM whatsapp_seen_messages WHERE seen_at < ?", (before,))

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
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO inapp_notifications "
                "(user_id, document, kind, title, body, data, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, document, kind, title, body, json.dumps(data, ensure_ascii=False), at),
            )
            return int(cursor.lastrowid or 0)

    async def notifications(
        self, user_id: str, after_id: int = 0, limit: int = 100
    ) -> list[InAppNotification]:
        rows = await self._store.fetch_all(
            "SELECT id, user_id, document, kind, title, body, data, created_at "
            "FROM inapp_notifications WHERE user_id = ? AND id > ? ORDER BY id LIMIT ?",
            (user_id, after_id, limit),
        )
        return [notification(r) for r in rows]

    async def recent_notifications(self, user_id: str, limit: int) -> list[InAppNotification]:
        rows = await self._store.fetch_all(
            "SELECT id, user_id, document, kind, title, body, data, created_at "
            "FROM inapp_notifications WHERE user_id = ? ORDER BY id DESC LIMIT ?",
            (user_id, limit),
        )
        return [notification(r) for r in rows]

    async def unread_notifications(self, user_id: str) -> tuple[int, int]:
        rows = await self._store.fetch_all(
            "SELECT coalesce((SELECT through_id FROM inapp_reads WHERE user_id = ?), 0)",
            (user_id,),
        )
        through = int(rows[0][0])
        count = await self._store.fetch_all(
            "SELECT count(*) FROM inapp_notifications WHERE user_id = ? AND id > ?",
            (user_id, through),
        )
        return through, int(count[0][0])

    async def mark_notifications_read(self, user_id: str, through_id: int) -> bool:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "INSERT INTO inapp_reads VALUES (?, ?) ON CONFLICT (user_id) DO UPDATE "
                "SET through_id = excluded.through_id "
                "WHERE excluded.through_id > inapp_reads.through_id",
                (user_id, through_id),
            )
            moved = cursor.rowcount > 0
            await cursor.close()
        return moved

    async def add_push_subscription(self, subscription: PushSubscription, keep: int) -> None:
        async with self._store.transaction() as db:
            await db.execute(
                "INSERT INTO push_subscriptions VALUES (?, ?, ?, ?, ?) ON CONFLICT (endpoint) "
                "DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh, "
                "auth = excluded.auth, created_at = excluded.created_at",
                (
                    subscription.endpoint,
                    subscription.user_id,
                    subscription.p256dh,
                    subscription.auth,
                    time.time(),
                ),
            )
            await db.execute(
                "DELETE FROM push_subscriptions WHERE user_id = ? AND endpoint NOT IN "
                "(SELECT endpoint FROM push_subscriptions WHERE user_id = ? "
                "ORDER BY created_at DESC LIMIT ?)",
                (subscription.user_id, subscription.user_id, keep),
            )

    async def push_subscriptions(self, user_id: str) -> list[PushSubscription]:
        rows = await self._store.fetch_all(
            "SELECT user_id, endpoint, p256dh, auth FROM push_subscriptions WHERE user_id = ? "
            "ORDER BY created_at",
            (user_id,),
        )
        return [PushSubscription(*r) for r in rows]

    async def remove_push_subscription(self, endpoint: str) -> bool:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "DELETE FROM push_subscriptions WHERE endpoint = ?", (endpoint,)
            )
            removed = cursor.rowcount > 0
            await cursor.close()
        return removed
