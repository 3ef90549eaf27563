"""An IEP's content as plain data, for versions, history, comparison and export.

Tolerant of both layouts the editor has used: schema 1 keeps every section under one root map
`iep`; later schemas keep sections as root-level shared types, with fields that may be strings
or Y.Text. Root types are not recorded in a Yjs update, so `probe_roots` infers each from its
content (keys: a map; characters: a text; elements: an array). Unknown keys are kept.

`content()` is canonical (sorted keys when serialised), so its SHA-256 identifies what a parent
read. `flatten()` turns content into field paths (`student/name`, `goals/<id>/title`,
`notes`) with display strings, which history and comparison diff field by field.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from pycrdt import Array, Doc, Map, Text

V1_ROOT = "iep"
SCHEMA_VERSION = 2  # docs/iep-schema.md
ITEM_SECTIONS = ("goals", "accommodations", "services")
SECTION_ORDER = ("meta", "student", "goals", "accommodations", "services", "notes")
HIDDEN_FIELDS = frozenset({"meta/schemaVersion"})
ITEM_FIELD_ORDER = {
    "goals": ("title", "area", "baseline", "target", "status"),
    "accommodations": ("title", "details"),
    "services": ("title", "provider", "frequency", "minutesPerSession"),
}
STUDENT_FIELD_ORDER = (
    "name",
    "dateOfBirth",
    "grade",
    "school",
    "primaryLanguage",
    "diagnosis",
    "guardianName",
)


class RootKind(StrEnum):
    MAP = "map"
    ARRAY = "array"
    TEXT = "text"


def probe_roots(state: bytes) -> dict[str, RootKind]:
    """The type of each root named in `state` (an update of the whole document)."""
    names = _root_names(state)
    kinds: dict[str, RootKind] = {}
    for name in names:
        if len(_probe(state).get(name, type=Map)):
            kinds[name] = RootKind.MAP
        elif str(_probe(state).get(name, type=Text)):
            kinds[name] = RootKind.TEXT
        elif len(_probe(state).get(name, type=Array)):
            kinds[name] = RootKind.ARRAY
    return kinds


def _probe(state: bytes) -> Doc[Any]:
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return doc


def _root_names(state: bytes) -> list[str]:
    return sorted(_probe(state).keys())


def typed_roots(doc: Doc[Any], kinds: Mapping[str, RootKind]) -> dict[str, Any]:
    types = {RootKind.MAP: Map, RootKind.ARRAY: Array, RootKind.TEXT: Text}
    return {name: doc.get(name, type=types[kind]) for name, kind in kinds.items()}


def plain(value: Any) -> Any:
    """A shared type (or a value) as JSON-compatible data."""
    if isinstance(value, Text):
        return str(value)
    if isinstance(value, Map):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Array):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def sections(roots: Mapping[str, Any]) -> dict[str, Any]:
    """Section name -> its value: a shared type, or for a section whose fields are roots of
    their own (schema 2: `student/name`), a dict of the section map's entries and those roots.

    The schema-1 root map `iep` is read only while the document has not been migrated.
    """
    found: dict[str, Any] = {}
    field_roots: dict[str, dict[str, Any]] = {}
    for name, root in roots.items():
        if name == V1_ROOT:
            continue
        section, slash, field_name = name.partition("/")
        if slash:
            field_roots.setdefault(section, {})[field_name] = root
        else:
            found[name] = root
    for section, fields in field_roots.items():
        entries = found.get(section)
        merged = dict(entries.items()) if isinstance(entries, Map) else {}
        found[section] = {**merged, **fields}
    legacy = roots.get(V1_ROOT)
    if isinstance(legacy, Map) and schema_version(roots) < SCHEMA_VERSION:
        for key, value in legacy.items():
            found[str(key)] = value
    return found


def schema_version(roots: Mapping[str, Any]) -> int:
    return declared_version(roots.get("meta"))


def declared_version(meta: object) -> int:
    """The version the root `meta` map declares; 1 for a document that declares none."""
    version = meta.get("schemaVersion") if isinstance(meta, Map) else None
    return int(version) if isinstance(version, int | float) else 1


def section_of_root(name: str) -> str:
    """The section a root belongs to: `student/name` is part of `student`."""
    return name.partition("/")[0]


def content(doc: Doc[Any], kinds: Mapping[str, RootKind] | None = None) -> dict[str, Any]:
    """The whole IEP as plain data; `kinds` from `probe_roots` (probed here when not given)."""
    if kinds is None:
        kinds = probe_roots(doc.get_update())
    return {name: plain(value) for name, value in sections(typed_roots(doc, kinds)).items()}


def content_of_state(state: bytes) -> dict[str, Any]:
    doc: Doc[Any] = Doc()
    doc.apply_update(state)
    return content(doc, probe_roots(state))


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def content_sha256(data: Any) -> str:
    return hashlib.sha256(canonical_json(data)).hexdigest()


def display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def item_id(item: Any) -> str | None:
    if isinstance(item, dict):
        found = item.get("id")
        if isinstance(found, str) and found:
            return found
    return None


def flatten_section(name: str, value: Any) -> dict[str, str]:
    """Field path -> display string for one section's plain value."""
    fields: dict[str, str] = {}
    if isinstance(value, dict):
        keys = _ordered(value, STUDENT_FIELD_ORDER if name == "student" else ())
        for key in keys:
            path = f"{name}/{key}"
            if path not in HIDDEN_FIELDS:
                fields[path] = display(value[key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = item_id(item)
            if found is None:
                fields[f"{name}/#{index}"] = display(item)
                continue
            for key in _ordered(item, ITEM_FIELD_ORDER.get(name, ())):
                if key != "id":
                    fields[f"{name}/{found}/{key}"] = display(item[key])
    else:
        fields[name] = display(value)
    return fields


def flatten(data: Mapping[str, Any]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name in ordered_sections(data):
        fields.update(flatten_section(name, data[name]))
    return fields


def ordered_sections(data: Iterable[str]) -> list[str]:
    present = list(data)
    known = [s for s in SECTION_ORDER if s in present]
    return known + sorted(s for s in present if s not in SECTION_ORDER)


def _ordered(mapping: Mapping[str, Any], preferred: Iterable[str]) -> list[str]:
    first = [k for k in preferred if k in mapping]
    return first + sorted(k for k in mapping if k not in first)


def item_titles(data: Mapping[str, Any]) -> dict[str, str]:
    """`section/id` -> the item's title, for naming items in history and comparison."""
    titles: dict[str, str] = {}
    for name in ITEM_SECTIONS:
        value = data.get(name)
        if isinstance(value, list):
            for item in value:
                found = item_id(item)
                if found is not None:
                    titles[f"{name}/{found}"] = display(item.get("title"))
    return titles
