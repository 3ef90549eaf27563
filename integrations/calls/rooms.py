"""Who is in each call, and the relay of signalling messages between them.

A call's peers are the signalling sockets in it (one per browser tab). Each process knows its
own sockets; in cluster mode the others are learnt over the bus (one `calls` channel): a
process says when a peer joins or leaves and, every `BEAT_SECONDS`, which peers it still holds.
A peer not heard of for `STALE_SECONDS` (its process died or was cut off) is dropped, so a
dead tab or node leaves the call within that bound. Signalling messages between peers on two
processes cross the bus; nothing of a call is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog

from collab_server.cluster import Bus

log = structlog.get_logger("collab.calls")

CALLS_CHANNEL = "calls"
BEAT_SECONDS = 1.5
STALE_SECONDS = 5.0

Deliver = Callable[[dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Peer:
    peer_id: str
    user_id: str
    name: str
    muted: bool = False

    def public(self) -> dict[str, Any]:
        return {
            "peer": self.peer_id,
            "user_id": self.user_id,
            "name": self.name,
            "muted": self.muted,
        }


@dataclass
class Room:
    local: dict[str, tuple[Peer, Deliver]] = field(default_factory=dict)
    remote: dict[str, tuple[Peer, float]] = field(default_factory=dict)  # peer -> last heard

    def peers(self) -> list[Peer]:
        return [p for p, _ in self.local.values()] + [p for p, _ in self.remote.values()]

    def tell_local(self, body: dict[str, Any], *, to: str | None = None, skip: str = "") -> None:
        for peer_id, (_, deliver) in self.local.items():
            if peer_id != skip and (to is None or to == peer_id):
                deliver(body)


class CallRooms:
    """The calls this process takes part in; `bus` joins them across processes."""

    def __init__(self, bus: Bus | None = None, *, max_peers: int = 6) -> None:
        self.bus = bus
        self.max_peers = max_peers
        self.rooms: dict[str, Room] = {}
        self._beater: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.bus is not None:
            await self.bus.subscribe(CALLS_CHANNEL, self._heard)
            self._beater = asyncio.create_task(self._beat(), name="call-beats")

    async def aclose(self) -> None:
        if self._beater is not None:
            self._beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beater
        if self.bus is not None:
            with contextlib.suppress(Exception):
                await self.bus.unsubscribe(CALLS_CHANNEL)

    def join(self, call: str, peer: Peer, deliver: Deliver) -> list[Peer] | None:
        """Add a local peer; the others already in the call, or None when it is full."""
        room = self.rooms.setdefault(call, Room())
        others = room.peers()
        if len(others) >= self.max_peers:
            if not room.local and not room.remote:
                del self.rooms[call]
            return None
        room.local[peer.peer_id] = (peer, deliver)
        room.tell_local({"type": "joined", **peer.public()}, skip=peer.peer_id)
        self._publish(call, "joined", peer=asdict(peer))
        return others

    def leave(self, call: str, peer_id: str) -> bool:
        """Remove a local peer; True when the call has nobody left in it."""
        room = self.rooms.get(call)
        if room is None or room.local.pop(peer_id, None) is None:
            return False
        room.tell_local({"type": "left", "peer": peer_id})
        self._publish(call, "left", peer_id=peer_id)
        return self._forget_if_empty(call, room)

    def update(self, call: str, peer: Peer) -> None:
        """A local peer's state changed (muted)."""
        room = self.rooms.get(call)
        if room is None or peer.peer_id not in room.local:
            return
        room.local[peer.peer_id] = (peer, room.local[peer.peer_id][1])
        room.tell_local({"type": "state", **peer.public()}, skip=peer.peer_id)
        self._publish(call, "state", peer=asdict(peer))

    def signal(self, call: str, sender: str, to: str, data: Any) -> bool:
        """Relay an offer, answer or candidate to one peer of the call; False: no such peer."""
        room = self.rooms.get(call)
        if room is None:
            return False
        body = {"type": "signal", "from": sender, "data": data}
        if to in room.local:
            room.tell_local(body, to=to)
            return True
        if to in room.remote:
            self._publish(call, "signal", sender=sender, to=to, data=data)
            return True
        return False

    # -- across processes -------------------------------------------------------------------

    def _publish(self, call: str, op: str, **body: Any) -> None:
        if self.bus is not None:
            message = {"call": call, "op": op, "node": self.bus.node_id, **body}
            self.bus.publish(CALLS_CHANNEL, json.dumps(message).encode())

    def _heard(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            if self.bus is None or message["node"] == self.bus.node_id:
                return  # our own, back from the bus
            self._apply(message)
        except (ValueError, KeyError, TypeError):
            log.warning("call_bus_message_garbled", size=len(data))

    def _apply(self, message: dict[str, Any]) -> None:
        room = self.rooms.get(message["call"])
        if room is None:
            return  # no peer of this call here
        op = message["op"]
        now = time.monotonic()
        if op in ("joined", "state"):
            peer = Peer(**message["peer"])
            known = peer.peer_id in room.remote
            room.remote[peer.peer_id] = (peer, now)
            kind = "state" if known else "joined"
            room.tell_local({"type": kind, **peer.public()})
            if op == "joined":
                self._say_who_is_here(message["call"], room)  # the newcomer learns of ours now
        elif op == "beat":
            for fields in message["peers"]:
                peer = Peer(**fields)
                if peer.peer_id not in room.remote:
                    room.tell_local({"type": "joined", **peer.public()})
                room.remote[peer.peer_id] = (peer, now)
        elif op == "left":
            if room.remote.pop(message["peer_id"], None) is not None:
                room.tell_local({"type": "left", "peer": message["peer_id"]})
        elif op == "signal" and message["to"] in room.local:
            body = {"type": "signal", "from": message["sender"], "data": message["data"]}
            room.tell_local(body, to=message["to"])

    def _say_who_is_here(self, call: str, room: Room) -> None:
        if room.local:
            self._publish(call, "beat", peers=[asdict(p) for p, _ in room.local.values()])

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(BEAT_SECONDS)
            try:
                self.beat(time.monotonic())
            except Exception:
                log.exception("call_beat_failed")

    def beat(self, now: float) -> None:
        """Say which peers are here; drop the others' peers not heard of lately."""
        for call, room in list(self.rooms.items()):
            self._say_who_is_here(call, room)
            for peer_id, (_, heard) in list(room.remote.items()):
                if now - heard > STALE_SECONDS:
                    del room.remote[peer_id]
                    room.tell_local({"type": "left", "peer": peer_id})
            self._forget_if_empty(call, room)

    def _forget_if_empty(self, call: str, room: Room) -> bool:
        if room.local:
            return False
        # Only other processes' peers remain: nothing here needs the room any more.
        self.rooms.pop(call, None)
        return not room.remote
