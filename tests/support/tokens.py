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

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from pydantic import SecretStr

from collab_server.settings import Settings

JWKS_PATH = "/auth/v1/.well-known/jwks.json"
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
    """The JWKS endpoint of a Supabase project, on a free loopback port."""

    def __init__(self) -> None:
        self.keys: list[SigningKey] = [SigningKey("key-1")]
        self.fetches = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                fake.fetches += 1
                body = json.dumps({"keys": [k.public_jwk() for k in fake.keys]}).encode()
                self.send_response(200)
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
