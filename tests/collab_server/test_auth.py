"""Token verification with real signed tokens: ES256 through a loopback JWKS, and HS256."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import jwt
import pytest
import structlog
import websockets

from collab_server.auth import JWKSCache, TokenVerifier, Unauthenticated
from collab_server.protocol import CloseCode
from collab_server.settings import Settings
from iep_collab.cli import development_mode_refusal
from iep_collab.composition import build_app
from tests.support.servers import ROOT, serve_in_process
from tests.support.tokens import (
    HS256_SECRET,
    FakeSupabase,
    SigningKey,
    auth_settings,
    bearer,
    hs256_with_public_key,
    unsigned_token,
)
from tests.support.yclient import connect


def verifier(supabase: FakeSupabase, *, secret: str | None = HS256_SECRET) -> TokenVerifier:
    return TokenVerifier(
        jwks=JWKSCache(supabase.jwks_url, refetch_cooldown_seconds=0),
        hs256_secret=secret,
        audience="authenticated",
        issuer=supabase.issuer,
    )


async def rejected(verifier: TokenVerifier, token: str | None) -> str:
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(token)
    assert refused.value.code == CloseCode.UNAUTHORIZED
    return refused.value.reason


async def test_a_self_chosen_name_with_control_characters_is_not_used(
    supabase: FakeSupabase,
) -> None:
    check = verifier(supabase)
    for name in ("Huda\u0000", "\u202eadmin", "Huda\nOwner"):
        token = await check.verify(supabase.token("user-1", user_metadata={"full_name": name}))
        assert (token.user_id, token.full_name) == ("user-1", None)


async def test_a_valid_es256_token_names_the_user(supabase: FakeSupabase) -> None:
    check = verifier(supabase)
    token = await check.verify(
        supabase.token("user-1", email="huda@example.org", user_metadata={"full_name": "Huda"})
    )
    assert (token.user_id, token.email, token.full_name, token.is_admin) == (
        "user-1",
        "huda@example.org",
        "Huda",
        False,
    )
    assert token.expires_at > time.time()
    # Keys are cached: verifying again does not fetch the JWKS again.
    await check.verify(supabase.token("user-2"))
    assert supabase.fetches == 1


async def test_a_legacy_hs256_token_is_accepted_with_the_project_secret(
    supabase: FakeSupabase,
) -> None:
    token = await verifier(supabase).verify(supabase.hs256_token("user-1"))
    assert token.user_id == "user-1"
    assert await rejected(verifier(supabase), supabase.hs256_token(secret="x" * 40)) == (
        "bad signature"
    )


async def test_expired_wrong_audience_and_wrong_issuer_are_refused(
    supabase: FakeSupabase,
) -> None:
    check = verifier(supabase)
    assert await rejected(check, supabase.token(expires_in=-60)) == "token expired"
    assert await rejected(check, supabase.token(audience="anon")) == "wrong audience"
    assert await rejected(check, supabase.token(issuer="https://evil.example/auth/v1")) == (
        "wrong issuer"
    )
    assert await rejected(check, None) == "missing access token"
    assert await rejected(check, "not-a-jwt") == "malformed token"


async def test_a_signature_from_another_key_with_a_known_kid_is_refused(
    supabase: FakeSupabase,
) -> None:
    impostor = SigningKey("key-1")  # same kid, different private key
    assert await rejected(verifier(supabase), supabase.token(key=impostor)) == "bad signature"


async def test_alg_none_is_refused(supabase: FakeSupabase) -> None:
    token = unsigned_token(supabase.claims("user-1"))
    assert await rejected(verifier(supabase, secret=None), token) == "unknown signing key"
    # With a legacy secret the HS256 key is chosen, and "none" is not its algorithm.
    reason = await rejected(verifier(supabase), token)
    assert reason == "algorithm not allowed for this key"


async def test_hs256_signed_with_the_public_key_is_refused(supabase: FakeSupabase) -> None:
    token = hs256_with_public_key(supabase, supabase.claims("user-1"))
    # The kid names an EC key, so only ES256 may verify it, whatever the header claims.
    for secret in (HS256_SECRET, None):
        assert await rejected(verifier(supabase, secret=secret), token) == (
            "algorithm not allowed for this key"
        )


async def test_an_unknown_kid_refetches_the_jwks_and_rotation_is_picked_up(
    supabase: FakeSupabase,
) -> None:
    check = verifier(supabase, secret=None)
    await check.verify(supabase.token())
    assert supabase.fetches == 1
    unpublished = SigningKey("key-2")
    assert await rejected(check, supabase.token(key=unpublished)) == "unknown signing key"
    assert supabase.fetches == 2  # it looked again before refusing
    supabase.keys.append(unpublished)  # the project rotates: the new key is published
    assert (await check.verify(supabase.token("rotated", key=unpublished))).user_id == "rotated"
    assert supabase.fetches == 3


async def test_unknown_kids_do_not_hammer_the_jwks_endpoint(supabase: FakeSupabase) -> None:
    check = TokenVerifier(
        jwks=JWKSCache(supabase.jwks_url, refetch_cooldown_seconds=60),
        hs256_secret=None,
        audience="authenticated",
        issuer=supabase.issuer,
    )
    await check.verify(supabase.token())
    stranger = SigningKey("nobody")
    for _ in range(5):
        await rejected(check, supabase.token(key=stranger))
    assert supabase.fetches == 1


async def test_a_verified_token_is_trusted_for_a_minute_and_never_past_its_expiry(
    supabase: FakeSupabase,
) -> None:
    now = time.time()
    clock = [now]
    check = TokenVerifier(
        # Keys looked up afresh every time: only the remembered token skips them.
        jwks=JWKSCache(supabase.jwks_url, max_age_seconds=0, refetch_cooldown_seconds=0),
        hs256_secret=None,
        audience="authenticated",
        issuer=supabase.issuer,
        clock=lambda: clock[0],
    )
    token = supabase.token("user-1", expires_in=600)
    assert (await check.verify(token)).user_id == "user-1"
    supabase.keys.clear()  # the project withdraws its signing key
    clock[0] = now + 30
    assert (await check.verify(token)).user_id == "user-1"  # remembered
    clock[0] = now + 61
    assert await rejected(check, token) == "unknown signing key"  # checked again

    short = SigningKey("key-short")
    supabase.keys.append(short)
    clock[0] = now
    token = supabase.token("user-2", key=short, expires_in=20)
    assert (await check.verify(token)).user_id == "user-2"
    clock[0] = now + 30  # past expiry and leeway, within the minute
    assert await rejected(check, token) == "token expired"


async def test_admin_comes_from_app_metadata_or_service_role_never_user_metadata(
    supabase: FakeSupabase,
) -> None:
    check = verifier(supabase)
    assert (await check.verify(supabase.admin_token())).is_admin
    assert (await check.verify(supabase.token(role="service_role"))).is_admin
    self_declared = supabase.token(user_metadata={"role": "admin"})
    assert not (await check.verify(self_declared)).is_admin


async def test_the_legacy_service_role_key_is_an_admin_but_other_claimless_tokens_are_not(
    supabase: FakeSupabase,
) -> None:
    now = int(time.time())
    service_key = {"iss": "supabase", "role": "service_role", "iat": now, "exp": now + 3600}
    check = verifier(supabase)
    token = await check.verify(jwt.encode(service_key, HS256_SECRET, algorithm="HS256"))
    assert (token.user_id, token.is_admin) == ("service_role", True)
    anon_key = {**service_key, "role": "anon"}
    assert await rejected(check, jwt.encode(anon_key, HS256_SECRET, algorithm="HS256")) == (
        "token lacks the sub claim"
    )
    expired = {**service_key, "exp": now - 60}
    assert await rejected(check, jwt.encode(expired, HS256_SECRET, algorithm="HS256")) == (
        "token expired"
    )
    forged = jwt.encode(service_key, "a-guessed-secret-of-enough-length-000", algorithm="HS256")
    assert await rejected(check, forged) == "bad signature"
    # Signed with the project's key, but minted elsewhere (or without an issuer at all).
    for issuer in ("https://other-project.example/auth/v1", None):
        foreign = {k: v for k, v in {**service_key, "iss": issuer}.items() if v is not None}
        assert await rejected(check, jwt.encode(foreign, HS256_SECRET, algorithm="HS256")) == (
            "wrong issuer"
        )


async def test_refusals_at_the_upgrade_and_on_the_api_never_log_the_token(
    supabase: FakeSupabase, store_settings: Settings
) -> None:
    settings = auth_settings(store_settings, supabase)
    expired = supabase.token("user-1", expires_in=-60)
    async with serve_in_process(build_app(settings)) as server:
        with structlog.testing.capture_logs() as logs:
            for url, status in (
                (server.ws("iep/1"), 401),
                (server.ws("iep/1") + f"?token={expired}", 401),
                (server.ws("iep/1") + f"?token={supabase.token('stranger')}", 403),
            ):
                with pytest.raises(websockets.InvalidStatus) as refused:
                    async with connect(url):
                        pass
                assert refused.value.response.status_code == status
            async with httpx.AsyncClient(base_url=server.http) as http:
                assert (await http.get("/api/documents")).status_code == 401
                response = await http.get("/api/documents", headers=bearer(expired))
                assert response.status_code == 401
                assert response.json() == {"error": "token expired"}
    assert any(entry.get("reason") == "token expired" for entry in logs)
    assert all(expired not in repr(entry) for entry in logs)


async def test_a_live_socket_is_closed_with_4401_when_its_token_expires(
    supabase: FakeSupabase, store_settings: Settings
) -> None:
    settings = auth_settings(store_settings, supabase)
    async with serve_in_process(build_app(settings)) as server:
        admin = supabase.admin_token("admin-1", expires_in=2)
        expires_at = jwt.decode(admin, options={"verify_signature": False})["exp"]
        async with connect(server.ws("iep/expiring") + f"?token={admin}") as client:
            assert await client.closed(timeout=10) == CloseCode.UNAUTHORIZED
            # Open until the token's expiry, closed promptly after it.
            assert expires_at - 0.05 <= time.time() < expires_at + 3


def test_development_mode_binds_only_loopback_unless_allowed() -> None:
    assert development_mode_refusal("127.0.0.1", allow_anonymous=False) is None
    assert development_mode_refusal("::1", allow_anonymous=False) is None
    assert development_mode_refusal("localhost", allow_anonymous=False) is None
    assert development_mode_refusal("0.0.0.0", allow_anonymous=True) is None
    refusal = development_mode_refusal("0.0.0.0", allow_anonymous=False)
    assert refusal is not None and "COLLAB_ALLOW_ANONYMOUS=1" in refusal


def test_the_server_refuses_anonymous_editing_on_a_public_address() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "COLLAB_ALLOW"))}
    env["DATABASE_URL"] = "memory://"
    done = subprocess.run(
        [sys.executable, "-m", "iep_collab", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode != 0
    assert "COLLAB_ALLOW_ANONYMOUS=1" in done.stderr
