"""A fresh PostgreSQL database per test run; CI sets COLLAB_REQUIRE_POSTGRES=1 to fail, not skip."""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import asyncpg

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
