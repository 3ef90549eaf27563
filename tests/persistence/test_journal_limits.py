"""A journal that cannot grow (a full disk, a write cut short): the server says so, reports
not-ready, acknowledges nothing it could not write, and stores it all once it can again.

The limit is real: RLIMIT_FSIZE on the running server process (the kernel then cuts a write
short at the limit and fails the next one with EFBIG, as on a full disk)."""

from __future__ import annotations

import asyncio
import resource
from pathlib import Path

import httpx
from pycrdt import Text

from tests.support.servers import ServerProcess
from tests.support.yclient import YClient, connect


def notes(client: YClient) -> str:
    return str(client.doc.get("notes", type=Text))


def journal_size(folder: Path) -> int:
    return next(folder.glob("collab.db.journal.*")).stat().st_size


async def until_ready(http: httpx.AsyncClient, status: int) -> None:
    """(While the limit holds the server's log file cannot grow either: ask /readyz.)"""

    async def check() -> None:
        while (await http.get("/readyz")).status_code != status:
            await asyncio.sleep(0.05)

    await asyncio.wait_for(check(), 15)


async def until_problem(http: httpx.AsyncClient, problem: str) -> None:
    async def check() -> None:
        while True:
            answer = await http.get("/readyz")
            if answer.status_code == 503 and any(problem in p for p in answer.json()["problems"]):
                return
            await asyncio.sleep(0.05)

    await asyncio.wait_for(check(), 15)


async def test_a_journal_that_cannot_grow_loses_nothing_acknowledged(tmp_path: Path) -> None:
    database = tmp_path / "collab.db"
    server = ServerProcess(
        {"DATABASE_URL": f"sqlite:///{database}", "COLLAB_STORE_RETRY_MAX_SECONDS": "0.2"},
        tmp_path,
    )
    await asyncio.to_thread(server.start)
    assert server.proc is not None
    try:
        async with (
            httpx.AsyncClient(base_url=server.http) as http,
            connect(server.ws("iep/disk")) as writer,
            connect(server.ws("iep/disk")) as reader,
        ):
            writer.doc.get("notes", type=Text).insert(0, "before;")
            await reader.wait_for(lambda: notes(reader) == "before;")
            # Room for a few bytes more: the next frame is cut short, the one after refused.
            limit = journal_size(tmp_path) + 8
            resource.prlimit(
                server.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY)
            )

            writer.doc.get("notes", type=Text).insert(7, "during;")
            await until_problem(http, "journal write was cut short")
            assert notes(reader) == "before;"  # never acknowledged to anyone else

            unlimited = (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
            resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, unlimited)  # disk freed
            await reader.wait_for(lambda: notes(reader) == "before;during;", timeout=15)
            await until_ready(http, 200)
        server.kill()
        await asyncio.to_thread(server.start)  # what the journal held is recovered
        async with connect(server.ws("iep/disk")) as again:
            assert notes(again) == "before;during;"
    finally:
        server.stop()
