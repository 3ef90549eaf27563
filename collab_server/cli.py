"""`collab-server`: parse flags, load settings, run uvicorn. Nothing else lives here."""

from __future__ import annotations

import argparse
import contextlib
import gc
import ipaddress
import os
import signal
import sys
from collections.abc import Iterator, Sequence

import structlog
import uvicorn
from starlette.applications import Starlette

from collab_server.app import CollabServer, build_app
from collab_server.errors import ConfigError
from collab_server.logging import configure_logging
from collab_server.settings import Settings, load_settings
from collab_server.wire import DirectReceiveProtocol


class _DrainingServer(uvicorn.Server):
    """uvicorn closes sockets with 1012; we store everything and close with 1001 first."""

    collab: CollabServer

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


def tune_garbage_collector() -> None:
    """Fewer, cheaper cyclic collections: the joins profile spent ~20 % of CPU in the GC.

    Everything alive at start (modules, app) is frozen out of collection, and the middle
    generation is collected every million net allocations instead of every 7,000: a server
    holding thousands of sockets and tasks otherwise rescans them over and over. The youngest
    is collected every 5,000: its pause grows with it (50,000 paused the loop for 12 ms in the
    middle of a burst of joins), and each object is scanned there once whatever the size.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(5_000, 200, 100)


def server_config(app: Starlette, host: str, port: int) -> uvicorn.Config:
    """How uvicorn serves the app; tests serve it with the same settings."""
    settings: Settings = app.state.collab.settings
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        http="httptools",
        # uvicorn's websockets-sansio protocol, delivering messages in place (see wire.py).
        ws=DirectReceiveProtocol,
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


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="collab-server", description="Real-time IEP collaboration server (y-websocket)."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help="port to bind (default $PORT, else 8000)"
    )
    return parser.parse_args(argv)


def development_mode_refusal(host: str, allow_anonymous: bool) -> str | None:
    """Anonymous editing is for a laptop: other hosts need COLLAB_ALLOW_ANONYMOUS=1."""
    if allow_anonymous or _is_loopback(host):
        return None
    return (
        f"refusing to serve anonymous editing on {host}: set SUPABASE_URL (or "
        "SUPABASE_JWKS_URL / SUPABASE_JWT_SECRET) to require sign-in, bind 127.0.0.1, "
        "or set COLLAB_ALLOW_ANONYMOUS=1 to accept the risk"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        port = args.port if args.port is not None else int(os.environ.get("PORT") or 8000)
    except ValueError:
        sys.exit("collab-server: invalid configuration; set PORT to a port number")
    try:
        settings = load_settings()
    except ConfigError as exc:
        sys.exit(f"collab-server: {exc}")
    configure_logging(settings.log_level, settings.log_format)
    if not settings.auth_configured:
        refusal = development_mode_refusal(args.host, settings.allow_anonymous)
        if refusal:
            sys.exit(f"collab-server: {refusal}")
        structlog.get_logger("collab.cli").warning(
            "DEVELOPMENT MODE: no SUPABASE_URL, SUPABASE_JWKS_URL or SUPABASE_JWT_SECRET set; "
            "anyone who can reach this server may read and edit every document",
            host=args.host,
        )
    app = build_app(settings)
    config = server_config(app, args.host, port)
    server = _DrainingServer(config)
    server.collab = app.state.collab
    tune_garbage_collector()
    server.run()
    if not server.started:
        sys.exit(3)


if __name__ == "__main__":
    main()
