"""History pages read the changes of closed editing sessions from where they were stored once,
and replay only open ones, with other people's interleaved edits never counted as theirs;
on SQLite and Postgres."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pycrdt import Array, Doc, Map, Text

from collab_server.app import create_app
from collab_server.settings import Settings
from collab_server.store import DocumentStore, UpdateRecord
from integrations.history import HistoryReader
from integrations.record_contracts import RecordStore, VersionKind
from integrations.versions import SessionVersions, VersionService
from persistence import SideTables, store_from_settings
from tests.support.servers import serve_in_process
from tests.support.yclient import connect

DOC = "centre/iep-history"
OMAR, SARA, HUDA = "t-omar", "t-sara", "t-huda"


@pytest.fixture
async def records(store: DocumentStore) -> AsyncIterator[RecordStore]:
    side = SideTables(store)
    notifications = side.notifications()
    await notifications.open()
    yield side.records()
    await notifications.aclose()


async def names(user_id: str) -> str | None:
    return {OMAR: "عمر", SARA: "Sara"}.get(user_id)


class Log:
    """An IEP edited by people at given times, as the stored log."""

    def __init__(self) -> None:
        self.doc: Doc[Any] = Doc()
        self.records: list[UpdateRecord] = []
        self._pending: list[bytes] = []
        self.doc.observe(lambda event: self._pending.append(event.update))
        self.goals = self.doc.get("goals", type=Array)
        self.notes = self.doc.get("notes", type=Text)

    def edit(self, user: str, at: float, change: Any) -> None:
        with self.doc.transaction():
            change()
        for update in self._pending:
            self.records.append(UpdateRecord(DOC, len(self.records) + 1, update, user, at))
        self._pending.clear()

    def goal(self, field: str) -> Text:
        text: Text = self.goals[0][field]
        return text


def by_user(page: Any) -> dict[str, Any]:
    return {s["user_id"]: s for s in page.sessions}


async def test_closed_sessions_are_stored_once_and_open_ones_replayed_alone(
    store: DocumentStore, records: RecordStore
) -> None:
    now = time.time()
    log = Log()
    new_goal = Map({"id": "g1", "title": Text("Reading"), "baseline": Text("")})
    log.edit(HUDA, now - 3000, lambda: log.goals.append(new_goal))
    # Omar retitles the goal while Sara, at the same time, writes its baseline and notes:
    # Omar's session is over; Sara's is still open (her last edit a minute ago).
    log.edit(OMAR, now - 1000, lambda: log.goal("title").insert(7, " aloud"))
    log.edit(SARA, now - 990, lambda: log.goal("baseline").insert(0, "20 words"))
    log.edit(OMAR, now - 980, lambda: log.goal("title").insert(0, "Fluent "))
    log.edit(SARA, now - 750, lambda: log.notes.insert(0, "Practises at home."))
    log.edit(SARA, now - 500, lambda: log.notes.insert(0, " "))
    log.edit(SARA, now - 250, lambda: log.notes.__delitem__(slice(0, 1)))
    log.edit(SARA, now - 60, lambda: log.goal("baseline").insert(8, " a minute"))
    await store.append(log.records)

    first = await HistoryReader(records, store, names).page(DOC)
    sessions = by_user(first)
    omar = {c["path"]: c for c in sessions[OMAR]["changes"]}
    sara = {c["path"]: c for c in sessions[SARA]["changes"]}
    assert (omar["goals/g1/title"]["before"], omar["goals/g1/title"]["after"]) == (
        "Reading",
        "Fluent Reading aloud",
    )
    assert set(sara) == {"goals/g1/baseline", "notes"}  # never Omar's title
    assert sara["goals/g1/baseline"]["after"] == "20 words a minute"
    assert sessions[OMAR]["name"] == "عمر" and first.complete

    # The closed sessions are kept; Sara's open one is not, and is replayed again with
    # Omar's entries applied in between without being read as hers.
    kept = await records.session_changes(DOC, [s["from_seq"] for s in first.sessions])
    assert set(kept) == {sessions[OMAR]["from_seq"], sessions[HUDA]["from_seq"]}
    again = await HistoryReader(records, store, names).page(DOC)
    assert again.sessions == first.sessions

    # Sara keeps typing: only her session changes.
    log.edit(SARA, now - 5, lambda: log.notes.insert(0, "Reads daily. "))
    await store.append(log.records[-1:])
    later = by_user(await HistoryReader(records, store, names).page(DOC))
    assert later[OMAR] == sessions[OMAR]
    notes = next(c for c in later[SARA]["changes"] if c["path"] == "notes")
    assert notes["after"] == "Reads daily. Practises at home."

    # Paging back one session at a time shows each session once, whole.
    reader = HistoryReader(records, store, names)
    seen: list[tuple[str, int, int]] = []
    cursor = None
    for _ in range(5):
        page = await reader.page(DOC, cursor, 1)
        seen += [(s["user_id"], s["from_seq"], s["to_seq"]) for s in page.sessions]
        cursor = page.next_before
        if cursor is None:
            break
    assert seen == [(SARA, 3, 9), (OMAR, 2, 4), (HUDA, 1, 1)]


async def test_when_an_editing_session_ends_its_version_and_changes_are_stored(
    store_settings: Settings,
) -> None:
    """The server's own path: stored edits, the session's end (a short gap here), then an
    automatic version and the session's changes kept for every later page."""
    gap = 0.3
    store = store_from_settings(store_settings)
    records = SideTables(store).records()
    versions = VersionService(records)
    history = HistoryReader(records, store, names, gap_seconds=gap)
    ending = SessionVersions(versions, names, gap_seconds=gap, session_ended=history.summarise)
    app = create_app(store_settings, store=store, extensions=[ending])
    versions.attach(app.state.collab.registry)
    async with serve_in_process(app) as server, connect(server.ws(DOC) + "?name=Huda") as client:
        notes = client.doc.get("notes", type=Text)
        notes += "Started the reading goal."
        await client.round_trip()

        async def stored() -> dict[int, tuple[int, str]]:
            while True:
                kept = await records.session_changes(DOC, [1])
                if kept:
                    return kept
                await asyncio.sleep(0.02)

        kept = await asyncio.wait_for(stored(), 5.0)
        (auto,) = await records.versions(DOC)
        assert auto.kind is VersionKind.AUTO and auto.seq == kept[1][0]
        (change,) = json.loads(kept[1][1])
        assert (change["path"], change["after"]) == ("notes", "Started the reading goal.")
