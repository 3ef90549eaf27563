"""People records as table rows: one column order for SQLite and Postgres."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from integrations.contracts import Channel, Language, Person

PERSON_COLUMNS = (
    "user_id, name, phone, email, language, timezone, notify_whatsapp, notify_email, "
    "notify_in_app, arabic_digits, notify_sms, quiet_hours, channel_order"
)


def person_row(person: Person) -> tuple[Any, ...]:
    """Values for PERSON_COLUMNS, in order."""
    return (
        person.user_id,
        person.name,
        person.phone,
        person.email,
        person.language.value,
        person.timezone,
        Channel.WHATSAPP in person.channels,
        Channel.EMAIL in person.channels,
        Channel.IN_APP in person.channels,
        person.arabic_digits,
        Channel.SMS in person.channels,
        person.quiet_hours,
        ",".join(c.value for c in person.channel_order) or None,
    )


def person_from_row(row: Sequence[Any]) -> Person:
    """A person from a row of PERSON_COLUMNS."""
    flags = (
        (Channel.WHATSAPP, row[6]),
        (Channel.EMAIL, row[7]),
        (Channel.IN_APP, row[8]),
        (Channel.SMS, row[10]),
    )
    return Person(
        user_id=row[0],
        name=row[1],
        phone=row[2],
        email=row[3],
        language=Language(row[4]),
        timezone=row[5],
        channels=frozenset(channel for channel, enabled in flags if enabled),
        arabic_digits=bool(row[9]),
        quiet_hours=row[11],
        channel_order=tuple(Channel(c) for c in (row[12] or "").split(",") if c),
    )
