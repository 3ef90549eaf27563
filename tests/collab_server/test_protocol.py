"""The strict y-websocket codec: what real clients send decodes; anything else is refused."""

from __future__ import annotations

import pytest
from pycrdt import create_awareness_message, write_var_uint

from collab_server.errors import ProtocolError
from collab_server.protocol import (
    AuthMessage,
    AwarenessEntry,
    AwarenessMessage,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
    decode_awareness_update,
    decode_message,
    encode_awareness_update,
    encode_permission_denied,
)
from tests.support.frames import sync_frame


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 2**32, 2**53 - 1])
def test_varuint_round_trips_through_a_sync_frame(value: int) -> None:
    payload = write_var_uint(value)
    message = decode_message(sync_frame(SyncStep.STEP1, payload))
    assert message == SyncMessage(SyncStep.STEP1, payload)


@pytest.mark.parametrize("size", [0, 1, 127, 128, 129, 20_000])
@pytest.mark.parametrize("step", list(SyncStep))
def test_sync_payloads_of_every_length_round_trip(step: SyncStep, size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    assert decode_message(sync_frame(step, payload)) == SyncMessage(step, payload)
    with pytest.raises(ProtocolError):
        decode_message(sync_frame(step, payload) + b"\x00")
    if size:
        with pytest.raises(ProtocolError):
            decode_message(sync_frame(step, payload)[:-1])


def test_awareness_frames_round_trip_with_unicode_state() -> None:
    entries = [AwarenessEntry(7, 3, '{"user":{"name":"أ. هدى"}}'), AwarenessEntry(9, 1, "null")]
    frame = create_awareness_message(encode_awareness_update(entries))
    message = decode_message(frame)
    assert isinstance(message, AwarenessMessage)
    assert decode_awareness_update(message.update) == entries
    assert entries[1].is_removal


def test_query_awareness_and_permission_denied() -> None:
    assert decode_message(b"\x03") == QueryAwarenessMessage()
    denied = decode_message(encode_permission_denied("read-only"))
    assert isinstance(denied, AuthMessage) and denied.reason == "read-only"


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\x00",  # sync without a step
        b"\x00\x05\x00",  # unknown sync step
        b"\x00\x02\x05ab",  # length past the end
        b"\x00\x02\x01ab",  # trailing bytes
        b"\x00\x02\xff\xff\xff\xff\xff\xff\xff\xff\xff",  # varint too long
        b"\x09",  # unknown type
        b"\x02\x07",  # unknown auth message
        b"\x02\x00\x02\xff\xfe",  # reason not UTF-8
    ],
)
def test_malformed_frames_raise_protocol_error(frame: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_message(frame)


@pytest.mark.parametrize("state", ["not json", "[1,2]", '"a string"', "{"])
def test_awareness_states_must_be_json_objects_or_null(state: str) -> None:
    with pytest.raises(ProtocolError):
        decode_awareness_update(encode_awareness_update([AwarenessEntry(1, 1, state)]))
