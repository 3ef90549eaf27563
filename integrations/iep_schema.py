"""What the server itself writes into an IEP (docs/iep-schema.md): schema 2's layout, the
one-time migration of a schema-1 document, and a new IEP's first content.

Both run on the live document of the process that owns it (the single writer), inside one
transaction that the registry stores as the server's change; neither ever creates a section
that a client could create at the same time, which is the point of schema 2: every section
and top-level field is a root-level shared type, and item fields are created with their item.
"""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text

from collab_server.api import NewIep
from integrations.iep_content import SCHEMA_VERSION, V1_ROOT, declared_version, plain

META = "meta"  # Map: schemaVersion, language, unknown keys
STUDENT = "student"  # Map: dateOfBirth, unknown keys
NOTES = "notes"  # Text
LIST_SECTIONS = ("goals", "accommodations", "services")
STUDENT_TEXT_FIELDS = ("name", "grade", "school", "primaryLanguage", "diagnosis", "guardianName")
META_TEXT_FIELDS = ("title",)
ITEM_TEXT_FIELDS = {
    "goals": ("title", "area", "baseline", "target"),
    "accommodations": ("title", "details"),
    "services": ("title", "provider", "frequency"),
}
LANGUAGES = ("ar", "en")


def field_root(section: str, field_name: str) -> str:
    """The root-level Y.Text of a top-level free-text field: `student/name`, `meta/title`."""
    return f"{section}/{field_name}"


def _text_fields(section: str) -> tuple[str, ...]:
    return STUDENT_TEXT_FIELDS if section == STUDENT else META_TEXT_FIELDS


def _as_string(value: Any) -> str:
    if isinstance(value, Text):
        return str(value)
    return value if isinstance(value, str) else ""


def _fill(text: Text, value: str) -> None:
    # Only ever into an empty field: running twice never doubles a name.
    if value and not len(text):
        text += value


def _item(section: str, old: Map[Any]) -> Map[Any]:
    texts = ITEM_TEXT_FIELDS[section]
    fields: dict[str, Any] = {}
    for key, value in old.items():
        if key in texts:
            fields[key] = Text(_as_string(value))
        else:
            fields[key] = plain(value)
    for key in texts:
        fields.setdefault(key, Text())
    return Map(fields)


def upgrade(doc: Doc[Any]) -> bool:
    """Migrate a schema-1 document to schema 2 (in the caller's transaction). Returns whether
    it changed anything: only a document with schema-1 content that is not yet migrated.

    The schema-1 root stays as it was (history reads it); readers ignore it from then on.
    """
    try:
        legacy = doc.get(V1_ROOT, type=Map)
    except Exception:  # a root of another type under that name: not an IEP of ours
        return False
    if not len(legacy) or declared_version(doc.get(META, type=Map)) >= SCHEMA_VERSION:
        return False
    for section in (META, STUDENT):
        old = legacy.get(section)
        if not isinstance(old, Map):
            continue
        target = doc.get(section, type=Map)
        texts = _text_fields(section)
        for key, value in old.items():
            if key in texts:
                _fill(doc.get(field_root(section, key), type=Text), _as_string(value))
            elif key != "schemaVersion" and key not in target:
                target[key] = plain(value)
    for section in LIST_SECTIONS:
        old_list = legacy.get(section)
        array = doc.get(section, type=Array)
        if isinstance(old_list, Array) and not len(array):
            for old in old_list:
                array.append(_item(section, old) if isinstance(old, Map) else plain(old))
    _fill(doc.get(NOTES, type=Text), _as_string(legacy.get(NOTES)))
    doc.get(META, type=Map)["schemaVersion"] = SCHEMA_VERSION
    return True


def seed(doc: Doc[Any], new: NewIep) -> bool:
    """A new IEP's first content, written by the server when it creates the document."""
    meta = doc.get(META, type=Map)
    meta["schemaVersion"] = SCHEMA_VERSION
    if new.language in LANGUAGES:
        meta["language"] = new.language
    _fill(doc.get(field_root(STUDENT, "name"), type=Text), new.student_name)
    _fill(doc.get(field_root(META, "title"), type=Text), new.title)
    return True


def upgraded_state(state: bytes) -> bytes:
    """A whole-document state in schema 2 (a version taken before the migration, restored
    into a migrated document); a state that needs nothing comes back as it was."""
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    with doc.transaction():
        changed = upgrade(doc)
    return doc.get_update() if changed else state
