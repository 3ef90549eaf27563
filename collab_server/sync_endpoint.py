"""`WS /sync/{name}`: admit one socket to one document and pump its frames.

Everything that can refuse (bad name, credentials, hooks, load failure) runs before the
upgrade is accepted, so a refused client never receives a document byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from dataclasses import dataclass, field

import structlog
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from collab_server.connection import Connection
from collab_server.credentials import request_credentials
from collab_server.document import LiveDocument
from collab_server.errors import (
    AwarenessLimitExceeded,
    InvalidDocumentName,
    ProtocolError,
    Rejected,
)
from collab_server.hooks import ConnectPayload, Hooks
from collab_server.identity import Authenticator
from collab_server.limits import ConnectionCap, ConnectionRate, RateLimits, TooManyConnections
from collab_server.metrics import Metrics
from collab_server.names import validate_document_name
from collab_server.protocol import CloseCode
from collab_server.registry import Registry
from collab_server.wire import (
    MessageHandler,
    ProtocolSocket,
    direct_receiver,
    find_flow_control,
    find_transport,
)

log = structlog.get_logger("collab.sync")

_HTTP_STATUS: dict[int, int] = {
    CloseCode.BAD_REQUEST: 400,
    CloseCode.UNAUTHORIZED: 401,
    CloseCode.FORBIDDEN: 403,
    CloseCode.RATE_LIMITED: 429,
    CloseCode.POLICY_VIOLATION: 403,
    CloseCode.GOING_AWAY: 503,
    CloseCode.TRY_AGAIN_LATER: 503,
    CloseCode.SERVED_ELSEWHERE: 503,
    CloseCode.INTERNAL_ERROR: 500,
}


SYNC_PATH_PREFIX = "/sync/"


def sync_document_path(scope: Scope) -> str | None:
    """The document part of a `/sync/<name>` path (below any root path); None elsewhere."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    if not path.startswith(SYNC_PATH_PREFIX):
        return None
    return path[len(SYNC_PATH_PREFIX) :]


@dataclass(frozen=True, slots=True)
class SyncLimits:
    max_message_bytes: int
    send_backlog_bytes: int
    rates: RateLimits = field(default_factory=RateLimits)


async def refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Refuse before accepting: an HTTP status where the server supports it, else a close."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        status = _HTTP_STATUS.get(code, 403)
        await websocket.send_denial_response(PlainTextResponse(reason, status_code=status))
        return
    await websocket.accept()
    await websocket.close(code, reason)


class SyncEndpoint:
    def __init__(
        self,
        registry: Registry,
        hooks: Hooks,
        authenticator: Authenticator,
        metrics: Metrics,
        limits: SyncLimits,
    ) -> None:
        self.registry = registry
        self.hooks = hooks
        self.authenticator = authenticator
        self.metrics = metrics
        self.limits = limits
        self.connection_cap = ConnectionCap(limits.rates.max_connections_per_user)
        # Cluster mode: the cap counts the user's connections on every process.
        self.bus = registry.replication.bus if registry.replication is not None else None

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry of `WS /sync/{name}`, below no middleware or router (see app.py)."""
        await self.handle(WebSocket(scope, receive, send), sync_document_path(scope) or "", send)

    async def handle(self, websocket: WebSocket, raw_name: str, send: Send) -> None:
        try:
            name = validate_document_name(raw_name)
        except InvalidDocumentName as exc:
            await refuse(websocket, CloseCode.BAD_REQUEST, str(exc))
            return
        if self.registry.closing:
            await refuse(websocket, CloseCode.GOING_AWAY, "server is shutting down")
            return
        receiver = direct_receiver(send)
        try:
            identity = await self.authenticator.authenticate(request_credentials(websocket), name)
            self.connection_cap.acquire(identity.user_id)
            counted_user = identity.user_id
            if self.bus is not None and counted_user is not None:
                await self._count_in_cluster(counted_user)
            connection = Connection(
                websocket if receiver is None else ProtocolSocket(receiver),
                name,
                identity,
                backlog_limit=self.limits.send_backlog_bytes,
            )
            try:
                address = websocket.client.host if websocket.client else None
                await self.hooks.on_connect(ConnectPayload(name, connection.id, identity, address))
                live = await self.registry.acquire(name)
            except BaseException:
                connection.abort()
                self._uncount(counted_user)
                raise
            if not self.registry.writes_admitted and live.durable_seq < live.last_seq:
                # Its step 2 would wait for a store that is far behind and not answering.
                self.registry.release(live)
                connection.abort()
                self._uncount(counted_user)
                raise Rejected(
                    CloseCode.TRY_AGAIN_LATER, "the server cannot store changes right now"
                )
        except Rejected as exc:
            log.info("connection_refused", document=name, code=exc.code, reason=exc.reason)
            await refuse(websocket, exc.code, exc.reason)
            return
        except Exception:
            log.exception("document_load_failed", document=name)
            await refuse(websocket, CloseCode.INTERNAL_ERROR, "document unavailable")
            return

        expiry: asyncio.TimerHandle | None = None
        taken_over = False
        try:
            await websocket.accept()
            connection.use_transport(await find_transport(send), find_flow_control(send))
            await self.registry.connect(live, connection)
            log.info("connected", document=name, connection=connection.id, user=identity.user_id)
            expiry = self._close_on_expiry(connection)
            handle = self._frame_handler(connection, live)
            if receiver is not None:
                # The protocol owns the socket from here; this task, and all it holds, ends.
                ended = functools.partial(self._finish, live, connection, counted_user, expiry)
                receiver.take_over(handle, ended)
                taken_over = True
                return
            await self._pump(websocket, connection, handle)
        finally:
            if not taken_over:
                await self._finish(live, connection, counted_user, expiry)

    async def _finish(
        self,
        live: LiveDocument,
        connection: Connection,
        counted_user: str | None,
        expiry: asyncio.TimerHandle | None,
    ) -> None:
        """The socket is gone: leave the document and let go of what it held."""
        if expiry is not None:
            expiry.cancel()
        self._uncount(counted_user)
        await self.registry.disconnect(live, connection)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(connection.closed(), 2.0)
        connection.abort()
        self.registry.release(live)
        log.info(
            "disconnected",
            document=live.name,
            connection=connection.id,
            code=connection.close_code,
        )

    async def _count_in_cluster(self, user_id: str) -> None:
        assert self.bus is not None
        try:
            admitted = await self.bus.add_connection(
                user_id, self.limits.rates.max_connections_per_user
            )
        except BaseException:
            self.connection_cap.release(user_id)
            raise
        if not admitted:
            self.connection_cap.release(user_id)
            raise TooManyConnections()

    def _uncount(self, user_id: str | None) -> None:
        self.connection_cap.release(user_id)
        if self.bus is not None and user_id is not None:
            self.bus.remove_connection(user_id)

    def _close_on_expiry(self, connection: Connection) -> asyncio.TimerHandle | None:
        """A socket lives no longer than its token: the client reconnects with a fresh one."""
        expires_at = connection.identity.expires_at
        if expires_at is None:
            return None
        return asyncio.get_running_loop().call_later(
            max(0.0, expires_at - time.time()),
            connection.close,
            CloseCode.UNAUTHORIZED,
            "token expired",
        )

    async def _pump(
        self, websocket: WebSocket, connection: Connection, handle: MessageHandler
    ) -> None:
        """Through ASGI (another server, or `COLLAB_FAST_RECEIVE=false`): read until the end."""
        while connection.is_open:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                connection.abort()
                return
            data: bytes | None = message.get("bytes")
            handle(data if data is not None else str(message.get("text", "")))

    def _frame_handler(self, connection: Connection, live: LiveDocument) -> MessageHandler:
        """What to do with each message from this socket; never raises (it runs in I/O)."""
        max_bytes = self.limits.max_message_bytes
        rate = ConnectionRate(self.limits.rates)
        registry = self.registry

        def handle(frame: bytes | str) -> None:
            if not connection.is_open:
                return
            if not isinstance(frame, bytes):
                if not _is_utf8(frame):
                    self._reject(
                        connection,
                        CloseCode.INVALID_PAYLOAD,
                        "text frame is not UTF-8",
                        "text_frame",
                    )
                    return
                self._reject(
                    connection,
                    CloseCode.UNSUPPORTED_DATA,
                    "text frames are not part of the protocol",
                    "text_frame",
                )
                return
            if len(frame) > max_bytes:
                self._reject(
                    connection, CloseCode.MESSAGE_TOO_BIG, "frame over size limit", "too_big"
                )
                return
            if not rate.allow(len(frame)):
                self._reject(
                    connection, CloseCode.RATE_LIMITED, "message rate limit exceeded", "rate"
                )
                return
            if not registry.writes_admitted and frame[:1] == b"\x00" and frame[1:2] != b"\x00":
                # A change the store cannot take: memory for unstored writes has its bound.
                self._reject(
                    connection,
                    CloseCode.TRY_AGAIN_LATER,
                    "the server cannot store changes right now; try again later",
                    "store_unavailable",
                )
                return
            try:
                change = live.receive(connection, frame)
            except AwarenessLimitExceeded as exc:
                self._reject(connection, CloseCode.POLICY_VIOLATION, str(exc), "awareness_limit")
                return
            except ProtocolError as exc:
                self._reject(connection, CloseCode.INVALID_PAYLOAD, str(exc), "malformed")
                return
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                # pycrdt raises a Rust PanicException (a BaseException) on some inputs.
                log.error(
                    "frame_crashed_handler", connection=connection.id, error=type(exc).__name__
                )
                self._reject(
                    connection, CloseCode.INTERNAL_ERROR, "could not process frame", "handler_error"
                )
                return
            if change is not None:
                registry.notify_awareness(live, connection, change)

        return handle

    def _reject(self, connection: Connection, code: CloseCode, reason: str, label: str) -> None:
        self.metrics.frames_rejected.labels(label).inc()
        log.warning(
            "frame_rejected",
            document=connection.document,
            connection=connection.id,
            code=int(code),
            reason=reason,
        )
        connection.close(code, reason[:120])


def _is_utf8(text: str) -> bool:
    """The fast receive path decodes text frames with `surrogateescape`: invalid UTF-8 comes
    back as lone surrogates, which do not encode."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
