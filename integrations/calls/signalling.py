"""`WS /calls?student=<id>&call=<id>`: one browser tab in one call. Offers, answers and ICE
candidates pass through here between the call's peers; the audio goes browser to browser.

Server -> client, JSON text frames:

    {"type": "welcome", "peer": ..., "peers": [{peer, user_id, name, muted}],
     "ice_servers": [...], "ice_transport_policy": "all" | "relay"}
    {"type": "joined", "peer": ..., "user_id": ..., "name": ..., "muted": false}
    {"type": "left", "peer": ...}
    {"type": "state", "peer": ..., "muted": true, ...}
    {"type": "signal", "from": <peer>, "data": {"description": ...} | {"candidate": ...}}
    {"type": "pong"}

Client -> server:

    {"type": "signal", "to": <peer>, "data": {...}}
    {"type": "state", "muted": true}
    {"type": "ping"}                    at least every few seconds: a silent tab is dropped

Credentials are the other sockets' (`?token=` or a bearer header). Only those who may read the
student's thread join (403 otherwise), and one removed from the IEP is taken out (4403);
six people at most (4409 when full). Frames are size- and rate-limited like every socket; a
tab silent for `IDLE_SECONDS` is taken out of the call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

import structlog
from starlette.routing import BaseRoute, WebSocketRoute
from starlette.websockets import WebSocket

from collab_server.credentials import request_credentials
from collab_server.errors import InvalidDocumentName, Rejected
from collab_server.event_socket import EventSocket
from collab_server.identity import CallerAuthenticator
from collab_server.limits import ConnectionCap, ConnectionRate, RateLimits
from collab_server.names import validate_document_name
from collab_server.protocol import CloseCode
from collab_server.sync_endpoint import refuse
from integrations.calls.rooms import CallRooms, Peer
from integrations.calls.service import CallService, is_call_id

log = structlog.get_logger("collab.calls")

CALL_FULL = 4409
IDLE_SECONDS = 5.0


# Offers, answers and candidates: a few dozen frames a call, never a stream.
SIGNALLING_RATES = RateLimits(
    messages_per_second=50, message_burst=300, bytes_per_second=256 * 1024, byte_burst=1024**2
)


@dataclass(frozen=True, slots=True)
class SignallingLimits:
    max_frame_bytes: int = 64 * 1024  # an SDP with many candidates
    send_queue: int = 500
    max_connections_per_user: int = 4
    rates: RateLimits = SIGNALLING_RATES
    recheck_seconds: float = 30.0  # someone removed from the IEP leaves its calls this soon


class SignallingEndpoint:
    def __init__(
        self,
        calls: CallService,
        rooms: CallRooms,
        authenticator: CallerAuthenticator,
        limits: SignallingLimits | None = None,
    ) -> None:
        self.calls = calls
        self.rooms = rooms
        self.authenticator = authenticator
        self.limits = limits or SignallingLimits()
        self.cap = ConnectionCap(self.limits.max_connections_per_user)

    def routes(self) -> list[BaseRoute]:
        return [WebSocketRoute("/calls", self.handle)]

    async def handle(self, websocket: WebSocket) -> None:
        student = websocket.query_params.get("student", "")
        call = websocket.query_params.get("call", "")
        try:
            student = validate_document_name(student)
        except InvalidDocumentName as exc:
            await refuse(websocket, CloseCode.BAD_REQUEST, str(exc))
            return
        if not is_call_id(call):
            await refuse(websocket, CloseCode.BAD_REQUEST, "not a call id")
            return
        try:
            caller = await self.authenticator.caller(request_credentials(websocket))
            await self.calls.students.require_view(caller, student)
            self.cap.acquire(caller.user_id)
        except Rejected as exc:
            await refuse(websocket, exc.code, exc.reason)
            return
        key = f"{student}|{call}"
        socket = EventSocket(websocket, caller, self.limits.send_queue)
        peer = Peer(secrets.token_urlsafe(9), caller.user_id, await self.calls.name(caller.user_id))
        joined = False
        try:
            await websocket.accept()
            socket.start()
            others = self.rooms.join(key, peer, socket.send_json)
            if others is None:
                socket.close(CALL_FULL, "this call has six people already")
                return
            joined = True
            socket.send_json(
                {
                    "type": "welcome",
                    "peer": peer.peer_id,
                    "peers": [p.public() for p in others],
                    "ice_servers": self.calls.servers(caller),
                    "ice_transport_policy": self.calls.ice.transport_policy,
                }
            )
            await self.calls.joined(caller, call)
            log.info("call_joined", student=student, peers=len(others) + 1)
            await self._read(socket, key, peer, student)
        finally:
            self.cap.release(caller.user_id)
            if joined and self.rooms.leave(key, peer.peer_id):
                log.info("call_ended", student=student)
                try:
                    await self.calls.ended(student, call)
                except Exception:
                    log.exception("call_end_failed")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(), 1.0)
            await socket.aclose()

    async def _read(self, socket: EventSocket, key: str, peer: Peer, student: str) -> None:
        rate = ConnectionRate(self.limits.rates)
        checked = time.monotonic()
        while socket.close_code is None:
            if time.monotonic() - checked > self.limits.recheck_seconds:
                checked = time.monotonic()
                try:
                    await self.calls.students.require_view(socket.caller, student)
                except Rejected as exc:
                    socket.close(exc.code, exc.reason)
                    return
            try:
                message = await asyncio.wait_for(socket.websocket.receive(), IDLE_SECONDS)
            except TimeoutError:
                socket.close(CloseCode.GOING_AWAY, "silent for too long")
                return
            text = socket.text_of(message, rate, self.limits.max_frame_bytes)
            if text is None:
                return
            request = _json_object(text)
            kind = request.get("type") if request is not None else None
            if kind == "ping":
                socket.send_json({"type": "pong"})
            elif kind == "signal" and request is not None:
                to, data = request.get("to"), request.get("data")
                if not isinstance(to, str) or not _is_signal(data):
                    socket.close(CloseCode.INVALID_PAYLOAD, "a signal needs a peer and data")
                    return
                # A peer that just left is not an error: its side of the talk is over.
                self.rooms.signal(key, peer.peer_id, to, data)
            elif kind == "state" and request is not None:
                muted = request.get("muted")
                if not isinstance(muted, bool):
                    socket.close(CloseCode.INVALID_PAYLOAD, "muted must be true or false")
                    return
                peer = replace(peer, muted=muted)
                self.rooms.update(key, peer)
            else:
                socket.close(CloseCode.INVALID_PAYLOAD, "unknown message")
                return


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _is_signal(data: object) -> bool:
    """A session description or an ICE candidate, as RTCPeerConnection gives them."""
    if not isinstance(data, dict) or len(data) != 1:
        return False
    if "description" in data:
        description = data["description"]
        return (
            isinstance(description, dict)
            and description.get("type") in ("offer", "answer", "rollback")
            and isinstance(description.get("sdp", ""), str)
        )
    if "candidate" in data:
        return data["candidate"] is None or isinstance(data["candidate"], dict)
    return False
