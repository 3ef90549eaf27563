"""New IEPs are created by the server: named apart from the student, owned by their creator."""

from __future__ import annotations

import httpx

from tests.support.tokens import FakeSupabase, bearer


def staff(supabase: FakeSupabase, user_id: str) -> dict[str, str]:
    return bearer(supabase.token(user_id, app_metadata={"role": "staff"}))


async def create(http: httpx.AsyncClient, headers: dict[str, str], **body: str) -> httpx.Response:
    return await http.post("/api/documents", json=body, headers=headers)


async def test_two_arabic_named_children_get_two_ieps_each_owned_by_its_creator(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    huda = staff(supabase, "huda")
    omar = await create(http, huda, student_name="عمر خالد", title="الخطة ٢٠٢٦")
    sara = await create(http, huda, student_name="سارة أحمد")
    # Two children with one Latin name too: each has their own record.
    first_ali = await create(http, huda, student_name="Ali Hassan")
    second_ali = await create(http, staff(supabase, "mona"), student_name="Ali Hassan")
    created = [r.json() for r in (omar, sara, first_ali, second_ali)]
    assert [r.status_code for r in (omar, sara, first_ali, second_ali)] == [201] * 4
    assert len({c["name"] for c in created}) == 4
    assert all(c["name"].startswith("centre/iep-") for c in created)
    assert (created[0]["student_name"], created[0]["title"]) == ("عمر خالد", "الخطة ٢٠٢٦")
    listed = (await http.get("/api/documents", headers=huda)).json()
    assert {d["name"] for d in listed["documents"]} == {c["name"] for c in created[:3]}
    assert {d["role"] for d in listed["documents"]} == {"owner"}
    assert listed["may_create"] is True
    # Mona's IEP is hers: Huda is not a member of it.
    members = await http.get(f"/api/documents/{created[3]['name']}/members", headers=huda)
    assert members.status_code == 403


async def test_only_staff_and_admins_create_and_bad_input_is_named(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    parent = bearer(supabase.token("layla"))
    refused = await create(http, parent, student_name="عمر خالد")
    assert refused.status_code == 403
    assert (await http.get("/api/documents", headers=parent)).json()["may_create"] is False
    admin = bearer(supabase.admin_token("admin-1"))
    assert (await create(http, admin, student_name="Omar")).status_code == 201
    huda = staff(supabase, "huda")
    for body, field in (
        ({}, "student_name"),
        ({"student_name": " "}, "student_name"),
        ({"student_name": "x" * 201}, "student_name"),
        ({"student_name": "Omar\u202e"}, "student_name"),
        ({"student_name": "Omar", "name": "centre/omar"}, "name"),
    ):
        bad = await http.post("/api/documents", json=body, headers=huda)
        assert bad.status_code == 422, body
        assert field in bad.json()["problems"], body
