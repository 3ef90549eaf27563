"""`collab-server`: parse flags, load the configuration, run uvicorn. Nothing else lives here."""

from __future__ import annotations

import argparse
import gc
import ipaddress
import os
import sys
from collections.abc import Sequence

import structlog

from collab_server.errors import ConfigError
from collab_server.logging import configure_logging
from collab_server.serving import DrainingServer, server_config
from iep_collab.composition import build_app
from iep_collab.config import load_config


def tune_garbage_collector() -> None:
    """Fewer, cheaper cyclic collections: the joins profile spent much of its CPU in the GC.

    Everything alive at start (modules, app) is frozen out of collection, and the middle
    generation is collected every million net allocations instead of every 7,000: a server
    holding thousands of sockets and tasks otherwise rescans them over and over. The youngest
    is collected every 5,000: its pause grows with it, and each object is scanned there once
    whatever the size.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(5_000, 200, 100)


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
        config = load_config()
    except ConfigError as exc:
        sys.exit(f"collab-server: {exc}")
    settings = config.server
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
    app = build_app(settings, config.notifications)
    server = DrainingServer(server_config(app, args.host, port), app.state.collab)
    tune_garbage_collector()
    server.run()
    if not server.started:
        sys.exit(f"collab-server: {app.state.collab.startup_error or 'the server did not start'}")


if __name__ == "__main__":
    main()
