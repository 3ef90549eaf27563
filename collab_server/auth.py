"""Supabase access-token verification, done locally.

The algorithm is never taken from the token: the key is chosen first (by `kid` from the
project's JWKS, else the legacy HS256 secret) and the key's type decides the one algorithm
PyJWT may accept. That closes `alg: none` and the HS256-with-the-public-key confusion.
The JWKS is fetched with httpx (never blocking the event loop), cached, and refetched when a
token names a `kid` the cache does not know (key rotation), at most once per cooldown.
A verified token is remembered (by its SHA-256) for a minute, until its expiry at most: an
editor's reconnects and API calls then skip the signature check (a quarter of a join).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from collab_server.errors import Rejected
from collab_server.plain_text import has_control_characters
from collab_server.protocol import CloseCode
from collab_server.settings import Settings

log = structlog.get_logger("collab.auth")

SUPABASE_JWKS_PATH = "/auth/v1/.well-known/jwks.json"
SERVICE_ROLE = "service_role"
SERVICE_ROLE_ISSUER = "supabase"  # what Supabase writes in its legacy API keys

# Short: a signing key withdrawn from the JWKS is trusted at most this much longer.
_REMEMBER_SECONDS = 60.0
_REMEMBERED_TOKENS = 10_000

# JWKS `kty` (and curve) -> the only algorithm such a key may verify.
_EC_CURVE_ALGORITHMS = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


class Unauthenticated(Rejected):
    """No usable token: HTTP 401 / close 4401. The reason never contains the token."""

    def __init__(self, reason: str) -> None:
        super().__init__(CloseCode.UNAUTHORIZED, reason)


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """What we use from a verified access token."""

    user_id: str
    email: str | None
    full_name: str | None
    is_admin: bool
    expires_at: float
    app_role: str | None = None  # `app_metadata.role`: set by the project's server side only


@dataclass(frozen=True, slots=True)
class _Key:
    algorithm: str
    key: Any


def _key_from_jwk(jwk: dict[str, Any]) -> _Key | None:
    kty = jwk.get("kty")
    if jwk.get("use", "sig") != "sig":
        return None
    if kty == "EC":
        algorithm = _EC_CURVE_ALGORITHMS.get(str(jwk.get("crv")))
        return _Key(algorithm, ECAlgorithm.from_jwk(jwk)) if algorithm else None
    if kty == "RSA":
        # A JWKS may pin a stronger RSA variant; anything else means RS256.
        algorithm = str(jwk.get("alg", "RS256"))
        if algorithm not in {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}:
            return None
        return _Key(algorithm, RSAAlgorithm.from_jwk(jwk))
    if kty == "OKP" and jwk.get("crv") == "Ed25519":
        return _Key("EdDSA", OKPAlgorithm.from_jwk(jwk))
    return None  # symmetric ("oct") keys are never published; ignore anything unknown


class JWKSCache:
    """The project's signing keys by `kid`, refreshed on unknown kids and after `max_age`."""

    def __init__(
        self,
        url: str,
        *,
        max_age_seconds: float = 600.0,
        refetch_cooldown_seconds: float = 10.0,
    ) -> None:
        self.url = url
        self._max_age = max_age_seconds
        self._cooldown = refetch_cooldown_seconds
        self._keys: dict[str, _Key] = {}
        self._fetched_at: float | None = None
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> _Key | None:
        if kid in self._keys and not self._stale():
            return self._keys[kid]
        async with self._lock:
            # Another request may have refreshed while this one waited for the lock.
            if (kid not in self._keys or self._stale()) and not self._fetched_recently():
                await self._refresh()
        return self._keys.get(kid)

    def _stale(self) -> bool:
        return self._fetched_at is None or time.monotonic() - self._fetched_at > self._max_age

    def _fetched_recently(self) -> bool:
        return self._fetched_at is not None and time.monotonic() - self._fetched_at < self._cooldown

    async def _refresh(self) -> None:
        try:
            # Fetches are rare (rotation, every few minutes): a client per fetch owns no state.
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(self.url)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            # Keep the keys we have: a JWKS outage must not log everybody out.
            log.warning("jwks_fetch_failed", url=self.url, error=type(exc).__name__)
            self._fetched_at = time.monotonic()
            return
        keys: dict[str, _Key] = {}
        for jwk in body.get("keys", []) if isinstance(body, dict) else []:
            if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
                continue
            try:
                parsed = _key_from_jwk(jwk)
            except (jwt.InvalidKeyError, ValueError, TypeError, KeyError):
                parsed = None
            if parsed is not None:
                keys[jwk["kid"]] = parsed
        self._keys = keys
        self._fetched_at = time.monotonic()
        log.info("jwks_fetched", url=self.url, keys=len(keys))


class TokenVerifier:
    """Verifies Supabase access tokens: signature, `exp`, `aud`, and `iss` when known."""

    def __init__(
        self,
        *,
        jwks: JWKSCache | None,
        hs256_secret: str | None,
        audience: str,
        issuer: str | None,
        leeway_seconds: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if jwks is None and not hs256_secret:
            raise ValueError("a JWKS URL or an HS256 secret is required")
        self._jwks = jwks
        self._secret = hs256_secret
        self._audience = audience
        self._issuer = issuer
        self._leeway = leeway_seconds
        self._clock = clock
        # sha256(token) -> (trusted until, what it said); oldest first.
        self._remembered: dict[bytes, tuple[float, VerifiedToken]] = {}

    async def verify(self, token: str | None) -> VerifiedToken:
        if not token:
            raise Unauthenticated("missing access token")
        digest = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        remembered = self._remembered.get(digest)
        if remembered is not None:
            trusted_until, verified = remembered
            if now >= verified.expires_at + self._leeway:
                del self._remembered[digest]
                raise self._fail("token expired")
            if now < trusted_until:
                return verified
            del self._remembered[digest]
        verified = await self._verify_signed(token)
        if len(self._remembered) >= _REMEMBERED_TOKENS:
            del self._remembered[next(iter(self._remembered))]
        self._remembered[digest] = (now + _REMEMBER_SECONDS, verified)
        return verified

    async def _verify_signed(self, token: str) -> VerifiedToken:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise self._fail("malformed token") from None
        key = await self._pick_key(header)
        try:
            claims = self._decode(token, key, strict=True)
        except (
            jwt.InvalidAudienceError,
            jwt.InvalidIssuerError,
            jwt.MissingRequiredClaimError,
        ) as exc:
            claims = self._service_role_claims(token, key, exc)
        except jwt.PyJWTError as exc:
            raise self._refusal(exc) from None
        return _verified(claims)

    def _decode(self, token: str, key: _Key, *, strict: bool) -> dict[str, Any]:
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm],
            audience=self._audience if strict else None,
            issuer=self._issuer if strict else None,
            leeway=self._leeway,
            options={
                "require": ["exp", "sub", "aud"] if strict else ["exp"],
                "verify_aud": strict,
                "verify_iss": strict,
            },
        )
        return claims

    def _service_role_claims(
        self, token: str, key: _Key, strict_error: jwt.PyJWTError
    ) -> dict[str, Any]:
        """Supabase's service-role key is a JWT without `sub` or `aud`, issued by "supabase".

        It is accepted, as admin, when its signature, expiry and issuer hold (Supabase's
        own, or the project's); any other token that failed the audience, issuer or
        required-claim checks stays refused.
        """
        try:
            claims = self._decode(token, key, strict=False)
        except jwt.PyJWTError as exc:
            raise self._refusal(exc) from None
        if claims.get("role") != SERVICE_ROLE:
            raise self._refusal(strict_error) from None
        if claims.get("iss") not in (SERVICE_ROLE_ISSUER, self._issuer):
            raise self._fail("wrong issuer")
        return {"sub": SERVICE_ROLE, **claims}

    def _refusal(self, exc: jwt.PyJWTError) -> Unauthenticated:
        if isinstance(exc, jwt.ExpiredSignatureError):
            return self._fail("token expired")
        if isinstance(exc, jwt.InvalidAudienceError):
            return self._fail("wrong audience")
        if isinstance(exc, jwt.InvalidIssuerError):
            return self._fail("wrong issuer")
        if isinstance(exc, jwt.InvalidAlgorithmError):
            return self._fail("algorithm not allowed for this key")
        if isinstance(exc, jwt.InvalidSignatureError):
            return self._fail("bad signature")
        if isinstance(exc, jwt.MissingRequiredClaimError):
            return self._fail(f"token lacks the {exc.claim} claim")
        return self._fail(f"invalid token ({type(exc).__name__})")

    async def _pick_key(self, header: dict[str, Any]) -> _Key:
        kid = header.get("kid")
        if self._jwks is not None and isinstance(kid, str):
            found = await self._jwks.key(kid)
            if found is not None:
                return found
        if self._secret:
            return _Key("HS256", self._secret.encode("utf-8"))
        raise self._fail("unknown signing key")

    @staticmethod
    def _fail(reason: str) -> Unauthenticated:
        log.info("authentication_failed", reason=reason)
        return Unauthenticated(reason)


def _verified(claims: dict[str, Any]) -> VerifiedToken:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenVerifier._fail("token has no subject")
    app_metadata = claims.get("app_metadata")
    user_metadata = claims.get("user_metadata")
    # app_metadata is written by the server only; user_metadata is the user's own to edit.
    is_admin = claims.get("role") == SERVICE_ROLE or (
        isinstance(app_metadata, dict) and app_metadata.get("role") == "admin"
    )
    full_name = user_metadata.get("full_name") if isinstance(user_metadata, dict) else None
    app_role = app_metadata.get("role") if isinstance(app_metadata, dict) else None
    email = claims.get("email")
    return VerifiedToken(
        user_id=sub,
        email=email if isinstance(email, str) and email else None,
        # Anyone can write their own full_name: one with control characters is not used.
        full_name=full_name
        if isinstance(full_name, str)
        and full_name.strip()
        and not has_control_characters(full_name)
        else None,
        is_admin=is_admin,
        expires_at=float(claims["exp"]),
        app_role=app_role if isinstance(app_role, str) else None,
    )


def supabase_issuer(supabase_url: str) -> str:
    return supabase_url.rstrip("/") + "/auth/v1"


def supabase_jwks_url(supabase_url: str) -> str:
    return supabase_url.rstrip("/") + SUPABASE_JWKS_PATH


def verifier_from_settings(settings: Settings) -> TokenVerifier | None:
    """None when nothing is configured: the server then runs in development mode."""
    if not settings.auth_configured:
        return None
    jwks_url = settings.supabase_jwks_url or (
        supabase_jwks_url(settings.supabase_url) if settings.supabase_url else None
    )
    secret = settings.supabase_jwt_secret
    return TokenVerifier(
        jwks=JWKSCache(jwks_url) if jwks_url else None,
        hs256_secret=secret.get_secret_value() if secret else None,
        audience=settings.jwt_audience,
        issuer=supabase_issuer(settings.supabase_url) if settings.supabase_url else None,
    )
