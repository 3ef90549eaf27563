"""One writer per document log across server processes on one database.

SQLite: one process per database file. Postgres: a process owns each document it loads; a
second process refuses that document's clients (close 4503, HTTP 503 at the upgrade) instead
of serving a second copy, and takes over once the owner is gone."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import websockets
from pycrdt import Text

from collab_server.app import create_app
from collab_server.protocol import CloseCode
from collab_server.settings import load_settings
from persistence import ownership_for, store_from_settings
from persistence.postgres_ownership import PostgresOwnership
from tests.support.servers import ServerProcess, serve_in_process
from tests.support.yclient import YClient, connect


def notes(client: YClient) -> Text:
    return client.doc.get("notes", type=Text)


async def test_a_second_process_on_one_sqlite_file_refuses_to_start(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/collab.db"}
    first = ServerProcess(env, tmp_path)
    await asyncio.to_thread(first.start)
    second = ServerProcess(env, tmp_path)
    try:
        with pytest.raises(RuntimeError, match="already serves") as refused:
            await asyncio.to_thread(second.start)
        assert second.proc is not None and second.proc.returncode not in (0, None)
        assert f"pid {first.proc.pid if first.proc else ''}" in str(refused.value)
    finally:
        first.stop()
    await asyncio.to_thread(second.start)  # the file is free once its server is gone
    second.stop()


@pytest.fixture
def postgres_env(postgres_url: str) -> dict[str, str]:
    return {"DATABASE_URL": postgres_url, "COLLAB_DB_SCHEMA": f"t_{uuid.uuid4().hex[:10]}"}


async def test_two_processes_on_one_postgres_database_never_serve_one_document_twice(
    postgres_env: dict[str, str], tmp_path: Path
) -> None:
    first = ServerProcess(postgres_env, tmp_path)
    second = ServerProcess(postgres_env, tmp_path)
    await asyncio.to_thread(first.start)
    await asyncio.to_thread(second.start)
    try:
        async with connect(first.ws("iep/shared")) as writer:
            async with connect(first.ws("iep/shared")) as observer:
                for n in range(20):
                    notes(writer).insert(len(notes(writer)), f"{n};")
                await observer.wait_for(lambda: str(notes(observer)).endswith("19;"))
            seen = str(notes(writer))

            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connect(second.ws("iep/shared")):
                    pass
            assert refused.value.response.status_code == 503
            async with connect(second.ws("iep/other")) as elsewhere:  # other documents: fine
                notes(elsewhere).insert(0, "served by the second process")

        first.kill()  # its lock ends with its database session
        taken_over = await connect_within(second.ws("iep/shared"), seconds=15)
        async with taken_over as client:
            assert str(notes(client)) == seen  # every acknowledged edit, once
            notes(client).insert(len(notes(client)), "after the takeover;")
            async with connect(second.ws("iep/shared")) as check:
                await check.wait_for(lambda: "takeover" in str(notes(check)))
        await asyncio.to_thread(first.start)  # a restart is not locked out...
        async with connect(first.ws("iep/new")) as fresh:
            notes(fresh).insert(0, "served by the first process again")
        with pytest.raises(websockets.InvalidStatus):  # ...of what the second one holds
            async with connect(first.ws("iep/other")):
                pass
    finally:
        first.stop()
        second.stop()


async def connect_within(url: str, seconds: float) -> Any:
    """`connect(url)` once the server accepts it (a refused upgrade is retried)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            async with websockets.connect(url):
                pass
        except websockets.InvalidStatus:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
            continue
        return connect(url)


async def test_an_owner_whose_lock_session_dies_drops_its_documents(postgres_url: str) -> None:
    settings = load_settings({}, database_url=postgres_url, db_schema=f"t_{uuid.uuid4().hex[:10]}")
    store = store_from_settings(settings)
    ownership = ownership_for(store)
    assert isinstance(ownership, PostgresOwnership)
    app = create_app(settings, store=store, ownership=ownership)
    admin = await asyncpg.connect(postgres_url)
    try:
        async with serve_in_process(app) as server:
            async with connect(server.ws("iep/locked")) as client:
                notes(client).insert(0, "stored before")
                async with connect(server.ws("iep/locked")) as check:
                    await check.wait_for(lambda: str(notes(check)) == "stored before")
                # The database ends the session that holds the locks (a restart, a failover).
                terminated = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_locks "
                    "WHERE locktype = 'advisory' AND granted AND pid <> pg_backend_pid() "
                    "AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                )
                assert terminated == 1
                assert await client.closed(timeout=5) == CloseCode.SERVED_ELSEWHERE
            async with connect(server.ws("iep/locked")) as again:  # owned afresh
                assert str(notes(again)) == "stored before"
    finally:
        await admin.close()


async def test_two_owners_take_turns_on_a_document(postgres_url: str) -> None:
    settings = load_settings({}, database_url=postgres_url, db_schema=f"t_{uuid.uuid4().hex[:10]}")
    stores = [store_from_settings(settings) for _ in range(2)]
    owners = [PostgresOwnership(s) for s in stores]  # type: ignore[arg-type]
    for store, owner in zip(stores, owners, strict=True):
        await store.open()
        await owner.start(lambda documents: None)
    try:
        await owners[0].acquire("iep/x")
        with pytest.raises(Exception, match="another server process"):
            await owners[1].acquire("iep/x")
        await owners[1].acquire("iep/y")
        await owners[0].release("iep/x")
        await owners[1].acquire("iep/x")
        await owners[1].aclose()  # closing lets go of everything it held
        await owners[0].acquire("iep/y")
    finally:
        for store, owner in zip(stores, owners, strict=True):
            await owner.aclose()
            await store.aclose()
