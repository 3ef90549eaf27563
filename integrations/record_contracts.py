"""The records' store contract: versions with their exact state, parents' acknowledgements with
their reminder schedule, and a metadata view of the attributed log (implemented in
`persistence/`, beside the documents; `integrations` never import the implementations).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class VersionKind(StrEnum):
    NAMED = "named"  # named by a person
    AUTO = "auto"  # recorded at the end of an editing session


@dataclass(frozen=True, slots=True)
class Version:
    id: str
    document: str
    seq: int  # the log position it stands for: every entry up to it, none after
    name: str
    note: str
    kind: VersionKind
    author_id: str | None
    author_name: str
    created_at: float
    content_sha256: str  # of the canonical JSON of its content (what a parent acknowledges)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "document": self.document,
            "seq": self.seq,
            "name": self.name,
            "note": self.note,
            "kind": self.kind.value,
            "author": {"id": self.author_id, "name": self.author_name},
            "created_at": self.created_at,
            "content_sha256": self.content_sha256,
        }


class AckState(StrEnum):
    PENDING = "pending"
    ACKNOWLEDGED = "acknowledged"  # "I have read this IEP"
    QUESTION = "question"  # "I have a question", with a comment


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """One parent asked to acknowledge one version, and what they answered."""

    id: str  # unguessable: it is in the link the parent receives
    document: str
    version_id: str
    recipient_id: str
    requested_by: str | None
    requested_at: float
    content_sha256: str  # the version's, when it was sent
    state: AckState = AckState.PENDING
    answered_at: float | None = None
    channel: str | None = None  # how the request reached them (whatsapp, email, in_app)
    comment: str | None = None
    reminders_sent: int = 0
    next_reminder_at: float | None = None  # the durable schedule; None: nothing due

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "document": self.document,
            "version_id": self.version_id,
            "recipient_id": self.recipient_id,
            "requested_by": self.requested_by,
            "requested_at": self.requested_at,
            "content_sha256": self.content_sha256,
            "state": self.state.value,
            "answered_at": self.answered_at,
            "channel": self.channel,
            "comment": self.comment,
            "reminders_sent": self.reminders_sent,
            "next_reminder_at": self.next_reminder_at,
        }


@dataclass(frozen=True, slots=True)
class LogEntry:
    """An attributed log entry without its body."""

    seq: int
    user_id: str | None
    created_at: float


class RecordStore(Protocol):
    # -- versions
    async def add_version(self, version: Version, state: bytes) -> None: ...

    async def versions(self, document: str) -> list[Version]:
        """Newest first."""

    async def version(self, document: str, version_id: str) -> tuple[Version, bytes] | None: ...

    async def version_at_or_before(self, document: str, seq: int) -> tuple[Version, bytes] | None:
        """The version with the highest seq <= `seq` (a starting point to replay from)."""

    async def latest_version(self, document: str) -> Version | None: ...

    # -- the log, without bodies
    async def log_entries(self, document: str, before_seq: int, limit: int) -> list[LogEntry]:
        """Entries with seq < before_seq, newest first."""

    async def first_log_seq(self, document: str) -> int | None:
        """The oldest entry the store still holds (1 when history is complete)."""

    async def session_changes(
        self, document: str, first_seqs: Sequence[int]
    ) -> dict[int, tuple[int, str]]:
        """Stored changes of closed editing sessions: first_seq -> (last_seq, JSON)."""

    async def keep_session_changes(
        self, document: str, sessions: Sequence[tuple[int, int, str]]
    ) -> None:
        """Store closed sessions' (first_seq, last_seq, changes JSON); one stored stays."""

    # -- acknowledgements
    async def add_acknowledgements(self, requests: Sequence[Acknowledgement]) -> list[str]:
        """Insert those not asked yet (one per version and parent); returns the ids inserted."""

    async def acknowledgement(self, ack_id: str) -> Acknowledgement | None: ...

    async def acknowledgements(
        self, document: str, version_id: str | None
    ) -> list[Acknowledgement]: ...

    async def answer_acknowledgement(
        self, ack_id: str, state: AckState, comment: str | None, channel: str | None, at: float
    ) -> bool:
        """Record the answer once (False if already answered) and cancel its reminders."""

    async def due_reminders(self, now: float, limit: int) -> list[Acknowledgement]:
        """Pending requests whose next reminder is due (an indexed range, not a scan)."""

    async def next_reminder_due(self) -> float | None: ...

    async def claim_reminder(self, ack_id: str, due_at: float, next_at: float | None) -> bool:
        """Move the schedule from `due_at` on, counting one reminder; True for the one caller
        (of any process) whose update found the row still due at `due_at`."""
