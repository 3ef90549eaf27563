"""Document stores, chosen by the scheme of DATABASE_URL; backends are imported lazily."""

from __future__ import annotations

from collab_server.settings import Settings
from collab_server.store import DocumentStore


def store_from_settings(settings: Settings) -> DocumentStore:
    url = settings.database_url
    if url.startswith("sqlite://"):
        from persistence.sqlite import SQLiteStore

        return SQLiteStore(settings.sqlite_path(), keep_history=settings.keep_history)
    if settings.is_postgres:
        from persistence.postgres import PostgresStore

        return PostgresStore(
            url,
            schema=settings.db_schema,
            statement_cache_size=settings.pg_statement_cache_size,
            max_pool_size=settings.pg_pool_max_size,
            keep_history=settings.keep_history,
        )
    from persistence.memory import MemoryStore

    return MemoryStore()


__all__ = ["store_from_settings"]
