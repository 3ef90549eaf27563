"""`RedisBus`: the core's `Bus` over Redis pub/sub (redis.asyncio with hiredis).

Channels and keys carry a namespace (the database and schema), so several deployments, and
tests, share one Redis. Redis may restart, be flushed or become unreachable at any moment:

- Messages published while it is down are dropped (the core recovers them from Postgres).
- A heartbeat every second refreshes this process's lease in a sorted set scored by Redis's
  own clock (no clock skew between machines); a lease not refreshed for `lease_seconds`
  lapses, and every other process is told the node is gone and drops its connection counts.
- When a heartbeat fails the bus counts as down; once one succeeds again it subscribes every
  channel afresh, tells the core (`reconnected`: it checks everything), and rewrites this
  process's connection counts if Redis lost them. Processes missing right after Redis lost its
  state are not declared gone until they had a lease period to come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline, PubSub
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from collab_server.cluster import BusEvents, BusHandler

log = structlog.get_logger("collab.cluster.redis")

HEARTBEAT_SECONDS = 1.0
LEASE_SECONDS = 3.0
COMMAND_TIMEOUT_SECONDS = 2.0
SUBSCRIBE_TIMEOUT_SECONDS = 2.0
PUBLISH_BATCH = 512
MAX_QUEUED = 100_000  # publishes waiting while Redis is slow; the oldest are dropped past it

# Refresh this node's lease, drop lapsed ones (and their counts), return (was new, live nodes).
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, node in ipairs(expired) do
  redis.call('DEL', ARGV[3] .. node)
end
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
end
return {added, redis.call('ZRANGE', KEYS[1], 0, -1)}
"""

# Count one more connection of a user on this node unless live nodes hold `limit` already.
_ADD_CONNECTION = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local total = 0
for _, node in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  total = total + tonumber(redis.call('HGET', ARGV[4] .. node, ARGV[2]) or '0')
end
if total >= tonumber(ARGV[3]) then
  return 0
end
redis.call('HINCRBY', ARGV[4] .. ARGV[1], ARGV[2], 1)
return 1
"""

Operation = Callable[[Pipeline], Any]


class RedisBus:
    def __init__(
        self,
        url: str,
        namespace: str,
        *,
        lease_seconds: float = LEASE_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.node_id = uuid.uuid4().hex[:12]
        self.url = url
        self.namespace = namespace
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._nodes_key = f"{namespace}:nodes"
        self._counts_prefix = f"{namespace}:connections:"
        self._client: Redis | None = None
        self._pubsub: PubSub | None = None
        self._events: BusEvents | None = None
        self._handlers: dict[str, BusHandler] = {}  # by full channel name
        self._confirmations: dict[str, asyncio.Future[None]] = {}
        self._queue: deque[Operation] = deque()
        self._wake = asyncio.Event()
        self._connected = False
        self._live: frozenset[str] = frozenset()
        self._known: set[str] = set()
        self._grace_until = 0.0
        self._counts: dict[str, int] = {}  # this node's connections per user
        self._heartbeat_script: Any = None
        self._add_script: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._reader: asyncio.Task[None] | None = None

    # -- Bus ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def live_nodes(self) -> frozenset[str]:
        return self._live

    async def start(self, events: BusEvents) -> None:
        self._events = events
        self._client = Redis.from_url(
            self.url,
            socket_connect_timeout=COMMAND_TIMEOUT_SECONDS,
            socket_timeout=COMMAND_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
            decode_responses=False,
        )
        self._heartbeat_script = self._client.register_script(_HEARTBEAT)
        self._add_script = self._client.register_script(_ADD_CONNECTION)
        await self._heartbeat()  # raises if Redis cannot be reached at start
        await self._open_pubsub()
        self._connected = True
        self._tasks = [
            asyncio.create_task(self._heartbeats(), name="bus-heartbeat"),
            asyncio.create_task(self._publisher(), name="bus-publisher"),
        ]
        log.info("cluster_bus_started", node=self.node_id, nodes=len(self._live))

    async def subscribe(self, channel: str, handler: BusHandler) -> bool:
        key = self._channel(channel)
        self._handlers[key] = handler
        pubsub = self._pubsub
        if not self._connected or pubsub is None:
            return False  # subscribed when the bus is back
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations[key] = confirmed
        try:
            await asyncio.wait_for(pubsub.subscribe(key), COMMAND_TIMEOUT_SECONDS)
            await asyncio.wait_for(asyncio.shield(confirmed), SUBSCRIBE_TIMEOUT_SECONDS)
            return True
        except (RedisError, OSError, TimeoutError):
            self._lost("subscribe failed")
            return False
        finally:
            self._confirmations.pop(key, None)

    async def unsubscribe(self, channel: str) -> None:
        key = self._channel(channel)
        self._handlers.pop(key, None)
        pubsub = self._pubsub
        if self._connected and pubsub is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(pubsub.unsubscribe(key), COMMAND_TIMEOUT_SECONDS)

    def publish(self, channel: str, data: bytes) -> None:
        key = self._channel(channel)
        self._queue_operation(lambda pipe: pipe.publish(key, data))

    async def ping(self) -> None:
        if self._client is None:
            raise ConnectionError("the bus is not started")
        await asyncio.wait_for(self._client.ping(), COMMAND_TIMEOUT_SECONDS)

    async def add_connection(self, user_id: str, limit: int) -> bool:
        self._counts[user_id] = self._counts.get(user_id, 0) + 1
        if not self._connected or self._client is None:
            return True
        try:
            added = await asyncio.wait_for(
                self._add_script(
                    keys=[self._nodes_key],
                    args=[self.node_id, user_id, limit, self._counts_prefix],
                ),
                COMMAND_TIMEOUT_SECONDS,
            )
        except (RedisError, OSError, TimeoutError):
            return True  # the bus is down: this process's own cap still holds
        if not added:
            self._decrement(user_id)
            return False
        return True

    def remove_connection(self, user_id: str) -> None:
        if self._decrement(user_id):
            key = self._counts_prefix + self.node_id
            self._queue_operation(lambda pipe: pipe.hincrby(key, user_id, -1))

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._reader is not None:
            self._reader.cancel()
        client = self._client
        if client is not None and self._connected:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                await asyncio.wait_for(self._flush(client), COMMAND_TIMEOUT_SECONDS)
                # Gone at once rather than after the lease: the others take over now.
                await asyncio.wait_for(
                    client.zrem(self._nodes_key, self.node_id), COMMAND_TIMEOUT_SECONDS
                )
                await client.delete(self._counts_prefix + self.node_id)
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                # Older redis releases leave aclose untyped; newer ones type it.
                await self._pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()
        self._connected = False

    # -- internals ------------------------------------------------------------------------

    def _channel(self, channel: str) -> str:
        return f"{self.namespace}:{channel}"

    def _decrement(self, user_id: str) -> bool:
        count = self._counts.get(user_id, 0)
        if count <= 0:
            return False
        if count == 1:
            del self._counts[user_id]
        else:
            self._counts[user_id] = count - 1
        return True

    def _queue_operation(self, operation: Operation) -> None:
        if not self._connected:
            return  # lost anyway; what matters is recovered from Postgres
        if len(self._queue) >= MAX_QUEUED:
            self._queue.popleft()
        self._queue.append(operation)
        self._wake.set()

    async def _publisher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            client = self._client
            if client is None or not self._connected:
                self._queue.clear()
                continue
            try:
                await self._flush(client)
            except (RedisError, OSError, TimeoutError) as exc:
                self._queue.clear()
                self._lost(f"publish failed: {type(exc).__name__}")

    async def _flush(self, client: Redis) -> None:
        while self._queue:
            pipe = client.pipeline(transaction=False)
            for _ in range(min(PUBLISH_BATCH, len(self._queue))):
                self._queue.popleft()(pipe)
            await pipe.execute()

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                await asyncio.wait_for(self._heartbeat(), COMMAND_TIMEOUT_SECONDS)
            except (RedisError, OSError, TimeoutError) as exc:
                self._lost(f"heartbeat failed: {type(exc).__name__}")
                continue
            if not self._connected:
                await self._come_back()

    async def _heartbeat(self) -> None:
        assert self._heartbeat_script is not None
        added, nodes = await self._heartbeat_script(
            keys=[self._nodes_key],
            args=[self.node_id, int(self.lease_seconds * 1000), self._counts_prefix],
        )
        current = {n.decode() if isinstance(n, bytes) else str(n) for n in nodes}
        now = time.monotonic()
        if added and self._known:
            # Redis lost our lease (restarted, flushed, or we were cut off past it): the
            # others come back within a lease; our counts go back in.
            self._grace_until = now + self.lease_seconds
            await self._rewrite_counts()
        self._known |= current
        if now >= self._grace_until:
            gone = self._known - current - {self.node_id}
            self._known = set(current)
            for node in gone:
                if self._events is not None:
                    self._events.node_gone(node)
        self._live = frozenset(current)

    async def _rewrite_counts(self) -> None:
        assert self._client is not None
        key = self._counts_prefix + self.node_id
        pipe = self._client.pipeline(transaction=True)
        pipe.delete(key)
        if self._counts:
            pipe.hset(key, mapping={user: count for user, count in self._counts.items()})
        await pipe.execute()

    async def _open_pubsub(self) -> None:
        assert self._client is not None
        pubsub = self._client.pubsub()
        self._pubsub = pubsub
        channels = list(self._handlers) or [self._channel("node:" + self.node_id)]
        await asyncio.wait_for(pubsub.subscribe(*channels), COMMAND_TIMEOUT_SECONDS)
        self._reader = asyncio.create_task(self._read(pubsub), name="bus-reader")

    async def _come_back(self) -> None:
        try:
            if self._pubsub is not None:
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]
            await self._open_pubsub()
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("cluster_bus_resubscribe_failed", error=type(exc).__name__)
            return
        self._connected = True
        self._grace_until = time.monotonic() + self.lease_seconds
        await self._rewrite_counts()
        log.info("cluster_bus_reconnected", node=self.node_id)
        if self._events is not None:
            self._events.reconnected()

    def _lost(self, why: str) -> None:
        if not self._connected:
            return
        self._connected = False
        self._queue.clear()
        if self._reader is not None:
            self._reader.cancel()
            self._reader = None
        log.error("cluster_bus_down", node=self.node_id, why=why)

    async def _read(self, pubsub: PubSub) -> None:
        try:
            async for message in pubsub.listen():
                kind = message["type"]
                channel = message["channel"]
                key = channel.decode() if isinstance(channel, bytes) else str(channel)
                if kind in (b"message", "message"):
                    handler = self._handlers.get(key)
                    if handler is not None:
                        try:
                            handler(message["data"])
                        except Exception:
                            log.exception("cluster_message_failed", channel=key)
                elif kind in (b"subscribe", "subscribe"):
                    confirmed = self._confirmations.get(key)
                    if confirmed is not None and not confirmed.done():
                        confirmed.set_result(None)
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            self._lost(f"subscription lost: {type(exc).__name__}")
