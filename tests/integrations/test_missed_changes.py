"""A change that reached the log while its change hook never ran (the process died between the
commit and the digest's record) is still digested, once, after a restart; a change that was
recorded is never digested again (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

from pycrdt import Array, Doc, Map, Text

from collab_server.store import UpdateRecord
from persistence import store_from_settings
from tests.integrations.conftest import DOCUMENT, HUDA, OMAR, PARENT_AR, PARENT_EN, Harness
from tests.integrations.edits import add_item, create_sections
from tests.integrations.fakes import wait_until
from tests.support.yclient import connect

PARENTS = (PARENT_AR, PARENT_EN)


def texts(h: Harness) -> dict[str, list[str]]:
    return {p.user_id: [c.text for c in h.graph.to(p.phone or "")] for p in PARENTS}


async def append_behind_the_digests(h: Harness, edits: list[tuple[str | None, Any]]) -> int:
    """Commit edits to the log with no server and no digest extension running: exactly what
    a crash leaves when the change hooks were still queued. Returns the last seq."""
    store = store_from_settings(h.settings)
    await store.open()
    try:
        log = await store.updates_since(DOCUMENT, 0, 1_000_000)
        doc: Doc[Any] = Doc()
        for record in log:
            doc.apply_update(record.update)
        seq = log[-1].seq
        for user_id, edit in edits:
            before = doc.get_state()
            edit(doc)
            seq += 1
            update = doc.get_update(before)
            await store.append([UpdateRecord(DOCUMENT, seq, update, user_id, time.time())])
        return seq
    finally:
        await store.aclose()


async def load_document(h: Harness) -> None:
    """Open the document the way an editor does: its load must not record a change twice."""
    async with connect(h.ws(HUDA.user_id)):
        pass


def window_through(h: Harness) -> int:
    assert h.service is not None
    windows = [h.service.scheduler.window(DOCUMENT, p.user_id) for p in PARENTS]
    return min((w.through_seq if w else 0) for w in windows)


async def huda_writes_the_first_goal(h: Harness) -> None:
    """Huda creates the IEP with one goal; both parents get that digest."""
    async with h.running() as service:
        async with connect(h.ws(HUDA.user_id)) as huda:
            with huda.doc.transaction():
                create_sections(huda, "Sara")
                add_item(huda, "goals", "g1", "Reading fluency")
            await wait_until(lambda: window_through(h) >= 1)
        h.clock.advance(601)
        assert await service.tick() == 2
    assert [len(sent) for sent in texts(h).values()] == [1, 1]


def omar_adds_a_goal(doc: Doc[Any]) -> None:
    doc.get("goals", type=Array).append(Map({"id": "g2", "title": Text("Math facts")}))


def server_touches_notes(doc: Doc[Any]) -> None:  # no user: the server's own change
    doc.get("notes", type=Text).insert(0, "imported ")


async def test_a_change_whose_hook_never_ran_is_digested_once_after_restart(
    backend_harness: Harness,
) -> None:
    h = backend_harness
    await huda_writes_the_first_goal(h)

    last = await append_behind_the_digests(
        h, [(OMAR.user_id, omar_adds_a_goal), (None, server_touches_notes)]
    )

    async with h.running() as service:
        await load_document(h)
        await service.extension.idle()
        assert window_through(h) == last - 1  # Omar's goal; the server's change opens nothing
        h.clock.advance(601)
        assert await service.tick() == 2
    for parent, sent in texts(h).items():
        assert len(sent) == 2, parent
        missed = sent[1]
        assert "Math facts" in missed and OMAR.name in missed
        assert "Reading fluency" not in missed  # digested before the crash: not again
        assert "imported" not in missed and "Notes" not in missed and "الملاحظات" not in missed

    async with h.running() as service:  # every change is in a digest: nothing more to send
        await load_document(h)
        await service.extension.idle()  # the load's catch-up, if any, has run
        h.clock.advance(3600)
        assert await service.tick() == 0
        assert all(service.scheduler.window(DOCUMENT, p.user_id) is None for p in PARENTS)
    assert [len(sent) for sent in texts(h).values()] == [2, 2]


async def test_a_missed_change_is_digested_at_start_though_nobody_reopens_the_document(
    backend_harness: Harness,
) -> None:
    h = backend_harness
    await huda_writes_the_first_goal(h)
    last = await append_behind_the_digests(h, [(OMAR.user_id, omar_adds_a_goal)])

    async with h.running() as service:  # no editor connects this time
        await service.extension.idle()
        assert window_through(h) == last
        h.clock.advance(601)
        assert await service.tick() == 2
    for parent, sent in texts(h).items():
        assert len(sent) == 2, parent
        assert "Math facts" in sent[1] and OMAR.name in sent[1]
        assert "Reading fluency" not in sent[1]
