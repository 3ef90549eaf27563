"""A loopback stand-in for a Supabase project's auth keys, and a factory of signed tokens.

`FakeSupabase` serves `/auth/v1/.well-known/jwks.json` over real HTTP on 127.0.0.1 (the
documented JWKS contract), so the server under test fetches keys exactly as in production.
Tokens are real JWTs signed with ES256 keys (published in the JWKS) or the HS256 secret.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from pydantic import SecretStr

from collab_server.settings import Settings

JWKS_PATH = "/auth/v1/.well-known/jwks.json"
ADMIN_USERS_PATH = "/auth/v1/admin/users"
INVITE_PATH = "/auth/v1/invite"
SERVICE_ROLE_KEY = "service-role-key-for-tests"
HS256_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"


@dataclass
class SigningKey:
    kid: str
    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def public_jwk(self) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        return {**jwk, "kid": self.kid, "alg": "ES256", "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


class FakeSupabase:
    """A Supabase project on a free loopback port: its JWKS endpoint, and the Auth admin
    endpoints the Share dialog uses (`GET /auth/v1/admin/users`, `POST /auth/v1/invite`) as
    GoTrue documents them: the service-role key as `apikey` and bearer, else 401; a user is
    `{"id", "aud", "email", "user_metadata", "app_metadata", "created_at"}`."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = [SigningKey("key-1")]
        self.fetches = 0
        self.users: list[dict[str, Any]] = []
        self.invitations: list[str] = []
        self.admin_failure: int | None = None  # answer every admin call with this status
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith(ADMIN_USERS_PATH):
                    if self._admin_refused():
                        return
                    query = parse_qs(urlsplit(self.path).query)
                    page = int(query.get("page", ["1"])[0])
                    per_page = int(query.get("per_page", ["50"])[0])
                    chosen = fake.users[(page - 1) * per_page : page * per_page]
                    self._json(200, {"users": chosen, "aud": "authenticated"})
                    return
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                fake.fetches += 1
                self._json(200, {"keys": [k.public_jwk() for k in fake.keys]})

            def do_POST(self) -> None:
                if self.path.split("?")[0] != INVITE_PATH:
                    self.send_error(404)
                    return
                if self._admin_refused():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                email = body["email"]
                if any(u["email"] == email for u in fake.users):
                    self._json(
                        422,
                        {
                            "code": 422,
                            "msg": "A user with this email address has already been registered",
                        },
                    )
                    return
                user = fake.add_user(email)
                fake.invitations.append(email)
                self._json(200, user)

            def _admin_refused(self) -> bool:
                key = SERVICE_ROLE_KEY
                if fake.admin_failure is not None:
                    self._json(fake.admin_failure, {"code": fake.admin_failure, "msg": "down"})
                    return True
                if (
                    self.headers.get("apikey") != key
                    or self.headers.get("Authorization") != f"Bearer {key}"
                ):
                    self._json(401, {"code": 401, "msg": "Invalid API key"})
                    return True
                return False

            def _json(self, status: int, value: Any) -> None:
                body = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/auth/v1"

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    def start(self) -> None:
        self._thread.start()

    def add_user(self, email: str, full_name: str | None = None) -> dict[str, Any]:
        user = {
            "id": str(uuid.uuid4()),
            "aud": "authenticated",
            "role": "authenticated",
            "email": email,
            "user_metadata": {"full_name": full_name} if full_name else {},
            "app_metadata": {"provider": "email"},
            "created_at": "2026-12-01T10:00:00Z",
        }
        self.users.append(user)
        return user

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def rotate(self) -> SigningKey:
        """Publish a new key beside the old one (Supabase's rotation keeps both for a while)."""
        key = SigningKey(f"key-{len(self.keys) + 1}")
        self.keys.append(key)
        return key

    def claims(
        self,
        user_id: str | None = None,
        *,
        expires_in: float = 3600,
        audience: str = "authenticated",
        issuer: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        now = int(time.time())
        return {
            "sub": user_id or str(uuid.uuid4()),
            "aud": audience,
            "iss": issuer or self.issuer,
            "iat": now,
            "exp": now + expires_in,
            "role": "authenticated",
            "email": "someone@example.org",
            **extra,
        }

    def token(
        self, user_id: str | None = None, *, key: SigningKey | None = None, **claims: Any
    ) -> str:
        """An ES256 access token signed with the current (or the given) key."""
        signer = key or self.keys[0]
        return jwt.encode(
            self.claims(user_id, **claims),
            signer.private,
            algorithm="ES256",
            headers={"kid": signer.kid},
        )

    def hs256_token(
        self, user_id: str | None = None, *, secret: str = HS256_SECRET, **claims: Any
    ) -> str:
        """A token signed with the project's legacy JWT secret."""
        return jwt.encode(self.claims(user_id, **claims), secret, algorithm="HS256")

    def admin_token(self, user_id: str | None = None, **claims: Any) -> str:
        return self.token(user_id, app_metadata={"role": "admin"}, **claims)


@contextlib.contextmanager
def fake_supabase() -> Iterator[FakeSupabase]:
    supabase = FakeSupabase()
    supabase.start()
    try:
        yield supabase
    finally:
        supabase.stop()


def unsigned_token(claims: dict[str, Any]) -> str:
    """`alg: none`: PyJWT refuses to produce one, so assemble it by hand."""

    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def hs256_with_public_key(supabase: FakeSupabase, claims: dict[str, Any]) -> str:
    """The algorithm-confusion attack: HMAC keyed with the published public key."""
    key = supabase.keys[0]

    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
    signing_input = (
        f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}".encode()
    )
    signature = hmac.new(key.public_pem(), signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64(signature)}"


def auth_settings(base: Settings, supabase: FakeSupabase, **overrides: Any) -> Settings:
    """`base` configured for the fake project: JWKS keys, the HS256 secret and its issuer."""
    return base.model_copy(
        update={
            "supabase_url": supabase.url,
            "supabase_jwt_secret": SecretStr(HS256_SECRET),
            **overrides,
        }
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
