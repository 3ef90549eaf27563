"""The PeopleStore contract, run against SQLite and the real PostgreSQL."""

from __future__ import annotations

import pytest

from collab_server.store import DocumentStore
from integrations.contracts import Channel, Language, PeopleStore, Person
from persistence import SideTables


@pytest.fixture
def people(store: DocumentStore) -> PeopleStore:
    return SideTables(store).people()


async def test_people_records_round_trip_and_replace(people: PeopleStore) -> None:
    huda = Person(
        user_id="u1",
        name="هدى",
        phone="+971501234567",
        email="huda@example.org",
        language=Language.ARABIC,
        timezone="Asia/Dubai",
        channels=frozenset({Channel.WHATSAPP, Channel.IN_APP}),
    )
    assert await people.person("u1") is None
    await people.put_person(huda)
    assert await people.person("u1") == huda
    moved = Person(
        "u1", "Huda", Language.ENGLISH, "Europe/London", phone=None, email="huda@example.org"
    )
    await people.put_person(moved)
    assert await people.person("u1") == moved


async def test_people_are_found_by_phone_and_a_shared_number_goes_to_the_latest_update(
    people: PeopleStore,
) -> None:
    await people_found_by_phone(people)


async def people_found_by_phone(people: PeopleStore) -> None:
    mother = Person("p-mother", "ليلى", Language.ARABIC, phone="+966500000001")
    father = Person("p-father", "Khalid", phone="+966500000001")
    other = Person("p-other", "John", phone="+447700900002")
    assert await people.person_by_phone("+966500000001") is None
    await people.put_person(mother)
    await people.put_person(other)
    assert await people.person_by_phone("+966500000001") == mother
    assert await people.person_by_phone("+447700900002") == other
    await people.put_person(father)
    assert await people.person_by_phone("+966500000001") == father
    renamed = Person("p-mother", "Layla", Language.ARABIC, phone="+966500000001")
    await people.put_person(renamed)
    assert await people.person_by_phone("+966500000001") == renamed
    await people.put_person(Person("p-other", "John", email="john@example.org"))
    assert await people.person_by_phone("+447700900002") is None
    assert await people.person_by_phone("966500000001") is None  # stored numbers are E.164
