"""`build_app` wires the digests for real: access store people and members, the system clock,
the background loop, the webhook (development mode: every API caller is an admin)."""

from __future__ import annotations

from pathlib import Path

import httpx

from collab_server.app import build_app
from collab_server.settings import load_settings
from tests.integrations.conftest import APP_SECRET, VERIFY_TOKEN, inbound_text, sign
from tests.integrations.edits import add_item, create_sections
from tests.integrations.fakes import graph_api, wait_until
from tests.support.servers import serve_in_process
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


async def test_build_app_sends_a_digest_and_honours_stop(tmp_path: Path) -> None:
    async with graph_api() as graph:
        settings = load_settings(
            {
                "DATABASE_URL": f"sqlite:///{tmp_path}/collab.db",
                "WHATSAPP_API_URL": graph.url,
                "WHATSAPP_ACCESS_TOKEN": "test-token",
                "WHATSAPP_PHONE_NUMBER_ID": "1234567890",
                "WHATSAPP_APP_SECRET": APP_SECRET,
                "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
                "WHATSAPP_DIGEST_TEMPLATE": "iep_digest",
                "COLLAB_DIGEST_DEBOUNCE_SECONDS": "0",
                "COLLAB_QUIET_HOURS": "",
                "COLLAB_PUBLIC_URL": "https://iep.example.test",
            }
        )
        async with (
            serve_in_process(build_app(settings)) as server,
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
