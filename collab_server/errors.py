"""The exception tree of the server.

CollabError
├── ConfigError          bad settings: the message names the variable to set
├── ProtocolError        a malformed frame from one client (closes that connection)
│   └── AwarenessLimitExceeded  well-formed, but past what one connection may hold
├── InvalidDocumentName  a name outside the allowed alphabet or shape
├── Rejected             a hook or the access layer refused (carries a close code)
└── StoreError           the document store failed (the registry keeps state and retries)
    └── DocumentsFailed  some documents' records of an append failed; the rest are stored
        ├── LogConflict      a log position holds other bytes: another writer
        └── RecordsRefused   the store will never take them (invalid data)
"""

from __future__ import annotations

from collections.abc import Collection


class CollabError(Exception):
    """Root of every error this server raises on purpose."""


class ConfigError(CollabError):
    pass


class ProtocolError(CollabError):
    pass


class AwarenessLimitExceeded(ProtocolError):
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


class DocumentsFailed(StoreError):
    """An append stored every record except those of `documents`, none of which is stored
    for sure and none of which may be acknowledged."""

    def __init__(self, documents: Collection[str], reason: str) -> None:
        super().__init__(f"{reason}: {', '.join(sorted(documents))}")
        self.documents = frozenset(documents)


class LogConflict(DocumentsFailed):
    """A `(document, seq)` the append was given is already in the log with other bytes."""

    def __init__(self, documents: Collection[str]) -> None:
        super().__init__(documents, "log positions already written by another writer")


class RecordsRefused(DocumentsFailed):
    """The store refused these documents' records as invalid (retrying cannot help)."""

    def __init__(self, documents: Collection[str]) -> None:
        super().__init__(documents, "records refused by the store")
