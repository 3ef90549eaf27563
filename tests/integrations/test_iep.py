"""The IEP schema readers and the change summariser on real pycrdt documents."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text

from collab_server.identity import ConnectionOrigin, ServerOrigin
from integrations.iep import ChangeSet, DocumentWatch, Layout, Section, read_items
from integrations.iep_schema import upgrade
from tests.integrations.conftest import DOCUMENT, HUDA, Harness
from tests.integrations.edits import add_item, create_sections, items, notes
from tests.integrations.fakes import wait_until
from tests.support.yclient import connect

HUDA_ORIGIN = ConnectionOrigin("c1", "t-huda", "Ms. Huda")


class Editor:
    """A writer's doc whose updates reach the observed doc inside attributed transactions."""

    def __init__(self, observed: Doc[Any], origin: object) -> None:
        self.doc: Doc[Any] = Doc()
        self.observed = observed
        self.origin = origin
        self.doc.apply_update(observed.get_update())

    def push(self) -> bytes:
        update = self.doc.get_update(self.observed.get_state())
        with self.observed.transaction(origin=self.origin):
            self.observed.apply_update(update)
        return update

    @property
    def iep(self) -> Map[Any]:
        root: Map[Any] = self.doc.get("iep", type=Map)
        return root


def change_of(watch: DocumentWatch, update: bytes) -> ChangeSet:
    change = watch.take_last()
    assert change is not None, update
    return change


def test_items_added_edited_and_removed_are_named_even_after_deletion() -> None:
    observed: Doc[Any] = Doc()
    watch = DocumentWatch(DOCUMENT, observed)
    writer = Editor(observed, HUDA_ORIGIN)
    with writer.doc.transaction():
        writer.iep["goals"] = Array([Map({"id": "g1", "title": "Reading"})])
        writer.iep["notes"] = Text("hello")
    first = change_of(watch, writer.push())
    assert first.editor.name == "Ms. Huda" and first.editor.user_id == "t-huda"
    goals = next(s for s in first.sections if s.section is Section.GOALS)
    assert [i.title for i in goals.added] == ["Reading"]

    goals_array: Array[Any] = writer.iep["goals"]
    goals_array.append(Map({"id": "g2", "title": "Math"}))
    goals_array[0]["title"] = "Reading fluency"
    text: Text = writer.iep["notes"]
    del text[0:2]
    text.insert(0, "well ")
    second = change_of(watch, writer.push())
    by_section = {s.section: s for s in second.sections}
    assert [i.title for i in by_section[Section.GOALS].added] == ["Math"]
    assert [i.title for i in by_section[Section.GOALS].edited] == ["Reading fluency"]
    assert (by_section[Section.NOTES].inserted_chars, by_section[Section.NOTES].deleted_chars) == (
        5,
        2,
    )

    del goals_array[0]
    third = change_of(watch, writer.push())
    (removed,) = third.sections
    assert [i.title for i in removed.removed] == ["Reading fluency"]  # gone from the doc


def test_a_reorder_is_not_reported_as_added_or_removed() -> None:
    observed: Doc[Any] = Doc()
    watch = DocumentWatch(DOCUMENT, observed)
    writer = Editor(observed, HUDA_ORIGIN)
    writer.iep["goals"] = Array([Map({"id": "g1", "title": "A"}), Map({"id": "g2", "title": "B"})])
    writer.push()
    watch.take_last()
    goals: Array[Any] = writer.iep["goals"]
    with writer.doc.transaction():
        del goals[0]
        goals.append(Map({"id": "g1", "title": "A"}))
    writer.push()
    assert watch.take_last() is None


def test_wrong_types_and_unknown_keys_are_tolerated() -> None:
    observed: Doc[Any] = Doc()
    watch = DocumentWatch(DOCUMENT, observed)
    writer = Editor(observed, HUDA_ORIGIN)
    with writer.doc.transaction():
        writer.iep["goals"] = Text("not an array")
        writer.iep["services"] = Array(
            [
                "a string",
                Map({"title": "no id"}),
                Map({"id": 7.0, "title": "numeric id"}),
                Map({"id": "s1", "title": 3.0}),
            ]
        )
        writer.iep["futureSection"] = Map({"anything": "goes"})
        writer.iep["notes"] = Array()
    writer.push()
    change = watch.take_last()
    assert change is not None
    (services,) = change.sections
    assert services.section is Section.SERVICES
    assert [(i.id, i.title) for i in services.added] == [("s1", "")]
    assert read_items(Layout(observed), Section.GOALS) == {}


def test_server_changes_are_not_attributed_to_anyone() -> None:
    observed: Doc[Any] = Doc()
    watch = DocumentWatch(DOCUMENT, observed)
    writer = Editor(observed, ServerOrigin("admin"))
    writer.iep["goals"] = Array([Map({"id": "g1", "title": "A"})])
    writer.push()
    assert watch.take_last() is None
    # ...but the index still learnt the title, so a later removal is named.
    assert watch.index[Section.GOALS] == {"g1": "A"}


async def test_malformed_iep_content_never_breaks_sync(harness: Harness) -> None:
    async with harness.running(), connect(harness.ws(HUDA.user_id)) as huda:
        create_sections(huda, "Sara")
        with huda.doc.transaction():
            huda.doc.get("iep", type=Map)["goals"] = Text("oops")
        async with connect(harness.ws("t-omar")) as omar:
            huda.doc.get("iep", type=Map)["goals"] = Array()
            add_item(huda, "goals", "g1", "Reading")
            notes(huda).insert(0, "still syncing")
            await omar.wait_for(lambda: len(items(omar, "goals")) == 1)
            await omar.wait_for(lambda: str(notes(omar)) == "still syncing")
        await wait_until(lambda: harness.last_seq() >= 5)


# -- schema 2: root-level types, fields as Y.Text -----------------------------------------


def test_schema_2_edits_are_summarised_field_by_field() -> None:
    observed: Doc[Any] = Doc()
    watch = DocumentWatch(DOCUMENT, observed)
    writer = Editor(observed, HUDA_ORIGIN)
    goals: Array[Any] = writer.doc.get("goals", type=Array)
    with writer.doc.transaction():
        goals.append(Map({"id": "g1", "title": Text("القراءة"), "status": "not_started"}))
    added = change_of(watch, writer.push())
    assert [(i.id, i.title) for i in added.sections[0].added] == [("g1", "القراءة")]

    title: Text = goals[0]["title"]
    title += " بطلاقة"
    edited = change_of(watch, writer.push())
    assert [(s.section, [i.title for i in s.edited]) for s in edited.sections] == [
        (Section.GOALS, ["القراءة بطلاقة"])
    ]

    name: Text = writer.doc.get("student/name", type=Text)
    name += "عمر"
    heading: Text = writer.doc.get("meta/title", type=Text)
    heading += "خطة ٢٠٢٦"
    notes_text: Text = writer.doc.get("notes", type=Text)
    notes_text += "hello"
    fields = change_of(watch, writer.push())
    assert fields.title == "خطة ٢٠٢٦"
    summary = {s.section: s for s in fields.sections}
    assert summary[Section.STUDENT].fields == ("name",)
    assert summary[Section.NOTES].inserted_chars == 5

    del goals[0]
    removed = change_of(watch, writer.push())
    assert [i.title for i in removed.sections[0].removed] == ["القراءة بطلاقة"]


def test_after_the_migration_only_schema_2_is_read() -> None:
    observed: Doc[Any] = Doc()
    watch = DocumentWatch(DOCUMENT, observed)
    writer = Editor(observed, HUDA_ORIGIN)
    with writer.doc.transaction():
        writer.iep["meta"] = Map({"title": "IEP", "schemaVersion": 1.0})
        writer.iep["goals"] = Array([Map({"id": "g1", "title": "Reading"})])
    assert change_of(watch, writer.push()).sections[0].added[0].title == "Reading"

    with observed.transaction(origin=ServerOrigin("upgrade")):
        assert upgrade(observed)
    assert watch.take_last() is None  # the server's change: news to nobody

    stale = Editor(observed, HUDA_ORIGIN)  # an old page still writing schema 1
    legacy_goals: Array[Any] = stale.iep["goals"]
    legacy_goals[0]["title"] = "nobody reads this"
    stale.push()
    assert watch.take_last() is None

    current = Editor(observed, HUDA_ORIGIN)
    goals: Array[Any] = current.doc.get("goals", type=Array)
    del goals[0]
    removed = change_of(watch, current.push())
    assert [i.title for i in removed.sections[0].removed] == ["Reading"]
