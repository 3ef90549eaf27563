from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import pytest

from collab_server.app import create_app
from collab_server.settings import Settings
from persistence import store_from_settings
from tests.support.servers import InProcessServer, serve_in_process

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
