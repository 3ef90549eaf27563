"""iep-collab: a durable Y.js (y-websocket protocol) collaboration server for IEP documents."""

from collab_server.app import CollabServer, build_app, create_app
from collab_server.errors import CollabError, ConfigError, ProtocolError, Rejected, StoreError
from collab_server.hooks import (
    AwarenessPayload,
    ChangePayload,
    ConnectPayload,
    DisconnectPayload,
    Extension,
    LoadPayload,
    StorePayload,
    UnloadPayload,
)
from collab_server.identity import (
    Authenticator,
    ConnectionOrigin,
    Identity,
    Origin,
    PeerNodeOrigin,
    Role,
    ServerOrigin,
)
from collab_server.settings import Settings, load_settings
from collab_server.store import DocumentInfo, DocumentStore, StoredDocument, UpdateRecord

__all__ = [
    "Authenticator",
    "AwarenessPayload",
    "ChangePayload",
    "CollabError",
    "CollabServer",
    "ConfigError",
    "ConnectPayload",
    "ConnectionOrigin",
    "DisconnectPayload",
    "DocumentInfo",
    "DocumentStore",
    "Extension",
    "Identity",
    "LoadPayload",
    "Origin",
    "PeerNodeOrigin",
    "ProtocolError",
    "Rejected",
    "Role",
    "ServerOrigin",
    "Settings",
    "StoreError",
    "StorePayload",
    "StoredDocument",
    "UnloadPayload",
    "UpdateRecord",
    "build_app",
    "create_app",
    "load_settings",
]
