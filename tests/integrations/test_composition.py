"""`build_app` wires the digests for real: access store people and members, the system clock,
the background loop, the webhook (development mode: every API caller is an admin)."""

from __future__ import annotations

from pathlib import Path

import httpx

from iep_collab.composition import build_app
from iep_collab.config import load_config
from tests.integrations.conftest import eventually, inbound_text, sign, whatsapp_environment
from tests.integrations.edits import add_item, create_sections
from tests.integrations.fakes import graph_api, wait_until
from tests.support.servers import serve_in_process
from tests.support.tokens import auth_settings, bearer, fake_supabase
from tests.support.yclient import connect

DOCUMENT = "centre/student-7/iep"
LAYLA = {
    "name": "ليلى",
    "phone": "+966500000009",
    "email": None,
    "language": "ar",
    "timezone": "Asia/Riyadh",
    "channels": {"whatsapp": True, "email": False, "in_app": True},
}
HUDA = {
    "name": "Ms. Huda",
    "phone": None,
    "email": None,
    "language": "en",
    "timezone": "Asia/Dubai",
    "channels": {"whatsapp": False, "email": False, "in_app": True},
}


async def test_build_app_sends_a_digest_and_honours_stop(tmp_path: Path) -> None:
    async with graph_api() as graph:
        config = load_config(
            whatsapp_environment(
                tmp_path / "collab.db", graph.url, COLLAB_PUBLIC_URL="https://iep.example.test"
            )
        )
        async with (
            serve_in_process(build_app(config.server, config.notifications)) as server,
            httpx.AsyncClient(base_url=server.http) as http,
        ):
            person = await http.put("/api/people/p-layla", json=LAYLA)
            assert person.status_code in (200, 201), person.text
            member = await http.put(
                f"/api/documents/{DOCUMENT}/members/p-layla",
                json={"role": "viewer", "digest": True},
            )
            assert member.status_code in (200, 201), member.text
            async with connect(f"{server.ws(DOCUMENT)}?name=Huda") as huda:
                with huda.doc.transaction():  # one change: exactly one digest
                    create_sections(huda, "Sara")
                    add_item(huda, "goals", "g1", "Reading fluency")
                await wait_until(lambda: len(graph.accepted) == 1, timeout=15)
            (digest,) = graph.accepted
            assert digest.kind == "template" and digest.to == "966500000009"
            assert "Huda" in digest.text and "Reading fluency" in digest.text
            assert "https://iep.example.test/doc/centre/student-7/iep" in digest.text

            stop = inbound_text("+966500000009", "إيقاف", "wamid.STOP")
            answer = await http.post(
                "/webhooks/whatsapp",
                content=stop,
                headers={"x-hub-signature-256": sign(stop), "content-type": "application/json"},
            )
            assert answer.status_code == 200
            await wait_until(lambda: len(graph.accepted) == 2, timeout=15)
            confirmation = graph.accepted[1]
            assert confirmation.kind == "text" and confirmation.text.startswith("لن تصلك")
            outbox = await http.get("/api/notifications/outbox", params={"document": DOCUMENT})
            assert [m["state"] for m in outbox.json()["messages"]] == ["sent"]


async def test_a_parent_who_never_had_a_digest_can_reply_and_send_stop(tmp_path: Path) -> None:
    """Replies are matched to people by their stored number, not by who was sent a digest."""
    with fake_supabase() as supabase:
        async with graph_api() as graph:
            config = load_config(whatsapp_environment(tmp_path / "collab.db", graph.url))
            admin = bearer(supabase.admin_token("admin-1"))
            huda_token = supabase.token("t-huda")
            async with (
                serve_in_process(
                    build_app(auth_settings(config.server, supabase), config.notifications)
                ) as server,
                httpx.AsyncClient(base_url=server.http) as http,
            ):
                for user_id, record, membership in (
                    ("p-layla", LAYLA, {"role": "viewer", "digest": True}),
                    ("t-huda", HUDA, {"role": "editor", "digest": False}),
                ):
                    put = await http.put(f"/api/people/{user_id}", json=record, headers=admin)
                    assert put.status_code in (200, 201), put.text
                    put = await http.put(
                        f"/api/documents/{DOCUMENT}/members/{user_id}",
                        json=membership,
                        headers=admin,
                    )
                    assert put.status_code in (200, 201), put.text

                async def webhook(text: str, message_id: str) -> None:
                    # Meta sends the number without '+': 966500000009.
                    body = inbound_text(LAYLA["phone"], text, message_id)
                    answer = await http.post(
                        "/webhooks/whatsapp",
                        content=body,
                        headers={"x-hub-signature-256": sign(body)},
                    )
                    assert answer.status_code == 200

                async def huda_notes() -> list[dict[str, str]]:
                    response = await http.get("/api/notifications", headers=bearer(huda_token))
                    notes: list[dict[str, str]] = response.json()["notifications"]
                    return notes

                async def huda_told() -> bool:
                    return len(await huda_notes()) == 1

                await webhook("متى الجلسة القادمة؟", "wamid.Q1")
                await eventually(huda_told, timeout=15)
                (note,) = await huda_notes()
                assert (note["title"], note["body"]) == ("ليلى", "متى الجلسة القادمة؟")
                assert graph.accepted == []  # she has never been sent anything

                await webhook("إيقاف", "wamid.STOP")
                await wait_until(lambda: len(graph.accepted) == 1, timeout=15)
                (confirmation,) = graph.accepted
                assert confirmation.to == "966500000009" and confirmation.kind == "text"
                assert confirmation.text.startswith("لن تصلك")

                # Opted out: the next digest reaches her in the app, not on WhatsApp.
                async with connect(f"{server.ws(DOCUMENT)}?token={huda_token}") as huda:
                    with huda.doc.transaction():
                        create_sections(huda, "Sara")
                        add_item(huda, "goals", "g1", "Reading fluency")

                    async def digest_sent() -> bool:
                        outbox = await http.get(
                            "/api/notifications/outbox",
                            params={"document": DOCUMENT},
                            headers=admin,
                        )
                        return [
                            (m["recipient_id"], m["state"], m["channel"])
                            for m in outbox.json()["messages"]
                        ] == [("p-layla", "sent", "in_app")]

                    await eventually(digest_sent, timeout=15)
                assert len(graph.accepted) == 1
