"""Stores, chosen by the scheme of DATABASE_URL; backends are imported lazily.

The document store is chosen from settings; members, people and the notifications' state live
beside the documents, in the same database, so their stores are built from the document store.
`memory://` keeps documents and members in memory, and people and notifications in a private
in-memory SQLite (they need SQL state).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, cast

from collab_server.settings import Settings
from collab_server.store import DocumentStore

if TYPE_CHECKING:
    from collab_server.access import AccessStore
    from collab_server.cluster import DocumentOwnership
    from collab_server.events import EventLog
    from collab_server.leadership import JobsLock
    from collab_server.replication import ClusterStore
    from integrations.calls.records import CallStore
    from integrations.contracts import NotificationStore, PeopleStore
    from integrations.sessions.records import SessionStore
    from integrations.threads.records import ThreadStore
    from persistence.postgres import PostgresStore
    from persistence.postgres_records import PostgresRecordStore
    from persistence.sqlite import SQLiteStore
    from persistence.sqlite_records import SQLiteRecordStore


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


def _sqlite(store: DocumentStore) -> SQLiteStore | None:
    # Each backend is looked up only if its module was imported: no driver loads for nothing.
    module = sys.modules.get("persistence.sqlite")
    if module is not None and isinstance(store, module.SQLiteStore):
        return cast("SQLiteStore", store)
    return None


def _postgres(store: DocumentStore) -> PostgresStore | None:
    module = sys.modules.get("persistence.postgres")
    if module is not None and isinstance(store, module.PostgresStore):
        return cast("PostgresStore", store)
    return None


def access_store_for(store: DocumentStore) -> AccessStore:
    sqlite = _sqlite(store)
    if sqlite is not None:
        from persistence.sqlite_access import SQLiteAccessStore

        return SQLiteAccessStore(sqlite)
    postgres = _postgres(store)
    if postgres is not None:
        from persistence.postgres_access import PostgresAccessStore

        return PostgresAccessStore(postgres)
    from collab_server.access import MemoryAccessStore

    return MemoryAccessStore()


def ownership_for(store: DocumentStore) -> DocumentOwnership | None:
    """Who may write a document's log across processes: Postgres advisory locks.

    SQLite needs none beyond the database lock its store takes (one process per file);
    memory is one process by nature.
    """
    postgres = _postgres(store)
    if postgres is None:
        return None
    from persistence.postgres_ownership import PostgresOwnership

    return PostgresOwnership(postgres)


def jobs_lock_for(store: DocumentStore) -> JobsLock | None:
    """The cluster's jobs lock (Postgres only: the one store several processes share)."""
    postgres = _postgres(store)
    if postgres is None:
        return None
    from persistence.postgres_ownership import PostgresJobsLock

    return PostgresJobsLock(postgres)


def cluster_store_for(store: DocumentStore) -> ClusterStore | None:
    """What replicas read beyond loading (Postgres only)."""
    return _postgres(store)


class SideTables:
    """Where people and notifications live for one document store.

    For `memory://` that is a private in-memory SQLite, opened by the notification store
    (started before any request) and shared with the people store.
    """

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self._private: SQLiteStore | None = None

    def _sqlite(self) -> SQLiteStore | None:
        sqlite = _sqlite(self.store)
        if sqlite is not None or _postgres(self.store) is not None:
            return sqlite
        if self._private is None:
            from persistence.sqlite import SQLiteStore

            self._private = SQLiteStore(":memory:")
        return self._private

    def people(self) -> PeopleStore:
        sqlite = self._sqlite()
        if sqlite is not None:
            from persistence.sqlite_people import SQLitePeopleStore

            return SQLitePeopleStore(sqlite)
        from persistence.postgres_people import PostgresPeopleStore

        return PostgresPeopleStore(cast("PostgresStore", _postgres(self.store)))

    def notifications(self) -> NotificationStore:
        from persistence.sqlite_notifications import SQLiteNotificationStore

        sqlite = self._sqlite()
        if sqlite is not None:
            return SQLiteNotificationStore(sqlite, owns_store=sqlite is self._private)
        from persistence.postgres_notifications import PostgresNotificationStore

        return PostgresNotificationStore(cast("PostgresStore", _postgres(self.store)))

    def sessions(self) -> SessionStore:
        sqlite = self._sqlite()
        if sqlite is not None:
            from persistence.sqlite_sessions import SQLiteSessionStore

            return SQLiteSessionStore(sqlite)
        from persistence.postgres_sessions import PostgresSessionStore

        return PostgresSessionStore(cast("PostgresStore", _postgres(self.store)))

    def threads(self) -> ThreadStore:
        """Students' threads with their families."""
        sqlite = self._sqlite()
        if sqlite is not None:
            from persistence.sqlite_threads import SQLiteThreadStore

            return SQLiteThreadStore(sqlite)
        from persistence.postgres_threads import PostgresThreadStore

        return PostgresThreadStore(cast("PostgresStore", _postgres(self.store)))

    def calls(self) -> CallStore:
        """Who was rung for a call, and how they answered."""
        sqlite = self._sqlite()
        if sqlite is not None:
            from persistence.sqlite_calls import SQLiteCallStore

            return SQLiteCallStore(sqlite)
        from persistence.postgres_calls import PostgresCallStore

        return PostgresCallStore(cast("PostgresStore", _postgres(self.store)))

    def events(self) -> EventLog:
        """The live subscription log (for memory://, in the private SQLite: open it first)."""
        sqlite = self._sqlite()
        if sqlite is not None:
            from persistence.sqlite_events import SQLiteEventLog

            return SQLiteEventLog(sqlite)
        from persistence.postgres_events import PostgresEventLog

        return PostgresEventLog(cast("PostgresStore", _postgres(self.store)))

    def records(self) -> SQLiteRecordStore | PostgresRecordStore:
        """Versions, acknowledgements and the audit trail (opened with the notifications' store
        for `memory://`, with the documents otherwise)."""
        sqlite = self._sqlite()
        if sqlite is not None:
            from persistence.sqlite_records import SQLiteRecordStore

            return SQLiteRecordStore(sqlite)
        from persistence.postgres_records import PostgresRecordStore

        return PostgresRecordStore(cast("PostgresStore", _postgres(self.store)))


__all__ = [
    "SideTables",
    "access_store_for",
    "cluster_store_for",
    "jobs_lock_for",
    "ownership_for",
    "store_from_settings",
]
