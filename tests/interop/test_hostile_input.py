"""Malformed frames and bad names, from a bare `ws` socket beside real y-websocket editors."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any, cast

import pytest
from pycrdt import Doc, Text

from collab_server.protocol import CloseCode
from collab_server.settings import load_settings
from collab_server.store import StoredDocument, UpdateRecord
from tests.interop.conftest import SHARED_MAX_MESSAGE_BYTES, metric, sync_url
from tests.interop.nodeclient import node_clients
from tests.support.servers import ServerProcess

pytestmark = pytest.mark.interop

MALFORMED = [
    # varuint(0 = sync) then a step whose varuint never ends
    pytest.param({"hex": "0080"}, CloseCode.INVALID_PAYLOAD, id="truncated-varint"),
    # sync / update, 8 bytes of payload that are not a Y update
    pytest.param(
        {"hex": "000208" + b"garbage!".hex()}, CloseCode.INVALID_PAYLOAD, id="garbage-update"
    ),
    pytest.param({"hex": "07"}, CloseCode.INVALID_PAYLOAD, id="unknown-message-type"),
    pytest.param({"text": "hello"}, CloseCode.UNSUPPORTED_DATA, id="text-frame"),
    pytest.param(
        {"repeat": SHARED_MAX_MESSAGE_BYTES + 1, "byte": 0},
        CloseCode.MESSAGE_TOO_BIG,
        id="oversize-frame",
    ),
]


async def load_once_stored(database_url: str, room: str, last_seq: int) -> StoredDocument:
    """The stored document once it holds `last_seq` (or after 5 s): the server drains its
    journal into the tables within a fraction of a second; this reads the tables with
    SQLite itself, as another program would (a second server may not open the file)."""
    path = load_settings({}, database_url=database_url).sqlite_path()
    deadline = time.monotonic() + 5
    while (record := await asyncio.to_thread(read_tables, path, room)).last_seq < last_seq:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.02)
    return record


def read_tables(path: Path, room: str) -> StoredDocument:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        found = db.execute(
            "SELECT snapshot, snapshot_seq FROM documents WHERE name = ?", (room,)
        ).fetchone()
        snapshot, snapshot_seq = found if found else (None, 0)
        rows = db.execute(
            "SELECT seq, body, user_id, created_at FROM updates WHERE document = ? AND seq > ? "
            "ORDER BY seq",
            (room, snapshot_seq),
        ).fetchall()
    tail = [UpdateRecord(room, r[0], bytes(r[1]), r[2], r[3]) for r in rows]
    return StoredDocument(bytes(snapshot) if snapshot else None, snapshot_seq, tail)


async def test_malformed_frames_close_only_their_connection(
    shared_server: ServerProcess,
) -> None:
    server = shared_server
    room = "iep/hostile"
    async with node_clients() as editors, node_clients() as attacker:
        await editors.open("editor", "viewer", url=sync_url(server), room=room)
        await editors.wait_for("editor", "viewer", synced=True)
        await editors.edit("editor", {"op": "insert", "text": "intact"})
        await editors.wait_for("viewer", notes="intact")
        expected = "intact"
        updates_before = await metric(server, "collab_updates_in_total")

        for case in MALFORMED:
            frame, close_code = cast(tuple[dict[str, Any], CloseCode], case.values)
            closed = await attacker.raw(f"{sync_url(server)}/{room}", frame)
            assert closed["opened"], closed
            assert closed["code"] == close_code, (case.id, closed)
            # Nothing the bad frame carried reached the document ...
            assert await metric(server, "collab_updates_in_total") == updates_before
            # ... and the editors on the same document never noticed.
            expected += f" {case.id}"
            await editors.edit("editor", {"op": "insert", "text": f" {case.id}"})
            await editors.wait_for("viewer", notes=expected)
            updates_before += 1

        states = await editors.states("editor", "viewer")
        assert all(s["statuses"] == ["connecting", "connected"] for s in states.values())
        assert all(s["closes"] == [] for s in states.values())

    # Read the store itself (beside the running server): only the editors' updates are there.
    record = await load_once_stored(server.env["DATABASE_URL"], room, 1 + len(MALFORMED))
    doc: Doc[Any] = Doc()
    if record.snapshot:
        doc.apply_update(record.snapshot)
    for entry in record.tail:
        doc.apply_update(entry.update)
    assert str(doc.get("notes", type=Text)) == expected
    assert record.last_seq == 1 + len(MALFORMED)


BAD_NAMES = [".hidden", "iep/bad%20name", "x" * 256]


async def test_bad_document_names_are_refused_at_the_upgrade(
    shared_server: ServerProcess,
) -> None:
    server = shared_server
    async with node_clients() as clients:
        for name in BAD_NAMES:
            refused = await clients.raw(f"{sync_url(server)}/{name}")
            assert (refused["opened"], refused["httpStatus"]) == (False, 400), name
        accepted = await clients.raw(f"{sync_url(server)}/iep/good-name", close=True)
        assert (accepted["opened"], accepted["code"]) == (True, CloseCode.NORMAL), accepted
