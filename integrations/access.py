"""The notifications' `RecipientDirectory` over the core's members and our people records.

The access store knows memberships; the people store knows people (and finds them by phone,
so a parent can write to us before any digest reached them); WhatsApp opt-outs are the
integrations' own state, kept in the notification store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from collab_server.access import AccessStore
from integrations.contracts import Clock, NotificationStore, PeopleStore, Person


class AccessDirectory:
    def __init__(
        self,
        access: AccessStore,
        people: PeopleStore,
        store: NotificationStore,
        clock: Clock,
    ) -> None:
        self.access = access
        self.people = people
        self.store = store
        self.clock = clock

    async def _with_opt_out(self, person: Person | None) -> Person | None:
        if person is None:
            return None
        opted_out = await self.store.whatsapp_opted_out(person.user_id)
        return dataclasses.replace(person, whatsapp_opted_out=opted_out)

    async def digest_recipient_ids(self, document: str) -> Sequence[str]:
        return [m.user_id for m in await self.access.members(document) if m.digest]

    async def editors(self, document: str) -> Sequence[Person]:
        members = await self.access.members(document)
        people = []
        for member in members:
            if member.role.can_write:
                found = await self.person(member.user_id)
                if found is not None:
                    people.append(found)
        return people

    async def documents_of(self, user_id: str) -> Sequence[str]:
        return [m.document for m in await self.access.memberships_of([user_id]) if m.digest]

    async def person(self, user_id: str) -> Person | None:
        return await self._with_opt_out(await self.people.person(user_id))

    async def person_by_phone(self, phone: str) -> Person | None:
        return await self._with_opt_out(await self.people.person_by_phone(phone))

    async def set_whatsapp_opt_out(self, user_id: str, opted_out: bool) -> None:
        await self.store.set_whatsapp_opt_out(user_id, opted_out, self.clock.now())
