"""A signed-in server (fake Supabase) with a document, its team and its parents, and clients
that edit the IEP as the editor does (schema: docs/iep-schema.md)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from pycrdt import Array, Doc, Map, Text

from tests.support.tokens import FakeSupabase, bearer
from tests.support.yclient import YClient, connect

DOC = "centre/yusuf/iep-2026"
OWNER, OMAR, SARA, PARENT = "t-huda", "t-omar", "t-sara", "p-layla"
PEOPLE = {
    OWNER: {"name": "Ms. Huda", "language": "en"},
    OMAR: {"name": "عمر الحربي", "language": "ar"},
    SARA: {"name": "Sara Lee", "language": "en"},
    PARENT: {
        "name": "ليلى",
        "language": "ar",
        "timezone": "Asia/Riyadh",
        "channels": {"in_app": True},
    },
}


@dataclass
class Team:
    http: httpx.AsyncClient
    supabase: FakeSupabase

    def auth(self, user_id: str) -> dict[str, str]:
        return bearer(self.supabase.token(user_id))

    @property
    def admin(self) -> dict[str, str]:
        return bearer(self.supabase.admin_token("admin-1"))

    def ws(self, user_id: str) -> str:
        base = str(self.http.base_url).replace("http://", "ws://").rstrip("/")
        return f"{base}/sync/{DOC}?token={self.supabase.token(user_id)}"

    @contextlib.asynccontextmanager
    async def editor(self, user_id: str) -> AsyncIterator[YClient]:
        async with connect(self.ws(user_id)) as client:
            yield client


async def make_team(http: httpx.AsyncClient, supabase: FakeSupabase) -> Team:
    team = Team(http, supabase)
    roles = {OWNER: "owner", OMAR: "editor", SARA: "editor", PARENT: "viewer"}
    for user_id, role in roles.items():
        response = await http.put(
            f"/api/documents/{DOC}/members/{user_id}",
            json={"role": role, "digest": user_id == PARENT},
            headers=team.admin,
        )
        assert response.status_code in (200, 201), response.text
    for user_id, record in PEOPLE.items():
        response = await http.put(f"/api/people/{user_id}", json=record, headers=team.admin)
        assert response.status_code == 200, response.text
    return team


def iep(doc: Doc[Any]) -> Map[Any]:
    found: Map[Any] = doc.get("iep", type=Map)
    return found


def create_sections(doc: Doc[Any], title: str, language: str) -> None:
    with doc.transaction():
        root = iep(doc)
        root["meta"] = Map({"title": title, "language": language, "schemaVersion": 1})
        root["student"] = Map()
        root["goals"] = Array()
        root["accommodations"] = Array()
        root["services"] = Array()
        root["notes"] = Text()


def section(doc: Doc[Any], key: str) -> Any:
    return iep(doc).get(key)


def add_goal(doc: Doc[Any], goal_id: str, title: str, **fields: str) -> None:
    with doc.transaction():
        item = Map({"id": goal_id, "title": title, **fields})
        section(doc, "goals").append(item)


async def synced_with(client: YClient, check: Any) -> None:
    """Wait until the client's copy satisfies `check(doc)` (the server relayed it)."""

    def ready() -> bool:
        try:
            return bool(check(client.doc))
        except Exception:
            return False

    await client.wait_for(ready, timeout=10)
