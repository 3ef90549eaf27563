"""Background jobs on one process of a cluster: the holder of the jobs lock runs them.

Digest windows, the outbox, acknowledgement and session reminders must each run on exactly
one process at a time. `JobsLeader` tries a lock every `interval` seconds (an advisory lock in
Postgres: it ends with its database session, so a dead leader's lock is free at once) and
starts the jobs on the process that holds it; the others take over within `interval` of it
dying. One process alone runs its jobs itself and needs none of this.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Protocol

import structlog

log = structlog.get_logger("collab.leadership")


class JobsLock(Protocol):
    async def try_acquire(self) -> bool:
        """True if this process holds the lock now (already, or taken just now)."""

    async def release(self) -> None: ...

    async def aclose(self) -> None: ...


class Jobs(Protocol):
    """Work that runs on the leader only."""

    async def start_jobs(self) -> None: ...

    async def stop_jobs(self) -> None: ...


class JobsLeader:
    """A `Service`: leads the jobs while it holds the lock."""

    def __init__(self, lock: JobsLock, jobs: Sequence[Jobs], *, interval: float = 1.0) -> None:
        self.lock = lock
        self.jobs = list(jobs)
        self.interval = interval
        self.leading = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="jobs-leader")

    async def _run(self) -> None:
        while True:
            try:
                held = await self.lock.try_acquire()
            except Exception:
                log.exception("jobs_lock_failed")
                held = False
            if held and not self.leading:
                self.leading = True
                log.info("jobs_leading")
                for job in self.jobs:
                    await job.start_jobs()
            elif not held and self.leading:
                self.leading = False
                log.warning("jobs_leadership_lost")
                for job in reversed(self.jobs):
                    await job.stop_jobs()
            await asyncio.sleep(self.interval)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.leading:
            self.leading = False
            for job in reversed(self.jobs):
                await job.stop_jobs()
        await self.lock.aclose()
