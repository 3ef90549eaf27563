"""People records: contact details and notification preferences, validated."""

from __future__ import annotations

from typing import Any

import httpx

from collab_server.settings import Settings
from iep_collab.composition import build_app
from tests.support.servers import serve_in_process
from tests.support.tokens import FakeSupabase, auth_settings, bearer
from tests.support.yclient import connect

HUDA = {
    "name": "هدى الحربي",
    "phone": "+971501234567",
    "email": "huda@example.org",
    "language": "ar",
    "timezone": "Asia/Dubai",
    "channels": {"whatsapp": True, "sms": False, "email": False, "in_app": True},
    "digits": "latin",
}


async def test_a_person_reads_and_updates_their_own_record(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    me = bearer(supabase.token("huda"))
    assert (await http.get("/api/people/huda", headers=me)).status_code == 404
    saved = await http.put("/api/people/huda", json=HUDA, headers=me)
    assert saved.status_code == 200
    stored = {
        "user_id": "huda",
        **HUDA,
        "phone_display": "050 123 4567",  # as people write it at home
        "quiet_hours": None,  # the centre's
        "channel_order": [],
    }
    assert saved.json() == stored
    assert (await http.get("/api/people/huda", headers=me)).json() == stored
    changed = {**HUDA, "language": "en", "channels": {"whatsapp": False, "in_app": True}}
    await http.put("/api/people/huda", json=changed, headers=me)
    again = (await http.get("/api/people/huda", headers=me)).json()
    assert again["language"] == "en"
    assert again["channels"] == {"whatsapp": False, "sms": False, "email": False, "in_app": True}


async def test_others_are_refused_and_admins_may_manage_anyone(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    other = bearer(supabase.token("someone-else"))
    assert (await http.put("/api/people/huda", json=HUDA, headers=other)).status_code == 403
    assert (await http.get("/api/people/huda", headers=other)).status_code == 403
    admin = bearer(supabase.admin_token("admin-1"))
    assert (await http.put("/api/people/huda", json=HUDA, headers=admin)).status_code == 200
    assert (await http.get("/api/people/huda", headers=admin)).status_code == 200
    assert (await http.get("/api/people/huda")).status_code == 401


INVALID_CHANGES: list[tuple[dict[str, Any], str, str]] = [
    ({"phone": "0501234567"}, "phone", "E.164"),
    ({"phone": "+971 50 123 4567"}, "phone", "E.164"),
    ({"phone": "+97150"}, "phone", "E.164"),
    ({"language": "fr"}, "language", "'ar' or 'en'"),
    ({"timezone": "Mars/Olympus"}, "timezone", "IANA"),
    ({"timezone": "../../etc/passwd"}, "timezone", "IANA"),
    ({"email": "not-an-address"}, "email", "e-mail"),
    ({"name": " "}, "name", "non-empty"),
    ({"channels": {"whatsapp": "yes"}}, "channels.whatsapp", "true or false"),
    ({"channels": {"pager": True}}, "channels.pager", "unknown channel"),
    ({"phone": None, "channels": {"sms": True}}, "channels.sms", "needs a phone number"),
    ({"phone": None}, "channels.whatsapp", "needs a phone number"),
    ({"role": "admin"}, "role", "unknown field"),
    ({"quiet_hours": "25:00-08:00"}, "quiet_hours", "HH:MM-HH:MM"),
    ({"quiet_hours": "late"}, "quiet_hours", "HH:MM-HH:MM"),
    ({"channel_order": ["pager"]}, "channel_order", "each once"),
    ({"channel_order": ["sms", "sms"]}, "channel_order", "each once"),
    # A NUL once reached Postgres (500) and stalled the store; a bidi override misleads.
    ({"name": "عمر\u0000"}, "body", "NUL"),
    ({"name": "Omar\u202e\x1b[31m"}, "name", "control characters"),
    ({"email": "omar@example.org\r\nBcc: x@example.org"}, "email", "e-mail"),
]


async def test_invalid_records_get_a_422_naming_the_field(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    me = bearer(supabase.token("huda"))
    for change, field, message in INVALID_CHANGES:
        response = await http.put("/api/people/huda", json={**HUDA, **change}, headers=me)
        assert response.status_code == 422, change
        answer = response.json()
        assert message in answer.get("problems", {"body": answer["error"]})[field], change
    assert (await http.get("/api/people/huda", headers=me)).status_code == 404


async def test_the_people_record_names_the_user_on_their_connections(
    store_settings: Settings, supabase: FakeSupabase
) -> None:
    async with serve_in_process(build_app(auth_settings(store_settings, supabase))) as server:
        token = supabase.admin_token("huda", user_metadata={"full_name": "From Token"})
        async with connect(server.ws("iep/named") + f"?token={token}"):
            (connection,) = server.app.state.collab.registry.get_live("iep/named").connections
            assert connection.identity.display_name == "From Token"
        async with httpx.AsyncClient(base_url=server.http) as http:
            await http.put("/api/people/huda", json=HUDA, headers=bearer(token))
        async with connect(server.ws("iep/named") + f"?token={token}"):
            (connection,) = server.app.state.collab.registry.get_live("iep/named").connections
            assert connection.identity.display_name == HUDA["name"]
