"""Editing an IEP the way the browser editor does, through real y-websocket connections."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text

from tests.support.yclient import YClient


def iep(doc: Doc[Any]) -> Map[Any]:
    root: Map[Any] = doc.get("iep", type=Map)
    return root


def create_sections(client: YClient, title: str) -> None:
    """What the editor does on first open: every section, in one transaction."""
    with client.doc.transaction():
        root = iep(client.doc)
        root["meta"] = Map({"title": title, "language": "en", "schemaVersion": 1.0})
        root["student"] = Map({"name": "Sara"})
        root["goals"] = Array()
        root["accommodations"] = Array()
        root["services"] = Array()
        root["notes"] = Text()


def add_item(client: YClient, section: str, item_id: str, title: str) -> None:
    iep(client.doc)[section].append(Map({"id": item_id, "title": title}))


def items(client: YClient, section: str) -> Array[Any]:
    array: Array[Any] = iep(client.doc)[section]
    return array


def notes(client: YClient) -> Text:
    text: Text = iep(client.doc)["notes"]
    return text


def has_sections(client: YClient) -> bool:
    return "notes" in iep(client.doc)
