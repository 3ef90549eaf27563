"""The SQLite store's intake journal: an update reaches a file first, its table soon after.

An acknowledged update must survive a crash of this process, and writing it to a file with
one `write(2)` gives that: the kernel keeps the bytes once the call returns. A SQLite commit
gives the same guarantee (WAL, synchronous=NORMAL) for several times the cost on the event
loop, so commits move off it: the store copies journaled records into its tables in the
background. A segment is written until it passes `rotate_bytes`; the next drain then seals it
and deletes it once its records are committed. Records already copied stay in the live
segment until then: a file created and deleted per drain cost more than copying its records,
and copying a record twice is harmless. A store that opens finds the segments of a process
that died (no one holds their lock) and copies them in first.

A segment is a sequence of frames, one per write: `<II` (payload length, CRC-32 of the
payload), then the payload: records of `<HHIQd` (name length, user length or 0xFFFF for
none, update length, seq, created_at) followed by the name, the user id and the update. A
frame cut short by a crash mid-write fails its length or CRC and is left out: its write never
returned, so no one was told it was stored. Reading stops at the first such frame, so damage
mid-file would hide what follows it: a segment with unreadable bytes is kept aside, renamed,
rather than deleted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import struct
import uuid
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from collab_server.errors import StoreError
from collab_server.store import UpdateRecord

log = structlog.get_logger("collab.journal")

_FRAME = struct.Struct("<II")
_RECORD = struct.Struct("<HHIQd")
_NO_USER = 0xFFFF
# What a crashed process may leave to copy again at the next start: about 100,000 typed edits.
ROTATE_BYTES = 16 * 1024 * 1024


def encode_frame(records: Sequence[UpdateRecord]) -> bytes:
    parts: list[bytes] = []
    pack = _RECORD.pack
    for record in records:
        name = record.document.encode()
        user = b"" if record.user_id is None else record.user_id.encode()
        user_length = _NO_USER if record.user_id is None else len(user)
        parts += (
            pack(len(name), user_length, len(record.update), record.seq, record.created_at),
            name,
            user,
            record.update,
        )
    payload = b"".join(parts)
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def decode_segment(data: bytes) -> tuple[list[UpdateRecord], int]:
    """The records of every whole frame, and how many bytes at the end were not one."""
    records: list[UpdateRecord] = []
    offset = 0
    view = memoryview(data)
    while offset + _FRAME.size <= len(data):
        length, checksum = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        payload = view[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != checksum:
            break
        records += _decode_payload(bytes(payload))
        offset = start + length
    return records, len(data) - offset


def _decode_payload(payload: bytes) -> list[UpdateRecord]:
    records: list[UpdateRecord] = []
    offset = 0
    while offset < len(payload):
        name_length, user_length, update_length, seq, created_at = _RECORD.unpack_from(
            payload, offset
        )
        offset += _RECORD.size
        name = payload[offset : offset + name_length].decode()
        offset += name_length
        user_id = None
        if user_length != _NO_USER:
            user_id = payload[offset : offset + user_length].decode()
            offset += user_length
        update = payload[offset : offset + update_length]
        offset += update_length
        records.append(UpdateRecord(name, seq, update, user_id, created_at))
    return records


@dataclass
class Segment:
    """One journal file, locked by the process that writes or recovers it."""

    path: Path
    fd: int

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)  # releases the lock


@dataclass
class RecoveredSegment:
    segment: Segment
    records: list[UpdateRecord]
    unreadable_bytes: int  # after the last whole frame: a write cut short, or damage


class Journal:
    """Segments named `<database>.journal.<owner>.<n>` beside the database file."""

    def __init__(self, database: Path | None, *, rotate_bytes: int = ROTATE_BYTES) -> None:
        # None: the database is in memory, so a file would outlive what it protects.
        self._database = database
        self._rotate_bytes = rotate_bytes
        self._owner = uuid.uuid4().hex[:12]
        self._next_number = 1
        self._current: Segment | None = None
        self._size = 0

    def recover(self) -> list[RecoveredSegment]:
        """Segments left by processes that are gone, oldest first; a live owner's are skipped."""
        if self._database is None:
            return []
        pattern = f"{self._database.name}.journal.*"
        paths = sorted(self._database.parent.glob(pattern), key=_age)
        found: list[RecoveredSegment] = []
        for path in paths:
            segment = _lock(path, create=False)
            if segment is None:
                continue
            with open(path, "rb") as file:
                data = file.read()
            records, unreadable = decode_segment(data)
            found.append(RecoveredSegment(segment, records, unreadable))
        return found

    def retire(self, recovered: RecoveredSegment) -> None:
        """Delete a recovered segment once its records are committed; one with unreadable
        bytes is renamed `<database>.unreadable.<...>` and kept for a person to look at."""
        if not recovered.unreadable_bytes:
            self.remove(recovered.segment)
            return
        segment = recovered.segment
        kept = segment.path.with_name(segment.path.name.replace(".journal.", ".unreadable.", 1))
        segment.path.rename(kept)
        segment.close()
        log.warning(
            "journal_unreadable_bytes_kept",
            segment=kept.name,
            records=len(recovered.records),
            unreadable_bytes=recovered.unreadable_bytes,
        )

    def write(self, records: Sequence[UpdateRecord]) -> None:
        """Append one frame; once this returns, the records survive a crash of this process."""
        if self._database is None:
            return
        if self._current is None:
            self._current = self._start_segment()
        frame = encode_frame(records)
        try:
            written = os.write(self._current.fd, frame)
        except OSError as exc:
            self._cut_back()
            raise StoreError(f"journal write failed: {exc.strerror}") from exc
        if written != len(frame):
            self._cut_back()
            raise StoreError("journal write was cut short (is the disk full?)")
        self._size += written

    def seal_if_full(self) -> Segment | None:
        """Called by a drain before it takes its records: a segment past `rotate_bytes` is
        returned, to delete once they are committed, and writing moves to a new one.

        The new segment is created here, by the drain, so an append never waits for a file.
        """
        if self._current is None or self._size < self._rotate_bytes:
            return None
        sealed = self._current
        self._current, self._size = self._start_segment(), 0
        return sealed

    def close(self, *, drained: bool) -> None:
        """Release the current segment: deleted if everything in it reached the tables, else
        kept for the next start to copy in."""
        current, self._current = self._current, None
        if current is None:
            return
        if drained or self._size == 0:
            self.remove(current)
        else:
            current.close()
        self._size = 0

    def remove(self, segment: Segment) -> None:
        """Delete a segment whose records are committed to the database."""
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
        segment.close()

    def _start_segment(self) -> Segment:
        assert self._database is not None
        name = f"{self._database.name}.journal.{self._owner}.{self._next_number:06d}"
        self._next_number += 1
        segment = _lock(self._database.parent / name, create=True)
        if segment is None:  # a fresh, uniquely named file: no one else can hold it
            raise StoreError(f"journal segment {name} is locked by another process")
        return segment

    def _cut_back(self) -> None:
        # Drop a partial frame so the segment stays readable to its end.
        assert self._current is not None
        with contextlib.suppress(OSError):
            os.ftruncate(self._current.fd, self._size)


def _lock(path: Path, *, create: bool) -> Segment | None:
    flags = os.O_RDWR | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        return None  # recovered and removed by another store meanwhile
    except OSError as exc:
        raise StoreError(f"cannot open journal segment {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return Segment(path, fd)


def _age(path: Path) -> tuple[float, str]:
    try:
        return (path.stat().st_mtime, path.name)
    except FileNotFoundError:
        return (0.0, path.name)
