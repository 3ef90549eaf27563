"""Therapy sessions, their measurements and their scheduled jobs, and the store interface.

Times are epoch seconds in UTC everywhere here; the API and the messages convert them to
each person's time zone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from collab_server.events import NewEvent
from integrations.contracts import OutboxEntry


class SessionStatus(StrEnum):
    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"

    @property
    def occupies_therapist(self) -> bool:
        """Counts for the overlap rule (a cancelled slot is free again)."""
        return self not in (SessionStatus.CANCELLED, SessionStatus.NO_SHOW)

    @property
    def upcoming(self) -> bool:
        return self in (SessionStatus.SCHEDULED, SessionStatus.CONFIRMED)


# Which status may follow which; the same status is always allowed (an edit of the note).
TRANSITIONS: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.SCHEDULED: frozenset(SessionStatus) - {SessionStatus.SCHEDULED},
    SessionStatus.CONFIRMED: frozenset(SessionStatus) - {SessionStatus.SCHEDULED},
    SessionStatus.IN_PROGRESS: frozenset({SessionStatus.COMPLETED, SessionStatus.CANCELLED}),
    SessionStatus.COMPLETED: frozenset(),
    SessionStatus.CANCELLED: frozenset(),
    SessionStatus.NO_SHOW: frozenset(),
}


class PlaceKind(StrEnum):
    ROOM = "room"
    ONLINE = "online"


class Attention(StrEnum):
    """Why the front desk should look at a session."""

    PARENT_CANNOT_COME = "parent_cannot_come"


@dataclass(frozen=True, slots=True)
class Measurement:
    """One goal's measurement in a session: a number and its unit ("words correct per
    minute", or "level" on the goal's own scale)."""

    goal_id: str
    value: float
    unit: str

    def to_json(self) -> dict[str, Any]:
        return {"goal": self.goal_id, "value": self.value, "unit": self.unit}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Measurement:
        value = float(data["value"])
        if not math.isfinite(value):
            raise ValueError("not a finite number")
        return cls(str(data["goal"]), value, str(data.get("unit", "")))


@dataclass(frozen=True, slots=True)
class TherapySession:
    id: str
    student_id: str  # the IEP document's name
    therapist_ids: tuple[str, ...]
    starts_at: float
    duration_minutes: int
    place_kind: PlaceKind
    place: str
    kind: str
    status: SessionStatus = SessionStatus.SCHEDULED
    goal_ids: tuple[str, ...] = ()
    note: str = ""
    measurements: tuple[Measurement, ...] = ()
    attention: Attention | None = None
    version: int = 1
    created_by: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def ends_at(self) -> float:
        return self.starts_at + self.duration_minutes * 60


class JobKind(StrEnum):
    REMINDER = "reminder"  # `slot` is the lead time, e.g. "24h"
    MOVED = "moved"  # the session moved: one notice to its parents
    PROGRESS = "progress"  # per student, parent and local day; `slot` is the date


class JobState(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    DONE = "done"
    DROPPED = "dropped"  # too late to be useful
    CANCELLED = "cancelled"  # the session moved or was cancelled


# States a move or a cancellation withdraws a job from.
JOBS_TO_CANCEL_STATES = (JobState.PENDING.value, JobState.CLAIMED.value)


@dataclass(frozen=True, slots=True)
class NewJob:
    kind: JobKind
    student_id: str
    due_at: float
    session_id: str = ""
    recipient_id: str = ""
    slot: str = ""


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: JobKind
    student_id: str
    session_id: str
    recipient_id: str
    slot: str
    due_at: float
    state: JobState = JobState.PENDING


@dataclass(frozen=True, slots=True)
class GoalPoint:
    """A measurement of a completed session, for charts and progress updates."""

    session_id: str
    at: float
    measurement: Measurement


@dataclass(frozen=True, slots=True)
class Change:
    """What one write does: the session as it will be, its events and jobs.

    `cancel_jobs` drops the session's pending jobs and its unsent messages first (a move or a
    cancellation), in the same transaction.
    """

    session: TherapySession
    events: Sequence[NewEvent] = ()
    jobs: Sequence[NewJob] = ()
    cancel_jobs: bool = False
    expected_version: int | None = None  # None: a new session


class SessionConflict(Exception):
    """The write would break a rule checked in the store's transaction."""


class Overlap(SessionConflict):
    def __init__(self, therapist_id: str, other_session: str) -> None:
        super().__init__(f"therapist {therapist_id} already has session {other_session} then")
        self.therapist_id = therapist_id
        self.other_session = other_session


class StaleVersion(SessionConflict):
    def __init__(self, current: int) -> None:
        super().__init__(f"the session changed meanwhile (now version {current})")
        self.current = current


@dataclass(frozen=True, slots=True)
class Window:
    start: float
    end: float


class SessionStore(Protocol):
    """Sessions, their measurements and jobs (implemented in `persistence/`)."""

    async def write(self, change: Change) -> int:
        """Apply `change` in one transaction: check overlaps and the expected version (raise
        `Overlap` / `StaleVersion`), store the session, cancel and add jobs, append the events.
        Returns the last event position written."""

    async def session(self, session_id: str) -> TherapySession | None: ...

    async def sessions_of_student(self, student_id: str, window: Window) -> list[TherapySession]:
        """Sessions starting in `window`, by start time."""

    async def sessions_of_therapist(
        self, therapist_id: str, window: Window
    ) -> list[TherapySession]: ...

    async def goal_points(self, student_id: str) -> list[GoalPoint]:
        """Every measurement of the student's completed sessions, oldest first."""

    async def add_jobs(self, jobs: Sequence[NewJob]) -> int:
        """Insert jobs, ignoring any already there (same kind, student, session, recipient and
        slot); returns how many were new."""

    async def next_due(self) -> float | None:
        """The earliest due time of a pending job (or of a claim whose lease ran out)."""

    async def claim_due(self, now: float, lease_seconds: float, limit: int) -> list[Job]:
        """Claim due jobs atomically: two processes never claim the same job."""

    async def finish_job(
        self, job_id: int, state: JobState, messages: Sequence[OutboxEntry] = ()
    ) -> bool:
        """End a claimed job and write its messages to the outbox, in one transaction; False
        (nothing written) if the job is no longer claimed (a move or cancellation took it)."""

    async def jobs_of(self, session_id: str) -> list[Job]: ...


@dataclass(frozen=True, slots=True)
class SessionKinds:
    """The kinds of session the centre offers (extendable in settings)."""

    names: tuple[str, ...] = field(
        default=("speech", "occupational", "behavioural", "physical", "psychological")
    )
