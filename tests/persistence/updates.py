"""Real Y updates for the store tests: one per character run typed into a text."""

from __future__ import annotations

from pycrdt import Doc, Text


def text_updates(count: int) -> list[bytes]:
    doc = Doc()
    text = doc.get("notes", type=Text)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    for i in range(count):
        text += f"{i},"
    return updates
