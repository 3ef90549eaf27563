"""Parents' acknowledgement of a named version: the request, the answer, and reminders.

An owner sends a version: each member who receives digests gets one request (one per version
and parent, whatever is clicked twice), written as a row and sent through the outbox (its
channels, fall-back and pacing; a WhatsApp template `WHATSAPP_ACKNOWLEDGEMENT_TEMPLATE` in
their language) with a link to `/ack/<id>`. The parent reads the version in their language
and answers "I have read this IEP" or "I have a question" (the comment reaches the team
in-app). The row keeps who, when, which version with its content hash, and the channel the
request went through.

Reminders are a durable schedule: each pending row holds the time its next reminder is due
(indexed). A reminder's outbox key is `ack:<id>:<n>`, so writing it twice writes it once; the
row then moves to its next due time with a conditional update that only one caller, of any
server process, can win. An answer clears the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from collab_server.audit import AuditAction, AuditEvent, AuditRecorder
from integrations.contracts import (
    Clock,
    Language,
    Message,
    MessageKind,
    Notifier,
    OutboxEntry,
    OutboxState,
    Person,
    RecipientDirectory,
)
from integrations.digest import flatten, isolate
from integrations.record_contracts import Acknowledgement, AckState, RecordStore, Version

log = structlog.get_logger("collab.integrations.acknowledgement")

MAX_COMMENT = 2000
_REMINDER_BATCH = 100
_IDLE_WAIT_SECONDS = 60.0

PHRASES: dict[Language, dict[str, str]] = {
    Language.ENGLISH: {
        "subject": "Please read and acknowledge: {title}",
        "reminder_subject": "Reminder: please read and acknowledge {title}",
        "body": (
            "{title}, version “{version}”, is ready for you to read. Open it and press "
            "“I have read this IEP” or “I have a question”: {link}"
        ),
        "reminder": "Reminder: {body}",
        "untitled": "your child's IEP",
        "question_title": "{name} has a question about “{version}”",
    },
    Language.ARABIC: {
        "subject": "يرجى الاطلاع والتأكيد: {title}",
        "reminder_subject": "تذكير: يرجى الاطلاع على {title}",
        "body": (
            "النسخة «{version}» من {title} جاهزة للاطلاع. افتحها واضغط «اطلعت على الخطة» "
            "أو «لدي سؤال»: {link}"
        ),
        "reminder": "تذكير: {body}",
        "untitled": "خطة طفلك التربوية",
        "question_title": "لدى {name} سؤال حول «{version}»",
    },
}


@dataclass(frozen=True, slots=True)
class AckPolicy:
    public_url: str = "http://127.0.0.1:8000"
    remind_after_seconds: float = 3 * 86400.0
    max_reminders: int = 2

    def link(self, ack_id: str) -> str:
        return f"{self.public_url.rstrip('/')}/ack/{ack_id}"


class NotTheRecipient(Exception):
    """Only the parent a request was sent to may answer it."""


class AlreadyAnswered(Exception):
    pass


def render_request(
    person: Person, title: str, version: Version, link: str, *, reminder: bool
) -> Message:
    phrases = PHRASES[person.language]
    shown = isolate(title) if title else phrases["untitled"]
    body = phrases["body"].format(title=shown, version=isolate(version.name), link=link)
    if reminder:
        body = phrases["reminder"].format(body=body)
    subject = phrases["reminder_subject" if reminder else "subject"].format(
        title=title or phrases["untitled"]
    )
    return Message(
        language=person.language,
        subject=subject,
        text=body,
        template_params=(flatten(shown), flatten(version.name), link),
        link=link,
    )


EntryLookup = Callable[[str], Awaitable[OutboxEntry | None]]


class AcknowledgementService:
    def __init__(
        self,
        records: RecordStore,
        directory: RecipientDirectory,
        *,
        enqueue: Callable[[OutboxEntry], Awaitable[bool]],
        outbox_entry: EntryLookup,
        wake_outbox: Callable[[], None],
        notifier: Notifier,
        audit: AuditRecorder,
        clock: Clock,
        policy: AckPolicy,
        run_loop: bool = True,
    ) -> None:
        self.records = records
        self.directory = directory
        self.enqueue = enqueue
        self.outbox_entry = outbox_entry
        self.wake_outbox = wake_outbox
        self.notifier = notifier
        self.audit = audit
        self.clock = clock
        self.policy = policy
        self.run_loop = run_loop
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- sending -------------------------------------------------------------------------

    async def send(
        self,
        version: Version,
        title: str,
        *,
        requested_by: str | None,
        address: str | None,
    ) -> list[Acknowledgement]:
        """Ask each digest recipient of the document; returns the requests made now."""
        now = self.clock.now()
        people: dict[str, Person] = {}
        for user_id in await self.directory.digest_recipient_ids(version.document):
            person = await self.directory.person(user_id)
            if person is not None:
                people[user_id] = person
        requests = [
            Acknowledgement(
                id=secrets.token_urlsafe(18),
                document=version.document,
                version_id=version.id,
                recipient_id=user_id,
                requested_by=requested_by,
                requested_at=now,
                content_sha256=version.content_sha256,
                next_reminder_at=(
                    now + self.policy.remind_after_seconds if self.policy.max_reminders else None
                ),
            )
            for user_id in people
        ]
        inserted = set(await self.records.add_acknowledgements(requests))
        made = [r for r in requests if r.id in inserted]
        for ack in made:
            await self._enqueue(ack, people[ack.recipient_id], version, title, number=0)
            self.audit.record(
                AuditEvent(
                    version.document,
                    AuditAction.ACKNOWLEDGEMENT_SENT,
                    requested_by,
                    None,
                    address,
                    now,
                    {"version_id": version.id, "recipient_id": ack.recipient_id, "ack_id": ack.id},
                )
            )
        await self.audit.flush()
        if made:
            self.wake_outbox()
            self._wake.set()
        log.info("acknowledgements_sent", document=version.document, requests=len(made))
        return made

    async def _enqueue(
        self, ack: Acknowledgement, person: Person, version: Version, title: str, *, number: int
    ) -> bool:
        channels = person.delivery_channels()
        if not channels:
            return False
        now = self.clock.now()
        return await self.enqueue(
            OutboxEntry(
                key=f"ack:{ack.id}:{number}",
                document=ack.document,
                recipient_id=ack.recipient_id,
                kind=MessageKind.ACKNOWLEDGEMENT,
                message=render_request(
                    person, title, version, self.policy.link(ack.id), reminder=number > 0
                ),
                channels=channels,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )

    # -- answers -------------------------------------------------------------------------

    async def delivered_via(self, ack_id: str) -> str | None:
        """The channel that delivered the request (its first message), if one did."""
        entry = await self.outbox_entry(f"ack:{ack_id}:0")
        if entry is None or entry.state is not OutboxState.SENT or entry.channel is None:
            return None
        return entry.channel.value

    async def answer(
        self,
        ack: Acknowledgement,
        *,
        user_id: str,
        state: AckState,
        comment: str | None,
        version: Version,
        address: str | None,
    ) -> Acknowledgement:
        if user_id != ack.recipient_id:
            raise NotTheRecipient()
        if state is AckState.PENDING:
            raise ValueError("an answer is acknowledged or question")
        comment = (comment or "").strip()[:MAX_COMMENT] or None
        channel = await self.delivered_via(ack.id)
        now = self.clock.now()
        if not await self.records.answer_acknowledgement(ack.id, state, comment, channel, now):
            raise AlreadyAnswered()
        person = await self.directory.person(user_id)
        name = person.name if person else user_id
        await self.audit.record_now(
            AuditEvent(
                ack.document,
                AuditAction.ACKNOWLEDGEMENT_ANSWERED,
                user_id,
                name,
                address,
                now,
                {
                    "version_id": ack.version_id,
                    "ack_id": ack.id,
                    "answer": state.value,
                    "content_sha256": ack.content_sha256,
                    "channel": channel or "",
                },
            )
        )
        if state is AckState.QUESTION:
            for editor in await self.directory.editors(ack.document):
                phrases = PHRASES[editor.language]
                await self.notifier.notify(
                    editor.user_id,
                    document=ack.document,
                    kind="acknowledgement_question",
                    title=phrases["question_title"].format(
                        name=isolate(name), version=isolate(version.name)
                    ),
                    body=comment or "",
                    data={"version_id": ack.version_id, "ack_id": ack.id, "from_user_id": user_id},
                )
        answered = await self.records.acknowledgement(ack.id)
        assert answered is not None
        return answered

    # -- reminders -----------------------------------------------------------------------

    async def run_reminders(self) -> int:
        """Send every reminder that is due; returns how many this process claimed."""
        sent = 0
        now = self.clock.now()
        for ack in await self.records.due_reminders(now, _REMINDER_BATCH):
            if ack.next_reminder_at is None:
                continue
            number = ack.reminders_sent + 1
            person = await self.directory.person(ack.recipient_id)
            found = await self.records.version(ack.document, ack.version_id)
            following = (
                now + self.policy.remind_after_seconds
                if number < self.policy.max_reminders
                else None
            )
            if person is not None and found is not None:
                version = found[0]
                title = await self._title(found[1])
                # Written before the claim: a crash in between writes the same key again.
                await self._enqueue(ack, person, version, title, number=number)
            if await self.records.claim_reminder(ack.id, ack.next_reminder_at, following):
                sent += 1
                self.audit.record(
                    AuditEvent(
                        ack.document,
                        AuditAction.ACKNOWLEDGEMENT_REMINDED,
                        None,
                        None,
                        None,
                        now,
                        {"ack_id": ack.id, "recipient_id": ack.recipient_id, "n": str(number)},
                    )
                )
        if sent:
            self.wake_outbox()
        return sent

    @staticmethod
    async def _title(state: bytes) -> str:
        from integrations.iep_content import content_of_state, display

        data = await asyncio.to_thread(content_of_state, state)
        meta = data.get("meta")
        return display(meta.get("title")) if isinstance(meta, dict) else ""

    async def start(self) -> None:
        if self.run_loop:
            await self.start_jobs()

    async def start_jobs(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="acknowledgement-reminders")

    async def stop_jobs(self) -> None:
        await self.aclose()

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_reminders()
                due = await self.records.next_reminder_due()
            except Exception:
                log.exception("acknowledgement_reminders_failed")
                due = None
            wait = _IDLE_WAIT_SECONDS
            if due is not None:
                wait = min(wait, max(0.0, due - self.clock.now()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
