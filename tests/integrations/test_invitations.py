"""Sharing by e-mail: the person is found in Supabase Auth, or invited, through the admin API
of our loopback Supabase (its documented contract, errors included), and gets a people record."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from collab_server.settings import Settings
from iep_collab.composition import build_app
from tests.support.servers import serve_in_process
from tests.support.tokens import SERVICE_ROLE_KEY, FakeSupabase, auth_settings, bearer

INVITE = "/api/people/invitations"


@pytest.fixture
async def http(
    sqlite_settings: Settings, supabase: FakeSupabase
) -> AsyncIterator[httpx.AsyncClient]:
    settings = auth_settings(
        sqlite_settings, supabase, supabase_service_key=SecretStr(SERVICE_ROLE_KEY)
    )
    async with (
        serve_in_process(build_app(settings)) as server,
        httpx.AsyncClient(base_url=server.http) as client,
    ):
        yield client


def staff(supabase: FakeSupabase) -> dict[str, str]:
    return bearer(supabase.token("t-huda", app_metadata={"role": "staff"}))


async def test_someone_with_an_account_is_found_by_e_mail_whatever_its_case(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    layla = supabase.add_user("layla@example.org", "ليلى أحمد")
    found = await http.post(INVITE, json={"email": "Layla@Example.org"}, headers=staff(supabase))
    assert found.status_code == 200, found.text
    assert found.json() == {
        "user_id": layla["id"],
        "name": "ليلى أحمد",
        "email": "layla@example.org",
        "invited": False,
    }
    assert supabase.invitations == []
    # The people record names them from now on (history, digests, the Share dialog).
    admin = bearer(supabase.admin_token("admin-1"))
    person = await http.get(f"/api/people/{layla['id']}", headers=admin)
    assert (person.json()["name"], person.json()["language"]) == ("ليلى أحمد", "ar")


async def test_someone_without_an_account_is_invited_once(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    for page in range(3):  # more than one page of accounts to look through
        for n in range(400):
            supabase.add_user(f"p{page}-{n}@example.org")
    invited = await http.post(
        INVITE, json={"email": "omar@example.org", "language": "en"}, headers=staff(supabase)
    )
    assert invited.status_code == 201, invited.text
    assert invited.json()["invited"] is True and invited.json()["name"] == "omar"
    again = await http.post(INVITE, json={"email": "omar@example.org"}, headers=staff(supabase))
    assert (again.status_code, again.json()["user_id"]) == (200, invited.json()["user_id"])
    assert supabase.invitations == ["omar@example.org"]


async def test_only_staff_invite_bad_addresses_are_refused_and_an_outage_is_said(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    parent = bearer(supabase.token("p-1"))
    refused = await http.post(INVITE, json={"email": "x@example.org"}, headers=parent)
    assert refused.status_code == 403
    for address in ("not an address", "a\u202e@example.org", "b\x01@example.org"):
        bad = await http.post(INVITE, json={"email": address}, headers=staff(supabase))
        assert bad.status_code == 422 and "email" in bad.json()["problems"], address
    supabase.admin_failure = 503
    down = await http.post(INVITE, json={"email": "x@example.org"}, headers=staff(supabase))
    assert down.status_code == 502
    assert supabase.invitations == []
