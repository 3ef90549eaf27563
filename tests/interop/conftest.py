"""Real server processes for the interop tests, plus the long lone-client run in the background."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from collab_server.settings import Settings
from tests.interop import lone_client
from tests.support.servers import ServerProcess

LONE_CLIENT_TEST = "test_lone_client_stays_connected"


@dataclass
class Servers:
    """Starts `python -m iep_collab` children on one store; stops them at teardown."""

    cwd: Path
    store_env: dict[str, str]
    running: list[ServerProcess] = field(default_factory=list)

    async def start(self, **env: str) -> ServerProcess:
        server = ServerProcess({**self.store_env, **env}, self.cwd)
        self.running.append(server)
        await asyncio.to_thread(server.start)
        return server

    async def restart(self, server: ServerProcess) -> None:
        """Start again on the same port and store, after a SIGTERM or SIGKILL."""
        await asyncio.to_thread(server.start)

    def stop_all(self) -> None:
        for server in self.running:
            server.stop()


def sync_url(server: ServerProcess) -> str:
    """The server URL a browser gives WebsocketProvider (the room name is appended)."""
    return f"ws://127.0.0.1:{server.port}/sync"


async def metric(server: ServerProcess, name: str) -> float:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{server.http}/metrics")).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} missing from /metrics"
    return float(found.group(1))


def store_env(settings: Settings) -> dict[str, str]:
    return {"DATABASE_URL": settings.database_url, "COLLAB_DB_SCHEMA": settings.db_schema}


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    """Server processes on a fresh SQLite file (protocol tests, where the store is incidental)."""
    started = Servers(tmp_path, {"DATABASE_URL": f"sqlite:///{tmp_path}/collab.db"})
    yield started
    started.stop_all()


# Small enough that the oversize-frame case stays cheap; every protocol test fits under it.
SHARED_MAX_MESSAGE_BYTES = 64 * 1024


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server process for the protocol tests (each uses its own rooms and never stops it):
    starting a server costs seconds on a busy machine. Storage tests start their own."""
    cwd = tmp_path_factory.mktemp("shared-server")
    server = ServerProcess(
        {
            "DATABASE_URL": f"sqlite:///{cwd}/collab.db",
            "COLLAB_MAX_MESSAGE_BYTES": str(SHARED_MAX_MESSAGE_BYTES),
        },
        cwd,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def durable_servers(store_settings: Settings, tmp_path: Path) -> Iterator[Servers]:
    """Server processes on each real store: SQLite, and PostgreSQL in a fresh schema."""
    started = Servers(tmp_path, store_env(store_settings))
    yield started
    started.stop_all()


# -- the 45 s lone-client run overlaps the other tests instead of adding to the total -------


@pytest.fixture(scope="session")
def lone_client_run(
    request: pytest.FixtureRequest,
) -> Iterator[Future[lone_client.LoneClientReport] | None]:
    if not any(item.name == LONE_CLIENT_TEST for item in request.session.items):
        yield None
        return
    server: ServerProcess = request.getfixturevalue("shared_server")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lone-client") as pool:
        yield pool.submit(lone_client.run, sync_url(server))


@pytest.fixture(autouse=True)
def _start_lone_client_early(
    lone_client_run: Future[lone_client.LoneClientReport] | None,
) -> None:
    """Requesting the session fixture from every interop test starts the run with the first."""
