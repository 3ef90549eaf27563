"""'All changes saved' means stored: the server answers a client's saved-check only once the
store holds everything that client sent before asking."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from pycrdt import Doc, Text

from collab_server.app import create_app
from collab_server.protocol import CloseCode, MessageType, SyncStep
from collab_server.settings import load_settings
from persistence import store_from_settings
from tests.support.frames import sync_frame
from tests.support.servers import serve_in_process
from tests.support.yclient import connect


async def test_saved_is_answered_only_once_the_store_has_the_edit(postgres_url: str) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    settings = load_settings(
        {}, database_url=postgres_url, db_schema=schema, store_retry_max_seconds=0.2
    )
    app = create_app(settings, store=store_from_settings(settings))
    admin = await asyncpg.connect(postgres_url)
    try:
        async with serve_in_process(app) as server, connect(server.ws("iep/saved")) as editor:
            await editor.ask_saved(1)
            await editor.wait_for(lambda: editor.saved == [1])  # nothing sent: stored already

            await admin.execute(f"ALTER TABLE {schema}.updates RENAME TO updates_away")
            typed: Doc[Any] = Doc()
            typed.get("notes", type=Text).insert(0, "typed while the store is down")
            await editor.send_raw(sync_frame(SyncStep.UPDATE, typed.get_update()))
            for check in (2, 3, 4):  # the editor asks again and again: one answer, the newest
                await editor.ask_saved(check)
            await editor.round_trip()
            assert editor.saved == [1]

            await admin.execute(f"ALTER TABLE {schema}.updates_away RENAME TO updates")
            await editor.wait_for(lambda: len(editor.saved) == 2, timeout=10)
            stored = await admin.fetchval(f"SELECT count(*) FROM {schema}.updates")
            assert (editor.saved, stored) == ([1, 4], 1)
    finally:
        await admin.close()


async def test_a_truncated_saved_check_closes_that_connection_alone(tmp_path: object) -> None:
    settings = load_settings({}, database_url=f"sqlite:///{tmp_path}/collab.db")
    app = create_app(settings, store=store_from_settings(settings))
    async with (
        serve_in_process(app) as server,
        connect(server.ws("iep/saved")) as liar,
        connect(server.ws("iep/saved")) as other,
    ):
        await liar.send_raw(bytes((MessageType.SAVED, 0x80)))
        assert await liar.closed() == CloseCode.INVALID_PAYLOAD
        await other.ask_saved(9)
        await other.wait_for(lambda: other.saved == [9])
