"""Therapy sessions in the documents' Postgres schema (021_sessions.sql).

A write locks its therapists (one advisory lock each, in sorted order, so two writers never
deadlock) before the overlap check, and the session row before the version check: the rules
hold across every server process. Due jobs are claimed with `FOR UPDATE SKIP LOCKED`, so
several processes share them and each is claimed once.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from integrations.contracts import OutboxEntry
from integrations.sessions.records import (
    JOBS_TO_CANCEL_STATES,
    Change,
    GoalPoint,
    Job,
    JobState,
    Measurement,
    NewJob,
    Overlap,
    StaleVersion,
    TherapySession,
    Window,
)
from persistence.postgres import PostgresStore
from persistence.postgres_events import append_events
from persistence.session_rows import (
    CANCELLED_MESSAGE_ERROR,
    JOB_COLUMNS,
    JOBS_TO_CANCEL,
    NEW_JOB_COLUMNS,
    SESSION_COLUMNS,
    SESSION_UPDATES,
    job_from_row,
    job_row,
    measurement_rows,
    outbox_prefix,
    session_from_row,
    session_row,
    therapist_rows,
)
from persistence.sqlite_notifications import OUTBOX_COLUMNS, outbox_row


def _marks(n: int, start: int = 1) -> str:
    return ", ".join(f"${i}" for i in range(start, start + n))


class PostgresSessionStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self.s = store.schema

    async def write(self, change: Change) -> int:
        s, session = self.s, change.session
        async with self._store.pool.acquire() as conn, conn.transaction():
            for therapist in sorted(set(session.therapist_ids)):
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('session-therapist:' || $1))", therapist
                )
            current = await conn.fetchval(
                f"SELECT version FROM {s}.sessions WHERE id = $1 FOR UPDATE", session.id
            )
            if change.expected_version is not None and current != change.expected_version:
                raise StaleVersion(current or 0)
            for _, therapist, starts, ends in therapist_rows(session):
                clash = await conn.fetchval(
                    f"SELECT session_id FROM {s}.session_therapists WHERE therapist_id = $1 "
                    "AND session_id != $2 AND starts_at < $3 AND ends_at > $4 LIMIT 1",
                    therapist,
                    session.id,
                    ends,
                    starts,
                )
                if clash is not None:
                    raise Overlap(therapist, clash)
            await conn.execute(
                f"INSERT INTO {s}.sessions ({SESSION_COLUMNS}) VALUES ({_marks(17)}) "
                f"ON CONFLICT (id) DO UPDATE SET {SESSION_UPDATES}",
                *session_row(session),
            )
            await conn.execute(
                f"DELETE FROM {s}.session_therapists WHERE session_id = $1", session.id
            )
            await conn.executemany(
                f"INSERT INTO {s}.session_therapists VALUES ($1, $2, $3, $4)",
                therapist_rows(session),
            )
            await conn.execute(
                f"DELETE FROM {s}.session_measurements WHERE session_id = $1", session.id
            )
            await conn.executemany(
                f"INSERT INTO {s}.session_measurements VALUES ($1, $2, $3, $4, $5, $6)",
                measurement_rows(session),
            )
            if change.cancel_jobs:
                await conn.execute(
                    f"UPDATE {s}.session_jobs SET state = $1 WHERE session_id = $2 "
                    "AND state = ANY($3::text[]) AND kind = ANY($4::text[])",
                    JobState.CANCELLED.value,
                    session.id,
                    list(JOBS_TO_CANCEL_STATES),
                    list(JOBS_TO_CANCEL),
                )
                await conn.execute(
                    f"UPDATE {s}.notification_outbox SET state = 'failed', last_error = $1, "
                    "next_attempt_at = 0 WHERE key LIKE $2 AND state = 'pending'",
                    CANCELLED_MESSAGE_ERROR,
                    outbox_prefix(session.id) + "%",
                )
            now = time.time()
            await conn.executemany(
                f"INSERT INTO {s}.session_jobs ({NEW_JOB_COLUMNS}) VALUES ({_marks(8)}) "
                "ON CONFLICT DO NOTHING",
                [job_row(job, now) for job in change.jobs],
            )
            return await append_events(conn, s, change.events)

    async def session(self, session_id: str) -> TherapySession | None:
        async with self._store.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"SELECT {SESSION_COLUMNS} FROM {self.s}.sessions WHERE id = $1", session_id
            )
        return session_from_row(tuple(row)) if row else None

    async def sessions_of_student(self, student_id: str, window: Window) -> list[TherapySession]:
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {SESSION_COLUMNS} FROM {self.s}.sessions WHERE student_id = $1 "
                "AND starts_at >= $2 AND starts_at < $3 ORDER BY starts_at, id",
                student_id,
                window.start,
                window.end,
            )
        return [session_from_row(tuple(r)) for r in rows]

    async def sessions_of_therapist(
        self, therapist_id: str, window: Window
    ) -> list[TherapySession]:
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {SESSION_COLUMNS} FROM {self.s}.sessions "
                "WHERE therapists::jsonb ? $1 AND starts_at >= $2 AND starts_at < $3 "
                "ORDER BY starts_at, id",
                therapist_id,
                window.start,
                window.end,
            )
        return [session_from_row(tuple(r)) for r in rows]

    async def goal_points(self, student_id: str) -> list[GoalPoint]:
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT session_id, at, goal_id, value, unit FROM "
                f"{self.s}.session_measurements WHERE student_id = $1 ORDER BY at, session_id",
                student_id,
            )
        return [GoalPoint(r[0], float(r[1]), Measurement(r[2], float(r[3]), r[4])) for r in rows]

    async def add_jobs(self, jobs: Sequence[NewJob]) -> int:
        now = time.time()
        added = 0
        async with self._store.pool.acquire() as conn, conn.transaction():
            for job in jobs:
                status: str = await conn.execute(
                    f"INSERT INTO {self.s}.session_jobs ({NEW_JOB_COLUMNS}) "
                    f"VALUES ({_marks(8)}) ON CONFLICT DO NOTHING",
                    *job_row(job, now),
                )
                added += int(status.rsplit(maxsplit=1)[-1])
        return added

    async def next_due(self) -> float | None:
        async with self._store.pool.acquire() as conn:
            value = await conn.fetchval(
                f"SELECT least((SELECT min(due_at) FROM {self.s}.session_jobs "
                "WHERE state = 'pending'), (SELECT min(claimed_until) FROM "
                f"{self.s}.session_jobs WHERE state = 'claimed'))"
            )
        return float(value) if value is not None else None

    async def claim_due(self, now: float, lease_seconds: float, limit: int) -> list[Job]:
        s = self.s
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"UPDATE {s}.session_jobs SET state = 'claimed', claimed_until = $2 "
                f"WHERE id IN (SELECT id FROM {s}.session_jobs WHERE "
                "(state = 'pending' AND due_at <= $1) "
                "OR (state = 'claimed' AND claimed_until <= $1) "
                "ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) "
                f"RETURNING {JOB_COLUMNS}",
                now,
                now + lease_seconds,
                limit,
            )
        return sorted((job_from_row(tuple(r)) for r in rows), key=lambda j: (j.due_at, j.id))

    async def finish_job(
        self, job_id: int, state: JobState, messages: Sequence[OutboxEntry] = ()
    ) -> bool:
        async with self._store.pool.acquire() as conn, conn.transaction():
            status: str = await conn.execute(
                f"UPDATE {self.s}.session_jobs SET state = $1, claimed_until = NULL "
                "WHERE id = $2 AND state = 'claimed'",
                state.value,
                job_id,
            )
            if status != "UPDATE 1":
                return False
            await conn.executemany(
                f"INSERT INTO {self.s}.notification_outbox ({OUTBOX_COLUMNS}) "
                f"VALUES ({_marks(15)}) ON CONFLICT (key) DO NOTHING",
                [outbox_row(entry) for entry in messages],
            )
        return True

    async def jobs_of(self, session_id: str) -> list[Job]:
        async with self._store.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {JOB_COLUMNS} FROM {self.s}.session_jobs WHERE session_id = $1 "
                "ORDER BY due_at, id",
                session_id,
            )
        return [job_from_row(tuple(r)) for r in rows]
