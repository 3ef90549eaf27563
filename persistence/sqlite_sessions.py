"""Therapy sessions in the documents' SQLite file (021_sessions.sql).

It shares the SQLiteStore's one connection: a write is one `BEGIN IMMEDIATE` transaction, so
its overlap check and its insert cannot interleave with another write (the overlap rule holds
by construction), and its events get their positions in commit order.
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
from persistence.sqlite import SQLiteStore
from persistence.sqlite_events import append_events
from persistence.sqlite_notifications import OUTBOX_COLUMNS, outbox_row

_PREFIXED = ", ".join(f"s.{c}" for c in SESSION_COLUMNS.split(", "))


class SQLiteSessionStore:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    async def write(self, change: Change) -> int:
        session = change.session
        async with self._store.transaction() as db:
            async with db.execute(
                "SELECT version FROM sessions WHERE id = ?", (session.id,)
            ) as cursor:
                row = await cursor.fetchone()
            current = int(row[0]) if row else None
            if change.expected_version is not None and current != change.expected_version:
                raise StaleVersion(current or 0)
            for _, therapist, starts, ends in therapist_rows(session):
                async with db.execute(
                    "SELECT session_id FROM session_therapists WHERE therapist_id = ? "
                    "AND session_id != ? AND starts_at < ? AND ends_at > ? LIMIT 1",
                    (therapist, session.id, ends, starts),
                ) as cursor:
                    clash = await cursor.fetchone()
                if clash is not None:
                    raise Overlap(therapist, clash[0])
            await db.execute(
                f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({_marks(17)}) "
                f"ON CONFLICT (id) DO UPDATE SET {SESSION_UPDATES}",
                session_row(session),
            )
            await db.execute("DELETE FROM session_therapists WHERE session_id = ?", (session.id,))
            await db.executemany(
                "INSERT INTO session_therapists VALUES (?, ?, ?, ?)", therapist_rows(session)
            )
            await db.execute("DELETE FROM session_measurements WHERE session_id = ?", (session.id,))
            await db.executemany(
                "INSERT INTO session_measurements VALUES (?, ?, ?, ?, ?, ?)",
                measurement_rows(session),
            )
            if change.cancel_jobs:
                await db.execute(
                    f"UPDATE session_jobs SET state = ? WHERE session_id = ? "
                    f"AND state IN ({_marks(len(JOBS_TO_CANCEL_STATES))}) "
                    f"AND kind IN ({_marks(len(JOBS_TO_CANCEL))})",
                    (JobState.CANCELLED.value, session.id, *JOBS_TO_CANCEL_STATES, *JOBS_TO_CANCEL),
                )
                await db.execute(
                    "UPDATE notification_outbox SET state = 'failed', last_error = ?, "
                    "next_attempt_at = 0 WHERE key LIKE ? AND state = 'pending'",
                    (CANCELLED_MESSAGE_ERROR, outbox_prefix(session.id) + "%"),
                )
            now = time.time()
            await db.executemany(
                f"INSERT OR IGNORE INTO session_jobs ({NEW_JOB_COLUMNS}) VALUES ({_marks(8)})",
                [job_row(job, now) for job in change.jobs],
            )
            return await append_events(db, change.events)

    async def session(self, session_id: str) -> TherapySession | None:
        rows = await self._store.fetch_all(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?", (session_id,)
        )
        return session_from_row(rows[0]) if rows else None

    async def sessions_of_student(self, student_id: str, window: Window) -> list[TherapySession]:
        rows = await self._store.fetch_all(
            f"SELECT {SESSION_COLUMNS} FROM sessions WHERE student_id = ? "
            "AND starts_at >= ? AND starts_at < ? ORDER BY starts_at, id",
            (student_id, window.start, window.end),
        )
        return [session_from_row(r) for r in rows]

    async def sessions_of_therapist(
        self, therapist_id: str, window: Window
    ) -> list[TherapySession]:
        # Cancelled sessions keep no therapist row: found through the JSON list instead.
        rows = await self._store.fetch_all(
            f"SELECT {_PREFIXED} FROM sessions AS s, json_each(s.therapists) AS t "
            "WHERE t.value = ? AND s.starts_at >= ? AND s.starts_at < ? "
            "ORDER BY s.starts_at, s.id",
            (therapist_id, window.start, window.end),
        )
        return [session_from_row(r) for r in rows]

    async def goal_points(self, student_id: str) -> list[GoalPoint]:
        rows = await self._store.fetch_all(
            "SELECT session_id, at, goal_id, value, unit FROM session_measurements "
            "WHERE student_id = ? ORDER BY at, session_id",
            (student_id,),
        )
        return [GoalPoint(r[0], float(r[1]), Measurement(r[2], float(r[3]), r[4])) for r in rows]

    async def add_jobs(self, jobs: Sequence[NewJob]) -> int:
        now = time.time()
        added = 0
        async with self._store.transaction() as db:
            for job in jobs:
                cursor = await db.execute(
                    f"INSERT OR IGNORE INTO session_jobs ({NEW_JOB_COLUMNS}) VALUES ({_marks(8)})",
                    job_row(job, now),
                )
                added += cursor.rowcount
        return added

    async def next_due(self) -> float | None:
        rows = await self._store.fetch_all(
            "SELECT min(due) FROM (SELECT min(due_at) AS due FROM session_jobs "
            "WHERE state = 'pending' UNION ALL SELECT min(claimed_until) FROM session_jobs "
            "WHERE state = 'claimed')"
        )
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    async def claim_due(self, now: float, lease_seconds: float, limit: int) -> list[Job]:
        async with self._store.transaction() as db:
            async with db.execute(
                f"SELECT {JOB_COLUMNS} FROM session_jobs WHERE state = 'pending' AND due_at <= ? "
                f"UNION ALL SELECT {JOB_COLUMNS} FROM session_jobs WHERE state = 'claimed' "
                "AND claimed_until <= ? ORDER BY due_at LIMIT ?",
                (now, now, limit),
            ) as cursor:
                jobs = [job_from_row(r) for r in await cursor.fetchall()]
            await db.executemany(
                "UPDATE session_jobs SET state = 'claimed', claimed_until = ? WHERE id = ?",
                [(now + lease_seconds, job.id) for job in jobs],
            )
        return jobs

    async def finish_job(
        self, job_id: int, state: JobState, messages: Sequence[OutboxEntry] = ()
    ) -> bool:
        async with self._store.transaction() as db:
            cursor = await db.execute(
                "UPDATE session_jobs SET state = ?, claimed_until = NULL "
                "WHERE id = ? AND state = 'claimed'",
                (state.value, job_id),
            )
            if cursor.rowcount != 1:
                return False
            await db.executemany(
                f"INSERT OR IGNORE INTO notification_outbox ({OUTBOX_COLUMNS}) "
                f"VALUES ({_marks(15)})",
                [outbox_row(entry) for entry in messages],
            )
        return True

    async def jobs_of(self, session_id: str) -> list[Job]:
        rows = await self._store.fetch_all(
            f"SELECT {JOB_COLUMNS} FROM session_jobs WHERE session_id = ? ORDER BY due_at, id",
            (session_id,),
        )
        return [job_from_row(r) for r in rows]


def _marks(n: int) -> str:
    return ", ".join("?" * n)
