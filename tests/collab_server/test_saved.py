"""'All changes saved' means stored: the server answers a client's saved-check only once the
store holds everything that client sent before asking."""

from __future__ import annotations

from typing import Any

from pycrdt import Doc, Text

from collab_server.app import create_app
from collab_server.protocol import CloseCode, MessageType, SyncStep
from collab_server.settings import load_settings
from persistence import store_from_settings
from tests.support.frames import sync_frame
from tests.support.postgres import LogOutage
from tests.support.servers import serve_in_process
from tests.support.yclient import connect


async def test_saved_is_answered_only_once_the_store_has_the_edit(postgres_url: str) -> None:
    outage = LogOutage(postgres_url)
    settings = outage.settings()
    app = create_app(settings, store=store_from_settings(settings))
    async with serve_in_process(app) as server, connect(server.ws("iep/saved")) as editor:
        await editor.ask_saved(1)
        await editor.wait_for(lambda: editor.saved == [1])  # nothing sent: stored already

        await outage.begin()
        typed: Doc[Any] = Doc()
        typed.get("notes", type=Text).insert(0, "typed while the store is down")
        await editor.send_raw(sync_frame(SyncStep.UPDATE, typed.get_update()))
        for check in (2, 3, 4):  # the editor asks again and again: one answer, the newest
            await editor.ask_saved(check)
        await editor.round_trip()
        assert editor.saved == [1]

        await outage.end()
        await editor.wait_for(lambda: len(editor.saved) == 2, timeout=10)
        assert (editor.saved, await outage.stored()) == ([1, 4], 1)


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
