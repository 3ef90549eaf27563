"""What the integrations need from outside, as small interfaces and frozen records.

The composition root implements `RecipientDirectory` (from the access store) and
`NotificationStore` (in `persistence/`); integrations never import either implementation.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class Channel(StrEnum):
    WHATSAPP = "whatsapp"
    SMS = "sms"
    EMAIL = "email"
    IN_APP = "in_app"


# Fallback order when a person enables several channels.
CHANNEL_ORDER = (Channel.WHATSAPP, Channel.SMS, Channel.EMAIL, Channel.IN_APP)


class Language(StrEnum):
    ARABIC = "ar"
    ENGLISH = "en"


@dataclass(frozen=True, slots=True)
class Person:
    user_id: str
    name: str
    language: Language = Language.ENGLISH
    timezone: str = "UTC"
    phone: str | None = None  # E.164, e.g. "+966500000001"
    email: str | None = None
    channels: frozenset[Channel] = frozenset({Channel.IN_APP})
    whatsapp_opted_out: bool = False
    arabic_digits: bool = False  # numbers and dates in Arabic-Indic digits (٤٢, not 42)
    quiet_hours: str | None = None  # "21:00-08:00" or "off"; None: the centre's
    channel_order: tuple[Channel, ...] = ()  # tried first, in this order; then the usual one

    def delivery_channels(self) -> tuple[Channel, ...]:
        """Enabled channels that can reach this person, in their fallback order."""
        usable = []
        order = self.channel_order + tuple(c for c in CHANNEL_ORDER if c not in self.channel_order)
        for channel in order:
            if channel not in self.channels:
                continue
            if channel is Channel.WHATSAPP and (not self.phone or self.whatsapp_opted_out):
                continue
            if channel is Channel.SMS and not self.phone:
                continue
            if channel is Channel.EMAIL and not self.email:
                continue
            usable.append(channel)
        return tuple(usable)


class PeopleStore(Protocol):
    """People records (implemented in `persistence/`, beside the documents).

    `whatsapp_opted_out` is not stored here: the notification store keeps it.
    """

    async def person(self, user_id: str) -> Person | None: ...

    async def put_person(self, person: Person) -> None: ...

    async def person_by_phone(self, phone: str) -> Person | None:
        """The person with this E.164 number; if several share it, the most recently updated."""


class RecipientDirectory(Protocol):
    """People and document membership, as the access store knows them."""

    async def digest_recipient_ids(self, document: str) -> Sequence[str]:
        """User ids of the members of `document` whose membership has `digest: true`.

        Ids only: every change is recorded for them, and who they are (channels, language,
        time zone, opt-out) is looked up once, when their digest is written.
        """

    async def editors(self, document: str) -> Sequence[Person]:
        """Members who may edit `document` (they receive parents' replies)."""

    async def documents_of(self, user_id: str) -> Sequence[str]:
        """Documents where this person receives digests."""

    async def person(self, user_id: str) -> Person | None: ...

    async def person_by_phone(self, phone: str) -> Person | None:
        """`phone` in E.164."""

    async def set_whatsapp_opt_out(self, user_id: str, opted_out: bool) -> None: ...


class Clock(Protocol):
    def now(self) -> float:
        """Epoch seconds."""


class SystemClock:
    def now(self) -> float:
        return time.time()


class OutboxState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class MessageKind(StrEnum):
    DIGEST = "digest"
    CONFIRMATION = "confirmation"  # opt-out / opt-in replies: WhatsApp only, never digests
    REMINDER = "reminder"  # a therapy session is coming
    SESSION_NOTICE = "session_notice"  # a therapy session moved
    PROGRESS = "progress"  # what a child's sessions measured today
    ACKNOWLEDGEMENT = "acknowledgement"  # a version sent to a parent to read, and its reminders
    MESSAGE = "message"  # the team wrote in the student's thread
    TEST = "test"  # "send me a test message" from a person's settings


@dataclass(frozen=True, slots=True)
class Message:
    """What to say, rendered once for one person; each channel picks the form it needs."""

    language: Language
    subject: str
    text: str  # full multi-line text (WhatsApp free-form, email, in-app)
    template_params: tuple[str, ...] = ()  # flattened for the approved WhatsApp template
    link: str = ""
    template: str = ""  # the approved WhatsApp template's name; empty: the digest template
    buttons: tuple[str, ...] = ()  # payloads of the template's quick-reply buttons, in order
    # A WhatsApp list to pick from (id, title) and its button's label: free-form only.
    choices: tuple[tuple[str, str], ...] = ()
    button: str = ""
    # A file of the student's thread (its id and type) that goes with the text where it can.
    attachment: int = 0
    attachment_type: str = ""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    key: str  # idempotency key: the same digest is never written twice
    document: str
    recipient_id: str
    kind: MessageKind
    message: Message
    channels: tuple[Channel, ...]  # remaining channels, current first
    state: OutboxState = OutboxState.PENDING
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_error: str | None = None
    provider_message_id: str | None = None
    delivery_status: str | None = None
    use_template: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def channel(self) -> Channel | None:
        return self.channels[0] if self.channels else None


@dataclass(frozen=True, slots=True)
class DigestWindow:
    """An open debounce window, persisted so a restart still sends the digest."""

    document: str
    recipient_id: str
    first_at: float
    last_at: float
    from_seq: int  # log entries after this belong to the window
    through_seq: int
    summary: str | None = None  # the merged digest so far (JSON, see digest.digest_to_json)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The digests' own copy of a document (a full Y update) at log position `seq`."""

    seq: int
    state: bytes


@dataclass(frozen=True, slots=True)
class InAppNotification:
    id: int
    user_id: str
    document: str
    kind: str
    title: str
    body: str
    created_at: float
    data: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Pace:
    """One message per `key` (a channel and a number) per `interval` seconds, every process."""

    key: str
    now: float
    interval: float


class NumberBusy(Exception):
    """The number had a message less than its interval ago: try again at `free_at`."""

    def __init__(self, free_at: float) -> None:
        super().__init__(f"busy until {free_at}")
        self.free_at = free_at


@dataclass(frozen=True, slots=True)
class PushSubscription:
    """A browser's Web Push subscription (keys base64url, as the browser gives them)."""

    user_id: str
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: int
    body: bytes
    received_at: float


class NotificationStore(Protocol):
    """Durable state of the notification integrations (implemented in `persistence/`)."""

    async def open(self) -> None: ...

    async def aclose(self) -> None: ...

    # -- digest windows
    async def windows(self) -> list[DigestWindow]: ...

    async def save_windows(
        self,
        document: str,
        through_seq: int,
        windows: Sequence[DigestWindow],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Save `windows`, raise the document's watermark to `through_seq` and replace its
        checkpoint (if given), atomically."""

    async def watermark(self, document: str) -> int | None:
        """The highest log seq whose change the digests recorded; None if never set."""

    async def checkpoint(self, document: str) -> Checkpoint | None: ...

    async def documents_behind_watermark(self) -> list[tuple[str, int]]:
        """(document, its last log seq) for each document with log entries past its watermark
        (no watermark: every entry; documents that predate digests were given one)."""

    async def close_window(self, window: DigestWindow, entry: OutboxEntry | None) -> bool:
        """Write `entry` to the outbox and drop the window, atomically; False if the key exists."""

    # -- outbox
    async def enqueue(self, entry: OutboxEntry) -> bool:
        """Insert unless the key exists; True if inserted."""

    async def due(self, now: float, limit: int) -> list[OutboxEntry]:
        """Pending entries whose next attempt is due, and SENDING ones claimed before `now`."""

    async def update(self, entry: OutboxEntry) -> None: ...

    async def claim(
        self, seen: OutboxEntry, claimed: OutboxEntry, pace: Pace | None = None
    ) -> bool:
        """Write `claimed` only if the row is still as `seen` (state, attempts, due time):
        of two senders that read one due row, exactly one claims it. With `pace`, in the same
        transaction, take the number's send slot too, or raise `NumberBusy` (and claim
        nothing): the slot is never taken without the claim, nor the claim without it."""

    async def entry(self, key: str) -> OutboxEntry | None: ...

    async def entries(self, document: str) -> list[OutboxEntry]: ...

    async def entry_by_provider_id(self, provider_message_id: str) -> OutboxEntry | None: ...

    # -- WhatsApp state
    async def touch_inbound(self, phone: str, at: float) -> None: ...

    async def last_inbound(self, phone: str) -> float | None: ...

    async def advance_status(
        self, message_id: str, status: str, rank: int, at: float, error: str | None
    ) -> bool:
        """Record a delivery status if it moves forward; False for duplicates and stale ones."""

    async def first_seen(self, message_id: str, at: float) -> bool:
        """True the first time an incoming message id is seen (Meta redelivers)."""

    # -- WhatsApp's stop: one for every process, kept over restarts
    async def halt_whatsapp(self, reason: str, at: float) -> None:
        """Stop every WhatsApp send (the account is restricted) until `resume_whatsapp`."""

    async def whatsapp_halt(self) -> tuple[str, float] | None:
        """Why and since when WhatsApp is stopped; None while it sends."""

    async def resume_whatsapp(self) -> bool:
        """Lift the stop; False if there was none."""

    async def set_whatsapp_opt_out(self, user_id: str, opted_out: bool, at: float) -> None: ...

    async def whatsapp_opted_out(self, user_id: str) -> bool: ...

    # -- webhook inbox
    async def add_webhook_event(self, body: bytes, at: float) -> int: ...

    async def unprocessed_webhook_events(self) -> list[WebhookEvent]: ...

    async def mark_webhook_event_processed(self, event_id: int) -> None: ...

    async def prune_webhook_state(self, before: float) -> None:
        """Forget processed webhook bodies and seen message ids received before `before`."""

    # -- in-app
    async def add_notification(
        self,
        user_id: str,
        *,
        document: str,
        kind: str,
        title: str,
        body: str,
        at: float,
        data: dict[str, str],
    ) -> int: ...

    async def notifications(
        self, user_id: str, after_id: int = 0, limit: int = 100
    ) -> list[InAppNotification]: ...

    async def recent_notifications(self, user_id: str, limit: int) -> list[InAppNotification]:
        """The newest first."""

    async def unread_notifications(self, user_id: str) -> tuple[int, int]:
        """(read through id, how many are newer)."""

    async def mark_notifications_read(self, user_id: str, through_id: int) -> bool:
        """Move the read marker forward (never back); True if it moved."""

    # -- Web Push
    async def add_push_subscription(self, subscription: PushSubscription, keep: int) -> None:
        """Store (or move to this person) a subscription; keep their newest `keep`."""

    async def push_subscriptions(self, user_id: str) -> list[PushSubscription]: ...

    async def remove_push_subscription(self, endpoint: str) -> bool: ...


# -- channels ---------------------------------------------------------------------------------


class OutcomeKind(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # transient: back off and try the same channel again
    WINDOW_CLOSED = "window_closed"  # WhatsApp 131047: resend as the approved template
    FAILED = "failed"  # permanent for this channel: fall back to the next one
    HALT = "halt"  # the channel must stop sending altogether (WhatsApp 368)


@dataclass(frozen=True, slots=True)
class SendOutcome:
    kind: OutcomeKind
    provider_message_id: str | None = None
    error: str | None = None  # e.g. "131026: Message undeliverable"; never message content
    retry_after: float | None = None


class ChannelSender(Protocol):
    channel: Channel

    async def send(self, entry: OutboxEntry, person: Person) -> SendOutcome: ...

    async def aclose(self) -> None: ...


class Notifier(Protocol):
    """Shows something to a user in the app."""

    async def notify(
        self,
        user_id: str,
        *,
        document: str,
        kind: str,
        title: str,
        body: str,
        data: dict[str, str] | None = None,
    ) -> int: ...
