"""The server's own writes into an IEP: the schema-1 migration and a new IEP's first content."""

from __future__ import annotations

from typing import Any

from pycrdt import Array, Doc, Map, Text

from collab_server.api import NewIep
from integrations.history import Replay
from integrations.iep_content import content
from integrations.iep_schema import seed, upgrade, upgraded_state
from tests.integrations.conftest import DOCUMENT, HUDA, OMAR, Harness
from tests.integrations.fakes import wait_until
from tests.support.yclient import connect


def schema_1_iep() -> Doc[Any]:
    doc: Doc[Any] = Doc()
    iep: Map[Any] = doc.get("iep", type=Map)
    iep["meta"] = Map({"title": "خطة سارة", "language": "ar", "schemaVersion": 1.0})
    iep["student"] = Map({"name": "سارة أحمد", "dateOfBirth": "2017-04-02", "shoeSize": "31"})
    iep["goals"] = Array(
        [
            Map({"id": "g1", "title": "Reading", "baseline": "20 wpm", "status": "in_progress"}),
            Map({"title": "no id: kept, never read"}),
        ]
    )
    iep["services"] = Array([Map({"id": "s1", "title": "Speech", "minutesPerSession": 30.0})])
    iep["notes"] = Text("سطر أول\nsecond line")
    return doc


def test_migration_keeps_every_field_and_makes_free_text_collaborative() -> None:
    doc = schema_1_iep()
    before = content(doc)
    with doc.transaction():
        assert upgrade(doc)

    after = content(doc)
    assert after["student"] == {**before["student"]}
    assert after["meta"] == {**before["meta"], "schemaVersion": 2}
    assert after["goals"][0] == {
        "id": "g1",
        "title": "Reading",
        "area": "",
        "baseline": "20 wpm",
        "target": "",
        "status": "in_progress",
    }
    assert after["services"][0]["minutesPerSession"] == 30
    assert after["notes"] == "سطر أول\nsecond line"
    # Free text is now Y.Text, each field its own: two people can type into one at once.
    assert isinstance(doc.get("student/name", type=Text), Text)
    goal: Map[Any] = doc.get("goals", type=Array)[0]
    assert isinstance(goal["baseline"], Text)
    assert goal["status"] == "in_progress"


def test_migration_runs_once() -> None:
    doc = schema_1_iep()
    with doc.transaction():
        assert upgrade(doc)
    state = doc.get_update()
    with doc.transaction():
        assert not upgrade(doc)
    assert doc.get_update() == state
    assert str(doc.get("student/name", type=Text)) == "سارة أحمد"


def test_documents_that_are_not_schema_1_ieps_are_left_alone() -> None:
    other: Doc[Any] = Doc()
    other.get("codemirror", type=Text).insert(0, "hello")
    empty: Doc[Any] = Doc()
    for doc in (other, empty):
        state = doc.get_update()
        assert not upgrade(doc)
        assert doc.get_update() == state


def test_a_new_iep_gets_its_student_name_once() -> None:
    doc: Doc[Any] = Doc()
    new = NewIep("عمر خالد", "", "ar")
    assert seed(doc, new)
    seed(doc, new)
    assert content(doc) == {
        "meta": {"schemaVersion": 2, "language": "ar"},
        "student": {"name": "عمر خالد"},
    }


async def test_a_stored_schema_1_iep_is_migrated_once_while_clients_of_both_versions_join(
    backend_harness: Harness,
) -> None:
    h = backend_harness
    async with h.running(), connect(h.ws(HUDA.user_id)) as old_page:
        with old_page.doc.transaction():
            legacy: Map[Any] = old_page.doc.get("iep", type=Map)
            legacy["student"] = Map({"name": "سارة أحمد"})
            legacy["goals"] = Array([Map({"id": "g1", "title": "Reading"})])
        await wait_until(lambda: h.last_seq() == 1)

    async with h.running():  # the next load, by the document's owner: the migration
        old, new = Doc(), Doc()
        async with (
            connect(h.ws(HUDA.user_id), old) as old_page,
            connect(h.ws(OMAR.user_id), new) as new_page,
        ):
            for page, doc in ((new_page, new), (old_page, old)):
                await page.wait_for(lambda doc=doc: "Reading" in str(content(doc).get("goals")))
            assert content(new) == content(old)
            assert content(new)["student"] == {"name": "سارة أحمد"}
            title: Text = new.get("goals", type=Array)[0]["title"]
            title += " fluency"  # a schema-2 edit reaches the old page too
            await old_page.wait_for(lambda: "Reading fluency" in str(content(old).get("goals")))
        assert h.store is not None
        log = await h.store.updates_since(DOCUMENT, 0, 100)
    assert [r.user_id for r in log] == [HUDA.user_id, "server:upgrade", OMAR.user_id]


def test_a_version_from_before_the_migration_is_restored_in_schema_2() -> None:
    taken = schema_1_iep().get_update()
    restorable = upgraded_state(taken)
    doc: Doc[Any] = Doc()
    doc.apply_update(restorable)
    assert str(doc.get("student/name", type=Text)) == "سارة أحمد"
    assert content(doc)["meta"]["schemaVersion"] == 2
    assert upgraded_state(restorable) == restorable  # already current: as it was


def test_history_follows_a_field_first_written_after_it_started_reading() -> None:
    doc: Doc[Any] = Doc()
    doc.get("student/name", type=Text).insert(0, "عمر")
    replay = Replay(None, doc.get_update())  # what history knew: the name only
    replay.apply(doc.get_update())
    before = doc.get_state()
    doc.get("student/grade", type=Text).insert(0, "3")
    changes = replay.apply(doc.get_update(before))
    assert [(c.path, c.before, c.after) for c in changes] == [("student/grade", None, "3")]
    before = doc.get_state()
    doc.get("student/grade", type=Text).insert(1, "b")
    changes = replay.apply(doc.get_update(before))
    assert [(c.path, c.before, c.after) for c in changes] == [("student/grade", "3", "3b")]
