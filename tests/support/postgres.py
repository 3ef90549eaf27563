"""A fresh PostgreSQL database per test run; CI sets COLLAB_REQUIRE_POSTGRES=1 to fail, not skip."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from collab_server.settings import Settings, load_settings

ADMIN_URL = os.environ.get("COLLAB_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/postgres")
REQUIRED = os.environ.get("COLLAB_REQUIRE_POSTGRES") == "1"


def with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def create_database() -> str:
    name = f"collab_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(ADMIN_URL, name)


async def drop_database(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass(frozen=True, slots=True)
class LogOutage:
    """A server's log in a fresh schema, whose table a test can take away and give back:
    every append then fails for real (no patched function), and succeeds again after."""

    url: str
    schema: str = field(default_factory=lambda: f"t_{uuid.uuid4().hex[:10]}")

    def settings(self, **overrides: Any) -> Settings:
        return load_settings(
            {},
            database_url=self.url,
            db_schema=self.schema,
            **{"store_retry_max_seconds": 0.2, **overrides},
        )

    async def begin(self) -> None:
        await self._execute(f"ALTER TABLE {self.schema}.updates RENAME TO updates_away")

    async def end(self) -> None:
        await self._execute(f"ALTER TABLE {self.schema}.updates_away RENAME TO updates")

    async def stored(self) -> int:
        conn = await asyncpg.connect(self.url)
        try:
            count: int = await conn.fetchval(f"SELECT count(*) FROM {self.schema}.updates")
        finally:
            await conn.close()
        return count

    async def _execute(self, statement: str) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()
