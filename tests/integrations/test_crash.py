"""A real server process killed with SIGKILL inside a digest window still sends the digest,
once, after it restarts (windows and the attributed log are in SQLite)."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import httpx

from tests.integrations.conftest import whatsapp_environment
from tests.integrations.edits import add_item, create_sections
from tests.integrations.fakes import graph_api, wait_until
from tests.support.servers import ServerProcess
from tests.support.yclient import connect

DOCUMENT = "centre/student-9/iep"
LAYLA = {
    "name": "Layla",
    "phone": "+966500000010",
    "email": None,
    "language": "en",
    "timezone": "UTC",
    "channels": {"whatsapp": True, "email": False, "in_app": False},
}


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        try:
            return list(conn.execute(sql))
        except sqlite3.OperationalError:  # tables not created yet
            return []


async def test_sigkill_inside_the_window_still_sends_the_digest_once(tmp_path: Path) -> None:
    db = tmp_path / "collab.db"
    async with graph_api() as graph:
        env = whatsapp_environment(db, graph.url, COLLAB_DIGEST_DEBOUNCE_SECONDS="3")
        server = ServerProcess(env, tmp_path)
        await asyncio.to_thread(server.start)
        try:
            async with httpx.AsyncClient(base_url=server.http) as http:
                await http.put("/api/people/p-layla", json=LAYLA)
                await http.put(
                    f"/api/documents/{DOCUMENT}/members/p-layla",
                    json={"role": "viewer", "digest": True},
                )
            async with connect(f"{server.ws(DOCUMENT)}?name=Huda") as huda:
                with huda.doc.transaction():
                    create_sections(huda, "Sara")
                    add_item(huda, "goals", "g1", "Reading fluency")
                await wait_until(lambda: bool(rows(db, "SELECT * FROM notification_windows")))
            server.kill()  # inside the 3 s window: nothing sent yet
            assert graph.accepted == []

            await asyncio.to_thread(server.start)
            await wait_until(lambda: len(graph.accepted) == 1, timeout=20)
            await wait_until(
                lambda: rows(db, "SELECT state FROM notification_outbox") == [("sent",)]
            )
            assert rows(db, "SELECT * FROM notification_windows") == []
        finally:
            server.stop()
    (digest,) = graph.accepted
    assert "Huda" in digest.text and "Reading fluency" in digest.text
