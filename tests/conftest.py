from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from collab_server.settings import Settings, load_settings
from collab_server.store import DocumentStore
from iep_collab.composition import build_app
from persistence import store_from_settings
from tests.support import postgres
from tests.support.servers import serve_in_process
from tests.support.tokens import FakeSupabase, auth_settings, fake_supabase

T = TypeVar("T")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database created for this test run and dropped after it."""
    try:
        url = run_aside(postgres.create_database())
    except (TimeoutError, OSError) as exc:
        if postgres.REQUIRED:
            pytest.fail(f"PostgreSQL is required but unreachable at {postgres.ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {postgres.ADMIN_URL}")
    yield url
    run_aside(postgres.drop_database(url))


def run_aside(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from sync code, even where a loop runs in this thread
    (Playwright's sync API keeps one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for each real backend: SQLite file, or a fresh schema in the run's database."""
    if request.param == "sqlite":
        return load_settings({}, database_url=f"sqlite:///{tmp_path}/collab.db")
    url = request.getfixturevalue("postgres_url")
    return load_settings({}, database_url=url, db_schema=f"t_{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def store(store_settings: Settings) -> AsyncIterator[DocumentStore]:
    opened = store_from_settings(store_settings)
    await opened.open()
    yield opened
    await opened.aclose()


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
