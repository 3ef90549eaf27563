"""Real y-websocket clients passing `params: { token }` to a server that requires sign-in."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.interop.conftest import Servers, sync_url
from tests.interop.nodeclient import node_clients
from tests.support.tokens import HS256_SECRET, FakeSupabase, bearer, fake_supabase

pytestmark = pytest.mark.interop

DOC = "iep/interop-auth"


@pytest.fixture
def supabase() -> Iterator[FakeSupabase]:
    with fake_supabase() as running:
        yield running


async def test_editor_and_viewer_tokens_through_y_websocket_params(
    servers: Servers, supabase: FakeSupabase
) -> None:
    server = await servers.start(SUPABASE_URL=supabase.url, SUPABASE_JWT_SECRET=HS256_SECRET)
    admin = bearer(supabase.admin_token("admin-1"))
    async with httpx.AsyncClient(base_url=server.http) as http:
        for user, role in (("therapist", "editor"), ("parent", "viewer")):
            response = await http.put(
                f"/api/documents/{DOC}/members/{user}", json={"role": role}, headers=admin
            )
            assert response.status_code == 201

    async with node_clients() as clients:
        refused = await clients.raw(f"{sync_url(server)}/{DOC}")
        assert refused["httpStatus"] == 401
        stranger = await clients.raw(f"{sync_url(server)}/{DOC}?token={supabase.token('x')}")
        assert stranger["httpStatus"] == 403

        # An ES256 token for the therapist, a legacy HS256 one (short-lived) for the parent.
        await clients.open(
            "therapist",
            url=sync_url(server),
            room=DOC,
            params={"token": supabase.token("therapist")},
        )
        await clients.open(
            "parent",
            url=sync_url(server),
            room=DOC,
            params={"token": supabase.hs256_token("parent", expires_in=4)},
        )
        await clients.wait_for("therapist", "parent", synced=True)
        opened_at = time.monotonic()
        await clients.edit("therapist", {"op": "insert", "index": 0, "text": "Goal: reading"})
        await clients.wait_for("parent", notes="Goal: reading")

        # The viewer's edit stays local: the server refuses it and nobody else sees it.
        await clients.edit("parent", {"op": "insert", "index": 0, "text": "X"})
        await clients.edit("therapist", {"op": "insert", "index": 13, "text": "."})
        await clients.wait_for("parent", notes="XGoal: reading.")
        assert (await clients.state("therapist"))["notes"] == "Goal: reading."

        # When the parent's token expires the socket is closed with 4401.
        await clients.wait_for("parent", connected=False, timeout=10)
        assert 4401 in clients.close_codes("parent")
        assert time.monotonic() - opened_at < 10
        assert 4401 not in clients.close_codes("therapist")
