"""Structured logging set-up for the process (called once by the entry point)."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import TextIO, cast

import structlog


def configure_logging(level: str, fmt: str) -> None:
    numeric = logging.getLevelName(level.upper())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(cast(TextIO, _Stderr())),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(name)s %(message)s")
    logging.getLogger("uvicorn.error").addFilter(_drop_per_connection_lines)
    # websockets' own per-socket "connection open/rejected" lines: checked by level before a
    # record is even built, so busy joins do not pay for them.
    logging.getLogger("websockets.server").setLevel(max(numeric, logging.WARNING))


class _Stderr:
    """stderr that never raises: a log line that cannot be written (a full disk under a log
    file) must not stop what was being logged, e.g. the store's retry of a failed append."""

    def write(self, text: str) -> int:
        try:
            return sys.stderr.write(text)
        except OSError:
            return 0

    def flush(self) -> None:
        with contextlib.suppress(OSError):
            sys.stderr.flush()


def _drop_per_connection_lines(record: logging.LogRecord) -> bool:
    # uvicorn logs every WebSocket open/accept/close; our "connected"/"disconnected" lines
    # say the same with the document and user, so these only cost CPU on busy joins.
    message = record.msg if isinstance(record.msg, str) else ""
    return not (message.startswith('%s - "WebSocket') or message.startswith("connection "))
