"""What the documents list shows of each IEP: the student's name, its title and who changed
it last, stored beside the members (`AccessStore.describe`) so listing never opens a document.

Written from the owner's stored changes, and only when one of the three differs from what
this process last wrote: typing in a goal writes nothing. An IEP nobody changed since this
existed is described the first time a list shows it (`fill`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from pycrdt import Doc

from collab_server.access import AccessStore, Listing
from collab_server.hooks import Extension, LoadPayload, StorePayload, UnloadPayload
from collab_server.registry import Registry
from integrations.iep import Layout

log = structlog.get_logger("collab.integrations.listing")

# Documents described at once by one list request; the rest wait for the next one.
FILL_AT_ONCE = 20


def listing_of(doc: Doc[Any], last_user_id: str | None = None) -> Listing:
    layout = Layout(doc)
    return Listing(layout.student_name().strip(), layout.title().strip(), last_user_id)


class DocumentListing(Extension):
    name = "listing"
    priority = 150

    def __init__(self, access: AccessStore) -> None:
        self.access = access
        self._registry: Registry | None = None
        self._docs: dict[str, Doc[Any]] = {}  # live documents (dropped on unload)
        self._written: dict[str, Listing] = {}  # what this process last wrote, per live one

    def attach(self, registry: Registry) -> None:
        self._registry = registry

    async def on_load(self, payload: LoadPayload) -> None:
        self._docs[payload.document] = payload.doc

    async def on_unload(self, payload: UnloadPayload) -> None:
        self._docs.pop(payload.document, None)
        self._written.pop(payload.document, None)

    async def on_store(self, payload: StorePayload) -> None:
        doc = self._docs.get(payload.document)
        if doc is None:
            return
        now = listing_of(doc, payload.last_user_id)
        before = self._written.get(payload.document)
        if before is not None and _same(before, now):
            return
        await self.access.describe(payload.document, now)
        if now.last_user_id is None and before is not None:
            now = Listing(now.student_name, now.title, before.last_user_id)
        self._written[payload.document] = now

    async def fill(self, documents: Sequence[str]) -> dict[str, Listing]:
        """Describe documents the list has nothing for (at most FILL_AT_ONCE of them)."""
        if self._registry is None:
            return {}
        registry = self._registry

        async def describe(document: str) -> tuple[str, Listing | None]:
            try:
                async with registry.using(document) as live:
                    listing = listing_of(live.doc)
                await self.access.describe(document, listing)
            except Exception:
                log.exception("listing_fill_failed", document=document)
                return document, None
            return document, listing

        found = await asyncio.gather(*(describe(d) for d in documents[:FILL_AT_ONCE]))
        return {document: listing for document, listing in found if listing is not None}


def _same(before: Listing, now: Listing) -> bool:
    return (
        before.student_name == now.student_name
        and before.title == now.title
        and (now.last_user_id is None or now.last_user_id == before.last_user_id)
    )
