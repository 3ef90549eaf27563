"""Adapters from the core's access layer (members, people, API callers) to the interfaces the
notification integrations use.

The access store knows people (and finds them by phone, so a parent can write to us before
any digest reached them) and memberships; WhatsApp opt-outs are the integrations' own state,
kept in the notification store.
"""

from __future__ import annotations

from collections.abc import Sequence

from collab_server import access
from collab_server.identity import Credentials
from integrations.contracts import (
    Caller,
    Channel,
    Clock,
    Language,
    NotificationStore,
    Person,
)


class AccessDirectory:
    """RecipientDirectory over an `AccessStore`."""

    def __init__(self, access_store: access.AccessStore, store: NotificationStore, clock: Clock):
        self.access = access_store
        self.store = store
        self.clock = clock

    async def _person(self, record: access.Person) -> Person:
        channels = {
            channel
            for channel, enabled in (
                (Channel.WHATSAPP, record.channels.whatsapp),
                (Channel.EMAIL, record.channels.email),
                (Channel.IN_APP, record.channels.in_app),
            )
            if enabled
        }
        return Person(
            user_id=record.user_id,
            name=record.name,
            language=Language(record.language.value),
            timezone=record.timezone,
            phone=record.phone,
            email=record.email,
            channels=frozenset(channels),
            whatsapp_opted_out=await self.store.whatsapp_opted_out(record.user_id),
        )

    async def _people(self, user_ids: Sequence[str]) -> list[Person]:
        people = []
        for user_id in user_ids:
            found = await self.person(user_id)
            if found is not None:
                people.append(found)
        return people

    async def digest_recipient_ids(self, document: str) -> Sequence[str]:
        return [m.user_id for m in await self.access.members(document) if m.digest]

    async def editors(self, document: str) -> Sequence[Person]:
        members = await self.access.members(document)
        return await self._people([m.user_id for m in members if m.role.can_write])

    async def documents_of(self, user_id: str) -> Sequence[str]:
        return [m.document for m in await self.access.memberships_of([user_id]) if m.digest]

    async def person(self, user_id: str) -> Person | None:
        record = await self.access.person(user_id)
        return await self._person(record) if record is not None else None

    async def person_by_phone(self, phone: str) -> Person | None:
        record = await self.access.person_by_phone(phone)
        return await self._person(record) if record is not None else None

    async def set_whatsapp_opt_out(self, user_id: str, opted_out: bool) -> None:
        await self.store.set_whatsapp_opt_out(user_id, opted_out, self.clock.now())


class AccessCallers:
    """CallerAuthenticator over the core's `AccessAuthenticator` (bearer token -> caller)."""

    def __init__(self, authenticator: access.AccessAuthenticator) -> None:
        self.authenticator = authenticator

    async def caller(self, token: str | None) -> Caller:
        found = await self.authenticator.caller(Credentials(token=token))
        return Caller(found.user_id, found.is_admin)
