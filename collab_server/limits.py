"""Abuse limits: per-connection message and byte rates (token buckets), connections per user.

A connection over its rate is closed with 4429 (y-websocket reconnects after a back-off); a
user over the connection cap is refused at the upgrade (HTTP 429 / close 4429).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from collab_server.errors import Rejected
from collab_server.protocol import CloseCode


@dataclass(frozen=True, slots=True)
class RateLimits:
    messages_per_second: float = 1000.0
    message_burst: float = 2000.0
    bytes_per_second: float = 4 * 1024 * 1024
    byte_burst: float = 32 * 1024 * 1024
    max_connections_per_user: int = 20


class TokenBucket:
    """`rate` tokens per second refill a bucket of `burst`; a take that does not fit fails."""

    __slots__ = ("_level", "_stamp", "burst", "rate")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._level = burst
        self._stamp = time.monotonic()

    def take(self, amount: float, now: float) -> bool:
        level = min(self.burst, self._level + (now - self._stamp) * self.rate)
        self._stamp = now
        if amount > level:
            self._level = level
            return False
        self._level = level - amount
        return True


class ConnectionRate:
    """The message and byte buckets of one connection."""

    __slots__ = ("_bytes", "_messages")

    def __init__(self, limits: RateLimits) -> None:
        self._messages = TokenBucket(limits.messages_per_second, limits.message_burst)
        self._bytes = TokenBucket(limits.bytes_per_second, limits.byte_burst)

    def allow(self, nbytes: int) -> bool:
        now = time.monotonic()
        return self._messages.take(1, now) and self._bytes.take(nbytes, now)


class TooManyConnections(Rejected):
    def __init__(self) -> None:
        super().__init__(CloseCode.RATE_LIMITED, "too many connections for this user")


class ConnectionCap:
    """Open connections per user id (anonymous development connections are not counted)."""

    def __init__(self, max_per_user: int) -> None:
        self.max_per_user = max_per_user
        self._open: dict[str, int] = {}

    def acquire(self, user_id: str | None) -> None:
        if user_id is None:
            return
        count = self._open.get(user_id, 0)
        if count >= self.max_per_user:
            raise TooManyConnections()
        self._open[user_id] = count + 1

    def release(self, user_id: str | None) -> None:
        if user_id is None:
            return
        count = self._open.get(user_id, 0) - 1
        if count <= 0:
            self._open.pop(user_id, None)
        else:
            self._open[user_id] = count
