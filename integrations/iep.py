"""The IEP schema (docs/iep-schema.md) as readers, and the change summariser.

Reading is tolerant: a section of the wrong type is absent, an item without a string `id` is
skipped, unknown keys are ignored. Both layouts are read: schema 2's root-level types (the
current one) and, until a document is migrated, schema 1's root map `iep`. The summariser
watches them with `observe_deep` and turns each transaction into a `ChangeSet`: per section,
items added, edited and removed (by title), text characters inserted and deleted, scalar
fields edited, and who. Deleted Y items read back empty, so each watch keeps an index
id -> title per item section.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
from pycrdt import Array, Doc, Map, Subscription, Text

from collab_server.identity import ConnectionOrigin
from integrations.iep_content import SCHEMA_VERSION, declared_version
from integrations.iep_schema import STUDENT_TEXT_FIELDS, field_root

log = structlog.get_logger("collab.integrations.iep")

ROOT = "iep"


class Section(StrEnum):
    META = "meta"
    STUDENT = "student"
    GOALS = "goals"
    ACCOMMODATIONS = "accommodations"
    SERVICES = "services"
    NOTES = "notes"


ITEM_SECTIONS = (Section.GOALS, Section.ACCOMMODATIONS, Section.SERVICES)
FIELD_SECTIONS = (Section.META, Section.STUDENT)
TEXT_SECTIONS = (Section.NOTES,)
SECTION_ORDER = (
    Section.STUDENT,
    Section.GOALS,
    Section.ACCOMMODATIONS,
    Section.SERVICES,
    Section.NOTES,
    Section.META,
)


# -- schema reading ---------------------------------------------------------------------------


class Layout:
    """Where each section lives: schema 2's root-level types, or schema 1's root map `iep`."""

    def __init__(self, doc: Doc[Any]) -> None:
        self.doc = doc
        self.legacy: Map[Any] | None = _root(doc, ROOT, Map)
        self.meta: Map[Any] | None = _root(doc, Section.META, Map)

    @property
    def current(self) -> bool:
        """Schema 2: migrated, or never written in schema 1."""
        if declared_version(self.meta) >= SCHEMA_VERSION:
            return True
        return self.legacy is None or not len(self.legacy)

    def section(self, section: Section) -> Any:
        if not self.current:
            return _child(self.legacy, section) if self.legacy is not None else None
        return _root(self.doc, section, _root_type(section))

    def title(self) -> str:
        return self._field(Section.META, "title")

    def student_name(self) -> str:
        return self._field(Section.STUDENT, "name")

    def _field(self, section: Section, name: str) -> str:
        """A top-level free-text field: its own root (schema 2) or a key of its section."""
        if self.current:
            text = _root(self.doc, field_root(section, name), Text)
            return str(text) if text is not None else ""
        values = self.section(section)
        if isinstance(values, Map):
            value = _child(values, name)
            if isinstance(value, str | Text):
                return str(value)
        return ""

    def watched_roots(self) -> list[tuple[list[str], Any]]:
        """(path prefix, shared type) of every root the summariser observes."""
        roots: list[tuple[list[str], Any]] = []
        if self.legacy is not None:
            roots.append(([], self.legacy))
        for section in Section:
            found = _root(self.doc, section, _root_type(section))
            if found is not None:
                roots.append(([section.value], found))
        for section, names in ((Section.STUDENT, STUDENT_TEXT_FIELDS), (Section.META, ("title",))):
            for name in names:
                text = _root(self.doc, field_root(section, name), Text)
                if text is not None:
                    roots.append(([section.value, name], text))
        return roots


def _root_type(section: Section) -> type:
    """The shared type of a section's schema-2 root: the item lists are arrays."""
    return {Section.META: Map, Section.STUDENT: Map, Section.NOTES: Text}.get(section, Array)


def _root(doc: Doc[Any], name: str, kind: type) -> Any:
    try:
        return doc.get(name, type=kind)
    except Exception:  # a root of another type under that name reads as absent
        return None


def _child(iep: Map[Any], key: str) -> Any:
    try:
        return iep.get(key)
    except Exception:  # an unreadable value is treated like an absent one
        return None


def item_ref(item: object) -> ItemRef | None:
    """An item's id and title; None for anything that is not an item map with a string id."""
    if not isinstance(item, Map):
        return None
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id:
        return None
    title = item.get("title")
    return ItemRef(item_id, str(title) if isinstance(title, str | Text) else "")


def read_items(layout: Layout, section: Section) -> dict[str, str]:
    """id -> title of a section's items, in array order; wrong types read as absent."""
    array = layout.section(section)
    if not isinstance(array, Array):
        return {}
    items: dict[str, str] = {}
    for item in array:
        ref = item_ref(item)
        if ref is not None:
            items[ref.id] = ref.title
    return items


# -- changes ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Editor:
    user_id: str | None
    name: str


@dataclass(frozen=True, slots=True)
class ItemRef:
    id: str
    title: str


@dataclass(frozen=True, slots=True)
class SectionChange:
    section: Section
    added: tuple[ItemRef, ...] = ()
    edited: tuple[ItemRef, ...] = ()
    removed: tuple[ItemRef, ...] = ()
    fields: tuple[str, ...] = ()  # edited field names (student, meta)
    inserted_chars: int = 0
    deleted_chars: int = 0


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What one transaction changed, and who made it."""

    document: str
    editor: Editor
    title: str  # the document's title after the change
    sections: tuple[SectionChange, ...]
    seq: int = 0
    at: float = 0.0


@dataclass
class _Draft:
    edited: dict[Section, dict[str, str]] = field(default_factory=dict)  # id -> title
    touched_arrays: set[Section] = field(default_factory=set)
    fields: dict[Section, set[str]] = field(default_factory=dict)
    inserted: dict[Section, int] = field(default_factory=dict)
    deleted: dict[Section, int] = field(default_factory=dict)


def editor_of(origin: object) -> Editor | None:
    """Only a client connection's verified user is an editor; server changes are not digested."""
    if isinstance(origin, ConnectionOrigin):
        return Editor(origin.user_id, origin.display_name)
    return None


def _text_delta(delta: Iterable[dict[str, Any]]) -> tuple[int, int]:
    inserted = deleted = 0
    for op in delta:
        value = op.get("insert")
        if isinstance(value, str):
            inserted += len(value)
        elif value is not None:
            inserted += len(value) if isinstance(value, list) else 1
        deleted += int(op.get("delete", 0) or 0)
    return inserted, deleted


class DocumentWatch:
    """Observes a document that the caller changes one transaction at a time (the digests'
    own copy, replaying the stored log); `take_last()` is the last transaction's ChangeSet."""

    def __init__(self, document: str, doc: Doc[Any]) -> None:
        self.document = document
        self.doc = doc
        self.layout = Layout(doc)
        self.current = self.layout.current
        self.index = self._read_index()
        self.title = self.layout.title()
        # Events of the transaction in progress, root by root: (path prefix, events).
        self._events: list[tuple[list[str], Sequence[Any]]] = []
        self._origin: object = None
        self._subscriptions: list[tuple[Any, Subscription]] = [
            (shared, shared.observe_deep(self._observer(prefix)))
            for prefix, shared in self.layout.watched_roots()
        ]

    def _read_index(self) -> dict[Section, dict[str, str]]:
        return {section: read_items(self.layout, section) for section in ITEM_SECTIONS}

    def close(self) -> None:
        for shared, subscription in self._subscriptions:
            shared.unobserve(subscription)
        self._subscriptions = []

    def _observer(self, prefix: list[str]) -> Any:
        def collect(events: Sequence[Any]) -> None:
            if events:
                self._origin = events[0].transaction.origin
                self._events.append((prefix, events))

        return collect

    def take_last(self) -> ChangeSet | None:
        """The ChangeSet of the latest transaction, if it had one (once)."""
        events, self._events = self._events, []
        origin, self._origin = self._origin, None
        if not events:
            return None
        # Reading must not stop the replay: a summary that fails is logged and skipped.
        try:
            return self._summarise(events, origin)
        except Exception:
            log.exception("change_summary_failed", document=self.document)
            return None

    def _summarise(
        self, batches: list[tuple[list[str], Sequence[Any]]], origin: object
    ) -> ChangeSet | None:
        # The layout changes once: a schema-1 writer on an empty document, or the migration
        # (which copies items with their ids, so the index stays right).
        self.current = self.layout.current
        editor = editor_of(origin)
        draft = _Draft()
        for prefix, events in batches:
            if bool(prefix) != self.current:
                continue  # the layout nobody reads any more (or not yet)
            for event in events:
                self._collect(prefix + list(event.path), event, draft)
        sections = self._finish(draft)
        if Section.META in draft.fields:
            self.title = self.layout.title()
        if editor is None or not sections:
            # Still keep the index current: a later removal must find its title.
            return None
        return ChangeSet(self.document, editor, self.title, sections)

    def _collect(self, path: list[Any], event: Any, draft: _Draft) -> None:
        if not path:  # a section created or replaced as a whole (schema 1)
            for key in event.keys:
                self._whole_section(key, draft)
            return
        head = path[0]
        if not isinstance(head, str):
            return
        try:
            section = Section(head)
        except ValueError:
            return  # unknown keys are tolerated
        if section in ITEM_SECTIONS:
            if len(path) == 1:
                draft.touched_arrays.add(section)
                return
            # The event's target is the item map itself when a field was set on it; deeper
            # edits (a nested type inside an item) look the item up by position.
            target = event.target if len(path) == 2 else self._item_at(section, path[1])
            ref = item_ref(target)
            if ref is not None:
                draft.edited.setdefault(section, {})[ref.id] = ref.title
        elif section in TEXT_SECTIONS and len(path) == 1:
            inserted, deleted = _text_delta(getattr(event, "delta", []) or [])
            draft.inserted[section] = draft.inserted.get(section, 0) + inserted
            draft.deleted[section] = draft.deleted.get(section, 0) + deleted
        elif section in FIELD_SECTIONS:
            names = [str(path[1])] if len(path) > 1 else [str(k) for k in event.keys]
            draft.fields.setdefault(section, set()).update(names)

    def _whole_section(self, key: str, draft: _Draft) -> None:
        try:
            section = Section(key)
        except ValueError:
            return
        if section in ITEM_SECTIONS:
            draft.touched_arrays.add(section)
        elif section in TEXT_SECTIONS:
            text = self.layout.section(section)
            if isinstance(text, Text) and len(text):
                draft.inserted[section] = draft.inserted.get(section, 0) + len(text)
        elif section in FIELD_SECTIONS:
            value = self.layout.section(section)
            if isinstance(value, Map) and len(value):
                draft.fields.setdefault(section, set()).update(str(k) for k in value.keys())  # noqa: SIM118

    def _item_at(self, section: Section, position: object) -> Any:
        array = self.layout.section(section)
        if not isinstance(array, Array) or not isinstance(position, int):
            return None
        return array[position] if 0 <= position < len(array) else None

    def _finish(self, draft: _Draft) -> tuple[SectionChange, ...]:
        changes: list[SectionChange] = []
        touched = (
            draft.touched_arrays
            | draft.edited.keys()
            | draft.fields.keys()
            | draft.inserted.keys()
            | draft.deleted.keys()
        )
        for section in SECTION_ORDER:
            if section not in touched:
                continue
            if section in ITEM_SECTIONS:
                change = self._item_change(section, draft)
            elif section in TEXT_SECTIONS:
                inserted = draft.inserted.get(section, 0)
                deleted = draft.deleted.get(section, 0)
                change = (
                    SectionChange(section, inserted_chars=inserted, deleted_chars=deleted)
                    if inserted or deleted
                    else None
                )
            else:
                names = draft.fields.get(section)
                change = SectionChange(section, fields=tuple(sorted(names))) if names else None
            if change is not None:
                changes.append(change)
        return tuple(changes)

    def _item_change(self, section: Section, draft: _Draft) -> SectionChange | None:
        edited_titles = draft.edited.get(section, {})
        if section not in draft.touched_arrays:
            # Field edits only (the common, per-keystroke case): no need to read the array.
            if not edited_titles:
                return None
            self.index[section].update(edited_titles)
            edited = tuple(ItemRef(i, t) for i, t in edited_titles.items())
            return SectionChange(section, edited=edited)
        before = self.index[section]
        after = read_items(self.layout, section)
        self.index[section] = after
        added = [ItemRef(i, t) for i, t in after.items() if i not in before]
        removed = [ItemRef(i, t) for i, t in before.items() if i not in after]
        edited_list = [ItemRef(i, after[i]) for i in edited_titles if i in after and i in before]
        if not (added or removed or edited_list):
            return None  # e.g. a reorder: delete + insert of the same id
        return SectionChange(section, tuple(added), tuple(edited_list), tuple(removed))
