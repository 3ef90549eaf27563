"""Drive `clients/driver.mjs` (real yjs + y-websocket under Node) from asyncio tests.

One `NodeClients` is one Node process hosting any number of peers (one WebsocketProvider
each). Put peers that must die together (SIGKILL) in their own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import signal
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DRIVER = HERE / "clients" / "driver.mjs"
NODE_MODULES = HERE / "node_modules"
# Replies carry whole documents for the small ones; the 1 MB test reads a digest instead.
_LINE_LIMIT = 64 * 1024 * 1024


class NodeClientError(RuntimeError):
    pass


class NodeClients:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.events: list[dict[str, Any]] = []
        self._replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._next_req = itertools.count(1)
        self._stderr: list[str] = []
        self._reader = asyncio.create_task(self._read_stdout())
        self._err_reader = asyncio.create_task(self._read_stderr())

    @classmethod
    async def start(cls, prefix: Sequence[str] = ()) -> NodeClients:
        """`prefix`: e.g. `ip netns exec NAME`, to run the clients in a network namespace."""
        node = shutil.which("node")
        if node is None or not NODE_MODULES.is_dir():
            raise NodeClientError("Node clients are not installed: run `make node-deps`")
        proc = await asyncio.create_subprocess_exec(
            *prefix,
            node,
            str(DRIVER),
            cwd=HERE,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        return cls(proc)

    async def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            if "reply" in message:
                future = self._replies.pop(message["reply"], None)
                if future is not None and not future.done():
                    future.set_result(message)
            else:
                self.events.append(message)
        for future in self._replies.values():
            if not future.done():
                future.set_exception(NodeClientError(f"node exited:\n{self.stderr}"))

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self._stderr.append(line.decode(errors="replace"))

    @property
    def stderr(self) -> str:
        return "".join(self._stderr)

    async def call(self, cmd: str, timeout: float = 30, **args: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        req = next(self._next_req)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._replies[req] = future
        self.proc.stdin.write(json.dumps({"cmd": cmd, "req": req, **args}).encode() + b"\n")
        await self.proc.stdin.drain()
        reply = await asyncio.wait_for(future, timeout)
        if "error" in reply:
            raise NodeClientError(f"{cmd} failed in node: {reply['error']}")
        return reply

    # -- peers ------------------------------------------------------------------------------

    async def open(
        self,
        *ids: str,
        url: str,
        room: str,
        params: dict[str, str] | None = None,
        awareness: dict[str, Any] | None = None,
    ) -> None:
        """Connect peers to `url` (e.g. ws://127.0.0.1:PORT/sync) and room `room`, as a browser."""
        await self.call(
            "open", ids=list(ids), url=url, room=room, params=params or {}, awareness=awareness
        )

    async def edit(self, peer: str, *ops: dict[str, Any], transact: bool = False) -> None:
        await self.call("edit", id=peer, ops=list(ops), transact=transact)

    async def wait_for(self, *peers: str, timeout: float = 10, **cond: Any) -> None:
        """Wait until every peer satisfies `cond` (see `holds` in driver.mjs)."""
        reply = await self.call(
            "waitFor",
            ids=list(peers),
            cond=cond,
            timeoutMs=int(timeout * 1000),
            timeout=timeout + 5,
        )
        if not reply["ok"]:
            states = await self.states(*reply["failed"])
            raise AssertionError(f"{reply['failed']} never reached {cond}: {states}")

    async def states(self, *peers: str) -> dict[str, dict[str, Any]]:
        reply = await self.call("state", ids=list(peers))
        states: dict[str, dict[str, Any]] = reply["states"]
        return states

    async def state(self, peer: str) -> dict[str, Any]:
        return (await self.states(peer))[peer]

    async def set_awareness(self, peer: str, state: dict[str, Any] | None) -> None:
        await self.call("setAwareness", id=peer, state=state)

    async def disconnect(self, peer: str) -> None:
        await self.call("disconnect", id=peer)

    async def connect(self, peer: str) -> None:
        await self.call("connect", id=peer)

    async def destroy(self, *peers: str) -> None:
        await self.call("destroy", ids=list(peers))

    async def raw(
        self, url: str, *frames: dict[str, Any], close: bool = False, timeout: float = 5
    ) -> dict[str, Any]:
        """A bare `ws` socket sends `frames` ({"hex"}, {"text"} or {"repeat", "byte"}), then
        closes if `close`; reports the HTTP status of a refusal or the close code."""
        return await self.call(
            "raw",
            url=url,
            frames=list(frames),
            close=close,
            timeoutMs=int(timeout * 1000),
            timeout=timeout + 5,
        )

    def close_codes(self, peer: str) -> list[int | None]:
        return [e["code"] for e in self.events if e["event"] == "close" and e["id"] == peer]

    # -- process ----------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL: the sockets drop with no closing handshake and no awareness goodbye."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGKILL)

    async def aclose(self) -> None:
        if self.proc.returncode is None and self.proc.stdin is not None:
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.kill()
        await self.proc.wait()
        await asyncio.gather(self._reader, self._err_reader, return_exceptions=True)


@contextlib.asynccontextmanager
async def node_clients(prefix: Sequence[str] = ()) -> AsyncIterator[NodeClients]:
    clients = await NodeClients.start(prefix)
    try:
        yield clients
    finally:
        await clients.aclose()
