"""Editing an IEP the way the browser editor does (schema 2, docs/iep-schema.md), through real
y-websocket connections."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Map, Text

from integrations.iep_schema import ITEM_TEXT_FIELDS
from tests.support.yclient import YClient


def create_sections(client: YClient, title: str) -> None:
    """What the server writes into a new IEP and the editor fills in: title and student."""
    with client.doc.transaction():
        client.doc.get("meta", type=Map).update({"language": "en", "schemaVersion": 2})
        client.doc.get("meta/title", type=Text).insert(0, title)
        client.doc.get("student/name", type=Text).insert(0, "Sara")


def add_item(client: YClient, section: str, item_id: str, title: str) -> None:
    """An item is created whole: its id and every free-text field, in one transaction."""
    fields: dict[str, Any] = {name: Text() for name in ITEM_TEXT_FIELDS[section]}
    fields.update(id=item_id, title=Text(title))
    items(client, section).append(Map(fields))


def items(client: YClient, section: str) -> Array[Any]:
    array: Array[Any] = client.doc.get(section, type=Array)
    return array


def notes(client: YClient) -> Text:
    text: Text = client.doc.get("notes", type=Text)
    return text


def has_sections(client: YClient) -> bool:
    return "Sara" in str(client.doc.get("student/name", type=Text))
