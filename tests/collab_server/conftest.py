from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from collab_server.app import build_app, create_app
from collab_server.settings import Settings
from persistence import store_from_settings
from tests.support.servers import InProcessServer, serve_in_process
from tests.support.tokens import FakeSupabase, auth_settings, fake_supabase

ServerFactory = Callable[..., AbstractAsyncContextManager[InProcessServer]]


@pytest.fixture
def start_server(store_settings: Settings) -> ServerFactory:
    """Start the app in this event loop on a free port, on SQLite and on PostgreSQL."""

    def start(**overrides: Any) -> AbstractAsyncContextManager[InProcessServer]:
        settings = store_settings.model_copy(update=overrides)
        extensions = overrides.pop("extensions", ()) if "extensions" in overrides else ()
        app = create_app(settings, store=store_from_settings(settings), extensions=extensions)
        return serve_in_process(app)

    return start


@pytest.fixture
async def server(start_server: ServerFactory) -> AsyncIterator[InProcessServer]:
    async with start_server() as running:
        yield running


@pytest.fixture
def supabase() -> Iterator[FakeSupabase]:
    """A loopback Supabase: JWKS endpoint and token factory."""
    with fake_supabase() as running:
        yield running


@pytest.fixture
async def http(
    store_settings: Settings, supabase: FakeSupabase
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the full app (`build_app`) signed in against `supabase`."""
    async with (
        serve_in_process(build_app(auth_settings(store_settings, supabase))) as server,
        httpx.AsyncClient(base_url=server.http) as client,
    ):
        yield client
