"""WhatsApp Cloud API delivery over httpx.

Inside the 24-hour customer-service window (the person wrote to us in the last 24 h) a digest
goes as free-form text; outside it, as the approved template `WHATSAPP_DIGEST_TEMPLATE` in the
person's language. A thread's photo or PDF goes inside the window as the file itself, uploaded to
`POST /{phone-number-id}/media` and sent with the text as its caption; otherwise the text's link
leads to it. Errors are classified by Meta's `error.code` (and HTTP status) into the
outbox's outcomes:

    SENT           2xx with messages[0].id
    RETRY          130429, 131056, 4, 80007, 1, 2, 131000, 131016, 5xx, timeouts, network
    WINDOW_CLOSED  131047
    HALT           368 (the account is restricted: stop every WhatsApp send)
    FAILED         131026, 131048 and any other 4xx (a contract error: retrying cannot help)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from integrations.contracts import (
    Channel,
    Clock,
    MessageKind,
    NotificationStore,
    OutboxEntry,
    OutcomeKind,
    Person,
    SendOutcome,
)

log = structlog.get_logger("collab.integrations.whatsapp")

CUSTOMER_SERVICE_WINDOW_SECONDS = 24 * 3600
RETRYABLE_CODES = frozenset({130429, 131056, 4, 80007, 1, 2, 131000, 131016})
WINDOW_CLOSED_CODE = 131047
HALT_CODES = frozenset({368})
REQUEST_TIMEOUT_SECONDS = 10.0
UPLOAD_TIMEOUT_SECONDS = 60.0  # up to 16 MB
# What WhatsApp shows as the file itself; other types reach the person as the text's link.
MEDIA_FORMS = {"image/jpeg": "image", "image/png": "image", "application/pdf": "document"}
MAX_CAPTION = 1024  # longer texts go as text with the link, never cut

# A thread's file by student and id: its type and bytes, or None when it is gone.
AttachmentSource = Callable[[str, int], Awaitable[tuple[str, bytes] | None]]


@dataclass(frozen=True, slots=True)
class WhatsAppConfig:
    api_url: str
    access_token: str
    phone_number_id: str
    digest_template: str
    acknowledgement_template: str = ""  # a version to read and acknowledge, and reminders


def masked(phone: str) -> str:
    """Enough of a number to correlate logs, never the whole of it."""
    return f"…{phone[-3:]}" if len(phone) > 3 else "…"


def text_payload(to: str, body: str, key: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "text",
        "text": {"preview_url": True, "body": body},
        "biz_opaque_callback_data": key,
    }


def list_payload(
    to: str, question: str, button: str, choices: tuple[tuple[str, str], ...], key: str
) -> dict[str, Any]:
    """An interactive list: the row picked comes back as a `list_reply` with its id."""
    rows = [{"id": row_id, "title": title} for row_id, title in choices]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": question},
            "action": {"button": button, "sections": [{"title": button, "rows": rows}]},
        },
        "biz_opaque_callback_data": key,
    }


def media_payload(
    to: str, form: str, media_id: str, caption: str, key: str, *, filename: str
) -> dict[str, Any]:
    described: dict[str, str] = {"id": media_id, "caption": caption}
    if form == "document":
        described["filename"] = filename  # what the person's phone names the file
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": form,
        form: described,
        "biz_opaque_callback_data": key,
    }


def template_payload(
    to: str,
    template: str,
    language: str,
    params: tuple[str, ...],
    key: str,
    *,
    buttons: tuple[str, ...] = (),
) -> dict[str, Any]:
    components: list[dict[str, Any]] = [
        {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}
    ]
    # Quick replies come back on the webhook as a `button` message carrying the payload.
    components += [
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": str(index),
            "parameters": [{"type": "payload", "payload": payload}],
        }
        for index, payload in enumerate(buttons)
    ]
    return {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {
            "name": template,
            "language": {"code": language},
            "components": components,
        },
        "biz_opaque_callback_data": key,
    }


def classify(status: int, body: Any) -> SendOutcome:
    if 200 <= status < 300:
        try:
            message_id = str(body["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            return SendOutcome(OutcomeKind.RETRY, error=f"http {status}: no message id")
        return SendOutcome(OutcomeKind.SENT, provider_message_id=message_id)
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    title = str(error.get("message", "")) if isinstance(error, dict) else ""
    reason = f"{code}: {title}" if code is not None else f"http {status}"
    if code == WINDOW_CLOSED_CODE:
        return SendOutcome(OutcomeKind.WINDOW_CLOSED, error=reason)
    if code in HALT_CODES:
        return SendOutcome(OutcomeKind.HALT, error=reason)
    if code in RETRYABLE_CODES or status >= 500 or status == 429:
        return SendOutcome(OutcomeKind.RETRY, error=reason)
    return SendOutcome(OutcomeKind.FAILED, error=reason)


class WhatsAppSender:
    channel = Channel.WHATSAPP

    def __init__(
        self,
        config: WhatsAppConfig,
        store: NotificationStore,
        clock: Clock,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.attachments: AttachmentSource | None = None  # set where threads keep files
        self._client = httpx.AsyncClient(
            base_url=config.api_url.rstrip("/"),
            headers={"Authorization": f"Bearer {config.access_token}"},
            timeout=REQUEST_TIMEOUT_SECONDS,
            transport=transport,
        )

    async def window_open(self, phone: str) -> bool:
        last = await self.store.last_inbound(phone)
        return last is not None and self.clock.now() - last < CUSTOMER_SERVICE_WINDOW_SECONDS

    async def send(self, entry: OutboxEntry, person: Person) -> SendOutcome:
        if not person.phone:
            return SendOutcome(OutcomeKind.FAILED, error="no phone number")
        to = person.phone.lstrip("+")
        # Confirmations answer a message the person just sent, so the window is open.
        # Buttons exist only in the template, so a message with buttons is always one.
        as_text = entry.kind is MessageKind.CONFIRMATION or (
            not entry.use_template
            and not entry.message.buttons
            and await self.window_open(person.phone)
        )
        if as_text and entry.message.choices:
            message = entry.message
            payload = list_payload(to, message.text, message.button, message.choices, entry.key)
        elif as_text:
            payload = text_payload(to, entry.message.text, entry.key)
            as_file = await self._with_file(entry, to)
            if isinstance(as_file, SendOutcome):
                return as_file
            payload = as_file or payload
        else:
            template = entry.message.template or self.config.digest_template
            if entry.kind is MessageKind.ACKNOWLEDGEMENT and self.config.acknowledgement_template:
                template = self.config.acknowledgement_template
            payload = template_payload(
                to,
                template,
                person.language.value,
                entry.message.template_params,
                entry.key,
                buttons=entry.message.buttons,
            )
        try:
            response = await self._client.post(
                f"/{self.config.phone_number_id}/messages", json=payload
            )
        except httpx.TimeoutException:
            return SendOutcome(OutcomeKind.RETRY, error="timeout")
        except httpx.TransportError as exc:
            return SendOutcome(OutcomeKind.RETRY, error=f"network: {type(exc).__name__}")
        try:
            body = response.json()
        except ValueError:
            body = None
        outcome = classify(response.status_code, body)
        log.info(
            "whatsapp_send",
            to=masked(person.phone),
            form=payload["type"],
            outcome=outcome.kind.value,
            error=outcome.error,
        )
        return outcome

    async def _with_file(self, entry: OutboxEntry, to: str) -> dict[str, Any] | SendOutcome | None:
        """The message as the file it carries with the text as caption; None: as text."""
        message = entry.message
        form = MEDIA_FORMS.get(message.attachment_type)
        if not message.attachment or form is None or self.attachments is None:
            return None
        if len(message.text) > MAX_CAPTION:
            return None
        kept = await self.attachments(entry.document, message.attachment)
        if kept is None:
            return None
        mime, data = kept
        extension = "pdf" if mime == "application/pdf" else mime.rsplit("/", 1)[-1]
        filename = f"{entry.document}-{message.attachment}.{extension}"
        try:
            response = await self._client.post(
                f"/{self.config.phone_number_id}/media",
                data={"messaging_product": "whatsapp", "type": mime},
                files={"file": (filename, data, mime)},
                timeout=UPLOAD_TIMEOUT_SECONDS,
            )
        except httpx.TimeoutException:
            return SendOutcome(OutcomeKind.RETRY, error="media upload timeout")
        except httpx.TransportError as exc:
            return SendOutcome(
                OutcomeKind.RETRY, error=f"media upload network: {type(exc).__name__}"
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and isinstance(body, dict) and isinstance(body.get("id"), str):
            return media_payload(to, form, body["id"], message.text, entry.key, filename=filename)
        refused = classify(response.status_code, body)
        log.info("whatsapp_media_upload", outcome=refused.kind.value, error=refused.error)
        if refused.kind is OutcomeKind.FAILED:
            return None  # this file cannot go as a file: the text and its link still can
        if refused.kind is OutcomeKind.SENT:  # 2xx without an id
            return SendOutcome(OutcomeKind.RETRY, error="media upload: no id")
        return refused

    async def aclose(self) -> None:
        await self._client.aclose()
