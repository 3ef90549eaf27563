"""Per-document roles on live sockets: editors write, viewers read, revocations bite."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest
import websockets
from pycrdt import Doc, Text

from collab_server.access import CachedMembers, Member, MemoryAccessStore
from collab_server.identity import Role
from collab_server.protocol import CloseCode
from collab_server.settings import Settings
from iep_collab.composition import build_app
from tests.support.servers import InProcessServer, serve_in_process
from tests.support.tokens import FakeSupabase, auth_settings, bearer
from tests.support.yclient import YClient, connect

THERAPIST = "therapist-1"
PARENT = "parent-1"


@pytest.fixture
async def server(
    store_settings: Settings, supabase: FakeSupabase
) -> AsyncIterator[InProcessServer]:
    # The periodic recheck is slow here: API changes must take effect without it.
    settings = auth_settings(store_settings, supabase, membership_recheck_seconds=60)
    async with serve_in_process(build_app(settings)) as running:
        yield running


async def put_member(
    server: InProcessServer, supabase: FakeSupabase, document: str, user_id: str, role: str
) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        response = await http.put(
            f"/api/documents/{document}/members/{user_id}",
            json={"role": role},
            headers=bearer(supabase.admin_token("admin-1")),
        )
    assert response.status_code in (200, 201), response.text


def url(server: InProcessServer, supabase: FakeSupabase, document: str, user_id: str) -> str:
    return server.ws(document) + f"?token={supabase.token(user_id)}"


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def notes(client: YClient) -> Text:
    return client.doc.get("notes", type=Text)


async def test_editors_write_with_attribution_and_viewers_only_read(
    server: InProcessServer, supabase: FakeSupabase
) -> None:
    doc = "iep/roles"
    await put_member(server, supabase, doc, THERAPIST, "editor")
    await put_member(server, supabase, doc, PARENT, "viewer")
    async with connect(url(server, supabase, doc, THERAPIST)) as therapist:
        notes(therapist).insert(0, "Goal: reading")
        async with connect(url(server, supabase, doc, PARENT)) as parent:
            await parent.wait_for(lambda: str(notes(parent)) == "Goal: reading")
            notes(therapist).insert(13, " fluency")  # live updates reach the viewer
            await parent.wait_for(lambda: str(notes(parent)) == "Goal: reading fluency")

            # Presence is allowed for viewers.
            await parent.set_awareness(777, 1, '{"user":{"name":"Parent"}}')
            await therapist.wait_for(lambda: 777 in therapist.awareness)

            live = server.app.state.collab.registry.get_live(doc)
            before = live.doc.get_update()
            seq_before = live.last_seq
            notes(parent).insert(0, "HACKED ")
            await parent.wait_for(lambda: parent.denials)
            assert "read-only" in parent.denials[0]
            assert live.doc.get_update() == before
            assert live.last_seq == seq_before
            assert str(notes(therapist)) == "Goal: reading fluency"

        # A parent coming back with the copy their device kept (deletions included) is
        # not refused: what they send back changes nothing.
        del notes(therapist)[0:6]
        kept = Doc()
        async with connect(url(server, supabase, doc, PARENT), kept) as parent:
            await parent.wait_for(lambda: str(notes(parent)) == "reading fluency")
        async with connect(url(server, supabase, doc, PARENT), kept) as returning:
            await returning.round_trip()
            assert returning.denials == []

    # The server's own store: a second one opened beside it would not see the updates its
    # journal has not drained into the tables yet.
    registry = server.app.state.collab.registry
    assert await registry.flush()
    history = await registry.store.updates_since(doc, 0)
    assert history and {record.user_id for record in history} == {THERAPIST}


async def test_non_members_are_refused_and_an_admin_creates_a_document_by_opening_it(
    server: InProcessServer, supabase: FakeSupabase
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        async with connect(url(server, supabase, "iep/new", "stranger")):
            pass
    assert refused.value.response.status_code == 403

    admin = supabase.admin_token("admin-1")
    async with connect(server.ws("iep/new") + f"?token={admin}") as opened:
        notes(opened).insert(0, "created")
    later_admin = supabase.admin_token("admin-2")
    async with connect(server.ws("iep/new") + f"?token={later_admin}"):
        pass
    async with httpx.AsyncClient(base_url=server.http) as http:
        members = await http.get("/api/documents/iep/new/members", headers=bearer(admin))
    assert members.json()["members"] == [
        {"user_id": "admin-1", "role": "owner", "digest": False, "name": None}
    ]


async def test_asking_about_a_document_never_creates_it(
    server: InProcessServer, supabase: FakeSupabase
) -> None:
    admin = bearer(supabase.admin_token("admin-1"))
    async with httpx.AsyncClient(base_url=server.http) as http:
        asked = await http.get("/api/access/iep/only-asked", headers=admin)
        assert asked.json() == {"role": "owner", "canWrite": True}
        listed = await http.get("/api/documents", headers=admin)
        members = await http.get("/api/documents/iep/only-asked/members", headers=admin)
    assert "iep/only-asked" not in [d["name"] for d in listed.json()["documents"]]
    assert members.json()["members"] == []


async def test_a_token_in_the_header_wins_over_the_query_on_the_socket_and_the_api(
    server: InProcessServer, supabase: FakeSupabase
) -> None:
    await put_member(server, supabase, "iep/both", THERAPIST, "editor")
    member, stranger = supabase.token(THERAPIST), supabase.token("stranger")
    header = {"Authorization": f"Bearer {member}"}
    async with httpx.AsyncClient(base_url=server.http) as http:
        answer = await http.get(f"/api/access/iep/both?token={stranger}", headers=header)
    assert answer.status_code == 200
    async with connect(
        server.ws("iep/both") + f"?token={stranger}", additional_headers=header
    ) as client:
        assert client.synced.is_set()  # the stranger's token alone would be refused (403)


async def test_revoking_a_live_editor_through_the_api_closes_it_at_once(
    server: InProcessServer, supabase: FakeSupabase
) -> None:
    doc = "iep/revoke"
    await put_member(server, supabase, doc, THERAPIST, "editor")
    async with connect(url(server, supabase, doc, THERAPIST)) as therapist:
        async with httpx.AsyncClient(base_url=server.http) as http:
            response = await http.delete(
                f"/api/documents/{doc}/members/{THERAPIST}",
                headers=bearer(supabase.admin_token("admin-1")),
            )
        assert response.status_code == 204
        assert await therapist.closed() == CloseCode.FORBIDDEN


async def test_a_downgraded_editor_stays_connected_but_can_no_longer_write(
    server: InProcessServer, supabase: FakeSupabase
) -> None:
    doc = "iep/downgrade"
    await put_member(server, supabase, doc, THERAPIST, "editor")
    async with connect(url(server, supabase, doc, THERAPIST)) as therapist:
        notes(therapist).insert(0, "kept")
        await put_member(server, supabase, doc, THERAPIST, "viewer")
        notes(therapist).insert(0, "refused ")
        await therapist.wait_for(lambda: therapist.denials)
        live = server.app.state.collab.registry.get_live(doc)
        assert str(live.doc.get("notes", type=Text)) == "kept"
        assert therapist.close_code is None


async def test_a_revocation_made_directly_in_the_database_is_enforced_by_the_recheck(
    supabase: FakeSupabase, store_settings: Settings
) -> None:
    doc = "iep/direct"
    settings = auth_settings(store_settings, supabase, membership_recheck_seconds=0.3)
    async with serve_in_process(build_app(settings)) as server:
        await put_member(server, supabase, doc, THERAPIST, "editor")
        await put_member(server, supabase, doc, PARENT, "editor")
        async with (
            connect(url(server, supabase, doc, THERAPIST)) as therapist,
            connect(url(server, supabase, doc, PARENT)) as parent,
        ):
            # An administrator's SQL, behind the server's back.
            await edit_directly(
                store_settings,
                ("DELETE FROM members WHERE document = $1 AND user_id = $2", doc, THERAPIST),
                (
                    "UPDATE members SET role = 'viewer' WHERE document = $1 AND user_id = $2",
                    *[doc, PARENT],
                ),
            )
            assert await therapist.closed(timeout=5) == CloseCode.FORBIDDEN
            notes(parent).insert(0, "now read-only")
            await parent.wait_for(lambda: parent.denials, timeout=5)


async def edit_directly(settings: Settings, *statements: tuple[str, ...]) -> None:
    """Run `$n`-style statements on the database itself, as another program would."""
    if settings.is_postgres:
        conn = await asyncpg.connect(settings.database_url)
        try:
            await conn.execute(f"SET search_path TO {settings.db_schema}")
            for sql, *params in statements:
                await conn.execute(sql, *params)
        finally:
            await conn.close()
        return

    def run() -> None:
        with sqlite3.connect(settings.sqlite_path()) as db:
            for sql, *params in statements:
                db.execute(re.sub(r"\$\d+", "?", sql), params)

    await asyncio.to_thread(run)


async def test_a_connection_over_its_message_rate_is_closed_with_4429(
    store_settings: Settings, supabase: FakeSupabase
) -> None:
    settings = auth_settings(
        store_settings, supabase, rate_messages_per_second=5.0, rate_message_burst=10.0
    )
    async with serve_in_process(build_app(settings)) as server:
        admin = supabase.admin_token("admin-1")
        async with (
            connect(server.ws("iep/flood") + f"?token={admin}") as flooder,
            connect(server.ws("iep/flood") + f"?token={supabase.admin_token('admin-2')}") as calm,
        ):
            for clock in range(1, 40):
                if flooder.close_code is not None:
                    break
                try:
                    await flooder.set_awareness(1, clock, '{"cursor":1}')
                except websockets.ConnectionClosed:
                    break
            assert await flooder.closed() == CloseCode.RATE_LIMITED
            await calm.set_awareness(2, 1, '{"cursor":2}')
            await calm.wait_for(lambda: 2 in calm.awareness)


async def test_a_user_over_the_connection_cap_is_refused(
    store_settings: Settings, supabase: FakeSupabase
) -> None:
    settings = auth_settings(store_settings, supabase, max_connections_per_user=2)
    async with serve_in_process(build_app(settings)) as server:
        address = server.ws("iep/cap") + f"?token={supabase.admin_token('admin-1')}"
        async with connect(address), connect(address):
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with connect(address):
                    pass
            assert refused.value.response.status_code == 429
        async with connect(address):  # closing one frees a slot
            pass


async def test_development_mode_attributes_edits_to_the_typed_name(
    store_settings: Settings,
) -> None:
    async with serve_in_process(build_app(store_settings)) as server:
        address = server.ws("iep/dev") + "?name=Ms.%20Huda&token=ignored"
        async with connect(address) as client:
            notes(client).insert(0, "hello")
            registry = server.app.state.collab.registry
            live = registry.get_live("iep/dev")
            await wait_until(lambda: str(live.doc.get("notes", type=Text)) == "hello")
            (connection,) = live.connections
            assert connection.identity.user_id == "dev:Ms. Huda"
            assert connection.identity.display_name == "Ms. Huda"
            assert await registry.flush()
            history = await registry.store.updates_since("iep/dev", 0)
    assert history and {r.user_id for r in history} == {"dev:Ms. Huda"}


async def test_member_lists_are_remembered_and_a_change_through_the_server_is_seen_at_once() -> (
    None
):
    database = MemoryAccessStore()
    members = CachedMembers(database, max_age_seconds=3600)
    await members.put_member(Member("iep/1", "t-huda", Role.EDITOR))
    assert [m.user_id for m in await members.members("iep/1")] == ["t-huda"]

    # Edited behind the server's back: not seen until the list is fetched again...
    await database.put_member(Member("iep/1", "p-amal", Role.VIEWER))
    assert [m.user_id for m in await members.members("iep/1")] == ["t-huda"]
    # ...which a change made through the server does at once.
    assert await members.remove_member("iep/1", "t-huda")
    assert [m.user_id for m in await members.members("iep/1")] == ["p-amal"]


async def test_member_lists_older_than_their_age_are_fetched_again() -> None:
    database = MemoryAccessStore()
    members = CachedMembers(database, max_age_seconds=0)
    assert await members.members("iep/1") == []
    await database.put_member(Member("iep/1", "p-amal", Role.VIEWER))
    assert [m.user_id for m in await members.members("iep/1")] == ["p-amal"]


class WritesThatWait(MemoryAccessStore):
    def __init__(self) -> None:
        super().__init__()
        self.writing = asyncio.Event()
        self.finish = asyncio.Event()

    async def put_member(self, member: Member) -> bool:
        self.writing.set()
        await self.finish.wait()
        return await super().put_member(member)


async def test_a_member_list_read_while_a_change_is_under_way_is_not_kept() -> None:
    database = WritesThatWait()
    members = CachedMembers(database, max_age_seconds=3600)
    adding = asyncio.create_task(members.put_member(Member("iep/1", "p-amal", Role.VIEWER)))
    await database.writing.wait()
    assert await members.members("iep/1") == []  # read before the change landed
    database.finish.set()
    await adding
    assert [m.user_id for m in await members.members("iep/1")] == ["p-amal"]
