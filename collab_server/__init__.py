"""iep-collab's core: a durable Y.js (y-websocket protocol) collaboration server.

This package imports nothing heavy: the app factory is `collab_server.app.create_app`, and
the composition root that builds a whole server from settings is `iep_collab`.
"""

from collab_server.errors import CollabError, ConfigError, ProtocolError, Rejected, StoreError
from collab_server.identity import (
    Authenticator,
    Caller,
    ConnectionOrigin,
    Identity,
    Origin,
    PeerNodeOrigin,
    Role,
    ServerOrigin,
)
from collab_server.store import DocumentInfo, DocumentStore, StoredDocument, UpdateRecord

__all__ = [
    "Authenticator",
    "Caller",
    "CollabError",
    "ConfigError",
    "ConnectionOrigin",
    "DocumentInfo",
    "DocumentStore",
    "Identity",
    "Origin",
    "PeerNodeOrigin",
    "ProtocolError",
    "Rejected",
    "Role",
    "ServerOrigin",
    "StoreError",
    "StoredDocument",
    "UpdateRecord",
]
