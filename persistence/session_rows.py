"""Therapy sessions and their jobs as table rows: one column order for SQLite and Postgres."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from integrations.sessions.records import (
    Attention,
    Job,
    JobKind,
    JobState,
    Measurement,
    NewJob,
    PlaceKind,
    SessionStatus,
    TherapySession,
)

SESSION_COLUMNS = (
    "id, student_id, therapists, starts_at, duration_minutes, place_kind, place, kind, status, "
    "goals, note, measurements, attention, version, created_by, created_at, updated_at"
)
SESSION_UPDATES = ", ".join(
    f"{c} = excluded.{c}" for c in SESSION_COLUMNS.split(", ") if c not in ("id", "created_at")
)
JOB_COLUMNS = "id, kind, student_id, session_id, recipient_id, slot, due_at, state"
NEW_JOB_COLUMNS = "kind, student_id, session_id, recipient_id, slot, due_at, state, created_at"
# A move or cancellation withdraws what is waiting for the session: its jobs, and messages
# the outbox has not started to send (keys `session:<id>:...`).
JOBS_TO_CANCEL = ("reminder", "moved")
CANCELLED_MESSAGE_ERROR = "not sent: the session moved or was cancelled"


def session_row(session: TherapySession) -> tuple[Any, ...]:
    return (
        session.id,
        session.student_id,
        json.dumps(list(session.therapist_ids)),
        session.starts_at,
        session.duration_minutes,
        session.place_kind.value,
        session.place,
        session.kind,
        session.status.value,
        json.dumps(list(session.goal_ids)),
        session.note,
        json.dumps([m.to_json() for m in session.measurements], ensure_ascii=False),
        session.attention.value if session.attention else None,
        session.version,
        session.created_by,
        session.created_at,
        session.updated_at,
    )


def session_from_row(row: Sequence[Any]) -> TherapySession:
    return TherapySession(
        id=row[0],
        student_id=row[1],
        therapist_ids=tuple(json.loads(row[2])),
        starts_at=float(row[3]),
        duration_minutes=int(row[4]),
        place_kind=PlaceKind(row[5]),
        place=row[6],
        kind=row[7],
        status=SessionStatus(row[8]),
        goal_ids=tuple(json.loads(row[9])),
        note=row[10],
        measurements=tuple(Measurement.from_json(m) for m in json.loads(row[11])),
        attention=Attention(row[12]) if row[12] else None,
        version=int(row[13]),
        created_by=row[14],
        created_at=float(row[15]),
        updated_at=float(row[16]),
    )


def job_row(job: NewJob, now: float) -> tuple[Any, ...]:
    return (
        job.kind.value,
        job.student_id,
        job.session_id,
        job.recipient_id,
        job.slot,
        job.due_at,
        JobState.PENDING.value,
        now,
    )


def job_from_row(row: Sequence[Any]) -> Job:
    return Job(
        int(row[0]),
        JobKind(row[1]),
        row[2],
        row[3],
        row[4],
        row[5],
        float(row[6]),
        JobState(row[7]),
    )


def therapist_rows(session: TherapySession) -> list[tuple[str, str, float, float]]:
    if not session.status.occupies_therapist:
        return []
    return [(session.id, t, session.starts_at, session.ends_at) for t in session.therapist_ids]


def measurement_rows(session: TherapySession) -> list[tuple[str, str, str, float, str, float]]:
    if session.status is not SessionStatus.COMPLETED:
        return []
    return [
        (session.id, session.student_id, m.goal_id, m.value, m.unit, session.starts_at)
        for m in session.measurements
    ]


def outbox_prefix(session_id: str) -> str:
    """The outbox keys of a session's messages start with this (ids are hex: no LIKE escapes)."""
    return f"session:{session_id}:"
