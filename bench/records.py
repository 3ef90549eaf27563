"""What the IEP-as-a-record features cost on a real-sized IEP with a 10,000-entry log.

    .venv/bin/python -m bench.records            # prints JSON

Builds an IEP (10 goals, 5 accommodations, 3 services, notes) edited 10,000 times by three
people in sessions (a 6-minute pause every 500 edits), stores the log in SQLite session by
session with what the server does when a session ends (an automatic version, the session's
changes stored), then measures: opening a version (the read and decoding of its state and
content), a history page (20 sessions with per-field changes) as the server reads it and
computed from the log alone, a PDF of the full IEP, and the storage the log, the versions and
the CRDT's deleted content take.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pycrdt import Array, Doc, Map, Text

from collab_server.store import UpdateRecord
from integrations.export import render_pdf
from integrations.history import HistoryReader
from integrations.iep_content import content_of_state, content_sha256
from integrations.record_contracts import Version, VersionKind
from persistence import SideTables
from persistence.sqlite import SQLiteStore
from persistence.sqlite_records import SQLiteRecordStore

DOC = "centre/bench/iep-2026"
USERS = ("t-huda", "t-omar", "t-sara")
ASCII_WORDS = ["reading", "fluency", "target", "baseline", "skills", "goal", "session"]
WORDS = [
    "القراءة",
    "بطلاقة",
    "reading",
    "fluency",
    "الهدف",
    "target",
    "baseline",
    "مهارات",
    "skills",
]


def build(edits: int, rng: random.Random) -> tuple[list[UpdateRecord], list[int], Doc[Any]]:
    doc: Doc[Any] = Doc()
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    iep = doc.get("iep", type=Map)
    with doc.transaction():
        iep["meta"] = Map({"title": "خطة يوسف 2026", "language": "ar", "schemaVersion": 1})
        iep["student"] = Map({"name": "يوسف الأحمد", "grade": "3", "school": "مدرسة النور"})
        for section, count in (("goals", 10), ("accommodations", 5), ("services", 3)):
            iep[section] = Array(
                [Map({"id": f"{section}-{i}", "title": f"{section} {i}"}) for i in range(count)]
            )
        iep["notes"] = Text()
    records: list[UpdateRecord] = []
    session_ends: list[int] = []
    at = time.time() - edits * 1.0 - (edits // 500) * 360.0 - 3600.0  # every session closed
    for i in range(edits):
        user = USERS[(i // 500) % 3]
        kind = rng.random()
        if kind < 0.6:
            notes = iep["notes"]
            if len(notes) > 200 and rng.random() < 0.2:
                start = rng.randrange(len(notes) - 5)
                del notes[start : start + 5]
            else:
                # Latin words in the notes: pycrdt indexes text by UTF-8 bytes in deletions.
                notes.insert(len(notes), rng.choice(ASCII_WORDS) + " ")
        else:
            section = rng.choice(("goals", "accommodations", "services"))
            items = iep[section]
            item = items[rng.randrange(len(items))]
            item[rng.choice(("title", "baseline", "target", "details"))] = " ".join(
                rng.choice(WORDS) for _ in range(rng.randrange(2, 8))
            )
        at += 1.0
        if (i + 1) % 500 == 0:
            session_ends.append(len(updates))
            at += 360.0
        for update in updates[len(records) :]:
            records.append(UpdateRecord(DOC, len(records) + 1, update, user, at))
    return records, session_ends, doc


class NothingKept(SQLiteRecordStore):
    """The records without stored session changes: history computed from the log alone."""

    async def session_changes(
        self, document: str, first_seqs: Sequence[int]
    ) -> dict[int, tuple[int, str]]:
        return {}

    async def keep_session_changes(
        self, document: str, sessions: Sequence[tuple[int, int, str]]
    ) -> None:
        return None


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


async def run(edits: int) -> dict[str, Any]:
    rng = random.Random(7)
    records, session_ends, final_doc = build(edits, rng)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "collab.db"
        store = SQLiteStore(path)
        await store.open()
        side = SideTables(store)
        notifications = side.notifications()
        await notifications.open()
        rows = side.records()

        async def names(user_id: str) -> str | None:
            return user_id

        history = HistoryReader(rows, store, names)
        summaries: list[float] = []
        replay: Doc[Any] = Doc()
        versions: list[Version] = []
        applied = 0
        version_bytes = 0
        for end in session_ends:
            await store.append(records[applied:end])
            for record in records[applied:end]:
                replay.apply_update(record.update)
            applied = end
            state = replay.get_update()
            version_bytes += len(state)
            version = Version(
                uuid.uuid4().hex,
                DOC,
                end,
                "auto",
                "",
                VersionKind.AUTO,
                records[end - 1].user_id,
                "bench",
                time.time(),
                content_sha256(content_of_state(state)),
            )
            await rows.add_version(version, state)
            versions.append(version)
            started = time.perf_counter()
            await history.summarise(DOC)  # as the server does when a session ends
            summaries.append(time.perf_counter() - started)
        await store.append(records[applied:])

        async def open_version(version_id: str) -> float:
            started = time.perf_counter()
            found = await rows.version(DOC, version_id)
            assert found is not None
            content_of_state(found[1])
            return time.perf_counter() - started

        opens = [await open_version(v.id) for v in versions[-10:] * 2]

        pages = []
        for _ in range(5):
            started = time.perf_counter()
            page = await history.page(DOC, None, 20)
            pages.append(time.perf_counter() - started)
        older = []
        for _ in range(3):
            started = time.perf_counter()
            await history.page(DOC, page.next_before, 20)
            older.append(time.perf_counter() - started)
        from_log = HistoryReader(NothingKept(store), store, names)
        computed = []
        for _ in range(3):
            started = time.perf_counter()
            await from_log.page(DOC, None, 20)
            computed.append(time.perf_counter() - started)
        started = time.perf_counter()
        await history.last_edits(DOC)
        field_editors_first = time.perf_counter() - started

        content = content_of_state(final_doc.get_update())
        render_pdf(content, versions[-1], document=DOC)  # warm: fonts and WeasyPrint load
        pdfs = []
        for _ in range(3):
            started = time.perf_counter()
            pdf = render_pdf(content, versions[-1], document=DOC)
            pdfs.append(time.perf_counter() - started)

        fresh: Doc[Any] = Doc()
        fresh.get("iep", type=Map)  # the same content typed once, no history
        fresh_iep = fresh.get("iep", type=Map)
        with fresh.transaction():
            for key, value in content.items():
                if isinstance(value, str) and key == "notes":
                    fresh_iep[key] = Text(value)
                elif isinstance(value, dict):
                    fresh_iep[key] = Map(value)
                elif isinstance(value, list):
                    fresh_iep[key] = Array([Map(item) for item in value])
        await notifications.aclose()
        await store.aclose()
        log_bytes = sum(len(r.update) for r in records)
        return {
            "edits": edits,
            "log_entries": len(records),
            "sessions_with_auto_version": len(versions),
            "open_version_ms_p50": median_ms(opens),
            "history_first_page_ms_p50": median_ms(pages),
            "history_older_page_ms_p50": median_ms(older),
            "history_page_from_the_log_alone_ms_p50": median_ms(computed),
            "session_end_store_changes_ms_p50": median_ms(summaries),
            "session_end_store_changes_ms_max": round(max(summaries) * 1000, 1),
            "history_page_sessions": len(page.sessions),
            "last_edited_by_first_call_ms": round(field_editors_first * 1000, 1),
            "pdf_ms_p50": median_ms(pdfs),
            "pdf_bytes": len(pdf),
            "final_state_bytes": len(final_doc.get_update()),
            "same_content_without_history_bytes": len(fresh.get_update()),
            "content_json_bytes": len(json.dumps(content, ensure_ascii=False).encode()),
            "log_bytes": log_bytes,
            "versions_bytes": version_bytes,
            "database_bytes": path.stat().st_size,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=10_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.edits)), indent=2))


if __name__ == "__main__":
    main()
