"""A failing store: the edit stays in memory, readiness drops, nothing is lost; a document
whose records the store refuses, or whose log another writer took, fails alone."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from pycrdt import Doc, Text

from collab_server.app import create_app
from collab_server.identity import Credentials, Identity, Role
from collab_server.protocol import CloseCode, SyncStep
from collab_server.settings import load_settings
from persistence import store_from_settings
from tests.support.frames import sync_frame
from tests.support.postgres import LogOutage
from tests.support.servers import serve_in_process
from tests.support.yclient import YClient, connect


async def test_edits_survive_a_store_outage_and_reach_peers_only_once_stored(
    postgres_url: str,
) -> None:
    outage = LogOutage(postgres_url)
    settings = outage.settings()
    app = create_app(settings, store=store_from_settings(settings))
    async with (
        serve_in_process(app) as server,
        httpx.AsyncClient(base_url=server.http) as http,
        connect(server.ws("iep/outage")) as writer,
        connect(server.ws("iep/outage")) as reader,
    ):
        await outage.begin()
        writer.doc.get("notes", type=Text).insert(0, "written during the outage")

        async def not_ready() -> None:
            while (await http.get("/readyz")).status_code != 503:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(not_ready(), 10)
        # Nobody but the author has seen it while it is not stored, not even a joiner:
        # its sync step 2 waits for the store.
        async with connect(server.ws("iep/outage"), sync=False) as joiner:
            await joiner.ws.send(sync_frame(SyncStep.STEP1, joiner.doc.get_state()))
            # Its own later frame comes back (awareness is echoed): step 1 was handled.
            await joiner.set_awareness(4242, 1, "{}")
            await joiner.wait_for(lambda: 4242 in joiner.awareness)
            assert str(reader.doc.get("notes", type=Text)) == ""
            assert not joiner.synced.is_set()

            await outage.end()
            for client in (reader, joiner):
                await client.wait_for(
                    lambda client=client: (
                        str(client.doc.get("notes", type=Text)) == "written during the outage"
                    ),
                    timeout=10,
                )
            assert joiner.synced.is_set()
        assert (await http.get("/readyz")).status_code == 200
    assert await outage.stored() == 1


class RawNames:
    """Development-style identities whose user id is whatever `?name=` says, unchecked: the
    way a record the database cannot take reaches the store."""

    async def authenticate(
        self, credentials: Credentials, document: str, *, opening: bool = True
    ) -> Identity:
        name = credentials.display_name or "anonymous"
        return Identity(name, name, Role.EDITOR)


async def metric(http: httpx.AsyncClient, name: str) -> float:
    text = (await http.get("/metrics")).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_another_writers_log_position_drops_that_document_alone(postgres_url: str) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    settings = load_settings({}, database_url=postgres_url, db_schema=schema)
    app = create_app(settings, store=store_from_settings(settings))  # no ownership: a 2nd writer
    admin = await asyncpg.connect(postgres_url)
    try:
        async with (
            serve_in_process(app) as server,
            httpx.AsyncClient(base_url=server.http) as http,
            connect(server.ws("iep/taken")) as victim,
            connect(server.ws("iep/fine")) as bystander,
            connect(server.ws("iep/fine")) as reader,
        ):
            victim.doc.get("notes", type=Text).insert(0, "one")
            async with connect(server.ws("iep/taken")) as check:
                await check.wait_for(lambda: str(check.doc.get("notes", type=Text)) == "one")
            # Another writer takes the next position of the log.
            intruder: Doc[Any] = Doc()
            intruder.get("notes", type=Text).insert(0, "theirs")
            await admin.execute(
                f"INSERT INTO {schema}.updates VALUES ('iep/taken', 2, $1, 'x', now())",
                intruder.get_update(),
            )
            victim.doc.get("notes", type=Text).insert(3, " two")
            assert await victim.closed(timeout=5) == CloseCode.SERVED_ELSEWHERE
            bystander.doc.get("notes", type=Text).insert(0, "still stored")
            await reader.wait_for(lambda: str(reader.doc.get("notes", type=Text)) == "still stored")
            ready = await http.get("/readyz")
            assert ready.status_code == 503 and "log conflicts" in ready.text
            assert await metric(http, "collab_log_conflicts_total") == 1
        bodies = await admin.fetch(
            f"SELECT seq, body FROM {schema}.updates WHERE document = 'iep/taken' ORDER BY seq"
        )
        assert [row["seq"] for row in bodies] == [1, 2]
        assert bodies[1]["body"] == intruder.get_update()  # the log kept its first entry
    finally:
        await admin.close()


async def test_a_record_the_store_refuses_fails_alone(postgres_url: str) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    settings = load_settings({}, database_url=postgres_url, db_schema=schema)
    app = create_app(settings, store=store_from_settings(settings), authenticator=RawNames())
    admin = await asyncpg.connect(postgres_url)
    try:
        async with (
            serve_in_process(app) as server,
            httpx.AsyncClient(base_url=server.http) as http,
            connect(server.ws("iep/bad") + "?name=nul%00byte") as bad,
            connect(server.ws("iep/good") + "?name=huda") as good,
            connect(server.ws("iep/good") + "?name=omar") as reader,
        ):
            bad.doc.get("notes", type=Text).insert(0, "cannot be stored")
            good.doc.get("notes", type=Text).insert(0, "stored")
            assert await bad.closed(timeout=5) == CloseCode.INTERNAL_ERROR
            await reader.wait_for(lambda: str(reader.doc.get("notes", type=Text)) == "stored")
            for n in range(5):  # every later edit of every other document is stored at once
                good.doc.get("notes", type=Text).insert(0, f"{n}")
            await reader.wait_for(lambda: str(reader.doc.get("notes", type=Text)).startswith("4"))
            assert (await http.get("/readyz")).status_code == 200
        documents = await admin.fetch(f"SELECT DISTINCT document FROM {schema}.updates")
        assert [row["document"] for row in documents] == ["iep/good"]
    finally:
        await admin.close()


async def test_unstored_writes_stop_at_their_bound_and_joiners_are_told(postgres_url: str) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        {},
        database_url=postgres_url,
        db_schema=schema,
        store_retry_max_seconds=0.2,
        max_unstored_bytes=4096,
    )
    app = create_app(settings, store=store_from_settings(settings))
    admin = await asyncpg.connect(postgres_url)
    try:
        async with (
            serve_in_process(app) as server,
            httpx.AsyncClient(base_url=server.http) as http,
            connect(server.ws("iep/outage")) as writer,
        ):
            await admin.execute(f"ALTER TABLE {schema}.updates RENAME TO updates_away")
            notes = writer.doc.get("notes", type=Text)
            notes.insert(0, "000" + "x" * 200)
            while (await http.get("/readyz")).status_code != 503:
                await asyncio.sleep(0.02)
            for n in range(1, 40):  # ~200 bytes each: past the 4 KB bound partway
                notes.insert(len(notes), f"{n:03d}" + "x" * 200)
            assert await writer.closed(timeout=15) == CloseCode.TRY_AGAIN_LATER
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connect(server.ws("iep/outage")):
                    pass
            assert refused.value.response.status_code == 503
            held = app.state.collab.registry.get_live("iep/outage").last_seq
            assert 0 < held < 40

            await admin.execute(f"ALTER TABLE {schema}.updates_away RENAME TO updates")
            async with connect_when_ready(server.ws("iep/outage")) as joiner:
                text = str(joiner.doc.get("notes", type=Text))
                assert text.startswith("000" + "x" * 200) and text.count("x" * 200) == held
            assert (await http.get("/readyz")).status_code == 200
        assert await admin.fetchval(f"SELECT count(*) FROM {schema}.updates") == held
    finally:
        await admin.close()


def connect_when_ready(url: str, seconds: float = 10) -> Any:
    return _connect_when_ready(url, seconds)


@contextlib.asynccontextmanager
async def _connect_when_ready(url: str, seconds: float) -> AsyncIterator[YClient]:
    deadline = time.monotonic() + seconds
    while True:
        try:
            async with connect(url) as client:
                yield client
                return
        except websockets.InvalidStatus:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)
