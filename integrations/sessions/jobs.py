"""Durable scheduled jobs, armed with one timer for the earliest due one.

Jobs are rows with a due time (the `SessionStore`); nothing scans them while they wait. At
start, and whenever a job is added or finished, the runner asks the store for the earliest due
time and sets one loop timer for it (earlier jobs re-arm it at once through `added`). When it
fires, due jobs are claimed atomically (several processes may run this; each job is claimed by
one) and run; a claim whose process died is claimed again once its lease has run out.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog

from integrations.contracts import Clock
from integrations.sessions.records import Job, SessionStore

log = structlog.get_logger("collab.integrations.sessions.jobs")

LEASE_SECONDS = 120.0
BATCH = 500
# Jobs of a batch run at once: each mostly waits on the database and the outbox.
CONCURRENCY = 16
# A timer far in the future is re-armed from the store now and then, never more often: other
# processes may have added earlier jobs this one does not know of.
MAX_SLEEP_SECONDS = 300.0


class JobRunner:
    def __init__(
        self,
        store: SessionStore,
        clock: Clock,
        run: Callable[[Job], Awaitable[None]],
        *,
        timers: bool = True,
    ) -> None:
        self.store = store
        self.clock = clock
        self.run = run
        self.timers = timers  # False: the caller drives `run_due` (tests with a manual clock)
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        await self.rearm()

    def added(self, due_at: float) -> None:
        """A job due at `due_at` was written: fire earlier if it is the earliest."""
        if not self.timers or self._closed:
            return
        if self._armed_for is None or due_at < self._armed_for:
            self._arm(due_at)

    async def rearm(self) -> None:
        if not self.timers or self._closed:
            return
        due = await self.store.next_due()
        if due is None:
            self._disarm()
            # Another process may add jobs: look again after a while.
            self._arm(self.clock.now() + MAX_SLEEP_SECONDS)
        else:
            self._arm(due)

    def _arm(self, due_at: float) -> None:
        self._disarm()
        delay = min(max(0.0, due_at - self.clock.now()), MAX_SLEEP_SECONDS)
        self._armed_for = due_at
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._armed_for = None

    def _fire(self) -> None:
        self._timer = None
        self._armed_for = None
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._fired(), name="session-jobs")

    async def _fired(self) -> None:
        try:
            await self.run_due()
        except Exception:
            log.exception("session_jobs_failed")
            self._arm(self.clock.now() + 5.0)
            return
        await self.rearm()

    async def run_due(self) -> int:
        """Claim and run every job due now; returns how many ran."""
        ran = 0
        gate = asyncio.Semaphore(CONCURRENCY)

        async def run(job: Job) -> None:
            async with gate:
                try:
                    await self.run(job)
                except Exception:
                    # Left claimed: its lease runs out and it is tried again.
                    log.exception("session_job_failed", job=job.id, kind=job.kind.value)

        while True:
            jobs = await self.store.claim_due(self.clock.now(), LEASE_SECONDS, BATCH)
            await asyncio.gather(*(run(job) for job in jobs))
            ran += len(jobs)
            if len(jobs) < BATCH:
                return ran

    async def aclose(self) -> None:
        self._closed = True
        self._disarm()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
