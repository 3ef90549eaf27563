"""A minimal y-websocket client (pycrdt + websockets) for driving the server from tests."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import websockets
from pycrdt import Doc, create_awareness_message, write_var_uint

from collab_server.protocol import (
    AuthMessage,
    AwarenessEntry,
    AwarenessMessage,
    MessageType,
    SavedCheckMessage,
    SyncMessage,
    SyncStep,
    decode_awareness_update,
    decode_message,
    encode_awareness_update,
)
from tests.support.frames import sync_frame


class YClient:
    """One connection: keeps a local Doc in sync and records awareness and auth messages."""

    def __init__(self, ws: websockets.ClientConnection, doc: Doc | None = None) -> None:
        self.ws = ws
        self.doc = doc or Doc()
        self.synced = asyncio.Event()
        self.awareness: dict[int, str] = {}
        self.denials: list[str] = []
        self.saved: list[int] = []  # answers to `ask_saved`, in order
        self.frames_received = 0
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self._sub = self.doc.observe(self._on_local_change)
        self._applying_remote = False
        self.close_code: int | None = None

    def _on_local_change(self, event: Any) -> None:
        if self._applying_remote:
            return
        update = event.update
        asyncio.get_running_loop().create_task(self._send(sync_frame(SyncStep.UPDATE, update)))

    async def _send(self, frame: bytes) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(frame)

    async def send_raw(self, frame: bytes | str) -> None:
        await self.ws.send(frame)

    async def _read(self) -> None:
        try:
            await self._read_frames()
        except websockets.ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else None
        else:
            self.close_code = self.ws.close_code
        async with self._changed:
            self._changed.notify_all()

    async def closed(self, timeout: float = 5.0) -> int | None:
        """Wait for the server to close this connection; returns the close code."""
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    async def _read_frames(self) -> None:
        async for frame in self.ws:
            assert isinstance(frame, bytes)
            self.frames_received += 1
            message = decode_message(frame)
            if isinstance(message, SyncMessage):
                if message.step is SyncStep.STEP1:
                    await self._send(
                        sync_frame(SyncStep.STEP2, self.doc.get_update(message.payload))
                    )
                else:
                    self._applying_remote = True
                    try:
                        self.doc.apply_update(message.payload)
                    finally:
                        self._applying_remote = False
                    if message.step is SyncStep.STEP2:
                        self.synced.set()
            elif isinstance(message, AwarenessMessage):
                for entry in decode_awareness_update(message.update):
                    if entry.is_removal:
                        self.awareness.pop(entry.client_id, None)
                    else:
                        self.awareness[entry.client_id] = entry.state_json
            elif isinstance(message, AuthMessage):
                self.denials.append(message.reason)
            elif isinstance(message, SavedCheckMessage):
                self.saved.append(message.check_id)
            async with self._changed:
                self._changed.notify_all()

    async def sync(self, timeout: float = 5.0) -> None:
        await self.ws.send(sync_frame(SyncStep.STEP1, self.doc.get_state()))
        await asyncio.wait_for(self.synced.wait(), timeout)

    async def round_trip(self, marker: int = 4242) -> None:
        """Every frame sent before this is handled: the server echoes awareness to its sender."""
        await self.set_awareness(marker, 1, "{}")
        await self.wait_for(lambda: marker in self.awareness)

    async def ask_saved(self, check_id: int) -> None:
        """Ask whether everything sent so far is stored (the editor's save indicator)."""
        await self.ws.send(bytes((MessageType.SAVED,)) + write_var_uint(check_id))

    async def set_awareness(self, client_id: int, clock: int, state: str) -> None:
        update = encode_awareness_update([AwarenessEntry(client_id, clock, state)])
        await self.ws.send(create_awareness_message(update))

    async def wait_for(self, predicate: Any, timeout: float = 5.0) -> None:
        async def check() -> None:
            async with self._changed:
                await self._changed.wait_for(predicate)

        await asyncio.wait_for(check(), timeout)

    async def close(self) -> None:
        self.doc.unobserve(self._sub)
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def connect(
    url: str,
    doc: Doc | None = None,
    *,
    sync: bool = True,
    additional_headers: dict[str, str] | None = None,
) -> AsyncIterator[YClient]:
    async with websockets.connect(url, max_size=None, additional_headers=additional_headers) as ws:
        client = YClient(ws, doc)
        try:
            if sync:
                await client.sync()
            yield client
        finally:
            await client.close()
