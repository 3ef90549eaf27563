"""Limits and membership hold across processes: the per-user connection cap counts every
process's sockets, and a revocation through one process closes the sockets on all of them."""

from __future__ import annotations

import contextlib
import time

import httpx
import pytest
import websockets

from collab_server.protocol import CloseCode
from collab_server.settings import Settings
from tests.cluster.conftest import nodes
from tests.support.tokens import FakeSupabase, auth_settings, bearer
from tests.support.yclient import connect

DOC = "iep/child-cluster"


async def test_the_connection_cap_counts_sockets_on_every_process(
    cluster_settings: Settings,
) -> None:
    settings = cluster_settings.model_copy(update={"max_connections_per_user": 2})
    async with nodes(settings, 2) as (a, b):
        async with connect(a.ws(DOC) + "?name=Huda"), connect(b.ws(DOC) + "?name=Huda"):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connect(b.ws(DOC) + "?name=Huda"):
                    pass
            assert refused.value.response.status_code == 429
            async with connect(a.ws(DOC) + "?name=Omar"):  # someone else: fine
                pass
        # Closed sockets count no more, on either process.
        async with connect(b.ws(DOC) + "?name=Huda"), connect(a.ws(DOC) + "?name=Huda"):
            pass


async def test_a_revocation_through_one_process_closes_sockets_on_all_within_a_second(
    cluster_settings: Settings, supabase: FakeSupabase
) -> None:
    settings = auth_settings(cluster_settings, supabase)
    admin = bearer(supabase.admin_token("admin-1"))
    async with (
        nodes(settings, 3) as servers,
        httpx.AsyncClient(base_url=servers[0].http) as http,
    ):
        for user, role in (("owner-1", "owner"), ("therapist-1", "editor")):
            put = await http.put(
                f"/api/documents/{DOC}/members/{user}", json={"role": role}, headers=admin
            )
            assert put.status_code in (200, 201)
        token = supabase.token("therapist-1")
        async with contextlib.AsyncExitStack() as stack:
            sockets = [
                await stack.enter_async_context(connect(s.ws(DOC) + f"?token={token}"))
                for s in servers
            ]
            started = time.monotonic()
            removed = await http.delete(f"/api/documents/{DOC}/members/therapist-1", headers=admin)
            assert removed.status_code == 204
            for client in sockets:
                assert await client.closed(timeout=1.0) == CloseCode.FORBIDDEN
            assert time.monotonic() - started < 1.0
