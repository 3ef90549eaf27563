"""A student's thread: its messages, who read how far, and the store interface.

A thread belongs to a student, named by their IEP document (as sessions are): its members
take part, parents (viewers) only in their own child's. A message is written in one
transaction with what it sends (outbox entries to the family) and its live event, so a
message is never stored without its notices, nor announced before it is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from collab_server.events import NewEvent
from integrations.contracts import OutboxEntry

MAX_BODY = 4000  # characters: WhatsApp's own limit for a text message is 4096
MAX_HELD = 50  # messages one parent may have waiting for "which child?"
MAX_UNSENT_UPLOADS = 5  # files one person may have uploaded and not sent yet
# Messages one person may write from the page, in all threads: each one reaches every parent.
MAX_POSTS = 30
POSTS_WINDOW_SECONDS = 600


@dataclass(frozen=True, slots=True)
class Attachment:
    """A kept file (`thread_media`) a message carries."""

    id: int
    mime: str


@dataclass(frozen=True, slots=True)
class NewThreadMessage:
    student_id: str
    author_id: str
    author_name: str
    from_family: bool  # a parent wrote it (else a member of the team)
    body: str
    channel: str  # "app" or "whatsapp": where it was written
    at: float
    whatsapp_id: str | None = None  # an incoming WhatsApp message's id
    media: Attachment | None = None


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    id: int
    student_id: str
    author_id: str
    author_name: str
    from_family: bool
    body: str
    channel: str
    at: float
    media: Attachment | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "student_id": self.student_id,
            "author_id": self.author_id,
            "author_name": self.author_name,
            "from_family": self.from_family,
            "body": self.body,
            "channel": self.channel,
            "at": self.at,
            "attachment": (
                {"id": self.media.id, "mime": self.media.mime} if self.media is not None else None
            ),
        }


@dataclass(frozen=True, slots=True)
class Sends:
    """What a stored message sends, known once it has its id."""

    outbox: Sequence[OutboxEntry]
    events: Sequence[NewEvent]


Compose = Callable[[ThreadMessage], Sends]


@dataclass(frozen=True, slots=True)
class Quota:
    """At most `most` messages by the author since `since` (this one included)."""

    most: int
    since: float


class OverQuota(Exception):
    """The author wrote `Quota.most` messages in the window already; nothing was stored."""


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """A parent's WhatsApp message waiting for them to say which child it is about."""

    user_id: str
    whatsapp_id: str
    body: str
    at: float
    media: Attachment | None = None


class ThreadStore(Protocol):
    async def post(
        self, message: NewThreadMessage, compose: Compose, quota: Quota | None = None
    ) -> tuple[ThreadMessage, int]:
        """Store the message, its outbox entries and events in one transaction; returns it
        and the last event position. An incoming WhatsApp id already stored is not stored
        again (the stored message comes back, position 0). With a `quota`, raise `OverQuota`
        instead when the author has used it up (counted in the same transaction)."""

    async def messages(self, student_id: str, before_id: int, limit: int) -> list[ThreadMessage]:
        """Newest first, ids below `before_id`."""

    async def mark_read(
        self, student_id: str, user_id: str, through_id: int, events: Sequence[NewEvent]
    ) -> int:
        """Raise `user_id`'s read marker (never lower it); the events' position, 0 if unmoved."""

    async def reads(self, student_id: str) -> dict[str, int]:
        """Each reader's last read message id."""

    async def hold(self, held: HeldMessage, limit: int) -> int | None:
        """Keep the message until the parent says which child: how many they have waiting
        now, or None when `limit` were waiting already (not kept)."""

    async def take_held(self, user_id: str) -> list[HeldMessage]:
        """The user's held messages, oldest first, removed from the store."""

    async def choose(self, user_id: str, student_id: str, until: float) -> None:
        """Remember which child a parent's messages are about until `until`."""

    async def chosen(self, user_id: str, now: float) -> str | None: ...

    async def keep_media(
        self, mime: str, data: bytes, at: float, uploaded_by: str | None = None
    ) -> int:
        """Store a file (a parent's from WhatsApp, or one uploaded in the page by
        `uploaded_by`); its id (a message then carries it)."""

    async def drop_unsent_uploads(self, user_id: str, keep: int) -> int:
        """Forget `user_id`'s uploads no message carries, but the newest `keep`; how many went."""

    async def upload_of(self, media_id: int, user_id: str) -> str | None:
        """The type of a file `user_id` uploaded that no message carries yet, else None."""

    async def media(self, student_id: str, media_id: int) -> tuple[str, bytes] | None:
        """(type, bytes) of a file carried by a message of this student's thread."""
