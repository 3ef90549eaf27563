"""Loopback stand-ins for the outside world: the WhatsApp Cloud API, Twilio, a browser push
service, an SMTP server, and the people directory the access store will provide. They follow
the documented contracts."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
import json
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field, replace
from email import message_from_bytes, policy
from email.message import Message as EmailMessage
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl

import http_ece
import jwt
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collab_server.errors import Rejected
from collab_server.identity import Caller, Credentials, Identity, Role
from integrations.contracts import Person
from tests.support.servers import free_port, serve_in_process

# HTTP status Meta uses for each scripted error code (Cloud API error reference).
ERROR_STATUS = {
    130429: 429,
    131056: 400,
    4: 400,
    80007: 400,
    1: 500,
    2: 503,
    131000: 500,
    131016: 503,
    131047: 400,
    131026: 400,
    131048: 400,
    368: 403,
    100: 400,
}


@dataclass
class GraphCall:
    phone_number_id: str
    token: str
    body: dict[str, Any]

    @property
    def to(self) -> str:
        return str(self.body["to"])

    @property
    def kind(self) -> str:
        return str(self.body["type"])

    @property
    def text(self) -> str:
        if self.kind == "text":
            return str(self.body["text"]["body"])
        params = self.body["template"]["components"][0]["parameters"]
        return " | ".join(p["text"] for p in params)


@dataclass
class FakeGraphApi:
    """The Cloud API as it answers: `POST /{version}/{phone_number_id}/messages`, and media:
    `GET /{version}/{media-id}` (a download URL, type, size) and that URL (bearer token), and
    uploads, `POST /{version}/{phone_number_id}/media` (multipart: file, type, product)."""

    accepted: list[GraphCall] = field(default_factory=list)
    rejected: list[tuple[GraphCall, int]] = field(default_factory=list)
    script: list[int] = field(default_factory=list)  # error codes for the next requests
    upload_script: list[int] = field(default_factory=list)  # and for the next uploads
    url: str = ""
    media: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # id -> (type, bytes)
    uploaded: dict[str, tuple[str, bytes, str]] = field(default_factory=dict)  # + file name
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fail_next(self, *codes: int) -> None:
        self.script.extend(codes)

    def app(self) -> Starlette:
        async def messages(request: Request) -> Response:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            body = await request.json()
            call = GraphCall(request.path_params["phone_number_id"], token, body)
            if token != "test-token":
                return _error(190, "Invalid OAuth access token", 401)
            if self.script:
                code = self.script.pop(0)
                self.rejected.append((call, code))
                return _error(code, f"scripted error {code}", ERROR_STATUS.get(code, 400))
            if body.get("messaging_product") != "whatsapp" or "to" not in body:
                return _error(100, "Invalid parameter", 400)
            if body["type"] in ("image", "document") and body[body["type"]]["id"] not in (
                self.uploaded
            ):
                return _error(131053, "Media upload error: unknown media id", 400)
            if body["type"] == "template":
                for param in body["template"]["components"][0]["parameters"]:
                    text = param["text"]
                    if "\n" in text or "\t" in text or "     " in text:
                        return _error(132000, "Param text has newlines or tabs", 400)
            self.accepted.append(call)
            wamid = f"wamid.HBgM{next(self._ids):06d}"
            return JSONResponse(
                {
                    "messaging_product": "whatsapp",
                    "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                    "messages": [{"id": wamid}],
                }
            )

        async def upload(request: Request) -> Response:
            if request.headers.get("authorization") != "Bearer test-token":
                return _error(190, "Invalid OAuth access token", 401)
            if self.upload_script:
                code = self.upload_script.pop(0)
                return _error(code, f"scripted error {code}", ERROR_STATUS.get(code, 400))
            form = await request.form()
            file = form.get("file")
            if form.get("messaging_product") != "whatsapp" or not isinstance(file, UploadFile):
                return _error(100, "Invalid parameter", 400)
            mime = str(form.get("type", ""))
            if mime not in ("image/jpeg", "image/png", "application/pdf", "audio/ogg"):
                return _error(131053, "Media upload error: unsupported type", 400)
            media_id = f"{next(self._ids):015d}"
            self.uploaded[media_id] = (mime, await file.read(), file.filename or "")
            return JSONResponse({"id": media_id})

        async def describe_media(request: Request) -> Response:
            # GET /{media-id}: a short-lived download URL, the type and the size.
            if request.headers.get("authorization") != "Bearer test-token":
                return _error(190, "Invalid OAuth access token", 401)
            media_id = request.path_params["media_id"]
            if media_id not in self.media:
                return _error(100, "Unsupported get request", 400)
            mime, data = self.media[media_id]
            origin = self.url.removesuffix("/v21.0")
            return JSONResponse(
                {
                    "messaging_product": "whatsapp",
                    "url": f"{origin}/whatsapp_business/attachments/?mid={media_id}",
                    "mime_type": mime,
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "file_size": len(data),
                    "id": media_id,
                }
            )

        async def download(request: Request) -> Response:
            if request.headers.get("authorization") != "Bearer test-token":
                return Response(status_code=401)
            mime, data = self.media[request.query_params["mid"]]
            return Response(data, media_type=mime)

        return Starlette(
            routes=[
                Route("/v21.0/{phone_number_id}/messages", messages, methods=["POST"]),
                Route("/v21.0/{phone_number_id}/media", upload, methods=["POST"]),
                Route("/v21.0/{media_id}", describe_media, methods=["GET"]),
                Route("/whatsapp_business/attachments/", download, methods=["GET"]),
            ]
        )

    def to(self, phone: str) -> list[GraphCall]:
        return [c for c in self.accepted if c.to == phone.lstrip("+")]


TWILIO_SID = "AC" + "0" * 31 + "1"
TWILIO_TOKEN = "twilio-test-token"
# Twilio's documented errors: (HTTP status, message).
TWILIO_ERRORS = {
    21211: (400, "The 'To' number is not a valid phone number."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    20429: (429, "Too Many Requests"),
    20003: (401, "Authenticate"),
}


@dataclass
class FakeTwilio:
    """`POST /2010-04-01/Accounts/{AccountSid}/Messages.json` as Twilio answers it."""

    accepted: list[dict[str, str]] = field(default_factory=list)
    script: list[int] = field(default_factory=list)  # error codes for the next requests
    url: str = ""
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def fail_next(self, *codes: int) -> None:
        self.script.extend(codes)

    def to(self, phone: str) -> list[dict[str, str]]:
        return [m for m in self.accepted if m["To"] == phone]

    def app(self) -> Starlette:
        def error(code: int) -> JSONResponse:
            status, message = TWILIO_ERRORS[code]
            body = {
                "code": code,
                "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            }
            return JSONResponse(body, status_code=status)

        async def messages(request: Request) -> Response:
            expected = "Basic " + base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
            if request.headers.get("authorization") != expected:
                return error(20003)
            if request.path_params["sid"] != TWILIO_SID:
                return error(20003)
            form = dict(parse_qsl((await request.body()).decode()))
            if self.script:
                return error(self.script.pop(0))
            if not form.get("To") or not form.get("Body") or "From" not in form:
                return JSONResponse({"code": 21604, "message": "missing", "status": 400}, 400)
            self.accepted.append(form)
            sid = f"SM{next(self._ids):032x}"
            return JSONResponse({"sid": sid, "status": "queued", "to": form["To"]}, 201)

        route = "/2010-04-01/Accounts/{sid}/Messages.json"
        return Starlette(routes=[Route(route, messages, methods=["POST"])])


class _Fake(Protocol):
    url: str

    def app(self) -> Starlette: ...


FakeT = TypeVar("FakeT", bound=_Fake)


@contextlib.asynccontextmanager
async def served(fake: FakeT, path: str = "") -> AsyncIterator[FakeT]:
    """`fake` on a loopback port, its `url` set to where it answers."""
    async with serve_in_process(fake.app()) as server:
        fake.url = server.http + path
        yield fake


def twilio_api() -> contextlib.AbstractAsyncContextManager[FakeTwilio]:
    return served(FakeTwilio())


@dataclass
class FakePushService:
    """A browser push service: checks the VAPID signature (RFC 8292), decrypts each message
    with the subscription's own keys (RFC 8291, aes128gcm) and answers 201, or 404 / 410 for
    subscriptions it no longer has."""

    url: str = ""
    received: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    gone: set[str] = field(default_factory=set)  # answered 410
    _keys: dict[str, tuple[Any, bytes]] = field(default_factory=dict)

    def subscribe(self) -> dict[str, Any]:
        """A new browser subscription, as `PushSubscription.toJSON()` gives it."""
        token = uuid.uuid4().hex
        private = ec.generate_private_key(ec.SECP256R1())
        auth = os.urandom(16)
        self._keys[token] = (private, auth)
        public = private.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{self.url}/push/{token}",
            "keys": {"p256dh": _b64url(public), "auth": _b64url(auth)},
        }

    def app(self) -> Starlette:
        async def push(request: Request) -> Response:
            token = request.path_params["token"]
            if token in self.gone:
                return Response(status_code=410)
            if token not in self._keys:
                return Response(status_code=404)
            scheme, _, params = request.headers.get("authorization", "").partition(" ")
            fields = dict(p.strip().split("=", 1) for p in params.split(","))
            vapid_key = ec.EllipticCurvePublicKey.from_encoded_point(
                ec.SECP256R1(), base64.urlsafe_b64decode(fields["k"] + "==")
            )
            claims = jwt.decode(fields["t"], vapid_key, algorithms=["ES256"], audience=self.url)
            if scheme != "vapid" or not claims["sub"].startswith("mailto:"):
                return Response(status_code=403)
            if request.headers.get("content-encoding") != "aes128gcm":
                return Response(status_code=400)
            private, auth = self._keys[token]
            plain = http_ece.decrypt(
                await request.body(), private_key=private, auth_secret=auth, version="aes128gcm"
            )
            self.received.setdefault(token, []).append(json.loads(plain))
            return Response(status_code=201)

        return Starlette(routes=[Route("/push/{token}", push, methods=["POST"])])


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def push_service() -> contextlib.AbstractAsyncContextManager[FakePushService]:
    return served(FakePushService())


def _error(code: int, message: str, status: int) -> JSONResponse:
    return JSONResponse(
        {
            "error": {
                "message": message,
                "type": "OAuthException",
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": message},
                "fbtrace_id": "AbCdEf123",
            }
        },
        status_code=status,
    )


def graph_api() -> contextlib.AbstractAsyncContextManager[FakeGraphApi]:
    return served(FakeGraphApi(), "/v21.0")


@dataclass
class FakeRealtime:
    """Supabase Realtime's REST broadcast endpoint (`POST /realtime/v1/api/broadcast`)."""

    broadcasts: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def app(self) -> Starlette:
        async def broadcast(request: Request) -> Response:
            key = request.headers.get("apikey")
            if key != "service-role-key" or request.headers.get("authorization") != f"Bearer {key}":
                return JSONResponse({"message": "Invalid authentication credentials"}, 401)
            body = await request.json()
            self.broadcasts.extend(body["messages"])
            return Response(status_code=202)

        return Starlette(routes=[Route("/realtime/v1/api/broadcast", broadcast, methods=["POST"])])


@contextlib.asynccontextmanager
async def realtime() -> AsyncIterator[FakeRealtime]:
    fake = FakeRealtime()
    async with serve_in_process(fake.app()) as server:
        fake.url = server.http
        yield fake


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


@contextlib.contextmanager
def smtp_server() -> Any:
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield inbox, f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()


class MemoryDirectory:
    """The RecipientDirectory contract over dicts (the access store implements it for real)."""

    def __init__(self) -> None:
        self.people: dict[str, Person] = {}
        self.digest_members: dict[str, list[str]] = {}
        self.editor_members: dict[str, list[str]] = {}

    def add(
        self, person: Person, document: str, *, digest: bool = False, editor: bool = False
    ) -> None:
        self.people[person.user_id] = person
        if digest:
            self.digest_members.setdefault(document, []).append(person.user_id)
        if editor:
            self.editor_members.setdefault(document, []).append(person.user_id)

    async def digest_recipient_ids(self, document: str) -> Sequence[str]:
        return list(self.digest_members.get(document, []))

    async def editors(self, document: str) -> Sequence[Person]:
        return [self.people[u] for u in self.editor_members.get(document, [])]

    async def documents_of(self, user_id: str) -> Sequence[str]:
        return [d for d, users in self.digest_members.items() if user_id in users]

    async def person(self, user_id: str) -> Person | None:
        return self.people.get(user_id)

    async def person_by_phone(self, phone: str) -> Person | None:
        return next((p for p in self.people.values() if p.phone == phone), None)

    async def set_whatsapp_opt_out(self, user_id: str, opted_out: bool) -> None:
        self.people[user_id] = replace(self.people[user_id], whatsapp_opted_out=opted_out)


class ManualClock:
    def __init__(self, start: float) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class TokenUsers:
    """Tokens `user:<id>` (and `admin:<id>`) for the sync socket and the HTTP API."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    async def authenticate(
        self, credentials: Any, document: str, *, opening: bool = True
    ) -> Identity:
        token = getattr(credentials, "token", credentials)
        if not isinstance(token, str) or ":" not in token:
            raise Rejected(4401, "no token")
        _, user_id = token.split(":", 1)
        return Identity(user_id, self.names.get(user_id, user_id), Role.EDITOR)

    async def caller(self, credentials: Credentials) -> Caller:
        token = credentials.token
        if not token or ":" not in token:
            raise Rejected(4401, "no token")
        kind, user_id = token.split(":", 1)
        return Caller(user_id, is_admin=kind == "admin")


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    """Poll a condition (no fixed sleeps as synchronisation)."""

    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)
