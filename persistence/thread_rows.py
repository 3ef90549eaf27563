"""Row shapes shared by the SQLite and Postgres thread stores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from integrations.threads.records import ThreadMessage

MESSAGE_COLUMNS = "id, student_id, author_id, author_name, from_family, body, channel, at"


def message_from_row(row: Sequence[Any]) -> ThreadMessage:
    return ThreadMessage(
        int(row[0]), row[1], row[2], row[3], bool(row[4]), row[5], row[6], float(row[7])
    )
