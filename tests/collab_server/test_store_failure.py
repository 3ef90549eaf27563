"""A failing store: the edit stays in memory, readiness drops, nothing is lost."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import httpx
from pycrdt import Text

from collab_server.app import create_app
from collab_server.protocol import SyncStep
from collab_server.settings import load_settings
from persistence import store_from_settings
from tests.support.frames import sync_frame
from tests.support.servers import serve_in_process
from tests.support.yclient import connect


async def test_edits_survive_a_store_outage_and_reach_peers_only_once_stored(
    postgres_url: str,
) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        {}, database_url=postgres_url, db_schema=schema, store_retry_max_seconds=0.2
    )
    app = create_app(settings, store=store_from_settings(settings))
    admin = await asyncpg.connect(postgres_url)
    try:
        async with (
            serve_in_process(app) as server,
            httpx.AsyncClient(base_url=server.http) as http,
            connect(server.ws("iep/outage")) as writer,
            connect(server.ws("iep/outage")) as reader,
        ):
            # Make every append fail for real: the table the log lives in is gone.
            await admin.execute(f"ALTER TABLE {schema}.updates RENAME TO updates_away")
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

                await admin.execute(f"ALTER TABLE {schema}.updates_away RENAME TO updates")
                for client in (reader, joiner):
                    await client.wait_for(
                        lambda client=client: (
                            str(client.doc.get("notes", type=Text)) == "written during the outage"
                        ),
                        timeout=10,
                    )
                assert joiner.synced.is_set()
            assert (await http.get("/readyz")).status_code == 200
        stored = await admin.fetchval(f"SELECT count(*) FROM {schema}.updates")
        assert stored == 1
    finally:
        await admin.close()
