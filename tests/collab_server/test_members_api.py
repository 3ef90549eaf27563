"""The members API and the document list, as the editor and admin tools call them."""

from __future__ import annotations

import httpx

from tests.support.tokens import FakeSupabase, bearer

DOC = "iep/child-7"


def as_user(supabase: FakeSupabase, user_id: str) -> dict[str, str]:
    return bearer(supabase.token(user_id))


def as_admin(supabase: FakeSupabase) -> dict[str, str]:
    return bearer(supabase.admin_token("admin-1"))


async def test_an_admin_creates_a_document_by_putting_its_first_member(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    first = await http.put(
        f"/api/documents/{DOC}/members/owner-1",
        json={"role": "owner", "digest": True},
        headers=as_admin(supabase),
    )
    assert first.status_code == 201
    assert first.json() == {"user_id": "owner-1", "role": "owner", "digest": True}
    again = await http.put(
        f"/api/documents/{DOC}/members/owner-1",
        json={"role": "owner", "digest": False},
        headers=as_admin(supabase),
    )
    assert again.status_code == 200
    listed = await http.get(f"/api/documents/{DOC}/members", headers=as_user(supabase, "owner-1"))
    assert listed.json() == {
        "document": DOC,
        "members": [{"user_id": "owner-1", "role": "owner", "digest": False, "name": None}],
    }


async def test_only_owners_and_admins_change_members(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    nobody_yet = await http.put(
        f"/api/documents/{DOC}/members/me", json={"role": "owner"}, headers=as_user(supabase, "me")
    )
    assert nobody_yet.status_code == 403  # only admins create documents
    await http.put(
        f"/api/documents/{DOC}/members/owner-1", json={"role": "owner"}, headers=as_admin(supabase)
    )
    owner = as_user(supabase, "owner-1")
    added = await http.put(
        f"/api/documents/{DOC}/members/therapist-1", json={"role": "editor"}, headers=owner
    )
    assert added.status_code == 201
    by_editor = await http.put(
        f"/api/documents/{DOC}/members/parent-1",
        json={"role": "viewer"},
        headers=as_user(supabase, "therapist-1"),
    )
    assert by_editor.status_code == 403
    assert by_editor.json() == {"error": "only owners and admins may change members"}
    # Members may read the list, strangers may not.
    editor_reads = await http.get(
        f"/api/documents/{DOC}/members", headers=as_user(supabase, "therapist-1")
    )
    assert editor_reads.status_code == 200
    stranger = await http.get(f"/api/documents/{DOC}/members", headers=as_user(supabase, "x"))
    assert stranger.status_code == 403
    removed = await http.delete(f"/api/documents/{DOC}/members/therapist-1", headers=owner)
    assert removed.status_code == 204
    missing = await http.delete(f"/api/documents/{DOC}/members/therapist-1", headers=owner)
    assert missing.status_code == 404


async def test_the_last_owner_cannot_be_removed_or_demoted(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    await http.put(
        f"/api/documents/{DOC}/members/owner-1", json={"role": "owner"}, headers=as_admin(supabase)
    )
    owner = as_user(supabase, "owner-1")
    demote = await http.put(
        f"/api/documents/{DOC}/members/owner-1", json={"role": "viewer"}, headers=owner
    )
    assert demote.status_code == 409
    assert "at least one owner" in demote.json()["error"]
    assert (
        await http.delete(f"/api/documents/{DOC}/members/owner-1", headers=owner)
    ).status_code == 409
    await http.put(f"/api/documents/{DOC}/members/owner-2", json={"role": "owner"}, headers=owner)
    assert (
        await http.delete(f"/api/documents/{DOC}/members/owner-1", headers=owner)
    ).status_code == 204


async def test_member_ids_with_control_characters_are_refused(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    admin = as_admin(supabase)
    for user_id in ("owner%00-1", "owner%1b-1", "owner%E2%80%AE-1"):
        put = await http.put(
            f"/api/documents/{DOC}/members/{user_id}", json={"role": "owner"}, headers=admin
        )
        assert put.status_code == 400, user_id
        assert "control characters" in put.json()["error"]


async def test_invalid_member_bodies_get_a_clear_422(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    response = await http.put(
        f"/api/documents/{DOC}/members/u1",
        json={"role": "boss", "digest": "yes", "colour": "red"},
        headers=as_admin(supabase),
    )
    assert response.status_code == 422
    assert response.json()["problems"] == {
        "role": "required: 'owner', 'editor' or 'viewer'",
        "digest": "must be true or false",
        "colour": "unknown field",
    }
    not_json = await http.put(
        f"/api/documents/{DOC}/members/u1", content=b"{", headers=as_admin(supabase)
    )
    assert not_json.status_code == 400
    bad_name = await http.get("/api/documents/..%2Fetc/members", headers=as_admin(supabase))
    assert bad_name.status_code in (400, 404)


async def test_the_document_list_shows_what_each_caller_may_open(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    admin = as_admin(supabase)
    for document, user, role in (
        ("iep/a", "therapist-1", "editor"),
        ("iep/b", "therapist-1", "owner"),
        ("iep/c", "parent-1", "viewer"),
    ):
        await http.put(
            f"/api/documents/{document}/members/{user}", json={"role": role}, headers=admin
        )
    mine = await http.get("/api/documents", headers=as_user(supabase, "therapist-1"))
    assert [(d["name"], d["role"]) for d in mine.json()["documents"]] == [
        ("iep/a", "editor"),
        ("iep/b", "owner"),
    ]
    first = mine.json()["documents"][0]
    assert {"name", "role", "updated_at", "archived", "last_editor"} <= set(first)
    everything = await http.get("/api/documents", headers=admin)
    assert [d["name"] for d in everything.json()["documents"]] == ["iep/a", "iep/b", "iep/c"]
    stranger = await http.get("/api/documents", headers=as_user(supabase, "x"))
    assert stranger.json() == {"documents": [], "may_create": False}
    assert (await http.get("/api/documents")).status_code == 401
