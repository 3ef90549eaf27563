"""SMS through Twilio's Messages API, for people WhatsApp cannot reach.

`POST {api}/2010-04-01/Accounts/{AccountSid}/Messages.json` with form fields `To`, `From` and
`Body`, HTTP Basic auth with the account SID and auth token; 201 with the message's `sid`.
Errors carry Twilio's `code`: an unusable number (21211 invalid, 21614 not a mobile, 21610
unsubscribed with STOP, 21408 region not enabled) fails over to the next channel; 20429 and
5xx are retried; 20003 (authentication) fails, with the configuration to blame.

A text is kept to `MAX_SEGMENTS`: one segment holds 160 GSM-7 characters, or 70 UCS-2 ones
(any Arabic letter makes the whole message UCS-2); longer texts are sent as the subject and
the link, cut with an ellipsis if even that is too long.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import httpx
import structlog

from integrations.contracts import (
    Channel,
    Message,
    OutboxEntry,
    OutcomeKind,
    Person,
    SendOutcome,
)
from integrations.whatsapp import masked

log = structlog.get_logger("collab.integrations.sms")

MAX_SEGMENTS = 2
REQUEST_TIMEOUT_SECONDS = 10.0
RETRY_CODES = frozenset({20429})

# GSM 03.38: the basic set (one septet each) and the extension set (two: escape + char).
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ ÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")


def segments(text: str) -> int:
    """How many SMS segments `text` takes (concatenated parts hold 153 / 67 units)."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in text):
        units = sum(2 if c in _GSM_EXTENDED else 1 for c in text)
        return 1 if units <= 160 else math.ceil(units / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)


def sms_text(message: Message, max_segments: int = MAX_SEGMENTS) -> str:
    if segments(message.text) <= max_segments:
        return message.text
    short = f"{message.subject} {message.link}".strip()
    if segments(short) <= max_segments:
        return short
    cut = short
    while cut and segments(cut + "…") > max_segments:
        cut = cut[:-1]
    return cut.rstrip() + "…"


@dataclass(frozen=True, slots=True)
class SmsConfig:
    api_url: str
    account_sid: str
    auth_token: str
    sender: str  # the `From` number (E.164) or a messaging service SID (MG…)


class SmsSender:
    channel = Channel.SMS

    def __init__(self, config: SmsConfig, transport: httpx.AsyncBaseTransport | None = None):
        self.config = config
        self._client = httpx.AsyncClient(
            base_url=config.api_url.rstrip("/"),
            auth=(config.account_sid, config.auth_token),
            timeout=REQUEST_TIMEOUT_SECONDS,
            transport=transport,
        )

    async def send(self, entry: OutboxEntry, person: Person) -> SendOutcome:
        if not person.phone:
            return SendOutcome(OutcomeKind.FAILED, error="no phone number")
        body = sms_text(entry.message)
        sender = "MessagingServiceSid" if self.config.sender.startswith("MG") else "From"
        form = {"To": person.phone, sender: self.config.sender, "Body": body}
        path = f"/2010-04-01/Accounts/{self.config.account_sid}/Messages.json"
        try:
            response = await self._client.post(path, data=form)
        except httpx.TimeoutException:
            return SendOutcome(OutcomeKind.RETRY, error="timeout")
        except httpx.TransportError as exc:
            return SendOutcome(OutcomeKind.RETRY, error=f"network: {type(exc).__name__}")
        outcome = classify(response)
        log.info(
            "sms_send",
            to=masked(person.phone),
            segments=segments(body),
            outcome=outcome.kind.value,
            error=outcome.error,
        )
        return outcome

    async def aclose(self) -> None:
        await self._client.aclose()


def classify(response: httpx.Response) -> SendOutcome:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code in (200, 201) and isinstance(body, dict) and body.get("sid"):
        return SendOutcome(OutcomeKind.SENT, provider_message_id=str(body["sid"]))
    code = body.get("code") if isinstance(body, dict) else None
    text = str(body.get("message", "")) if isinstance(body, dict) else ""
    reason = f"{code}: {text}" if code is not None else f"http {response.status_code}"
    if code in RETRY_CODES or response.status_code == 429 or response.status_code >= 500:
        retry_after = response.headers.get("retry-after")
        wait = float(retry_after) if retry_after and retry_after.isdigit() else None
        return SendOutcome(OutcomeKind.RETRY, error=reason, retry_after=wait)
    return SendOutcome(OutcomeKind.FAILED, error=reason)
