"""The exception tree of the server.

CollabError
├── ConfigError          bad settings: the message names the variable to set
├── ProtocolError        a malformed frame from one client (closes that connection)
├── InvalidDocumentName  a name outside the allowed alphabet or shape
├── Rejected             a hook or the access layer refused (carries a close code)
└── StoreError           the document store failed (the registry keeps state and retries)
"""

from __future__ import annotations


class CollabError(Exception):
    """Root of every error this server raises on purpose."""


class ConfigError(CollabError):
    pass


class ProtocolError(CollabError):
    pass


class InvalidDocumentName(CollabError):
    pass


class Rejected(CollabError):
    """Raised by a hook or an authenticator to refuse; `code` is a WebSocket close code."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class StoreError(CollabError):
    pass
