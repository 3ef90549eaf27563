"""The WhatsApp webhook: `GET` verification handshake, `POST` events.

A POST is verified (HMAC-SHA256 of the raw body bytes with the app secret, constant-time
compare: re-serialised JSON would not match, Arabic text especially), stored, answered 200,
and processed afterwards from the stored inbox, so a crash never loses an event. Meta retries
and duplicates deliveries: statuses are deduped and only move forward (sent -> delivered ->
read; failed records Meta's error), incoming messages are deduped by id.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import phonenumbers
import structlog
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from integrations.contracts import (
    Channel,
    Clock,
    Language,
    Message,
    MessageKind,
    NotificationStore,
    Notifier,
    OutboxEntry,
    OutboxState,
    Person,
    RecipientDirectory,
    WebhookEvent,
)

log = structlog.get_logger("collab.integrations.webhook")

SIGNATURE_HEADER = "x-hub-signature-256"
# Meta redelivers for up to 7 days: remember message ids a little longer, then forget the
# stored bodies (they hold parents' numbers and words).
RETENTION_SECONDS = 8 * 24 * 3600
STATUS_RANK = {"sent": 1, "delivered": 2, "read": 3, "failed": 4}
STOP_WORDS = frozenset({"stop", "إيقاف", "ايقاف", "توقف"})
START_WORDS = frozenset({"start", "ابدأ", "ابدا", "إبدأ"})

CONFIRMATIONS: dict[Language, dict[bool, str]] = {
    Language.ENGLISH: {
        True: "You will no longer receive IEP updates on WhatsApp. Reply START to get them again.",
        False: "You will receive IEP updates on WhatsApp again. Reply STOP to stop them.",
    },
    Language.ARABIC: {
        True: "لن تصلك تحديثات الخطة التربوية على واتساب بعد الآن. أرسل «ابدأ» لاستئنافها.",
        False: "ستصلك تحديثات الخطة التربوية على واتساب من جديد. أرسل «إيقاف» لإيقافها.",
    },
}

Enqueue = Callable[[OutboxEntry], Awaitable[bool]]
# A quick-reply button pressed on a template we sent: (who, the button's payload).
ButtonHandler = Callable[[Person, str], Awaitable[object]]
# A person's free text: (who, the text, its WhatsApp message id).
TextHandler = Callable[[Person, str, str], Awaitable[object]]
# A person's file: (who, the Cloud API media id, its caption, the message id).
MediaHandler = Callable[[Person, str, str, str], Awaitable[object]]
MEDIA_KINDS = ("image", "document", "audio")


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256="))


def e164(wa_id: str) -> str | None:
    """Meta's `wa_id` (digits with the country code, no '+') as stored: E.164; None if invalid."""
    try:
        parsed = phonenumbers.parse(wa_id if wa_id.startswith("+") else f"+{wa_id}", None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def keyword(text: str) -> str:
    cleaned = unicodedata.normalize("NFKC", text).strip().strip(".!؟?،, ").casefold()
    return cleaned


# Meta documents webhook payloads of up to 3 MB; anything past this is refused unread (413).
WEBHOOK_MAX_BODY_BYTES = 8 * 1024 * 1024
WEBHOOK_BODY_LIMITS = {"/webhooks/": WEBHOOK_MAX_BODY_BYTES}  # path prefix -> cap


class WhatsAppWebhook:
    def __init__(
        self,
        store: NotificationStore,
        directory: RecipientDirectory,
        notifier: Notifier,
        *,
        enqueue: Enqueue,
        clock: Clock,
        app_secret: str,
        verify_token: str,
        on_outbox_change: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.notifier = notifier
        self.enqueue = enqueue
        self.clock = clock
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.on_outbox_change = on_outbox_change
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._buttons: dict[str, ButtonHandler] = {}
        self._text_handler: TextHandler | None = None
        self._media_handler: MediaHandler | None = None

    def set_text_handler(self, handler: TextHandler) -> None:
        """Parents' free text goes to `handler` (their child's thread) instead of the team's
        in-app notifications."""
        self._text_handler = handler

    def set_media_handler(self, handler: MediaHandler) -> None:
        """Parents' photos, documents and voice notes go to `handler` (after the answer)."""
        self._media_handler = handler

    def add_button_handler(self, prefix: str, handler: ButtonHandler) -> None:
        """Button payloads starting with `prefix` go to `handler` (features set the payloads)."""
        self._buttons[prefix] = handler

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/webhooks/whatsapp", self.handshake, methods=["GET"]),
            Route("/webhooks/whatsapp", self.receive, methods=["POST"]),
        ]

    async def handshake(self, request: Request) -> Response:
        params = request.query_params
        token = params.get("hub.verify_token", "")
        if params.get("hub.mode") == "subscribe" and hmac.compare_digest(
            token.encode(), self.verify_token.encode()
        ):
            return PlainTextResponse(params.get("hub.challenge", ""))
        return PlainTextResponse("forbidden", status_code=403)

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        if not signature_valid(self.app_secret, body, request.headers.get(SIGNATURE_HEADER)):
            log.warning("webhook_bad_signature", present=SIGNATURE_HEADER in request.headers)
            return PlainTextResponse("bad signature", status_code=401)
        await self.store.add_webhook_event(body, self.clock.now())
        task = asyncio.create_task(self._process_in_background())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return PlainTextResponse("ok")

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _process_in_background(self) -> None:
        await self.process_pending()

    async def process_pending(self) -> int:
        """Process every stored, unprocessed event (also at start, after a crash)."""
        processed = 0
        async with self._lock:
            for event in await self.store.unprocessed_webhook_events():
                try:
                    await self._process(event)
                except Exception:
                    log.exception("webhook_event_failed", event_id=event.id)
                await self.store.mark_webhook_event_processed(event.id)
                processed += 1
            if processed:
                await self.store.prune_webhook_state(self.clock.now() - RETENTION_SECONDS)
        return processed

    async def _process(self, event: WebhookEvent) -> None:
        try:
            payload = json.loads(event.body)
        except ValueError:
            log.warning("webhook_not_json", event_id=event.id)
            return
        for entry in _list(payload, "entry"):
            for change in _list(entry, "changes"):
                value = change.get("value") if isinstance(change, dict) else None
                if not isinstance(value, dict):
                    continue
                for status in _list(value, "statuses"):
                    await self._status(status)
                for message in _list(value, "messages"):
                    await self._message(message)

    async def _status(self, status: dict[str, Any]) -> None:
        message_id, name = status.get("id"), status.get("status")
        if not isinstance(message_id, str) or name not in STATUS_RANK:
            return
        errors = _list(status, "errors")
        error = None
        if errors:
            first = errors[0]
            error = f"{first.get('code')}: {first.get('title') or first.get('message') or ''}"
        advanced = await self.store.advance_status(
            message_id, name, STATUS_RANK[name], self.clock.now(), error
        )
        if not advanced:
            return  # a duplicate or an older status arriving late
        entry = await self.store.entry_by_provider_id(message_id)
        key = status.get("biz_opaque_callback_data")
        if entry is None and isinstance(key, str):
            entry = await self.store.entry(key)  # sent, but the response was lost (crash)
        if entry is None:
            return
        now = self.clock.now()
        updated = replace(entry, delivery_status=name, updated_at=now)
        if entry.state is OutboxState.SENDING:
            updated = replace(updated, state=OutboxState.SENT, provider_message_id=message_id)
        if name == "failed":
            updated = replace(updated, last_error=f"whatsapp: {error}")
            remaining = entry.channels[1:]
            if entry.channel is Channel.WHATSAPP and remaining:
                updated = replace(
                    updated, channels=remaining, state=OutboxState.PENDING, next_attempt_at=now
                )
            else:
                updated = replace(updated, state=OutboxState.FAILED)
        await self.store.update(updated)
        if self.on_outbox_change is not None:
            self.on_outbox_change()

    async def _message(self, message: dict[str, Any]) -> None:
        message_id, sender = message.get("id"), message.get("from")
        if not isinstance(message_id, str) or not isinstance(sender, str):
            return
        now = self.clock.now()
        if not await self.store.first_seen(message_id, now):
            return
        phone = e164(sender)
        if phone is None:
            log.info("webhook_message_from_invalid_number")
            return
        await self.store.touch_inbound(phone, now)
        person = await self.directory.person_by_phone(phone)
        if person is None:
            log.info("webhook_message_from_unknown_number")
            return
        payload = _button_payload(message)
        if payload is not None:
            handler = next((h for p, h in self._buttons.items() if payload.startswith(p)), None)
            if handler is not None:
                await handler(person, payload)
            else:
                log.info("webhook_unknown_button")
            return
        kind = message.get("type")
        if kind in MEDIA_KINDS and self._media_handler is not None:
            content = message.get(kind)
            media_id = content.get("id") if isinstance(content, dict) else None
            caption = content.get("caption", "") if isinstance(content, dict) else ""
            if isinstance(media_id, str):
                caption = caption if isinstance(caption, str) else ""
                await self._media_handler(person, media_id, caption, message_id)
            return
        text = message.get("text", {}).get("body") if kind == "text" else None
        if not isinstance(text, str):
            return
        word = keyword(text)
        if word in STOP_WORDS or word in START_WORDS:
            await self._opt(person, opt_out=word in STOP_WORDS, message_id=message_id)
            return
        if self._text_handler is not None:
            await self._text_handler(person, text, message_id)
            return
        for document in await self.directory.documents_of(person.user_id):
            for editor in await self.directory.editors(document):
                await self.notifier.notify(
                    editor.user_id,
                    document=document,
                    kind="whatsapp_reply",
                    title=person.name,
                    body=text,
                    data={"from_user_id": person.user_id},
                )

    async def _opt(self, person: Person, *, opt_out: bool, message_id: str) -> None:
        await self.directory.set_whatsapp_opt_out(person.user_id, opt_out)
        log.info("whatsapp_opt_out" if opt_out else "whatsapp_opt_in", user=person.user_id)
        now = self.clock.now()
        text = CONFIRMATIONS[person.language][opt_out]
        await self.enqueue(
            OutboxEntry(
                key=f"confirm:{message_id}",
                document="",
                recipient_id=person.user_id,
                kind=MessageKind.CONFIRMATION,
                message=Message(person.language, text, text),
                channels=(Channel.WHATSAPP,),
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        if self.on_outbox_change is not None:
            self.on_outbox_change()


def _button_payload(message: dict[str, Any]) -> str | None:
    """A template's quick reply (`button`) or an interactive reply button's id."""
    kind = message.get("type")
    if kind == "button":
        button = message.get("button")
        payload = button.get("payload") if isinstance(button, dict) else None
    elif kind == "interactive":
        interactive = message.get("interactive")
        reply = None
        if isinstance(interactive, dict):  # a reply button, or a row of a list
            reply = interactive.get("button_reply") or interactive.get("list_reply")
        payload = reply.get("id") if isinstance(reply, dict) else None
    else:
        return None
    return payload if isinstance(payload, str) else None


def _list(container: Any, key: str) -> list[Any]:
    value = container.get(key) if isinstance(container, dict) else None
    return value if isinstance(value, list) else []
