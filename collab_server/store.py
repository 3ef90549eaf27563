"""The document store interface the core persists through (implemented in `persistence/`).

A document is a snapshot (a full Y update, covering log entries up to `snapshot_seq`) plus a
tail of attributed log entries with higher sequence numbers. Sequence numbers are assigned by
the registry, per document, strictly increasing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable


class UpdateRecord(NamedTuple):
    """One applied update, as appended to the log.

    A named tuple, not a frozen dataclass: one is built per update on the hot path, and a
    frozen dataclass's `__init__` costs more than twice as much.
    """

    document: str
    seq: int
    update: bytes
    user_id: str | None  # the verified user whose connection sent it; None: anonymous/server
    created_at: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class StoredDocument:
    snapshot: bytes | None
    snapshot_seq: int  # log entries up to and including this are inside the snapshot
    tail: list[UpdateRecord]

    @property
    def last_seq(self) -> int:
        return self.tail[-1].seq if self.tail else self.snapshot_seq


@dataclass(frozen=True, slots=True)
class DocumentInfo:
    name: str
    last_seq: int
    updated_at: float | None


class DocumentStore(Protocol):
    async def open(self) -> None:
        """Connect and apply migrations (idempotent)."""

    async def aclose(self) -> None: ...

    async def ping(self) -> None:
        """Raise if the store cannot answer right now."""

    async def load(self, document: str) -> StoredDocument: ...

    async def append(self, records: Sequence[UpdateRecord]) -> None:
        """Append records of any documents (group commit).

        A position `(document, seq)` holds one update forever: a record whose position holds
        other bytes is a `LogConflict` (only a byte-identical replay is skipped). Raises a
        `DocumentsFailed` (`LogConflict`, `RecordsRefused`) naming the documents whose records
        may not be acknowledged, after storing everyone else's; any other exception: nothing
        may be acknowledged, try again.
        """

    async def compact(self, document: str, snapshot: bytes, through_seq: int) -> None:
        """Atomically replace the snapshot; log entries with seq <= through_seq leave the tail.

        Whether those entries stay as attributed history or are deleted is the store's
        configuration (history is kept by default: the IEP is a legal record).
        """

    async def updates_since(
        self, document: str, after_seq: int, limit: int = 10_000
    ) -> list[UpdateRecord]:
        """Log entries with seq > after_seq that the store still holds (history, digests)."""

    async def list_documents(self) -> list[DocumentInfo]: ...


@runtime_checkable
class ImmediateAppend(Protocol):
    """A store that makes records durable without awaiting (a write to a local file).

    The registry then stores and broadcasts an update in the event-loop turn after the one
    that applied it, with no task switch in between.
    """

    def append_now(self, records: Sequence[UpdateRecord]) -> None:
        """`append`, durable when it returns."""
