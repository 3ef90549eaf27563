"""Frames a client sends, built by hand so tests can also build the malformed ones."""

from __future__ import annotations

from pycrdt import write_var_uint

from collab_server.protocol import MessageType, SyncStep


def sync_frame(step: SyncStep, payload: bytes) -> bytes:
    return bytes((MessageType.SYNC, step)) + write_var_uint(len(payload)) + payload
