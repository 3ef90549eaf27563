"""A bound on the sync step 2 replies held at once, across documents: a join storm's memory.

A joiner's step 2 is the document (or the part it lacks): a burst of joiners to a large
document each got theirs computed, framed and queued in their socket's send buffer at once,
and memory grew with the number of joiners. Here a reply is counted from the moment it is
computed until its socket's send buffer has drained (the transport's low-water mark, which
uvicorn's `writable` flag shows), the socket is gone, or `patience_seconds` passed (a reader
slower than that keeps its bytes, within the per-socket backlog limit, but no longer holds up
the others). A joiner whose turn has not come waits in line holding nothing but its state
vector. One reply always goes out, however large, so a document over the budget still opens.
Serving joiners in order also lets the first ones finish early instead of all at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import deque
from collections.abc import Callable

from collab_server.connection import Connection

UNBOUNDED = sys.maxsize


class JoinBudget:
    def __init__(self, limit_bytes: int, patience_seconds: float = 30.0) -> None:
        self.limit_bytes = limit_bytes
        self.patience_seconds = patience_seconds
        self.in_use = 0  # bytes of replies computed and not yet drained
        self.peak = 0  # the most `in_use` has been (for operators and tests)
        self._waiting: deque[Callable[[], None]] = deque()
        self._admitting = False
        self._draining: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def admit(self, answer: Callable[[], None]) -> None:
        """Call `answer` now if there is room and nobody is ahead, else in turn (it must not
        raise). `answer` takes what its reply holds with `take` and hands it back."""
        self._waiting.append(answer)
        self._admit_waiting()

    def take(self, nbytes: int) -> None:
        self.in_use += nbytes
        self.peak = max(self.peak, self.in_use)

    def give_back(self, nbytes: int) -> None:
        self.in_use -= nbytes
        self._admit_waiting()

    def give_back_when_drained(self, connection: Connection, nbytes: int) -> None:
        """Hand `nbytes` back once what was just written to `connection` has left its buffer."""
        if connection.is_drained():
            self.give_back(nbytes)
            return
        task = asyncio.get_running_loop().create_task(self._drain(connection, nbytes))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def _drain(self, connection: Connection, nbytes: int) -> None:
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(connection.drained(), self.patience_seconds)
        finally:
            self.give_back(nbytes)

    def _admit_waiting(self) -> None:
        # Not re-entered from an answer that hands its bytes straight back: one loop runs.
        if self._admitting:
            return
        self._admitting = True
        try:
            while self._waiting and self.in_use < self.limit_bytes:
                self._waiting.popleft()()
        finally:
            self._admitting = False

    async def aclose(self) -> None:
        for task in list(self._draining):
            task.cancel()
        await asyncio.gather(*self._draining, return_exceptions=True)
