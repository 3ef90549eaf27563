"""Web Push: a person's browsers get their in-app notifications while no tab is open.

A browser that allows it subscribes (its push service's endpoint and its P-256 and auth keys)
and the page sends us the subscription. Each notification is encrypted for each of the
person's subscriptions (RFC 8291, aes128gcm: `http_ece`), signed with our VAPID key (RFC
8292: `py_vapid`), and POSTed to the endpoint with httpx. A push service answering 404 or 410
has dropped the subscription: we drop it too. Pushes are best effort: the stored in-app
notification is the record.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.api.http import ApiError, json_body, json_errors
from collab_server.credentials import request_credentials
from collab_server.identity import CallerAuthenticator
from integrations.contracts import NotificationStore, PushSubscription

if TYPE_CHECKING:  # cryptography (~9 MB) loads only when Web Push is configured
    from py_vapid import Vapid

log = structlog.get_logger("collab.integrations.push")

TTL_SECONDS = 24 * 3600
REQUEST_TIMEOUT_SECONDS = 10.0
MAX_SUBSCRIPTIONS = 10  # browsers per person; the oldest goes first


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True, slots=True)
class PushConfig:
    private_key: str  # the VAPID key: 32 bytes base64url (raw) or DER base64url
    subject: str  # mailto: or https: contact for the push services

    def vapid(self) -> Vapid:
        from py_vapid import Vapid

        vapid: Vapid = Vapid.from_string(self.private_key)
        return vapid

    def public_key(self) -> str:
        """The application server key browsers subscribe with (uncompressed point)."""
        from cryptography.hazmat.primitives import serialization

        key = self.vapid().public_key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(key)


def encrypt(payload: bytes, subscription: PushSubscription) -> bytes:
    """The aes128gcm body for one subscription, with a fresh sender key and salt."""
    import http_ece
    from cryptography.hazmat.primitives.asymmetric import ec

    sender = ec.generate_private_key(ec.SECP256R1())
    body: bytes = http_ece.encrypt(
        payload,
        salt=os.urandom(16),
        private_key=sender,
        dh=b64url_decode(subscription.p256dh),
        auth_secret=b64url_decode(subscription.auth),
        version="aes128gcm",
    )
    return body


class WebPusher:
    def __init__(
        self,
        config: PushConfig,
        store: NotificationStore,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self._vapid = config.vapid()
        self._client = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS, transport=transport)

    async def push(self, user_id: str, message: dict[str, Any]) -> int:
        """Send `message` to each of the person's browsers; returns how many took it."""
        payload = json.dumps(message, ensure_ascii=False).encode()
        delivered = 0
        for subscription in await self.store.push_subscriptions(user_id):
            if await self._send(subscription, payload):
                delivered += 1
        return delivered

    async def _send(self, subscription: PushSubscription, payload: bytes) -> bool:
        parts = urlsplit(subscription.endpoint)
        claims = {
            "aud": f"{parts.scheme}://{parts.netloc}",
            "sub": self.config.subject,
            "exp": int(time.time()) + 12 * 3600,
        }
        headers = {
            **self._vapid.sign(claims),
            "TTL": str(TTL_SECONDS),
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Urgency": "normal",
        }
        try:
            response = await self._client.post(
                subscription.endpoint, content=encrypt(payload, subscription), headers=headers
            )
        except httpx.HTTPError as exc:
            log.warning("push_failed", error=type(exc).__name__, service=parts.netloc)
            return False
        if response.status_code in (404, 410):
            await self.store.remove_push_subscription(subscription.endpoint)
            log.info("push_subscription_gone", service=parts.netloc)
            return False
        if response.status_code >= 300:
            log.warning("push_refused", status=response.status_code, service=parts.netloc)
            return False
        return True

    async def aclose(self) -> None:
        await self._client.aclose()


DEFAULT_PUSH_SERVICES = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "*.notify.windows.com",
    "web.push.apple.com",
)


def allowed_endpoint(endpoint: str, services: tuple[str, ...]) -> bool:
    """Only the browsers' push services receive our POSTs (never an address a client
    chose): `host` and `*.domain` entries over https, or a full `scheme://host:port` origin."""
    parts = urlsplit(endpoint)
    origin = f"{parts.scheme}://{parts.netloc}"
    for service in services:
        if "://" in service:
            if origin == service.rstrip("/"):
                return True
        elif parts.scheme == "https" and not parts.port:
            host = parts.hostname or ""
            if service.startswith("*.") and host.endswith(service[1:]):
                return True
            if host == service:
                return True
    return False


def push_routes(
    authenticator: CallerAuthenticator,
    store: NotificationStore,
    config: PushConfig | None,
    services: tuple[str, ...] = DEFAULT_PUSH_SERVICES,
) -> list[Route]:
    @json_errors
    async def key(request: Request) -> Response:
        await authenticator.caller(request_credentials(request))
        if config is None:
            raise ApiError(404, "Web Push is not configured on this server")
        return JSONResponse({"public_key": config.public_key()})

    @json_errors
    async def subscribe(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        if config is None:
            raise ApiError(404, "Web Push is not configured on this server")
        body = await json_body(request)
        problems: dict[str, str] = {}
        endpoint = body.get("endpoint") if isinstance(body, dict) else None
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(endpoint, str) or len(endpoint) > 2048:
            problems["endpoint"] = "required: the subscription's endpoint URL"
        elif not allowed_endpoint(endpoint, services):
            problems["endpoint"] = "not a browser push service this server sends to"
        p256dh = keys.get("p256dh") if isinstance(keys, dict) else None
        auth = keys.get("auth") if isinstance(keys, dict) else None
        if not _key_of_length(p256dh, 65):
            problems["keys.p256dh"] = "required: the browser's P-256 key (65 bytes, base64url)"
        if not _key_of_length(auth, 16):
            problems["keys.auth"] = "required: the browser's auth secret (16 bytes, base64url)"
        if problems:
            raise ApiError(422, "invalid subscription", problems)
        assert isinstance(endpoint, str) and isinstance(p256dh, str) and isinstance(auth, str)
        subscription = PushSubscription(caller.user_id, endpoint, p256dh, auth)
        await store.add_push_subscription(subscription, MAX_SUBSCRIPTIONS)
        return JSONResponse({"endpoint": endpoint}, status_code=201)

    @json_errors
    async def unsubscribe(request: Request) -> Response:
        caller = await authenticator.caller(request_credentials(request))
        body = await json_body(request)
        endpoint = body.get("endpoint") if isinstance(body, dict) else None
        mine = await store.push_subscriptions(caller.user_id)
        if not any(s.endpoint == endpoint for s in mine):
            raise ApiError(404, "no such subscription of yours")
        assert isinstance(endpoint, str)
        await store.remove_push_subscription(endpoint)
        return Response(status_code=204)

    return [
        Route("/api/push/key", key, methods=["GET"]),
        Route("/api/push/subscriptions", subscribe, methods=["POST"]),
        Route("/api/push/subscriptions", unsubscribe, methods=["DELETE"]),
    ]


def _key_of_length(value: object, length: int) -> bool:
    if not isinstance(value, str) or len(value) > 200:
        return False
    try:
        return len(b64url_decode(value)) == length
    except ValueError:
        return False
