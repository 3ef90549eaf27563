"""The extension seam: typed async hooks with frozen payloads, run from this one place.

An extension subclasses `Extension` and overrides the hooks it needs. Hooks run in ascending
`priority`. `on_connect` and `on_load` may veto by raising `Rejected`; any other exception from
any hook is logged and isolated, so a broken integration never breaks sync.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from pycrdt import Doc

from collab_server.errors import Rejected
from collab_server.identity import Identity

log = structlog.get_logger("collab.hooks")


@dataclass(frozen=True, slots=True)
class ConnectPayload:
    document: str
    connection_id: str
    identity: Identity
    address: str | None = None  # the client's IP as this server saw it (audit)


@dataclass(frozen=True, slots=True)
class LoadPayload:
    """A document became live in memory. Extensions may read `doc` until `on_unload`.

    They never write to it: every change arrives through the sync protocol. Reading it on
    every change is the hot path's cost: integrations read the stored log instead.
    """

    document: str
    doc: Doc[Any]
    last_seq: int


@dataclass(frozen=True, slots=True)
class StorePayload:
    """Log entries first_seq..last_seq of `document` are stored (several commits may be
    reported at once: notifications coalesce per document while an extension is busy)."""

    document: str
    first_seq: int
    last_seq: int
    updates: int
    nbytes: int
    last_user_id: str | None = None  # the last person among them (not the server), if any


@dataclass(frozen=True, slots=True)
class AwarenessPayload:
    document: str
    connection_id: str
    added: tuple[int, ...]
    updated: tuple[int, ...]
    removed: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class DisconnectPayload:
    document: str
    connection_id: str
    identity: Identity
    close_code: int


@dataclass(frozen=True, slots=True)
class UnloadPayload:
    document: str
    doc: Doc[Any]


class Extension:
    """Base class: every hook is a no-op until overridden."""

    name: str = "extension"
    priority: int = 100

    async def on_connect(self, payload: ConnectPayload) -> None:
        return None

    async def on_load(self, payload: LoadPayload) -> None:
        return None

    async def on_store(self, payload: StorePayload) -> None:
        return None

    async def on_awareness(self, payload: AwarenessPayload) -> None:
        return None

    async def on_disconnect(self, payload: DisconnectPayload) -> None:
        return None

    async def on_unload(self, payload: UnloadPayload) -> None:
        return None

    async def aclose(self) -> None:
        return None


class Hooks:
    """Runs the extensions' hooks; the only caller of extension code in the server."""

    def __init__(self, extensions: Sequence[Extension] = ()) -> None:
        self.extensions = sorted(extensions, key=lambda ext: ext.priority)
        # Only extensions that override a hook are called for it: the hot path stays free.
        self._implementers: dict[str, list[Extension]] = {
            hook: [ext for ext in self.extensions if _overrides(ext, hook)] for hook in _HOOK_NAMES
        }

    def has(self, hook: str) -> bool:
        return bool(self._implementers[hook])

    async def on_connect(self, payload: ConnectPayload) -> None:
        await self._run("on_connect", payload, may_veto=True)

    async def on_load(self, payload: LoadPayload) -> None:
        await self._run("on_load", payload, may_veto=True)

    async def on_store(self, payload: StorePayload) -> None:
        await self._run("on_store", payload)

    async def on_awareness(self, payload: AwarenessPayload) -> None:
        await self._run("on_awareness", payload)

    async def on_disconnect(self, payload: DisconnectPayload) -> None:
        await self._run("on_disconnect", payload)

    async def on_unload(self, payload: UnloadPayload) -> None:
        await self._run("on_unload", payload)

    async def aclose(self) -> None:
        for ext in reversed(self.extensions):
            await _isolated(ext, "aclose", ext.aclose)

    async def _run(self, hook: str, payload: Any, *, may_veto: bool = False) -> None:
        for ext in self._implementers[hook]:
            method: Callable[[Any], Awaitable[None]] = getattr(ext, hook)
            try:
                await method(payload)
            except Exception as exc:
                if may_veto and isinstance(exc, Rejected):
                    raise
                log.exception("hook_failed", extension=ext.name, hook=hook)


async def _isolated(ext: Extension, hook: str, call: Callable[[], Awaitable[None]]) -> None:
    try:
        await call()
    except Exception:
        log.exception("hook_failed", extension=ext.name, hook=hook)


_HOOK_NAMES = (
    "on_connect",
    "on_load",
    "on_store",
    "on_awareness",
    "on_disconnect",
    "on_unload",
)


def _overrides(ext: Extension, hook: str) -> bool:
    return getattr(type(ext), hook) is not getattr(Extension, hook)
