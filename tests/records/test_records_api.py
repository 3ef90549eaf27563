"""History, versions, restore, export, acknowledgement and audit through the HTTP API, on SQLite
and PostgreSQL, with real clients editing over the sync socket."""

from __future__ import annotations

import base64
import re
import subprocess

import httpx
from pycrdt import Text

from integrations.iep_content import content_of_state, content_sha256
from tests.records.conftest import (
    DOC,
    OMAR,
    OWNER,
    PARENT,
    SARA,
    add_goal,
    create_sections,
    make_team,
    section,
    synced_with,
)
from tests.support.tokens import FakeSupabase

BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")


async def test_three_editors_history_versions_export_and_what_a_viewer_may_not_do(
    http: httpx.AsyncClient, supabase: FakeSupabase
) -> None:
    team = await make_team(http, supabase)
    async with team.editor(OWNER) as huda, team.editor(OMAR) as omar, team.editor(SARA) as sara:
        create_sections(huda.doc, "خطة يوسف 2026", "ar")
        with huda.doc.transaction():
            section(huda.doc, "student")["name"] = "يوسف الأحمد"
        await synced_with(omar, lambda d: section(d, "goals") is not None)
        add_goal(omar.doc, "g1", "Reading fluency", area="القراءة", target="40 wpm")
        await synced_with(sara, lambda d: len(section(d, "goals")) == 1)
        notes: Text = section(sara.doc, "notes")
        notes += "Yusuf reads 20 words per minute."
        await synced_with(huda, lambda d: "20 words" in str(section(d, "notes")))
        await synced_with(omar, lambda d: "20 words" in str(section(d, "notes")))

        history = await http.get(f"/api/documents/{DOC}/history", headers=team.auth(PARENT))
        assert history.status_code == 200
        sessions = {s["user_id"]: s for s in history.json()["sessions"]}
        assert set(sessions) == {OWNER, OMAR, SARA}
        assert sessions[OMAR]["name"] == "عمر الحربي"
        huda_fields = {c["path"]: c for c in sessions[OWNER]["changes"]}
        assert huda_fields["student/name"]["after"] == "يوسف الأحمد"
        assert huda_fields["meta/title"]["kind"] == "added"
        omar_fields = {c["path"]: c for c in sessions[OMAR]["changes"]}
        assert omar_fields["goals/g1/title"] == {
            **omar_fields["goals/g1/title"],
            "kind": "added",
            "after": "Reading fluency",
            "item": {"id": "g1", "title": "Reading fluency"},
        }
        (sara_note,) = sessions[SARA]["changes"]
        assert (sara_note["path"], sara_note["before"], sara_note["inserted"]) == ("notes", "", 32)

        fields = await http.get(f"/api/documents/{DOC}/history/fields", headers=team.auth(OWNER))
        editors = fields.json()["fields"]
        assert editors["goals/g1/title"]["name"] == "عمر الحربي"
        assert editors["notes"]["user_id"] == SARA

        parent = team.auth(PARENT)
        refused = [
            await http.post(f"/api/documents/{DOC}/versions", json={"name": "x"}, headers=parent),
        ]
        named = await http.post(
            f"/api/documents/{DOC}/versions",
            json={"name": "Draft for the meeting", "note": "before the 1 December meeting"},
            headers=team.auth(OMAR),
        )
        assert named.status_code == 201
        version = named.json()
        version_url = f"/api/documents/{DOC}/versions/{version['id']}"
        refused.append(await http.post(f"{version_url}/restore", headers=parent))
        refused.append(await http.post(f"{version_url}/acknowledgements", headers=parent))
        refused.append(await http.post(f"{version_url}/acknowledgements", headers=team.auth(OMAR)))
        assert [r.status_code for r in refused] == [403, 403, 403, 403]
        # Not sent to the parent yet: parents see only the versions sent to them.
        assert (await http.get(f"/api/documents/{DOC}/versions", headers=parent)).json()[
            "versions"
        ] == []
        assert (await http.get(version_url, headers=parent)).status_code == 404

        with sara.doc.transaction():
            section(sara.doc, "student")["name"] = "Yusuf Al-Ahmad"
        await synced_with(huda, lambda d: section(d, "student")["name"] == "Yusuf Al-Ahmad")
        compared = await http.get(
            f"/api/documents/{DOC}/compare",
            params={"from": version["id"], "to": "current"},
            headers=team.auth(OWNER),
        )
        changed = {f["path"]: f for f in compared.json()["fields"] if f["kind"] != "same"}
        assert list(changed) == ["student/name"]
        segments = changed["student/name"]["segments"]
        assert [s["text"] for s in segments if s["op"] == "delete"] == ["يوسف", "الأحمد"]
        assert [s["text"] for s in segments if s["op"] == "insert"] == ["Yusuf", "Al-Ahmad"]

        restore = await http.post(f"{version_url}/restore", headers=team.auth(SARA))
        assert restore.status_code == 200
        state = base64.b64decode(restore.json()["state"])
        assert content_sha256(content_of_state(state)) == version["content_sha256"]

        pdf = await http.get(f"{version_url}/export.pdf", headers=team.auth(OWNER))
        assert pdf.headers["content-type"] == "application/pdf"
        text = pdftotext(pdf.content)
        for expected in ("خطة يوسف 2026", "يوسف الأحمد", "Reading fluency", "القراءة", "40 wpm"):
            assert expected in text, expected
        assert text.index("الطالب") < text.index("الأهداف") < text.index("ملاحظات")
        assert "Draft for the meeting" in text
        fonts = pdffonts(pdf.content)
        assert any("Arabic" in row[0] and row[-1] == "yes" for row in fonts), fonts
        assert all(row[-1] == "yes" for row in fonts)
        exported = await http.get(f"{version_url}/export.json", headers=team.auth(OWNER))
        assert exported.json()["content"]["student"]["name"] == "يوسف الأحمد"

        audit = await http.get(f"/api/documents/{DOC}/audit", headers=team.auth(OWNER))
        actions = [e["action"] for e in audit.json()["events"]]
        assert actions.count("document_opened") == 3
        assert {"version_named", "version_restored", "version_exported", "member_added"} <= set(
            actions
        )
        exports = [e for e in audit.json()["events"] if e["action"] == "version_exported"]
        assert {e["details"]["format"] for e in exports} == {"pdf", "json"}
        assert all(e["actor_id"] == OWNER and e["address"] == "127.0.0.1" for e in exports)
        assert (
            await http.get(f"/api/documents/{DOC}/audit", headers=team.auth(OMAR))
        ).status_code == 403


def pdftotext(pdf: bytes) -> str:
    done = subprocess.run(
        ["pdftotext", "-q", "-", "-"], input=pdf, capture_output=True, check=True, timeout=30
    )
    return BIDI_CONTROLS.sub("", done.stdout.decode())


def pdffonts(pdf: bytes) -> list[list[str]]:
    done = subprocess.run(
        ["pdffonts", "-"], input=pdf, capture_output=True, check=False, timeout=30
    )
    if done.returncode != 0:  # older poppler reads no stdin: go through a file
        import tempfile

        with tempfile.NamedTemporaryFile(suffix=".pdf") as file:
            file.write(pdf)
            file.flush()
            done = subprocess.run(
                ["pdffonts", file.name], capture_output=True, check=True, timeout=30
            )
    lines = done.stdout.decode().splitlines()[2:]
    return [[line.split()[0], line.split()[-5]] for line in lines if line.strip()]
