"""A y-websocket client alone in a room for 45 s, run in a thread beside the other tests.

y-websocket 3 drops a link that has heard nothing for 30 s; alone in a room, the only traffic
it hears is its own awareness renewal (every 15 s) echoed by the server.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from tests.interop.nodeclient import node_clients

ALONE_SECONDS = 45.0


@dataclass(frozen=True)
class LoneClientReport:
    alone_seconds: float
    dropped_early: bool  # the link went down before ALONE_SECONDS
    state: dict[str, Any]


def run(url: str) -> LoneClientReport:
    return asyncio.run(_run(url))


async def _run(url: str) -> LoneClientReport:
    async with node_clients() as clients:
        await clients.open(
            "lone", url=url, room="iep/lone-reader", awareness={"user": {"name": "Ms. Huda"}}
        )
        await clients.wait_for("lone", synced=True)
        began = time.monotonic()
        # Waits for a disconnect that must not come; returns early if it does.
        reply = await clients.call(
            "waitFor",
            ids=["lone"],
            cond={"connected": False},
            timeoutMs=int(ALONE_SECONDS * 1000),
            timeout=ALONE_SECONDS + 10,
        )
        alone = time.monotonic() - began
        state = await clients.state("lone")
    return LoneClientReport(alone, bool(reply["ok"]), state)
