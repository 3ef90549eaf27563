"""What a call leaves behind: who was rung, by whom, and how they answered (for the missed-call
note). The call itself (who is in it, its signalling) is never stored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from collab_server.events import NewEvent


class Answer(StrEnum):
    JOINED = "joined"
    DECLINED = "declined"
    MISSED = "missed"


@dataclass(frozen=True, slots=True)
class Ring:
    call_id: str
    student_id: str
    caller_id: str
    user_id: str  # who was rung
    at: float
    answer: Answer | None = None


class TooManyCalls(Exception):
    """The caller started their quota of calls lately; nothing was kept."""


@dataclass(frozen=True, slots=True)
class CallQuota:
    """At most `most` calls started by the caller since `since` (this one included)."""

    most: int
    since: float


class CallStore(Protocol):
    async def keep(
        self, rings: Sequence[Ring], events: Sequence[NewEvent], quota: CallQuota | None = None
    ) -> int:
        """Keep the rings and append their events in one transaction; the events' position.
        With a `quota`, raise `TooManyCalls` instead when the rings' caller has used it up
        (counted in the same transaction)."""

    async def answer(self, call_id: str, user_id: str, answer: Answer) -> Ring | None:
        """Record the first answer of a ring (later ones change nothing); the ring as it was
        before, or None when `user_id` was not rung for this call."""

    async def rang(self, call_id: str) -> list[Ring]:
        """Everyone rung for the call."""

    async def ringing(self, user_id: str, rung_since: float) -> list[Ring]:
        """The person's rings still unanswered, rung since `rung_since`, oldest first."""

    async def take_missed(self, rung_before: float, limit: int) -> list[Ring]:
        """Mark rings unanswered since before `rung_before` missed and return them; each ring
        is returned once, whichever process asks."""
