"""What server processes say to each other over the bus, as compact bytes (pure).

Every message is `varuint(kind)` then its fields: varuints for numbers, varbytes for bytes and
strings (UTF-8), and a leading 0/1 varuint before a field that may be absent.

    STORED      doc seq update node connection submit committed_at_ms   owner -> doc channel
    SUBMIT      doc submit update user name node connection             replica -> doc channel
    ACK         doc submit seq          a duplicate or no-op submit     owner -> node channel
    REFUSED     doc submit reason       a malformed submit              owner -> node channel
    RELEASED    doc                     the owner let the document go   owner -> doc channel
    AWARENESS   doc node connection user update                        any -> doc channel
    REVOKE      doc user role           a membership changed            any -> global channel
    STORED_THROUGH doc seq              for the jobs leader's digests   owner -> global channel

Decoding is strict (`ProtocolError` for anything malformed): a message from a process running
another release is dropped and logged, never half-applied.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from pycrdt import write_var_uint

from collab_server.errors import ProtocolError
from collab_server.protocol import ByteReader


class Kind(IntEnum):
    STORED = 1
    SUBMIT = 2
    ACK = 3
    REFUSED = 4
    RELEASED = 5
    AWARENESS = 6
    REVOKE = 7
    STORED_THROUGH = 8


class Stored(NamedTuple):
    document: str
    seq: int
    update: bytes
    node: str  # the process whose client sent it ("" for the owner's own or the server's)
    connection: str
    submit: str  # the submit id it answers, "" for none
    committed_at_ms: int


class Submit(NamedTuple):
    document: str
    submit: str
    update: bytes
    user_id: str | None
    display_name: str
    node: str
    connection: str


class Ack(NamedTuple):
    document: str
    submit: str
    seq: int  # done once the replica has applied the log through this position


class Refused(NamedTuple):
    document: str
    submit: str
    reason: str


class Released(NamedTuple):
    document: str


class Awareness(NamedTuple):
    document: str
    node: str
    connection: str
    user_id: str | None
    update: bytes


class Revoke(NamedTuple):
    document: str
    user_id: str
    role: str | None  # None: no longer a member


class StoredThrough(NamedTuple):
    document: str
    seq: int


Message = Stored | Submit | Ack | Refused | Released | Awareness | Revoke | StoredThrough


def _bytes(data: bytes) -> bytes:
    return write_var_uint(len(data)) + data


def _text(text: str) -> bytes:
    return _bytes(text.encode("utf-8"))


def _maybe_text(text: str | None) -> bytes:
    return b"\x00" if text is None else b"\x01" + _text(text)


def encode(message: Message) -> bytes:
    kind = _KINDS[type(message)]
    parts = [write_var_uint(kind)]
    if isinstance(message, Stored):
        parts += [
            _text(message.document),
            write_var_uint(message.seq),
            _bytes(message.update),
            _text(message.node),
            _text(message.connection),
            _text(message.submit),
            write_var_uint(message.committed_at_ms),
        ]
    elif isinstance(message, Submit):
        parts += [
            _text(message.document),
            _text(message.submit),
            _bytes(message.update),
            _maybe_text(message.user_id),
            _text(message.display_name),
            _text(message.node),
            _text(message.connection),
        ]
    elif isinstance(message, Ack):
        parts += [_text(message.document), _text(message.submit), write_var_uint(message.seq)]
    elif isinstance(message, Refused):
        parts += [_text(message.document), _text(message.submit), _text(message.reason)]
    elif isinstance(message, Released):
        parts.append(_text(message.document))
    elif isinstance(message, Awareness):
        parts += [
            _text(message.document),
            _text(message.node),
            _text(message.connection),
            _maybe_text(message.user_id),
            _bytes(message.update),
        ]
    elif isinstance(message, Revoke):
        parts += [_text(message.document), _text(message.user_id), _maybe_text(message.role)]
    else:
        parts += [_text(message.document), write_var_uint(message.seq)]
    return b"".join(parts)


_KINDS: dict[type, Kind] = {
    Stored: Kind.STORED,
    Submit: Kind.SUBMIT,
    Ack: Kind.ACK,
    Refused: Kind.REFUSED,
    Released: Kind.RELEASED,
    Awareness: Kind.AWARENESS,
    Revoke: Kind.REVOKE,
    StoredThrough: Kind.STORED_THROUGH,
}


def _optional_text(reader: ByteReader) -> str | None:
    flag = reader.varuint()
    if flag > 1:
        raise ProtocolError("bad optional flag")
    return reader.varstring() if flag else None


def decode(data: bytes) -> Message:
    reader = ByteReader(data)
    kind = reader.varuint()
    message: Message
    if kind == Kind.STORED:
        message = Stored(
            reader.varstring(),
            reader.varuint(),
            reader.varbytes(),
            reader.varstring(),
            reader.varstring(),
            reader.varstring(),
            reader.varuint(),
        )
    elif kind == Kind.SUBMIT:
        message = Submit(
            reader.varstring(),
            reader.varstring(),
            reader.varbytes(),
            _optional_text(reader),
            reader.varstring(),
            reader.varstring(),
            reader.varstring(),
        )
    elif kind == Kind.ACK:
        message = Ack(reader.varstring(), reader.varstring(), reader.varuint())
    elif kind == Kind.REFUSED:
        message = Refused(reader.varstring(), reader.varstring(), reader.varstring())
    elif kind == Kind.RELEASED:
        message = Released(reader.varstring())
    elif kind == Kind.AWARENESS:
        message = Awareness(
            reader.varstring(),
            reader.varstring(),
            reader.varstring(),
            _optional_text(reader),
            reader.varbytes(),
        )
    elif kind == Kind.REVOKE:
        message = Revoke(reader.varstring(), reader.varstring(), _optional_text(reader))
    elif kind == Kind.STORED_THROUGH:
        message = StoredThrough(reader.varstring(), reader.varuint())
    else:
        raise ProtocolError(f"unknown cluster message {kind}")
    reader.end()
    return message
