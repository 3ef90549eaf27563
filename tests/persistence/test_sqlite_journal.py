"""SQLite's intake journal: acknowledged appends survive a crash before they reach the tables."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collab_server.errors import StoreError
from collab_server.store import UpdateRecord
from persistence.journal import encode_frame
from persistence.sqlite import SQLiteStore
from tests.persistence.updates import text_updates

# Long enough that nothing drains in the background while a test looks.
NEVER = 3600.0


def text_records(document: str, count: int, user_id: str | None = "t-huda") -> list[UpdateRecord]:
    now = time.time()
    return [
        UpdateRecord(document, i + 1, u, user_id, now) for i, u in enumerate(text_updates(count))
    ]


def segments(database: Path) -> list[Path]:
    """Journal segments holding records (a drain creates the next one, empty, ahead of use)."""
    found = database.parent.glob(f"{database.name}.journal.*")
    return sorted(path for path in found if path.stat().st_size)


def table_rows(database: Path) -> list[tuple[str, int, str | None]]:
    """What a reader of the file sees, without going through any store."""
    with sqlite3.connect(database) as conn:
        return list(conn.execute("SELECT document, seq, user_id FROM updates ORDER BY 1, 2"))


_KILLED_PROCESS = """
import asyncio, os, signal, sys, time
sys.path.insert(0, {root!r})
from pycrdt import Doc
from collab_server.store import UpdateRecord
from persistence.sqlite import SQLiteStore
from tests.persistence.updates import text_updates

async def main():
{body}
    print("appended", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

asyncio.run(main())
"""


async def run_until_killed(body: str) -> None:
    """Run `body`, the inside of an async main, in a real process that then dies by SIGKILL."""
    script = _KILLED_PROCESS.format(
        root=str(Path.cwd()), body=textwrap.indent(textwrap.dedent(body), "    ")
    )
    completed = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", script], capture_output=True, timeout=60
    )
    assert completed.stdout.strip() == b"appended", completed.stderr.decode()
    assert completed.returncode == -9


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Path]:
    path = tmp_path / "collab.db"
    created = SQLiteStore(path)
    await created.open()  # tables exist before any test writes around the store
    await created.aclose()
    yield path


async def test_the_store_reads_what_it_journaled_before_the_tables_have_it(
    database: Path,
) -> None:
    store = SQLiteStore(database, drain_delay_seconds=NEVER)
    await store.open()
    try:
        records = text_records("iep/1", 3) + text_records("iep/2", 1, user_id=None)
        store.append_now(records)
        assert table_rows(database) == []  # only in the journal so far
        loaded = await store.load("iep/1")
        assert [(r.seq, r.update, r.user_id) for r in loaded.tail] == [
            (r.seq, r.update, r.user_id) for r in records[:3]
        ]
        assert [(d.name, d.last_seq) for d in await store.list_documents()] == [
            ("iep/1", 3),
            ("iep/2", 1),
        ]
        assert len(table_rows(database)) == 4  # the reads drained the journal
    finally:
        await store.aclose()
    assert segments(database) == []  # all in the tables: nothing left to recover


async def test_a_full_segment_is_deleted_once_drained_and_writing_moves_on(
    database: Path,
) -> None:
    store = SQLiteStore(database, drain_delay_seconds=NEVER, journal_rotate_bytes=1)
    await store.open()
    try:
        store.append_now(text_records("iep/1", 2))
        (first,) = segments(database)
        await store.load("iep/1")  # drains
        assert not first.exists()
        store.append_now(text_records("iep/2", 1))
        (second,) = segments(database)
        assert second != first
    finally:
        await store.aclose()
    assert segments(database) == []


async def test_a_crashed_process_journal_is_recovered_at_the_next_open(database: Path) -> None:
    # A real process appends and dies by SIGKILL before anything drains.
    await run_until_killed(f"""
        store = SQLiteStore({str(database)!r}, drain_delay_seconds=3600)
        await store.open()
        store.append_now([UpdateRecord("iep/crash", 1, b"\\x01\\x02", "t-huda", time.time())])
        store.append_now([UpdateRecord("iep/crash", 2, b"\\x03", None, time.time())])
    """)
    assert len(segments(database)) == 1
    assert table_rows(database) == []

    store = SQLiteStore(database)
    await store.open()
    try:
        assert table_rows(database) == [("iep/crash", 1, "t-huda"), ("iep/crash", 2, None)]
        assert segments(database) == []
        loaded = await store.load("iep/crash")
        assert [r.update for r in loaded.tail] == [b"\x01\x02", b"\x03"]
    finally:
        await store.aclose()


async def test_a_recovered_journal_does_not_bring_back_entries_a_snapshot_folded_away(
    database: Path,
) -> None:
    # Without history, compaction deletes the entries it folds. The live segment still holds
    # them (drained, not yet rotated) when the process is killed.
    await run_until_killed(f"""
        updates = text_updates(4)
        store = SQLiteStore({str(database)!r}, keep_history=False, drain_delay_seconds=3600)
        await store.open()
        for seq, update in enumerate(updates[:3], start=1):
            store.append_now([UpdateRecord("iep/folded", seq, update, "t-huda", time.time())])
        doc = Doc()
        for update in updates[:3]:
            doc.apply_update(update)
        await store.compact("iep/folded", doc.get_update(), 3)
        store.append_now([UpdateRecord("iep/folded", 4, updates[3], "t-huda", time.time())])
    """)

    store = SQLiteStore(database, keep_history=False)
    await store.open()
    try:
        assert table_rows(database) == [("iep/folded", 4, "t-huda")]
        loaded = await store.load("iep/folded")
        assert loaded.snapshot_seq == 3
        assert [r.seq for r in loaded.tail] == [4]
    finally:
        await store.aclose()


async def test_a_frame_cut_short_is_left_out_and_kept_aside_and_the_rest_recovered(
    database: Path,
) -> None:
    kept, torn = text_records("iep/torn", 2)
    frame = encode_frame([torn])
    segment = database.parent / f"{database.name}.journal.deadbeef0000.000001"
    segment.write_bytes(encode_frame([kept]) + frame[: len(frame) - 3])

    store = SQLiteStore(database)
    await store.open()
    try:
        assert table_rows(database) == [("iep/torn", 1, "t-huda")]
        assert not segment.exists()
        # Not deleted: whatever could not be read stays for a person to look at.
        (kept,) = database.parent.glob(f"{database.name}.unreadable.*")
        assert kept.read_bytes().endswith(frame[: len(frame) - 3])
    finally:
        await store.aclose()
    again = SQLiteStore(database)  # and it is not recovered a second time
    await again.open()
    await again.aclose()
    assert kept.exists() and table_rows(database) == [("iep/torn", 1, "t-huda")]


async def test_a_second_store_on_a_served_database_refuses_to_open(database: Path) -> None:
    """Two stores on one file would hand out the same log positions: the second says who
    holds it, and opens once the first is gone (its live journal untouched meanwhile)."""
    writer = SQLiteStore(database, drain_delay_seconds=NEVER)
    await writer.open()
    second = SQLiteStore(database)
    try:
        writer.append_now(text_records("iep/live", 2))
        with pytest.raises(StoreError, match=rf"another server process \(pid {os.getpid()}\)"):
            await second.open()
        assert len(segments(database)) == 1
        await writer.aclose()  # a clean close drains
        await second.open()
        assert [r.seq for r in (await second.load("iep/live")).tail] == [1, 2]
        assert segments(database) == []
    finally:
        await writer.aclose()
        await second.aclose()


async def test_a_failing_drain_keeps_the_journal_and_reports_not_ready(database: Path) -> None:
    store = SQLiteStore(database, drain_delay_seconds=NEVER)
    await store.open()
    try:
        with sqlite3.connect(database) as admin:
            admin.execute("ALTER TABLE updates RENAME TO updates_away")
        records = text_records("iep/outage", 4)
        for record in records:  # durable in the journal even though the table is gone
            store.append_now([record])
            with pytest.raises(sqlite3.OperationalError):
                await store.ping()
        assert len(segments(database)) == 1

        with sqlite3.connect(database) as admin:
            admin.execute("ALTER TABLE updates_away RENAME TO updates")
        await store.ping()
        assert [r.update for r in (await store.load("iep/outage")).tail] == [
            r.update for r in records
        ]
        assert len(table_rows(database)) == 4
    finally:
        await store.aclose()
    assert segments(database) == []


async def test_appends_drain_on_their_own_after_the_delay(database: Path) -> None:
    store = SQLiteStore(database, drain_delay_seconds=0.01)
    await store.open()
    try:
        store.append_now(text_records("iep/soon", 1))
        deadline = time.monotonic() + 10
        while not table_rows(database) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert table_rows(database) == [("iep/soon", 1, "t-huda")]
    finally:
        await store.aclose()


async def test_appending_to_a_closed_store_is_refused(database: Path) -> None:
    store = SQLiteStore(database)
    with pytest.raises(StoreError):
        store.append_now(text_records("iep/closed", 1))
