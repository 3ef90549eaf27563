"""Adapters from the core's access layer (members, people, API callers) to the interfaces the
notification integrations use.

The access store knows people and memberships; WhatsApp opt-outs and the phone -> person index
are the integrations' own state, kept in the notification store. The index is filled whenever
a person is resolved as a digest recipient, so a parent's reply finds them; a number that never
received a digest is unknown (its messages are logged and dropped).
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
        self._contacts: dict[str, str] = {}  # phones already written to the index

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
        if record.phone and self._contacts.get(record.phone) != record.user_id:
            await self.store.remember_contact(record.phone, record.user_id)
            self._contacts[record.phone] = record.user_id
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

    async def digest_recipients(self, document: str) -> Sequence[Person]:
        members = await self.access.members(document)
        return await self._people([m.user_id for m in members if m.digest])

    async def editors(self, document: str) -> Sequence[Person]:
        members = await self.access.members(document)
        return await self._people([m.user_id for m in members if m.role.can_write])

    async def documents_of(self, user_id: str) -> Sequence[str]:
        return [m.document for m in await self.access.memberships_of([user_id]) if m.digest]

    async def person(self, user_id: str) -> Person | None:
        record = await self.access.person(user_id)
        return await self._person(record) if record is not None else None

    async def person_by_phone(self, phone: str) -> Person | None:
        user_id = await self.store.contact(phone)
        return await self.person(user_id) if user_id is not None else None

    async def set_whatsapp_opt_out(self, user_id: str, opted_out: bool) -> None:
        await self.store.set_whatsapp_opt_out(user_id, opted_out, self.clock.now())


class AccessCallers:
    """CallerAuthenticator over the core's `AccessAuthenticator` (bearer token -> caller)."""

    def __init__(self, authenticator: access.AccessAuthenticator) -> None:
        self.authenticator = authenticator

    async def caller(self, token: str | None) -> Caller:
        found = await self.authenticator.caller(Credentials(token=token))
        return Caller(found.user_id, found.is_admin)
