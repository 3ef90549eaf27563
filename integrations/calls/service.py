"""Starting a call, ringing, answers, and the note a missed call leaves in the thread.

A call belongs to a student: whoever may read the student's thread may be rung and may join
(a parent only their own child's). Rings reach the person's open pages as `call.ring` events
on their `user:` topic and their browsers by push; a ring nobody answers within
`RING_SECONDS`, or still ringing when the call ends, becomes a note in the thread, written once
(the store hands each ring out once, whichever process asks).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import quote

import structlog

from collab_server.events import NewEvent
from collab_server.identity import Caller, Role
from integrations.calls.ice import IceConfig, ice_servers
from integrations.calls.records import Answer, CallQuota, CallStore, Ring, TooManyCalls
from integrations.contracts import Clock
from integrations.push import WebPusher
from integrations.sessions.policy import StudentAccess
from integrations.threads.service import ThreadService

log = structlog.get_logger("collab.calls")

RING_SECONDS = 45.0
MAX_INVITEES = 5  # six people in a call at most
# Calls one person may start: each rings phones (a push) as well as pages.
MAX_CALLS = 10
CALLS_WINDOW_SECONDS = 600
SWEEP_SECONDS = 5.0
CALL_ID = re.compile(r"^[A-Za-z0-9_-]{16,40}$")


class BadCall(ValueError):
    """A call the API refuses (422), naming the field at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def is_call_id(value: str) -> bool:
    return CALL_ID.fullmatch(value) is not None


class CallService:
    def __init__(
        self,
        store: CallStore,
        students: StudentAccess,
        threads: ThreadService,
        *,
        announce: Callable[[int], None],
        pusher: Callable[[], WebPusher | None],
        ice: IceConfig,
        clock: Clock,
        timers: bool = True,
    ) -> None:
        self.store = store
        self.students = students
        self.threads = threads
        self.announce = announce
        self.pusher = pusher  # read when ringing: push is attached after start-up
        self.ice = ice
        self.clock = clock
        self.timers = timers
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.timers:
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="call-rings")

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    async def people(self, caller: Caller, student_id: str) -> list[dict[str, Any]]:
        """Who the caller may ring for this student: the thread's members but themselves."""
        await self.students.require_view(caller, student_id)
        found = []
        for member in await self.students.access.members(student_id):
            if member.user_id == caller.user_id:
                continue
            found.append(
                {
                    "user_id": member.user_id,
                    "name": await self.name(member.user_id),
                    "family": member.role is Role.VIEWER,
                }
            )
        return sorted(found, key=lambda p: (p["family"], p["name"]))

    async def ring(self, caller: Caller, student_id: str, invitees: Sequence[str]) -> str:
        """Start a call and ring `invitees`; the call's id."""
        await self.students.require_view(caller, student_id)
        wanted = list(dict.fromkeys(u for u in invitees if u != caller.user_id))
        if not wanted:
            raise BadCall("choose someone to call", "invite")
        if len(wanted) > MAX_INVITEES:
            raise BadCall(f"at most {MAX_INVITEES} people in one call", "invite")
        members = {m.user_id for m in await self.students.access.members(student_id)}
        # Development mode lets anyone in (as it lets anyone read): anyone may be rung then.
        strangers = [u for u in wanted if u not in members]
        if strangers and not self.students.development_mode:
            raise BadCall("only the student's team and family can be called", "invite")
        call_id = secrets.token_urlsafe(18)
        now = self.clock.now()
        caller_name = await self.name(caller.user_id)
        student_name = await self._student_name(student_id)
        ring_data = _ring_json(call_id, student_id, student_name, caller_name, caller.user_id)
        events = [NewEvent.of(f"user:{u}", "call.ring", ring_data, now) for u in wanted]
        rings = [Ring(call_id, student_id, caller.user_id, u, now) for u in wanted]
        quota = CallQuota(MAX_CALLS, now - CALLS_WINDOW_SECONDS)
        try:
            self.announce(await self.store.keep(rings, events, quota))
        except TooManyCalls:
            minutes = CALLS_WINDOW_SECONDS // 60
            raise TooManyCalls(
                f"at most {MAX_CALLS} calls in {minutes} minutes: wait a little"
            ) from None
        pusher = self.pusher()
        if pusher is not None:
            url = f"/doc/{quote(student_id)}#call={call_id}"
            for user_id in wanted:
                try:
                    await pusher.push(
                        user_id,
                        {"title": caller_name, "body": f"📞 {student_name}", "url": url},
                    )
                except Exception:
                    log.exception("call_push_failed")
        log.info("call_rang", student=student_id, invited=len(wanted))
        return call_id

    async def ringing(self, caller: Caller) -> list[dict[str, Any]]:
        """The caller's rings still sounding: a page opened after the ring shows them too."""
        found = []
        for ring in await self.store.ringing(caller.user_id, self.clock.now() - RING_SECONDS):
            student_name = await self._student_name(ring.student_id)
            caller_name = await self.name(ring.caller_id)
            found.append(
                _ring_json(ring.call_id, ring.student_id, student_name, caller_name, ring.caller_id)
            )
        return found

    async def decline(self, caller: Caller, student_id: str, call_id: str) -> None:
        await self.students.require_view(caller, student_id)
        await self._answer(call_id, caller.user_id, Answer.DECLINED)

    async def joined(self, caller: Caller, call_id: str) -> None:
        await self._answer(call_id, caller.user_id, Answer.JOINED)

    async def ended(self, student_id: str, call_id: str) -> None:
        """The last person left: whoever is still being rung missed it."""
        for ring in await self.store.rang(call_id):
            if ring.answer is None and ring.student_id == student_id:
                before = await self.store.answer(call_id, ring.user_id, Answer.MISSED)
                if before is not None and before.answer is None:
                    await self._missed(ring)

    def servers(self, caller: Caller) -> list[dict[str, Any]]:
        return ice_servers(self.ice, caller.user_id, self.clock.now())

    async def sweep(self) -> int:
        """Rings unanswered for `RING_SECONDS`: missed. How many."""
        missed = await self.store.take_missed(self.clock.now() - RING_SECONDS, 100)
        for ring in missed:
            await self._missed(ring)
        return len(missed)

    async def name(self, user_id: str) -> str:
        return await self.threads.name(user_id)

    async def _answer(self, call_id: str, user_id: str, answer: Answer) -> None:
        before = await self.store.answer(call_id, user_id, answer)
        if before is None or before.answer is not None:
            return
        # The person's other tabs stop ringing; the caller hears of a decline.
        now = self.clock.now()
        data = {"call": call_id, "answer": answer.value, "user_id": user_id}
        events = [NewEvent.of(f"user:{user_id}", "call.answered", data, now)]
        if answer is Answer.DECLINED:
            declined = {**data, "name": await self.name(user_id)}
            events.append(NewEvent.of(f"user:{before.caller_id}", "call.declined", declined, now))
        self.announce(await self.store.keep([], events))

    async def _missed(self, ring: Ring) -> None:
        member = await self.students.access.member(ring.student_id, ring.user_id)
        family = member is not None and member.role is Role.VIEWER
        name = await self.name(ring.user_id)
        await self.threads.note(
            ring.student_id,
            ring.caller_id,
            f"📞 {name}: missed call · مكالمة فائتة",
            tell_family=family,  # a parent who missed it hears of it on their channel
        )
        # Then the person's pages stop ringing (the note is there when they look).
        data = {"call": ring.call_id, "answer": Answer.MISSED.value, "user_id": ring.user_id}
        event = NewEvent.of(f"user:{ring.user_id}", "call.answered", data, self.clock.now())
        self.announce(await self.store.keep([], [event]))

    async def _student_name(self, student_id: str) -> str:
        profile = await self.threads.read_student(student_id)
        return profile.name if profile is not None and profile.name else student_id

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep()
            except Exception:
                log.exception("call_sweep_failed")


def _ring_json(
    call_id: str, student_id: str, student_name: str, caller_name: str, caller_id: str
) -> dict[str, Any]:
    """A ring as pages show it (the `call.ring` event's data)."""
    return {
        "call": call_id,
        "student_id": student_id,
        "student": student_name,
        "from": caller_name,
        "from_id": caller_id,
    }
