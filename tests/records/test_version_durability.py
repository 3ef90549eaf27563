"""A version taken before compaction rebuilds exactly after compaction and a restart, even when
compaction deletes the log it stood for (COLLAB_KEEP_HISTORY=false)."""

from __future__ import annotations

import asyncio
import base64
import time

import httpx
from pycrdt import Text

from collab_server.settings import Settings
from iep_collab.composition import build_app
from integrations.iep_content import content_of_state, content_sha256
from persistence import store_from_settings
from tests.records.conftest import create_sections, section
from tests.support.servers import serve_in_process
from tests.support.yclient import connect

NAME = "centre/amal/iep-2026"


async def test_a_version_rebuilds_exactly_after_compaction_and_restart(
    store_settings: Settings,
) -> None:
    settings = store_settings.model_copy(update={"compact_max_updates": 5, "keep_history": False})
    async with serve_in_process(build_app(settings)) as server:
        ws = f"{server.ws(NAME)}?name=Huda"
        async with httpx.AsyncClient(base_url=server.http) as http, connect(ws) as huda:
            create_sections(huda.doc, "Amal", "en")
            notes: Text = section(huda.doc, "notes")
            notes += "Amal reads 20 words per minute."
            named = await http.post(f"/api/documents/{NAME}/versions", json={"name": "Draft"})
            version = named.json()
            before = await http.post(f"/api/documents/{NAME}/versions/{version['id']}/restore")
            state = base64.b64decode(before.json()["state"])
            for i in range(30):
                notes += f" {i}"
            last_text = str(notes)
            store = server.app.state.collab.store
            deadline = time.monotonic() + 10
            while (await store.load(NAME)).snapshot_seq <= version["seq"] + 20:
                assert time.monotonic() < deadline, "no compaction"
                await asyncio.sleep(0.02)
    reopened = store_from_settings(settings)
    await reopened.open()
    try:
        # Compaction folded the version's position into a snapshot and deleted the log.
        assert await reopened.updates_since(NAME, 0, 10) == []
    finally:
        await reopened.aclose()

    async with (
        serve_in_process(build_app(settings)) as server,
        httpx.AsyncClient(base_url=server.http) as http,
    ):
        url = f"/api/documents/{NAME}/versions/{version['id']}"
        after = await http.post(f"{url}/restore")
        assert base64.b64decode(after.json()["state"]) == state
        content = (await http.get(url)).json()["content"]
        assert content["notes"] == "Amal reads 20 words per minute."
        assert content_sha256(content) == version["content_sha256"]
        assert content_sha256(content_of_state(state)) == version["content_sha256"]
        history = (await http.get(f"/api/documents/{NAME}/history")).json()
        assert history["complete"] is False  # the deleted log took the old sessions with it
        async with connect(f"{server.ws(NAME)}?name=Omar") as omar:
            assert str(section(omar.doc, "notes")) == last_text
