"""Scheduling, moving, confirming and completing therapy sessions, and what follows each.

Every change is one store transaction holding the session, the events that show it live
(`student:<id>` and `therapist:<user id>` topics), the jobs it schedules (reminders, a moved
notice, progress updates) and the withdrawal of jobs it makes pointless. After the commit the
hub is told to deliver the events, the job runner to re-arm, and Supabase Realtime (when
configured) receives the same change on `sessions:<student id>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from collab_server.events import EventHub, NewEvent
from collab_server.identity import Caller
from integrations.contracts import (
    Channel,
    Clock,
    Message,
    MessageKind,
    Notifier,
    OutboxEntry,
    Person,
    RecipientDirectory,
)
from integrations.digest import QuietHours, quiet_hours_of
from integrations.sessions import messages
from integrations.sessions.jobs import JobRunner
from integrations.sessions.policy import StudentAccess
from integrations.sessions.records import (
    Attention,
    Change,
    Job,
    JobKind,
    JobState,
    NewJob,
    SessionStatus,
    SessionStore,
    TherapySession,
)
from integrations.sessions.student import StudentProfile
from integrations.settings import NotificationSettings

log = structlog.get_logger("collab.integrations.sessions")

StudentReader = Callable[[str], Awaitable[StudentProfile | None]]


class Broadcaster(Protocol):
    async def send(self, topic: str, event: str, payload: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    kinds: tuple[str, ...] = ("speech", "occupational", "behavioural", "physical", "psychological")
    reminder_lead_hours: tuple[int, ...] = (24, 2)  # longest first
    max_lateness_seconds: float = 1800.0
    progress_delay_seconds: float = 1800.0
    quiet_hours: QuietHours | None = None
    # Approved WhatsApp templates; None: session messages skip WhatsApp.
    reminder_template: str | None = None
    moved_template: str | None = None
    progress_template: str | None = None
    public_url: str = "http://127.0.0.1:8000"

    @property
    def whatsapp(self) -> bool:
        return self.reminder_template is not None


def iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat().replace("+00:00", "Z")


class SessionService:
    def __init__(
        self,
        store: SessionStore,
        hub: EventHub,
        students: StudentAccess,
        read_student: StudentReader,
        *,
        directory: RecipientDirectory,
        clock: Clock,
        policy: SessionPolicy,
        notifier: Notifier | None = None,
        broadcaster: Broadcaster | None = None,
        outbox_changed: Callable[[], None] | None = None,
        timers: bool = True,
    ) -> None:
        self.store = store
        self.hub = hub
        self.students = students
        self.read_student = read_student
        self.directory = directory
        self.clock = clock
        self.policy = policy
        self.notifier = notifier
        self.outbox_changed = outbox_changed
        self.jobs = JobRunner(store, clock, self.run_job, timers=timers)
        self._realtime = _RealtimeBridge(broadcaster) if broadcaster is not None else None

    async def start(self) -> None:
        await self.jobs.start()

    async def aclose(self) -> None:
        await self.jobs.aclose()
        if self._realtime is not None:
            await self._realtime.aclose()

    # -- reading ----------------------------------------------------------------------------

    async def to_json(
        self, session: TherapySession, student_name: str | None = None
    ) -> dict[str, Any]:
        if student_name is None:
            profile = await self.read_student(session.student_id)
            student_name = profile.name if profile else ""
        names = []
        for therapist in session.therapist_ids:
            person = await self.directory.person(therapist)
            names.append(person.name if person else therapist)
        return {
            "id": session.id,
            "student_id": session.student_id,
            "student_name": student_name,
            "therapists": list(session.therapist_ids),
            "therapist_names": names,
            "starts_at": iso(session.starts_at),
            "ends_at": iso(session.ends_at),
            "duration_minutes": session.duration_minutes,
            "place": {session.place_kind.value: session.place},
            "kind": session.kind,
            "status": session.status.value,
            "goals": list(session.goal_ids),
            "note": session.note,
            "measurements": [m.to_json() for m in session.measurements],
            "attention": session.attention.value if session.attention else None,
            "version": session.version,
            "updated_at": iso(session.updated_at),
        }

    # -- writing ----------------------------------------------------------------------------

    def new_id(self) -> str:
        return uuid.uuid4().hex

    async def write(
        self,
        session: TherapySession,
        change: str,
        *,
        before: TherapySession | None,
        student: StudentProfile | None,
        jobs: Sequence[NewJob] = (),
        cancel_jobs: bool = False,
    ) -> TherapySession:
        """Store `session` (new when `before` is None) with its events and jobs."""
        now = self.clock.now()
        body = {
            "change": change,
            "session": await self.to_json(session, student.name if student else ""),
        }
        therapists = dict.fromkeys(
            [*session.therapist_ids, *(before.therapist_ids if before else ())]
        )
        events = [NewEvent.of(f"student:{session.student_id}", f"session.{change}", body, now)]
        events += [
            NewEvent.of(f"therapist:{t}", f"session.{change}", body, now) for t in therapists
        ]
        position = await self.store.write(
            Change(
                session,
                events,
                jobs,
                cancel_jobs=cancel_jobs,
                expected_version=before.version if before else None,
            )
        )
        self.hub.announce(position)
        for job in jobs:
            self.jobs.added(job.due_at)
        if self._realtime is not None:
            self._realtime.send(f"sessions:{session.student_id}", body)
        log.info("session_written", session=session.id, change=change, version=session.version)
        return session

    def reminder_jobs(self, session: TherapySession) -> list[NewJob]:
        now = self.clock.now()
        return [
            NewJob(
                JobKind.REMINDER,
                session.student_id,
                session.starts_at - hours * 3600,
                session.id,
                slot=f"{hours}h@{int(session.starts_at)}",
            )
            for hours in self.policy.reminder_lead_hours
            if session.starts_at - hours * 3600 > now
        ]

    def moved_job(self, session: TherapySession, before: TherapySession) -> NewJob:
        return NewJob(
            JobKind.MOVED,
            session.student_id,
            self.clock.now(),
            session.id,
            slot=f"v{session.version}@{int(before.starts_at)}",
        )

    async def progress_jobs(self, session: TherapySession) -> list[NewJob]:
        """One update per parent and local day: a later note of the day joins a pending one."""
        now = self.clock.now()
        jobs = []
        for parent in await self.students.parents(session.student_id):
            person = await self.directory.person(parent)
            if person is None:
                continue
            due = now + self.policy.progress_delay_seconds
            quiet = quiet_hours_of(person, self.policy.quiet_hours)
            if quiet is not None:
                due = quiet.release(due, person.timezone)
            jobs.append(
                NewJob(
                    JobKind.PROGRESS,
                    session.student_id,
                    due,
                    recipient_id=parent,
                    slot=messages.local_day(person, session.starts_at),
                )
            )
        return jobs

    # -- parents' answers -------------------------------------------------------------------

    async def answer(self, person: Person, payload: str) -> bool:
        """A reminder's quick reply: confirm, or flag for the front desk. False if ignored."""
        confirm = payload.startswith(messages.CONFIRM_PAYLOAD)
        session_id = payload.split(":", 1)[1] if ":" in payload else ""
        session = await self.store.session(session_id)
        if session is None or not session.status.upcoming:
            log.info("session_answer_ignored", session=session_id)
            return False
        if await self.students.role(Caller(person.user_id), session.student_id) is None:
            log.warning("session_answer_from_non_member", session=session_id)
            return False
        student = await self.read_student(session.student_id)
        now = self.clock.now()
        if confirm:
            if session.status is SessionStatus.CONFIRMED and session.attention is None:
                return True
            updated = dataclasses.replace(
                session,
                status=SessionStatus.CONFIRMED,
                attention=None,
                version=session.version + 1,
                updated_at=now,
            )
            await self.write(updated, "confirmed", before=session, student=student)
            return True
        updated = dataclasses.replace(
            session,
            attention=Attention.PARENT_CANNOT_COME,
            version=session.version + 1,
            updated_at=now,
        )
        await self.write(updated, "flagged", before=session, student=student)
        if self.notifier is not None:
            for therapist in session.therapist_ids:
                await self.notifier.notify(
                    therapist,
                    document=session.student_id,
                    kind="session_flagged",
                    title=person.name,
                    body=f"cannot come: {iso(session.starts_at)}",
                    data={"session": session.id},
                )
        return True

    # -- jobs -------------------------------------------------------------------------------

    async def run_job(self, job: Job) -> None:
        now = self.clock.now()
        if job.kind is JobKind.PROGRESS:
            entries = await self._progress_messages(job, now)
        else:
            late = now - job.due_at
            if late > self.policy.max_lateness_seconds:
                log.warning(
                    "session_reminder_dropped_late",
                    job=job.id,
                    kind=job.kind.value,
                    session=job.session_id,
                    late_seconds=round(late),
                )
                await self.store.finish_job(job.id, JobState.DROPPED)
                return
            session = await self.store.session(job.session_id)
            if session is None or not session.status.upcoming or not _same_time(job, session):
                await self.store.finish_job(job.id, JobState.CANCELLED)
                return
            entries = await self._session_messages(job, session, now)
        if await self.store.finish_job(job.id, JobState.DONE, entries):
            log.info("session_job_done", job=job.id, kind=job.kind.value, messages=len(entries))
            if entries and self.outbox_changed is not None:
                self.outbox_changed()

    async def _session_messages(
        self, job: Job, session: TherapySession, now: float
    ) -> list[OutboxEntry]:
        student = await self.read_student(session.student_id)
        name = student.name if student else ""
        therapists = []
        for therapist in session.therapist_ids:
            person = await self.directory.person(therapist)
            therapists.append(person.name if person else therapist)
        shortest = min(self.policy.reminder_lead_hours, default=0)
        urgent = job.kind is JobKind.MOVED or job.slot.startswith(f"{shortest}h@")
        entries = []
        for parent in await self.students.parents(session.student_id):
            person = await self.directory.person(parent)
            if person is None:
                continue
            send_at = now
            quiet = quiet_hours_of(person, self.policy.quiet_hours)
            if not urgent and quiet is not None:
                send_at = quiet.release(now, person.timezone)
                if send_at > session.starts_at - shortest * 3600:
                    continue  # the last reminder will reach them instead
            if job.kind is JobKind.REMINDER:
                message = messages.reminder(
                    session, name, therapists, person, self.policy.reminder_template or ""
                )
                kind = MessageKind.REMINDER
            else:
                before = float(job.slot.split("@", 1)[1])
                message = messages.moved(
                    session, before, name, person, self.policy.moved_template or ""
                )
                kind = MessageKind.SESSION_NOTICE
            entry = self._entry(
                f"session:{session.id}:{job.slot}:{parent}",
                session.student_id,
                person,
                kind,
                message,
                send_at=send_at,
                now=now,
            )
            if entry is not None:
                entries.append(entry)
        return entries

    async def _progress_messages(self, job: Job, now: float) -> list[OutboxEntry]:
        person = await self.directory.person(job.recipient_id)
        student = await self.read_student(job.student_id)
        if person is None:
            return []
        points = await self.store.goal_points(job.student_id)
        today = [p for p in points if messages.local_day(person, p.at) == job.slot]
        if not today:
            return []
        first_today = min(p.at for p in today)
        goals = student.goals if student else {}
        progress = []
        for goal_id in dict.fromkeys(p.measurement.goal_id for p in today):
            latest = [p for p in today if p.measurement.goal_id == goal_id][-1]
            earlier = [p for p in points if p.measurement.goal_id == goal_id and p.at < first_today]
            goal = goals.get(goal_id)
            progress.append(
                messages.GoalProgress(
                    goal.title if goal else goal_id,
                    latest.measurement.value,
                    latest.measurement.unit,
                    (earlier[-1].measurement.value, earlier[-1].at) if earlier else None,
                    goal.target if goal else None,
                )
            )
        sessions = len({p.session_id for p in today})
        link = f"{self.policy.public_url.rstrip('/')}/sessions?student={job.student_id}"
        message = messages.progress(
            student.name if student else "",
            sessions,
            progress,
            person,
            template=self.policy.progress_template or "",
            link=link,
        )
        send_at = now
        quiet = quiet_hours_of(person, self.policy.quiet_hours)
        if quiet is not None:
            send_at = quiet.release(now, person.timezone)
        entry = self._entry(
            f"progress:{job.student_id}:{person.user_id}:{job.slot}",
            job.student_id,
            person,
            MessageKind.PROGRESS,
            message,
            send_at=send_at,
            now=now,
        )
        return [entry] if entry is not None else []

    def _entry(
        self,
        key: str,
        document: str,
        person: Person,
        kind: MessageKind,
        message: Message,
        *,
        send_at: float,
        now: float,
    ) -> OutboxEntry | None:
        channels = tuple(
            c
            for c in person.delivery_channels()
            if c is not Channel.WHATSAPP or self.policy.whatsapp
        )
        if not channels:
            return None
        return OutboxEntry(
            key=key,
            document=document,
            recipient_id=person.user_id,
            kind=kind,
            message=message,
            channels=channels,
            next_attempt_at=send_at,
            use_template=bool(message.buttons) or kind is not MessageKind.PROGRESS,
            created_at=now,
            updated_at=now,
        )


def _same_time(job: Job, session: TherapySession) -> bool:
    """A reminder is for the time it was scheduled for (a move writes new ones)."""
    if job.kind is not JobKind.REMINDER:
        return True
    return job.slot.endswith(f"@{int(session.starts_at)}")


class _RealtimeBridge:
    """Supabase Realtime broadcasts in commit order, off the request path, bounded."""

    LIMIT = 1000

    def __init__(self, broadcaster: Broadcaster) -> None:
        self.broadcaster = broadcaster
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(self.LIMIT)
        self._task: asyncio.Task[None] | None = None

    def send(self, topic: str, payload: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait((topic, payload))
        except asyncio.QueueFull:
            log.warning("realtime_session_broadcast_dropped", topic=topic)
            return
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            topic, payload = await self._queue.get()
            try:
                await self.broadcaster.send(topic, "session", payload)
            except Exception as exc:
                log.warning("realtime_session_broadcast_failed", error=type(exc).__name__)
            finally:
                self._queue.task_done()

    async def idle(self) -> None:
        await self._queue.join()

    async def aclose(self) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), 2.0)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def policy_from_settings(settings: NotificationSettings) -> SessionPolicy:
    return SessionPolicy(
        kinds=settings.session_kind_names,
        reminder_lead_hours=settings.reminder_lead_hours,
        max_lateness_seconds=settings.reminder_max_lateness_minutes * 60,
        progress_delay_seconds=settings.progress_update_delay_minutes * 60,
        quiet_hours=QuietHours.parse(settings.quiet_hours_spec),
        reminder_template=settings.whatsapp_reminder_template,
        moved_template=settings.whatsapp_session_moved_template,
        progress_template=settings.whatsapp_progress_template,
        public_url=settings.public_url,
    )
