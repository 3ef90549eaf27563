"""Two people on one IEP in real Chromium: goals, notes, presence, language, offline."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from collab_server.settings import load_settings
from tests.browser.conftest import ContextFactory, ThreadedServer, open_doc, start_server

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]
LAYLA = "Layla ليلى"  # a mixed-script name, as the centre's staff write them
OMAR = "Omar"


NOTES_JS = "window.iepEditor.doc.getText('notes').toString()"


def notes(page: Page) -> str:
    """The notes as the page's document holds them (the editor also draws caret labels)."""
    text: str = page.evaluate(NOTES_JS)
    return text


def wait_for_notes_length(page: Page, length: int) -> None:
    page.wait_for_function(f"() => {NOTES_JS}.length === {length}")


def test_two_editors_share_goals_notes_and_presence(
    server: ThreadedServer, new_context: ContextFactory, shot: Shot
) -> None:
    first_context = new_context()
    first = first_context.new_page()
    first.goto(f"{server.http}/doc/centre/amal/iep-2026")
    # Development mode asks only for a display name.
    first.fill("#display-name", LAYLA)
    first.keyboard.press("Enter")
    expect(first.locator("#connection-status")).to_have_attribute("data-state", "connected")
    second = open_doc(new_context(name=OMAR), server, "centre/amal/iep-2026")
    shot(first, "first-joined")

    # Each sees the other in the presence bar.
    expect(first.locator("#presence-bar .person", has_text=OMAR)).to_be_visible()
    expect(second.locator("#presence-bar .person", has_text=LAYLA)).to_be_visible()

    # A goal added in one appears in the other, with its title.
    first.get_by_role("button", name="Add goal").click()
    first.locator("[data-list=goals] li").last.locator("[data-field$='/title'] textarea").fill(
        "Names 20 objects"
    )
    goal = second.locator("[data-list=goals] li")
    expect(goal).to_have_count(1)
    expect(goal.locator("[data-field$='/title'] textarea")).to_have_value("Names 20 objects")
    goal_id = goal.get_attribute("data-item-id")

    # The field someone is in is marked with their name on the other screen.
    first.locator(f"[data-field='goals/{goal_id}/target'] textarea").click()
    indicator = second.locator(f"[data-presence-for='goals/{goal_id}/target'] .person")
    expect(indicator).to_have_text(LAYLA)
    shot(second, "goal-and-field-presence")

    # Reorder: a second goal moved up arrives first on the other screen.
    first.get_by_role("button", name="Add goal").click()
    first.locator("[data-list=goals] li").last.locator("[data-field$='/title'] textarea").fill(
        "Asks for help"
    )
    expect(goal).to_have_count(2)
    first.locator("[data-list=goals] li").last.get_by_role("button", name="Move up").click()
    expect(goal.first.locator("[data-field$='/title'] textarea")).to_have_value("Asks for help")
    # Status is a choice; removing a goal removes it everywhere.
    first.locator(f"[data-field='goals/{goal_id}/status'] select").select_option("in_progress")
    expect(second.locator(f"[data-field='goals/{goal_id}/status'] select")).to_have_value(
        "in_progress"
    )
    first.locator("[data-list=goals] li").first.get_by_role("button", name="Remove").click()
    expect(goal).to_have_count(1)
    expect(goal.locator("[data-field$='/title'] textarea")).to_have_value("Names 20 objects")

    # Both type into the notes at once; the text converges and keeps every keystroke.
    first.locator("[data-section=notes] .cm-content").click()
    second.locator("[data-section=notes] .cm-content").click()
    for _ in range(3):
        first.keyboard.type("aaa ")
        second.keyboard.type("ممم ")
    typed = "aaa " * 3 + "ممم " * 3
    wait_for_notes_length(first, len(typed))
    wait_for_notes_length(second, len(typed))
    assert notes(first) == notes(second)
    assert sorted(notes(first)) == sorted(typed)
    # The other person's caret is drawn in the notes.
    expect(second.locator("[data-section=notes] .cm-ySelectionCaret")).to_have_count(1)
    expect(second.locator("[data-presence-for=notes] .person")).to_have_text(LAYLA)
    shot(second, "notes-converged")

    # Leaving removes the person from the other's presence within a couple of seconds.
    first_context.close()
    expect(second.locator("#presence-bar .person", has_text=LAYLA)).to_have_count(0, timeout=3000)
    shot(second, "first-left")


def test_arabic_switch_renders_right_to_left(
    server: ThreadedServer, new_context: ContextFactory, shot: Shot
) -> None:
    page = open_doc(new_context(name=LAYLA), server, "centre/arabic/iep-2026")
    page.locator("[data-field='student/name'] input").fill("Amal أمل")
    shot(page, "english")
    page.locator("#language-switch").click()
    html = page.locator("html")
    expect(html).to_have_attribute("dir", "rtl")
    expect(html).to_have_attribute("lang", "ar")
    expect(page.locator("[data-section=goals] h2")).to_have_text("الأهداف")
    expect(page.get_by_role("button", name="إضافة هدف")).to_be_visible()
    expect(page.locator("#connection-status")).to_have_text("متصل")
    # Names keep their own direction inside the Arabic layout.
    expect(page.locator("#presence-bar bdi")).to_have_text(LAYLA)
    shot(page, "arabic")
    # The choice sticks across a reload.
    page.reload()
    expect(page.locator("html")).to_have_attribute("dir", "rtl")


def test_offline_edits_merge_on_reconnect(
    server: ThreadedServer, new_context: ContextFactory, shot: Shot
) -> None:
    doc = "centre/offline/iep-2026"
    online = open_doc(new_context(name=OMAR), server, doc)
    away_context = new_context(name=LAYLA)
    away = open_doc(away_context, server, doc)

    away_context.set_offline(True)
    expect(away.locator("#connection-status")).to_have_attribute("data-state", "offline")
    away.locator("[data-field='student/school']  input").fill("Al Noor School")
    online.locator("[data-field='student/grade'] input").fill("3")
    shot(away, "offline-edit")

    away_context.set_offline(False)
    expect(away.locator("#connection-status")).to_have_attribute("data-state", "connected")
    expect(online.locator("[data-field='student/school'] input")).to_have_value("Al Noor School")
    expect(away.locator("[data-field='student/grade'] input")).to_have_value("3")
    shot(online, "merged")


def test_edits_survive_reload_from_the_server(
    server: ThreadedServer, new_context: ContextFactory, tmp_path: Path
) -> None:
    doc = "centre/reload/iep-2026"
    page = open_doc(new_context(name=OMAR), server, doc)
    page.get_by_role("button", name="Add service").click()
    page.locator("[data-list=services] li [data-field$='/title'] textarea").fill("Speech therapy")
    # A fresh profile has no local copy: what it shows came from the server.
    fresh = open_doc(new_context(name=LAYLA), server, doc)
    expect(fresh.locator("[data-list=services] li [data-field$='/title'] textarea")).to_have_value(
        "Speech therapy"
    )

    # Signing out leaves no copy of the IEP in the browser.
    local_copies = "indexedDB.databases().then(all => all.filter(d => d.name.startsWith('iep:')))"
    assert page.evaluate(local_copies)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#display-name")).to_be_visible()
    assert page.evaluate(local_copies) == []


def test_two_arabic_named_children_get_two_ieps_from_the_list_page(
    server: ThreadedServer, new_context: ContextFactory
) -> None:
    """Names were once built from the Latin letters of the student's name: every Arabic name
    became one document, and creating Sara's IEP opened Omar's."""
    page = new_context(name=LAYLA).new_page()
    created = {}
    for student in ("عمر خالد", "سارة أحمد"):
        page.goto(server.http)
        page.get_by_label("Student's name").fill(student)
        page.get_by_role("button", name="Create").click()
        expect(page.locator("[data-field='student/name'] input")).to_have_value(student)
        expect(page.locator("h1.doc-title")).to_have_text(student)
        expect(page).to_have_title(student)
        created[student] = page.evaluate("window.iepEditor.name")
    omar, sara = created.values()
    assert omar != sara and omar.startswith("centre/iep-") and sara.startswith("centre/iep-")
    # Omar's record still holds only Omar.
    page.goto(f"{server.http}/doc/{omar}")
    expect(page.locator("[data-field='student/name'] input")).to_have_value("عمر خالد")
    page.goto(server.http)
    expect(page.locator(".documents .student", has_text="سارة أحمد")).to_be_visible()


def test_reconnects_after_a_server_restart(
    new_context: ContextFactory, tmp_path: Path, shot: Shot
) -> None:
    settings = load_settings({}, database_url=f"sqlite:///{tmp_path}/collab.db")
    first_run = start_server(settings)
    page = open_doc(new_context(name=OMAR), first_run, "centre/restart/iep-2026")
    page.locator("[data-field='student/name'] input").fill("Amal")

    first_run.stop()
    status = page.locator("#connection-status")
    expect(status).to_have_attribute("data-state", "reconnecting")
    expect(status).to_have_text("Reconnecting…")
    page.locator("[data-field='student/grade'] input").fill("2")
    shot(page, "reconnecting")

    second_run = start_server(settings, port=first_run.port)
    try:
        expect(status).to_have_attribute("data-state", "connected")
        # What was typed during the outage reached the restarted server.
        fresh = open_doc(new_context(name=LAYLA), second_run, "centre/restart/iep-2026")
        expect(fresh.locator("[data-field='student/name'] input")).to_have_value("Amal")
        expect(fresh.locator("[data-field='student/grade'] input")).to_have_value("2")
    finally:
        second_run.stop()
