"""Run the server under test: in this event loop (fast) or as a real process (signals)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette

from collab_server.serving import server_config

ROOT = Path(__file__).resolve().parents[2]
# `make test` runs the socket tests a second time with the fast receive path off; child
# processes read the same variable through their settings.
FAST_RECEIVE = os.environ.get("COLLAB_FAST_RECEIVE", "true").lower() not in ("0", "false", "no")
PLAIN_WS_PROTOCOL = "websockets-sansio"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class InProcessServer:
    app: Starlette
    port: int

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws(self, name: str) -> str:
        return f"ws://127.0.0.1:{self.port}/sync/{name}"


@contextlib.asynccontextmanager
async def serve_in_process(
    app: Starlette, *, ws_protocol: str | None = None
) -> AsyncIterator[InProcessServer]:
    """Serve `app` in this event loop; our app with the production uvicorn settings.

    `ws_protocol` swaps in another of uvicorn's WebSocket protocols (the ASGI-only paths).
    """
    port = free_port()
    config = (
        server_config(app, "127.0.0.1", port)
        if hasattr(app.state, "collab")
        else uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    )
    if ws_protocol is not None:
        config.ws = ws_protocol
    elif not FAST_RECEIVE:
        config.ws = PLAIN_WS_PROTOCOL
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("server exited during start")
        await asyncio.sleep(0.01)
    try:
        yield InProcessServer(app, port)
    finally:
        server.should_exit = True
        await task


@dataclass
class ServerProcess:
    """`python -m iep_collab` in a child process, for restart, SIGTERM and SIGKILL tests."""

    env: Mapping[str, str]
    cwd: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    host: str = "127.0.0.1"  # where it listens and is reached
    prefix: Sequence[str] = ()  # e.g. `ip netns exec NAME`: run it in a network namespace

    @property
    def http(self) -> str:
        return f"http://{self.host}:{self.port}"

    def ws(self, name: str = "") -> str:
        return f"ws://{self.host}:{self.port}/sync/{name}"

    def start(self, extra_args: Sequence[str] = ()) -> None:
        env = {**os.environ, "COLLAB_LOG_LEVEL": "info", **self.env}
        self.log_path = self.cwd / f"server-{self.port}.log"
        log = self.log_path.open("ab")
        command = [sys.executable, "-m", "iep_collab", "--host", self.host, "--port"]
        self.proc = subprocess.Popen(
            [*self.prefix, *command, str(self.port), *extra_args],
            cwd=self.cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited at start:\n{self.log()}")
            try:
                if httpx.get(f"{self.http}/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
