"""The documents list: each IEP's student, title and who changed it last, and owners'
archive, on SQLite and Postgres, driven by real sockets and the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pycrdt import Doc, Text

from collab_server.access import Member
from collab_server.identity import Role
from collab_server.settings import Settings
from collab_server.store import UpdateRecord
from iep_collab.composition import build_app
from persistence import access_store_for, store_from_settings
from tests.support.servers import InProcessServer, serve_in_process
from tests.support.tokens import FakeSupabase, auth_settings, bearer
from tests.support.yclient import connect

Headers = dict[str, str]


@pytest.fixture
async def server(
    store_settings: Settings, supabase: FakeSupabase
) -> AsyncIterator[InProcessServer]:
    async with serve_in_process(build_app(auth_settings(store_settings, supabase))) as running:
        yield running


@pytest.fixture
async def http(server: InProcessServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.http) as client:
        yield client


async def listed(http: httpx.AsyncClient, who: Headers, archived: bool = False) -> list[Any]:
    query = "?archived=true" if archived else ""
    answer = await http.get("/api/documents" + query, headers=who)
    assert answer.status_code == 200, answer.text
    documents: list[Any] = answer.json()["documents"]
    return documents


async def until_listed(
    http: httpx.AsyncClient, who: Headers, name: str, **expected: Any
) -> dict[str, Any]:
    """The list entry of `name` once it shows `expected` (stored changes are described after
    they are stored, off the sync path)."""

    async def poll() -> dict[str, Any]:
        while True:
            entry = next(d for d in await listed(http, who) if d["name"] == name)
            if all(entry[key] == value for key, value in expected.items()):
                return entry
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(poll(), 5.0)


async def test_the_list_follows_the_student_title_and_last_person_and_owners_archive(
    server: InProcessServer, http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    huda = bearer(supabase.token("huda", app_metadata={"role": "staff"}))
    mona = bearer(supabase.token("mona"))
    admin = bearer(supabase.admin_token("admin-1"))
    person = {"name": "منى سالم", "language": "ar"}
    assert (await http.put("/api/people/mona", json=person, headers=admin)).status_code < 300
    created = await http.post(
        "/api/documents", json={"student_name": "عمر خالد", "title": "الخطة ٢٠٢٦"}, headers=huda
    )
    name = created.json()["name"]
    member = {"role": "editor"}
    assert (
        await http.put(f"/api/documents/{name}/members/mona", json=member, headers=huda)
    ).status_code == 201
    first = await until_listed(http, huda, name)
    assert (first["student_name"], first["title"]) == ("عمر خالد", "الخطة ٢٠٢٦")
    assert first["last_editor"]["user_id"] == "huda" and first["archived"] is False
    assert first["updated_at"] is not None

    # Mona corrects the student's name: everyone's list says so, and that she did it.
    async with connect(server.ws(name) + f"?token={supabase.token('mona')}") as client:
        student = client.doc.get("student/name", type=Text)
        student += " الحسن"
        entry = await until_listed(http, huda, name, student_name="عمر خالد الحسن")
        assert entry["last_editor"] == {"user_id": "mona", "name": "منى سالم"}
        assert (await until_listed(http, mona, name))["student_name"] == "عمر خالد الحسن"
    # Huda types in the notes only: the name stays, the last person is Huda.
    async with connect(server.ws(name) + f"?token={supabase.token('huda')}") as client:
        notes = client.doc.get("notes", type=Text)
        notes += "Reads two-syllable words."
        await until_listed(http, mona, name, last_editor={"user_id": "huda", "name": None})

    # Only an owner archives; it leaves everyone's list, and comes back when restored.
    archive = f"/api/documents/{name}/archived"
    refused = await http.put(archive, json={"archived": True}, headers=mona)
    assert refused.status_code == 403
    assert (await http.put(archive, json={"archived": "yes"}, headers=huda)).status_code == 422
    assert (await http.put(archive, json={"archived": True}, headers=huda)).status_code == 200
    assert [d["name"] for d in await listed(http, huda)] == []
    assert [d["name"] for d in await listed(http, mona)] == []
    hidden = await listed(http, huda, archived=True)
    assert [(d["name"], d["student_name"], d["archived"]) for d in hidden] == [
        (name, "عمر خالد الحسن", True)
    ]
    # Archived is not deleted: the IEP still opens with everything in it.
    async with connect(server.ws(name) + f"?token={supabase.token('mona')}") as client:
        assert str(client.doc.get("student/name", type=Text)) == "عمر خالد الحسن"
    assert (await http.put(archive, json={"archived": False}, headers=huda)).status_code == 200
    assert [d["name"] for d in await listed(http, mona)] == [name]
    trail = (await http.get(f"/api/documents/{name}/audit", headers=huda)).json()
    actions = [event["action"] for event in trail["events"]]
    assert "document_archived" in actions and "document_unarchived" in actions


async def test_an_iep_stored_before_the_list_described_it_is_described_when_listed(
    store_settings: Settings, supabase: FakeSupabase
) -> None:
    doc: Doc[Any] = Doc()
    doc["student/name"] = Text("سارة أحمد")
    doc["meta/title"] = Text("Plan 2026")
    store = store_from_settings(store_settings)
    await store.open()
    try:
        await store.append([UpdateRecord("centre/iep-old", 1, doc.get_update(), "huda", 1.0)])
        await access_store_for(store).put_member(Member("centre/iep-old", "huda", Role.OWNER))
    finally:
        await store.aclose()
    app = build_app(auth_settings(store_settings, supabase))
    huda = bearer(supabase.token("huda"))
    async with (
        serve_in_process(app) as server,
        httpx.AsyncClient(base_url=server.http) as http,
    ):
        (entry,) = await listed(http, huda)
        assert (entry["student_name"], entry["title"]) == ("سارة أحمد", "Plan 2026")
        assert entry["role"] == "owner" and entry["last_editor"] is None
