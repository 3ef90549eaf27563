"""Threads: a student's family and team write to each other, in the page or on WhatsApp.

A team member's message goes to each parent through the outbox (their channels in order;
WhatsApp as free-form text inside the 24-hour window, as the approved template outside it);
a parent's message, from the page or from WhatsApp, reaches the team in-app. Every message
is announced live on the student's topic. A parent with several children at the centre who
writes on WhatsApp is asked which child it is about (a list), and the answer holds for a day.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import quote

import structlog

from collab_server.events import EventHub, NewEvent
from collab_server.identity import DEV_USER_PREFIX, Caller, Role
from collab_server.plain_text import has_control_characters
from integrations.contracts import (
    Channel,
    Clock,
    Language,
    Message,
    MessageKind,
    Notifier,
    OutboxEntry,
    Person,
    RecipientDirectory,
)
from integrations.media import ALLOWED_TYPES, MAX_MEDIA_BYTES, Media, MediaRefused, base_type
from integrations.sessions.policy import StudentAccess
from integrations.sessions.service import StudentReader
from integrations.threads.records import (
    MAX_BODY,
    MAX_HELD,
    MAX_POSTS,
    MAX_UNSENT_UPLOADS,
    POSTS_WINDOW_SECONDS,
    Attachment,
    HeldMessage,
    NewThreadMessage,
    OverQuota,
    Quota,
    Sends,
    ThreadMessage,
    ThreadStore,
)

log = structlog.get_logger("collab.integrations.threads")

WINDOW_SECONDS = 24 * 3600  # WhatsApp's customer-service window
CHOICE_SECONDS = 24 * 3600  # how long a parent's "this is about <child>" holds
CHOICE_PAYLOAD = "thread-child:"  # a list reply's id: which child a message is about
PAGE = 50

SUBJECTS = {
    Language.ENGLISH: "New message about {student}",
    Language.ARABIC: "رسالة جديدة بخصوص {student}",
}
WHICH_CHILD = {
    Language.ENGLISH: ("Which child is your message about?", "Choose"),
    Language.ARABIC: ("عن أي طفل رسالتك؟", "اختر"),
}


class BadMessage(ValueError):
    """A message or file the API refuses (422), naming the field at fault."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


class TooManyMessages(Exception):
    """A person wrote their quota of messages from the page lately (429)."""

    def __init__(self, window_seconds: int) -> None:
        super().__init__(
            f"at most {MAX_POSTS} messages in {window_seconds // 60} minutes: wait a little"
        )


@dataclass(frozen=True, slots=True)
class ThreadPolicy:
    public_url: str
    message_template: str | None = None  # WhatsApp outside the window; unset: not then


LastInbound = Callable[[str], Awaitable[float | None]]
FetchMedia = Callable[[str], Awaitable[Media]]


class ThreadService:
    def __init__(
        self,
        store: ThreadStore,
        hub: EventHub,
        students: StudentAccess,
        read_student: StudentReader,
        *,
        directory: RecipientDirectory,
        notifier: Notifier,
        last_inbound: LastInbound,
        enqueue: Callable[[OutboxEntry], Awaitable[bool]],
        outbox_changed: Callable[[], None],
        clock: Clock,
        policy: ThreadPolicy,
        fetch_media: FetchMedia | None = None,
    ) -> None:
        self.store = store
        self.hub = hub
        self.students = students
        self.read_student = read_student
        self.directory = directory
        self.notifier = notifier
        self.last_inbound = last_inbound
        self.enqueue = enqueue
        self.outbox_changed = outbox_changed
        self.clock = clock
        self.policy = policy
        self.fetch_media = fetch_media  # WhatsApp's media endpoint (None: WhatsApp is off)

    # -- reading ----------------------------------------------------------------------------

    async def page(
        self, caller: Caller, student_id: str, before_id: int | None
    ) -> tuple[list[ThreadMessage], dict[str, int], dict[str, str]]:
        """Messages, read markers, and the readers' names."""
        await self.students.require_view(caller, student_id)
        found = await self.store.messages(student_id, before_id or 2**62, PAGE)
        reads = await self.store.reads(student_id)
        return found, reads, {user: await self.name(user) for user in reads}

    async def mark_read(self, caller: Caller, student_id: str, through_id: int) -> None:
        await self.students.require_view(caller, student_id)
        # Never past the newest message: a marker far ahead would hide messages not yet sent.
        newest = await self.store.messages(student_id, 2**62, 1)
        through_id = min(through_id, newest[0].id if newest else 0)
        if through_id < 1:
            return
        event = NewEvent.of(
            f"student:{student_id}",
            "thread.read",
            {
                "user_id": caller.user_id,
                "name": await self.name(caller.user_id),
                "through": through_id,
            },
            self.clock.now(),
        )
        position = await self.store.mark_read(student_id, caller.user_id, through_id, [event])
        self.hub.announce(position)

    # -- writing ----------------------------------------------------------------------------

    async def upload(self, caller: Caller, student_id: str, mime: str, data: bytes) -> int:
        """A file chosen in the page, kept until the message that carries it is sent."""
        await self.students.require_view(caller, student_id)
        if base_type(mime) not in ALLOWED_TYPES:
            raise BadMessage(f"{base_type(mime) or 'unknown'} files cannot be attached", "file")
        if not data or len(data) > MAX_MEDIA_BYTES:
            raise BadMessage("a file must be at most 16 MB", "file")
        kept = await self.store.keep_media(
            base_type(mime), data, self.clock.now(), uploaded_by=caller.user_id
        )
        # Picked and never sent: only a person's newest few are kept.
        await self.store.drop_unsent_uploads(caller.user_id, MAX_UNSENT_UPLOADS)
        return kept

    async def post(
        self, caller: Caller, student_id: str, body: str, attachment: int | None = None
    ) -> ThreadMessage:
        """A message written in the page (team or family), with a file uploaded first."""
        role = await self.students.require_view(caller, student_id)
        media = None
        if attachment is not None:
            mime = await self.store.upload_of(attachment, caller.user_id)
            if mime is None:
                raise BadMessage("not a file you uploaded for a new message", "attachment")
            media = Attachment(attachment, mime)
        text = _clean(body, allow_empty=media is not None)
        name = await self.name(caller.user_id)
        from_family = role is Role.VIEWER and not caller.is_admin
        now = self.clock.now()
        message = NewThreadMessage(
            student_id, caller.user_id, name, from_family, text, "app", now, media=media
        )
        try:
            return await self._store(message, Quota(MAX_POSTS, now - POSTS_WINDOW_SECONDS))
        except OverQuota:
            raise TooManyMessages(POSTS_WINDOW_SECONDS) from None

    async def incoming_media(
        self, person: Person, media_id: str, caption: str, whatsapp_id: str
    ) -> None:
        """A parent's photo, PDF or voice note: kept by us, then routed like a text."""
        if self.fetch_media is None:
            return
        try:
            media = await self.fetch_media(media_id)
        except MediaRefused as why:
            # The thread says a file came and why it is not here; the parent's words stay.
            note = f"[{why}]"
            await self.incoming(person, f"{caption}\n{note}".strip(), whatsapp_id)
            return
        kept = await self.store.keep_media(media.mime, media.data, self.clock.now())
        await self.incoming(person, caption, whatsapp_id, Attachment(kept, media.mime))

    async def incoming(
        self, person: Person, text: str, whatsapp_id: str, media: Attachment | None = None
    ) -> None:
        """A parent's WhatsApp text: into their child's thread, or held until they say which."""
        children = await self.students.children_of(person.user_id)
        if not children:
            log.info("thread_message_from_a_parent_of_no_child")
            return
        now = self.clock.now()
        chosen = await self.store.chosen(person.user_id, now)
        held = HeldMessage(person.user_id, whatsapp_id, text[:MAX_BODY], now, media)
        if len(children) == 1 or chosen in children:
            student = children[0] if len(children) == 1 else str(chosen)
            await self._from_whatsapp(person, student, held)
            return
        waiting = await self.store.hold(held, MAX_HELD)
        if waiting is None:
            # Never lost: every child's team sees it, and the parent is asked again.
            await self._tell_all_teams(person, children, held.body)
        elif waiting > 1:
            return  # asked already; the answer takes every waiting message along
        await self._ask_which_child(person, children, whatsapp_id, now)

    async def choose(self, person: Person, payload: str) -> None:
        """The parent picked a child from the list: their held messages go to that thread."""
        student = payload.removeprefix(CHOICE_PAYLOAD)
        if student not in await self.students.children_of(person.user_id):
            log.warning("thread_choice_of_another_child")
            return
        now = self.clock.now()
        await self.store.choose(person.user_id, student, now + CHOICE_SECONDS)
        for held in await self.store.take_held(person.user_id):
            await self._from_whatsapp(person, student, held)

    async def _from_whatsapp(self, person: Person, student: str, sent: HeldMessage) -> None:
        await self._store(
            NewThreadMessage(
                student,
                person.user_id,
                person.name,
                True,
                sent.body,
                "whatsapp",
                sent.at,
                sent.whatsapp_id,
                sent.media,
            )
        )

    async def attachment(
        self, caller: Caller, student_id: str, media_id: int
    ) -> tuple[str, bytes] | None:
        """A file of the student's thread, for those who may read the thread."""
        await self.students.require_view(caller, student_id)
        return await self.store.media(student_id, media_id)

    async def note(
        self, student_id: str, author_id: str, body: str, *, tell_family: bool
    ) -> ThreadMessage:
        """Something that happened, in the thread as the team member's (a missed call)."""
        name = await self.name(author_id)
        message = NewThreadMessage(
            student_id, author_id, name, False, _clean(body), "app", self.clock.now()
        )
        return await self._store(message, tell_family=tell_family)

    async def _store(
        self, message: NewThreadMessage, quota: Quota | None = None, *, tell_family: bool = True
    ) -> ThreadMessage:
        outbox = [] if message.from_family or not tell_family else await self._to_family(message)

        def compose(stored: ThreadMessage) -> Sends:
            event = NewEvent.of(
                f"student:{stored.student_id}", "thread.message", stored.to_json(), stored.at
            )
            return Sends([_keyed(entry, stored.id) for entry in outbox], [event])

        stored, position = await self.store.post(message, compose, quota)
        self.hub.announce(position)
        if position == 0:
            return stored  # a WhatsApp message Meta delivered twice
        if outbox:
            self.outbox_changed()
        if message.from_family:
            await self._tell_team(stored)
        return stored

    async def _to_family(self, message: NewThreadMessage) -> list[OutboxEntry]:
        """One outbox entry per parent (keyed with the message id once it has one)."""
        profile = await self.read_student(message.student_id)
        student = profile.name if profile is not None and profile.name else message.student_id
        link = f"{self.policy.public_url.rstrip('/')}/doc/{quote(message.student_id)}#messages"
        entries = []
        for parent_id in await self.students.parents(message.student_id):
            person = await self.directory.person(parent_id)
            if person is None:
                continue
            channels = person.delivery_channels()
            if Channel.WHATSAPP in channels and not await self._reachable_on_whatsapp(person):
                channels = tuple(c for c in channels if c is not Channel.WHATSAPP)
            if not channels:
                continue
            text = f"{message.author_name} ({student}): {message.body}"
            entries.append(
                OutboxEntry(
                    key=parent_id,  # completed with the message id in the transaction
                    document=message.student_id,
                    recipient_id=parent_id,
                    kind=MessageKind.MESSAGE,
                    message=Message(
                        person.language,
                        SUBJECTS[person.language].format(student=student),
                        f"{text}\n{link}",
                        (message.author_name, student, link),
                        link,
                        self.policy.message_template or "",
                        attachment=message.media.id if message.media else 0,
                        attachment_type=message.media.mime if message.media else "",
                    ),
                    channels=channels,
                    next_attempt_at=message.at,
                    created_at=message.at,
                    updated_at=message.at,
                )
            )
        return entries

    async def name(self, user_id: str) -> str:
        """The name a person is shown by: their record's, else their id."""
        person = await self.directory.person(user_id)
        return person.name if person is not None else _shown_id(user_id)

    async def _reachable_on_whatsapp(self, person: Person) -> bool:
        """Free-form inside the window; outside it only with an approved template."""
        if self.policy.message_template:
            return True
        last = await self.last_inbound(person.phone or "")
        return last is not None and self.clock.now() - last < WINDOW_SECONDS

    async def _tell_team(self, message: ThreadMessage) -> None:
        for member in await self.directory.editors(message.student_id):
            await self.notifier.notify(
                member.user_id,
                document=message.student_id,
                kind="thread_message",
                title=message.author_name,
                body=message.body[:280],
                data={"student_id": message.student_id, "message_id": str(message.id)},
            )

    async def _tell_all_teams(self, person: Person, children: Sequence[str], text: str) -> None:
        for child in children:
            for member in await self.directory.editors(child):
                await self.notifier.notify(
                    member.user_id,
                    document=child,
                    kind="thread_message",
                    title=person.name,
                    body=text[:280],
                    data={"student_id": child, "unsorted": "true"},
                )

    async def _ask_which_child(
        self, person: Person, children: Sequence[str], whatsapp_id: str, now: float
    ) -> None:
        rows = []
        for child in children[:10]:  # a WhatsApp list holds at most 10 rows
            profile = await self.read_student(child)
            rows.append((CHOICE_PAYLOAD + child, (profile.name if profile else child)[:24]))
        question, button = WHICH_CHILD[person.language]
        entry = OutboxEntry(
            key=f"thread-ask:{whatsapp_id}",
            document="",
            recipient_id=person.user_id,
            kind=MessageKind.CONFIRMATION,  # answers the parent's own message: window open
            message=Message(
                person.language, question, question, choices=tuple(rows), button=button
            ),
            channels=(Channel.WHATSAPP,),
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        await self.enqueue(entry)
        self.outbox_changed()


def _keyed(entry: OutboxEntry, message_id: int) -> OutboxEntry:
    return replace(entry, key=f"thread:{message_id}:{entry.recipient_id}")


def _clean(body: str, *, allow_empty: bool = False) -> str:
    text = body.strip()
    if not text and not allow_empty:
        raise BadMessage("a message needs some text")
    if len(text) > MAX_BODY:
        raise BadMessage(f"a message has at most {MAX_BODY} characters")
    if has_control_characters(text.replace("\n", "")):
        raise BadMessage("a message may not contain control characters")
    return text


def _shown_id(user_id: str) -> str:
    return user_id.removeprefix(DEV_USER_PREFIX)
