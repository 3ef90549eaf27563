"""Cluster mode on the machine's Postgres and Redis: in-process nodes (fast) and processes.

In-process nodes share the machine's Redis (6379): every deployment's channels and keys carry
its database and schema, and these tests never flush or stop it. Tests that restart or flush
Redis start their own `redis-server` on a free port (`OwnRedis`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from collab_server.settings import Settings, load_settings
from iep_collab.composition import build_app
from tests.support.servers import InProcessServer, free_port, serve_in_process

MACHINE_REDIS = os.environ.get("COLLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(MACHINE_REDIS, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis is required for cluster mode tests at {MACHINE_REDIS}: {exc}")
    return MACHINE_REDIS


@pytest.fixture
def cluster_settings(postgres_url: str, redis_url: str) -> Settings:
    return load_settings(
        {},
        database_url=postgres_url,
        db_schema=f"c_{uuid.uuid4().hex[:10]}",
        redis_url=redis_url,
    )


@contextlib.asynccontextmanager
async def nodes(settings: Settings, count: int) -> AsyncIterator[list[InProcessServer]]:
    """`count` server processes' worth of apps in this event loop, on one schema and Redis."""
    async with contextlib.AsyncExitStack() as stack:
        started = [
            await stack.enter_async_context(serve_in_process(build_app(settings)))
            for _ in range(count)
        ]
        yield started


@dataclass
class OwnRedis:
    """A `redis-server` of this test's own, on a free port, that it may stop and flush."""

    workdir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    also_bind: tuple[str, ...] = ()  # addresses beside loopback (a network namespace's peer)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is required (Debian package redis-server)")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                *self.also_bind,
                "--protected-mode",
                "no" if self.also_bind else "yes",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.2).ping()
                return
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def flush(self) -> None:
        redis.Redis(port=self.port).flushall()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()


async def until(check: object, timeout: float = 10.0, every: float = 0.05) -> None:
    """Wait for `check()` (sync or async) to be truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(every)
