"""In-memory document store: for tests and benchmarks of the server alone (`memory://`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from collab_server.errors import LogConflict
from collab_server.store import DocumentInfo, StoredDocument, UpdateRecord


@dataclass
class _Row:
    snapshot: bytes | None = None
    snapshot_seq: int = 0
    log: list[UpdateRecord] = field(default_factory=list)


class MemoryStore:
    def __init__(self) -> None:
        self._docs: dict[str, _Row] = {}

    async def open(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def load(self, document: str) -> StoredDocument:
        row = self._docs.get(document, _Row())
        tail = [r for r in row.log if r.seq > row.snapshot_seq]
        return StoredDocument(row.snapshot, row.snapshot_seq, tail)

    async def append(self, records: Sequence[UpdateRecord]) -> None:
        self.append_now(records)

    def append_now(self, records: Sequence[UpdateRecord]) -> None:
        conflicts: set[str] = set()
        for record in records:
            row = self._docs.setdefault(record.document, _Row())
            if not row.log or row.log[-1].seq < record.seq:
                row.log.append(record)
                continue
            existing = next((r for r in row.log if r.seq == record.seq), None)
            if existing is None or existing.update != record.update:
                conflicts.add(record.document)
        if conflicts:
            raise LogConflict(conflicts)

    async def compact(self, document: str, snapshot: bytes, through_seq: int) -> None:
        row = self._docs.setdefault(document, _Row())
        if through_seq >= row.snapshot_seq:
            row.snapshot, row.snapshot_seq = snapshot, through_seq

    async def updates_since(
        self, document: str, after_seq: int, limit: int = 10_000
    ) -> list[UpdateRecord]:
        row = self._docs.get(document, _Row())
        return [r for r in row.log if r.seq > after_seq][:limit]

    async def list_documents(self) -> list[DocumentInfo]:
        return [
            DocumentInfo(
                name,
                row.log[-1].seq if row.log else row.snapshot_seq,
                row.log[-1].created_at if row.log else None,
            )
            for name, row in sorted(self._docs.items())
        ]
