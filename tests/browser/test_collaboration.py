"""What two people at once must never lose, in real Chromium: characters typed into one field
together, goals added to a new IEP at the same time offline, the other person's edits when one
of them undoes; and "All changes saved" only once the store has the edit."""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from collab_server.settings import load_settings
from tests.browser.conftest import ContextFactory, ThreadedServer, open_doc, start_server
from tests.conftest import run_aside
from tests.support.postgres import LogOutage

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]
LAYLA = "Layla ليلى"
OMAR = "Omar"
ARABIC = re.compile(r"[\u0600-\u06ff]")


def goal_titles(page: Page) -> list[str]:
    titles: list[str] = page.locator(
        "[data-list=goals] [data-field$='/title'] :is(input, textarea)"
    ).evaluate_all("controls => controls.map((c) => c.value)")
    return titles


def add_goal(page: Page, title: str) -> None:
    page.get_by_role("button", name="Add goal").click()
    page.locator("[data-list=goals] li").last.locator("[data-field$='/title'] textarea").fill(title)


def layla_and_omar_on_a_new_iep(
    server: ThreadedServer, new_context: ContextFactory
) -> tuple[Page, Page]:
    """Both on one new IEP, where Layla has added the goal "Reading"."""
    doc = f"centre/iep-{uuid.uuid4().hex[:6]}"
    layla = open_doc(new_context(name=LAYLA), server, doc)
    omar = open_doc(new_context(name=OMAR), server, doc)
    add_goal(layla, "Reading")
    expect(omar.locator("[data-list=goals] li")).to_have_count(1)
    return layla, omar


def test_two_people_typing_into_one_field_keep_every_character(
    server: ThreadedServer, new_context: ContextFactory, shot: Shot
) -> None:
    layla, omar = layla_and_omar_on_a_new_iep(server, new_context)
    baseline = "[data-list=goals] li [data-field$='/baseline'] textarea"
    expect(omar.locator(baseline)).to_have_count(1)
    layla.locator(baseline).click()
    omar.locator(baseline).click()

    # About ten seconds of both typing at human speed, each in their own script.
    arabic_words = "يقرأ،عشرين،كلمة،في،الدقيقة،"
    latin_words = "needs-cues-with-long-words-"
    layla_typed = omar_typed = ""
    for turn in range(24):
        chunk = arabic_words[turn % 6 * 4 : turn % 6 * 4 + 4] or "،"
        layla.keyboard.type(chunk, delay=70)
        layla_typed += chunk
        chunk = latin_words[turn % 9 * 3 : turn % 9 * 3 + 3] or "-"
        omar.keyboard.type(chunk, delay=70)
        omar_typed += chunk

    total = len(layla_typed) + len(omar_typed)
    for page in (layla, omar):
        page.wait_for_function(
            f"() => document.querySelector({baseline!r}).value.length === {total}"
        )
    final = layla.locator(baseline).input_value()
    assert omar.locator(baseline).input_value() == final
    # Every character of both, each person's in the order they typed them.
    assert "".join(c for c in final if ARABIC.match(c)) == layla_typed
    assert "".join(c for c in final if not ARABIC.match(c)) == omar_typed
    shot(layla, "typed-together")


def test_goals_added_to_a_new_iep_at_once_offline_are_all_kept(
    server: ThreadedServer, new_context: ContextFactory
) -> None:
    doc = f"centre/new-{uuid.uuid4().hex[:6]}"
    contexts = [new_context(name=LAYLA), new_context(name=OMAR)]
    pages = [open_doc(context, server, doc) for context in contexts]
    for context in contexts:
        context.set_offline(True)
    add_goal(pages[0], "Reading — Layla")
    add_goal(pages[0], "Writing — Layla")
    add_goal(pages[1], "Speaking — Omar")
    for context in contexts:
        context.set_offline(False)
    for page in pages:
        expect(page.locator("[data-list=goals] li")).to_have_count(3)
        assert sorted(goal_titles(page)) == [
            "Reading — Layla",
            "Speaking — Omar",
            "Writing — Layla",
        ]


def test_undo_is_my_last_change_and_brings_a_removed_goal_back_for_everyone(
    server: ThreadedServer, new_context: ContextFactory, shot: Shot
) -> None:
    layla, omar = layla_and_omar_on_a_new_iep(server, new_context)

    # Omar types into the school field; Layla's Ctrl+Z undoes her own typing only.
    layla.locator("[data-field='student/grade'] input").type("3", delay=30)
    omar.locator("[data-field='student/school'] input").type("Al Noor", delay=30)
    expect(layla.locator("[data-field='student/school'] input")).to_have_value("Al Noor")
    layla.locator("[data-field='student/grade'] input").press("Control+z")
    expect(layla.locator("[data-field='student/grade'] input")).to_have_value("")
    expect(omar.locator("[data-field='student/grade'] input")).to_have_value("")
    expect(omar.locator("[data-field='student/school'] input")).to_have_value("Al Noor")

    # Removing a goal says so, with Undo; Undo brings it back on both screens.
    layla.locator("[data-list=goals] li").first.get_by_role("button", name="Remove").click()
    expect(omar.locator("[data-list=goals] li")).to_have_count(0)
    toast = layla.locator(".toast")
    expect(toast).to_contain_text("Removed “Reading”")
    shot(layla, "removed-undo")
    toast.get_by_role("button", name="Undo").click()
    expect(omar.locator("[data-list=goals] li")).to_have_count(1)
    assert goal_titles(omar) == ["Reading"]
    expect(omar.locator("[data-field='student/school'] input")).to_have_value("Al Noor")


def test_a_refused_name_says_not_found(server: ThreadedServer, new_context: ContextFactory) -> None:
    page = new_context(name=OMAR).new_page()
    page.goto(f"{server.http}/doc/centre//bad")
    expect(page.get_by_role("alert")).to_contain_text("Not found")
    expect(page.get_by_role("link", name="Back to your IEPs")).to_be_visible()
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "refused")


def test_print_gives_the_document_without_the_controls(
    server: ThreadedServer, new_context: ContextFactory, tmp_path: Path
) -> None:
    doc = f"centre/print-{uuid.uuid4().hex[:6]}"
    for language in ("en", "ar"):
        page = open_doc(new_context(name=LAYLA, language=language), server, doc)
        if language == "en":
            add_goal(page, "Reading fluency")
            page.locator("[data-field='student/name'] input").fill("عمر خالد")
        expect(page.locator("[data-list=goals] li")).to_have_count(1)
        expect(page.locator("#save-state")).to_have_attribute("data-state", "saved")
        pdf = tmp_path / f"{language}.pdf"
        page.pdf(path=str(pdf))
        printed = subprocess.run(
            ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, text=True
        ).stdout
        assert "Reading fluency" in printed and "عمر خالد" in printed
        for control in ("Add goal", "History", "Undo", "Connected", "All changes saved"):
            assert control not in printed, (language, control)


def test_saved_only_once_the_store_has_the_edit(
    postgres_url: str, new_context: ContextFactory, shot: Shot
) -> None:
    outage = LogOutage(postgres_url)
    running = start_server(outage.settings())

    try:
        page = open_doc(new_context(name=LAYLA), running, "centre/saved")
        state = page.locator("#save-state")
        page.locator("[data-field='student/name'] input").fill("سارة")
        expect(state).to_have_attribute("data-state", "saved")
        expect(state).to_have_text("All changes saved")

        run_aside(outage.begin())
        page.locator("[data-field='student/grade'] input").fill("4")
        # The page has asked, and the server has tried to store the edit and failed.
        page.wait_for_function("window.iepEditor.tracker.asked.size > 0")
        deadline = time.monotonic() + 10
        while httpx.get(f"{running.http}/readyz").status_code != 503:
            assert time.monotonic() < deadline, "the store never failed"
            time.sleep(0.05)
        expect(state).to_have_text("Saving…")
        shot(page, "saving-while-store-down")
        run_aside(outage.end())
        expect(state).to_have_text("All changes saved")
    finally:
        running.stop()


def test_a_reload_while_the_server_is_down_shows_the_iep_from_the_device(
    tmp_path: Path, new_context: ContextFactory, shot: Shot
) -> None:
    settings = load_settings({}, database_url=f"sqlite:///{tmp_path}/collab.db")
    running = start_server(settings)
    port = running.port
    try:
        page = open_doc(new_context(name=LAYLA), running, "centre/offline")
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        add_goal(page, "Reads 20 words")
        expect(page.locator("#save-state")).to_have_attribute("data-state", "saved")
    finally:
        running.stop()

    page.reload()
    expect(page.locator("[data-list=goals] li")).to_have_count(1)
    assert goal_titles(page) == ["Reads 20 words"]
    expect(page.locator("#save-state")).to_have_attribute("data-state", "offline")
    page.locator("[data-field='student/grade'] input").fill("4")
    expect(page.locator("#save-state")).to_have_text("Offline — 1 change kept on this device")
    page.locator("[data-field='student/school'] input").fill("Al Noor")
    expect(page.locator("#save-state")).to_have_text("Offline — 2 changes kept on this device")
    shot(page, "offline-reload")

    back = start_server(settings, port)
    try:
        expect(page.locator("#connection-status")).to_have_attribute(
            "data-state", "connected", timeout=20_000
        )
        expect(page.locator("#save-state")).to_have_text("All changes saved")
    finally:
        back.stop()


def test_the_same_person_in_two_tabs_is_here_once(
    server: ThreadedServer, new_context: ContextFactory
) -> None:
    doc = f"centre/tabs-{uuid.uuid4().hex[:6]}"
    layla = new_context(name=LAYLA)
    first, second = open_doc(layla, server, doc), open_doc(layla, server, doc)
    omar = open_doc(new_context(name=OMAR), server, doc)
    second.locator("[data-field='student/school'] input").click()
    expect(omar.locator("[data-presence-for='student/school'] .person")).to_have_text(LAYLA)
    expect(omar.locator("#presence-bar .person")).to_have_count(2)
    expect(first.locator("#presence-bar .person")).to_have_count(2)
    expect(omar.locator("#presence-bar .person", has_text=LAYLA)).to_have_count(1)


def test_a_date_is_said_in_each_persons_language(
    server: ThreadedServer, new_context: ContextFactory
) -> None:
    doc = f"centre/dates-{uuid.uuid4().hex[:6]}"
    layla = open_doc(new_context(name=LAYLA, language="ar"), server, doc)
    omar = open_doc(new_context(name=OMAR), server, doc)
    layla.locator("[data-field='student/dateOfBirth'] input").fill("2017-04-02")
    expect(layla.locator("[data-field='student/dateOfBirth'] .date-in-words")).to_contain_text(
        "أبريل"
    )
    expect(omar.locator("[data-field='student/dateOfBirth'] .date-in-words")).to_have_text(
        "April 2, 2017"
    )
