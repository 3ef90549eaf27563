"""Row shapes shared by the SQLite and Postgres thread stores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from integrations.threads.records import Attachment, HeldMessage, ThreadMessage

MESSAGE_COLUMNS = (
    "id, student_id, author_id, author_name, from_family, body, channel, at, media_id, media_mime"
)


def message_from_row(row: Sequence[Any]) -> ThreadMessage:
    media = Attachment(int(row[8]), str(row[9])) if row[8] is not None else None
    return ThreadMessage(
        int(row[0]), row[1], row[2], row[3], bool(row[4]), row[5], row[6], float(row[7]), media
    )


def media_columns(media: Attachment | None) -> tuple[int | None, str | None]:
    return (media.id, media.mime) if media is not None else (None, None)


def held_from_row(row: Sequence[Any]) -> HeldMessage:
    """(user_id, whatsapp_id, body, at, media_id, media_mime)."""
    media = Attachment(int(row[4]), str(row[5])) if row[4] is not None else None
    return HeldMessage(row[0], row[1], row[2], float(row[3]), media)
