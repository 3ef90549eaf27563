"""Rows of the records' tables (versions, acknowledgements, audit events): one column order for
SQLite and Postgres."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from collab_server.audit import AuditAction, AuditEvent, StoredAuditEvent
from integrations.record_contracts import Acknowledgement, AckState, Version, VersionKind

VERSION_COLUMNS = (
    "id, document, seq, name, note, kind, author_id, author_name, created_at, content_sha256"
)
ACK_COLUMNS = (
    "id, document, version_id, recipient_id, requested_by, requested_at, content_sha256, state, "
    "answered_at, channel, comment, reminders_sent, next_reminder_at"
)
AUDIT_COLUMNS = "document, action, actor_id, actor_name, address, at, details"


def version_row(version: Version) -> tuple[Any, ...]:
    return (
        version.id,
        version.document,
        version.seq,
        version.name,
        version.note,
        version.kind.value,
        version.author_id,
        version.author_name,
        version.created_at,
        version.content_sha256,
    )


def version_from_row(row: Sequence[Any]) -> Version:
    return Version(
        row[0],
        row[1],
        int(row[2]),
        row[3],
        row[4],
        VersionKind(row[5]),
        row[6],
        row[7],
        float(row[8]),
        row[9],
    )


def ack_row(ack: Acknowledgement) -> tuple[Any, ...]:
    return (
        ack.id,
        ack.document,
        ack.version_id,
        ack.recipient_id,
        ack.requested_by,
        ack.requested_at,
        ack.content_sha256,
        ack.state.value,
        ack.answered_at,
        ack.channel,
        ack.comment,
        ack.reminders_sent,
        ack.next_reminder_at,
    )


def ack_from_row(row: Sequence[Any]) -> Acknowledgement:
    return Acknowledgement(
        id=row[0],
        document=row[1],
        version_id=row[2],
        recipient_id=row[3],
        requested_by=row[4],
        requested_at=float(row[5]),
        content_sha256=row[6],
        state=AckState(row[7]),
        answered_at=None if row[8] is None else float(row[8]),
        channel=row[9],
        comment=row[10],
        reminders_sent=int(row[11]),
        next_reminder_at=None if row[12] is None else float(row[12]),
    )


def audit_row(event: AuditEvent) -> tuple[Any, ...]:
    return (
        event.document,
        event.action.value,
        event.actor_id,
        event.actor_name,
        event.address,
        event.at,
        json.dumps(dict(event.details), ensure_ascii=False, sort_keys=True),
    )


def audit_from_row(row: Sequence[Any]) -> StoredAuditEvent:
    """`row` is the id followed by AUDIT_COLUMNS."""
    return StoredAuditEvent(
        int(row[0]),
        AuditEvent(
            row[1],
            AuditAction(row[2]),
            row[3],
            row[4],
            row[5],
            float(row[6]),
            json.loads(row[7]),
        ),
    )
