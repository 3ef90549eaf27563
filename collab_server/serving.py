"""How uvicorn serves the app: its configuration, and a shutdown that drains first."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette

from collab_server.app import CollabServer
from collab_server.request_deadline import DeadlineHttpProtocol
from collab_server.settings import Settings
from collab_server.wire import DirectReceiveProtocol, Keepalive


class DrainingServer(uvicorn.Server):
    """uvicorn closes sockets with 1012; we store everything and close with 1001 first."""

    def __init__(self, config: uvicorn.Config, collab: CollabServer) -> None:
        super().__init__(config)
        self.collab = collab

    async def shutdown(self, sockets: list | None = None) -> None:  # type: ignore[type-arg]
        await self.collab.drain()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # uvicorn re-raises the captured signal after shutting down, so a clean drain would
            # exit by signal (SIGTERM: -15, which platforms report as a crash; Ctrl-C: a
            # KeyboardInterrupt traceback). A drained stop is exit 0.
            self._captured_signals = [
                sig for sig in self._captured_signals if sig not in (signal.SIGTERM, signal.SIGINT)
            ]


def server_config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    """How uvicorn serves the app; tests serve it with the same settings."""
    settings: Settings = app.state.collab.settings
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http=DeadlineHttpProtocol.configured(settings.request_timeout_seconds),
        # uvicorn's websockets-sansio protocol; with `fast_receive`, delivering messages in
        # place (see wire.py).
        ws=(
            DirectReceiveProtocol.factory(Keepalive(min(1.0, settings.ping_interval_seconds / 10)))
            if settings.fast_receive
            else "websockets-sansio"
        ),
        ws_max_size=settings.max_message_bytes,
        # Yjs updates are small binary deltas: compressing each costs more CPU than it saves.
        ws_per_message_deflate=False,
        ws_ping_interval=settings.ping_interval_seconds,
        ws_ping_timeout=settings.ping_timeout_seconds,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )
