"""WhatsApp Cloud API webhooks as Meta posts them, for the tests and the bench: the `messages`
envelope around one message, and its `X-Hub-Signature-256`."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

PHONE_NUMBER_ID = "1234567890"


def signature(body: bytes, app_secret: str) -> str:
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def inbound_message(
    phone: str,
    message_id: str,
    content: dict[str, Any],
    *,
    timestamp: str = "1764064800",
    profile_name: str | None = None,
) -> bytes:
    """One message from `phone` (`content`: its `type` and that type's object), compact JSON in
    UTF-8, not ASCII-escaped, as Meta sends it."""
    sender = phone.lstrip("+")
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"phone_number_id": PHONE_NUMBER_ID},
    }
    if profile_name is not None:
        value["contacts"] = [{"wa_id": sender, "profile": {"name": profile_name}}]
    value["messages"] = [{"from": sender, "id": message_id, "timestamp": timestamp, **content}]
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "WABA_ID", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
