"""The y-websocket wire protocol: message types, close codes, strict frame codec (pure).

Frames are `varuint(message type)` then a type-specific body (lib0 encoding):
  SYNC            varuint(step) varbytes(payload)   step: 0 = step 1, 1 = step 2, 2 = update
  AWARENESS       varbytes(awareness update)
  AUTH            varuint(0 = permission denied) varstring(reason)
  QUERY_AWARENESS (empty)
  SAVED           varuint(check id): ours, not y-protocols'. A client asks "is everything I
                  sent stored?"; the server answers with the same id once the store has it.
                  Clients that never ask (unmodified y-websocket) never receive one.
Encoders pycrdt provides (updates, step 1, awareness frames, varuints) are used from pycrdt;
the rest are here. Decoding is strict: a truncated varint, a length past the end, trailing
bytes or an unknown type raise ProtocolError, so the caller closes that one connection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple, NoReturn

from pycrdt import write_var_uint

from collab_server.errors import ProtocolError


class MessageType(IntEnum):
    SYNC = 0
    AWARENESS = 1
    AUTH = 2
    QUERY_AWARENESS = 3
    SAVED = 100  # far from y-protocols' and Hocuspocus' types


class SyncStep(IntEnum):
    STEP1 = 0
    STEP2 = 1
    UPDATE = 2


class AuthMessageType(IntEnum):
    PERMISSION_DENIED = 0


class CloseCode(IntEnum):
    NORMAL = 1000
    GOING_AWAY = 1001
    UNSUPPORTED_DATA = 1003
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013
    BAD_REQUEST = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    RATE_LIMITED = 4429
    # Another server process owns the document: the client should retry (not a refusal).
    SERVED_ELSEWHERE = 4503


_SYNC_STEPS = tuple(SyncStep)  # indexed by wire value: no Enum call per frame

# lib0 varuints are JS numbers: anything past 2**53 is not a valid value.
_MAX_VARUINT_BYTES = 8


class SyncMessage(NamedTuple):  # one per frame: cheaper to build than a frozen dataclass
    step: SyncStep
    payload: bytes


@dataclass(frozen=True, slots=True)
class AwarenessMessage:
    update: bytes


@dataclass(frozen=True, slots=True)
class QueryAwarenessMessage:
    pass


@dataclass(frozen=True, slots=True)
class SavedCheckMessage:
    check_id: int


@dataclass(frozen=True, slots=True)
class AuthMessage:
    kind: AuthMessageType
    reason: str


Message = SyncMessage | AwarenessMessage | QueryAwarenessMessage | AuthMessage | SavedCheckMessage


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    client_id: int
    clock: int
    state_json: str  # "null" means the client left

    @property
    def is_removal(self) -> bool:
        return self.state_json == "null"


class _Reader:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def varuint(self) -> int:
        value = 0
        shift = 0
        buf = self.buf
        for _ in range(_MAX_VARUINT_BYTES):
            if self.pos >= len(buf):
                raise ProtocolError("truncated varint")
            byte = buf[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
        raise ProtocolError("varint too long")

    def varbytes(self) -> bytes:
        length = self.varuint()
        end = self.pos + length
        if end > len(self.buf):
            raise ProtocolError("length past end of frame")
        chunk = self.buf[self.pos : end]
        self.pos = end
        return chunk

    def varstring(self) -> str:
        try:
            return self.varbytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("string is not UTF-8") from exc

    def end(self) -> None:
        if self.pos != len(self.buf):
            raise ProtocolError("trailing bytes after message")


# Other strict decoders of lib0-style bytes (the cluster's messages) read with the same reader.
ByteReader = _Reader


def decode_message(frame: bytes) -> Message:
    # Most frames are sync messages with a payload under 128 bytes (one-byte length): typing.
    if len(frame) >= 3 and frame[0] == 0 and frame[1] < 3 and frame[2] < 0x80:
        if len(frame) < 3 + frame[2]:
            raise ProtocolError("length past end of frame")
        if len(frame) > 3 + frame[2]:
            raise ProtocolError("trailing bytes after message")
        return SyncMessage(_SYNC_STEPS[frame[1]], frame[3:])
    reader = _Reader(frame)
    kind = reader.varuint()
    message: Message
    if kind == MessageType.SYNC:
        step = reader.varuint()
        if step >= len(_SYNC_STEPS):
            raise ProtocolError(f"unknown sync step {step}")
        message = SyncMessage(_SYNC_STEPS[step], reader.varbytes())
    elif kind == MessageType.AWARENESS:
        message = AwarenessMessage(reader.varbytes())
    elif kind == MessageType.QUERY_AWARENESS:
        message = QueryAwarenessMessage()
    elif kind == MessageType.SAVED:
        message = SavedCheckMessage(reader.varuint())
    elif kind == MessageType.AUTH:
        auth_kind = reader.varuint()
        if auth_kind not in AuthMessageType._value2member_map_:
            raise ProtocolError(f"unknown auth message {auth_kind}")
        message = AuthMessage(AuthMessageType(auth_kind), reader.varstring())
    else:
        raise ProtocolError(f"unknown message type {kind}")
    reader.end()
    return message


# Presence is a name, a colour and a cursor: a few hundred characters. These bound what one
# client's state may hold, so a hostile one cannot make every joiner parse megabytes.
MAX_AWARENESS_STATE_CHARS = 16 * 1024
MAX_AWARENESS_DEPTH = 16


def _javascript_unreadable(constant: str) -> NoReturn:
    raise ProtocolError(f"awareness state holds {constant}, which JSON.parse cannot read")


def _within_depth(value: object, depth: int) -> bool:
    if isinstance(value, dict):
        return depth > 0 and all(_within_depth(item, depth - 1) for item in value.values())
    if isinstance(value, list):
        return depth > 0 and all(_within_depth(item, depth - 1) for item in value)
    return True


def _check_awareness_state(state_json: str) -> None:
    """Every joiner's y-websocket parses this state with JSON.parse: accept only what it reads
    (no NaN or Infinity), with no lone surrogate, within the size and depth limits."""
    if len(state_json) > MAX_AWARENESS_STATE_CHARS:
        raise ProtocolError("awareness state over size limit")
    try:
        state = json.loads(state_json, parse_constant=_javascript_unreadable)
    except RecursionError as exc:
        raise ProtocolError("awareness state nested too deeply") from exc
    except ValueError as exc:
        raise ProtocolError("awareness state is not JSON") from exc
    if state is not None and not isinstance(state, dict):
        raise ProtocolError("awareness state must be an object or null")
    if not _within_depth(state, MAX_AWARENESS_DEPTH):
        raise ProtocolError("awareness state nested too deeply")
    if "\\u" in state_json:  # only an escape can make a lone surrogate (UTF-8 cannot)
        try:
            json.dumps(state, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ProtocolError("awareness state holds a lone surrogate") from exc


def decode_awareness_update(update: bytes) -> list[AwarenessEntry]:
    """Validate an awareness update fully: every state is an object or null that JavaScript
    reads back (see `_check_awareness_state`)."""
    reader = _Reader(update)
    count = reader.varuint()
    entries = []
    for _ in range(count):
        client_id = reader.varuint()
        clock = reader.varuint()
        state_json = reader.varstring()
        _check_awareness_state(state_json)
        entries.append(AwarenessEntry(client_id, clock, state_json))
    reader.end()
    return entries


def encode_awareness_update(entries: list[AwarenessEntry]) -> bytes:
    parts = [write_var_uint(len(entries))]
    for entry in entries:
        state = entry.state_json.encode("utf-8")
        parts += [write_var_uint(entry.client_id), write_var_uint(entry.clock)]
        parts += [write_var_uint(len(state)), state]
    return b"".join(parts)


def sync_step2_head(update_length: int) -> bytes:
    """What precedes an update of that many bytes in a sync step 2 (pycrdt computes its own
    step 2 only inside a handshake); the update follows unchanged."""
    return bytes((MessageType.SYNC, SyncStep.STEP2)) + write_var_uint(update_length)


def check_state_vector(state_vector: bytes) -> None:
    """Raise ProtocolError unless it reads as a state vector: a count, then (client, clock)."""
    reader = _Reader(state_vector)
    for _ in range(reader.varuint()):
        reader.varuint()
        reader.varuint()
    reader.end()


def encode_permission_denied(reason: str) -> bytes:
    text = reason.encode("utf-8")
    head = bytes((MessageType.AUTH, AuthMessageType.PERMISSION_DENIED))
    return b"".join((head, write_var_uint(len(text)), text))


def encode_saved(check_id: int) -> bytes:
    return bytes((MessageType.SAVED,)) + write_var_uint(check_id)
