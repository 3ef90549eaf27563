"""A parent (viewer) follows the IEP live but cannot change it, in supabase sign-in mode.

Real signed tokens (the loopback Supabase stand-in's JWKS), real memberships set through the
members API, and a supabase-js session in the browser's storage as after a sign-in.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect
from pydantic import SecretStr

from collab_server.settings import load_settings
from tests.browser.conftest import ContextFactory, ThreadedServer, start_server
from tests.support.tokens import (
    SERVICE_ROLE_KEY,
    FakeSupabase,
    auth_settings,
    bearer,
)

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]
DOC = "centre/noor/iep-2026"
SESSION_KEY = "iep-collab-auth"  # the storageKey the page gives supabase-js


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, supabase: FakeSupabase
) -> Iterator[ThreadedServer]:
    database = tmp_path_factory.mktemp("read-only") / "collab.db"
    base = load_settings({}, database_url=f"sqlite:///{database}")
    settings = auth_settings(
        base,
        supabase,
        supabase_anon_key="anon-key-for-tests",
        supabase_service_key=SecretStr(SERVICE_ROLE_KEY),
    )
    running = start_server(settings)
    admin = bearer(supabase.admin_token("admin-1"))
    for user_id, role in (("therapist-1", "editor"), ("parent-1", "viewer")):
        response = httpx.put(
            f"{running.http}/api/documents/{DOC}/members/{user_id}",
            json={"role": role},
            headers=admin,
        )
        assert response.status_code in (200, 201), response.text
    # The centre's directory names its people (history and digests read names from it).
    response = httpx.put(
        f"{running.http}/api/people/therapist-1",
        json={"name": "Layla ليلى", "language": "ar"},
        headers=admin,
    )
    assert response.status_code == 200, response.text
    yield running
    running.stop()


def signed_in(
    new_context: ContextFactory,
    supabase: FakeSupabase,
    user_id: str,
    full_name: str,
    app_role: str | None = None,
    *,
    phone: bool = False,
) -> BrowserContext:
    """A browser profile holding a supabase-js session, as after signing in."""
    app_metadata = {"role": app_role} if app_role else {}
    token = supabase.token(
        user_id, user_metadata={"full_name": full_name}, app_metadata=app_metadata
    )
    now = int(time.time())
    user: dict[str, Any] = {
        "id": user_id,
        "aud": "authenticated",
        "role": "authenticated",
        "email": f"{user_id}@example.org",
        "user_metadata": {"full_name": full_name},
        "app_metadata": app_metadata,
        "created_at": "2026-01-01T00:00:00Z",
    }
    session = {
        "access_token": token,
        "token_type": "bearer",
        "expires_in": 3600,
        "expires_at": now + 3600,
        "refresh_token": "not-used-in-this-test",
        "user": user,
    }
    return new_context(storage=[(SESSION_KEY, json.dumps(session))], phone=phone)


def open_doc(context: BrowserContext, server: ThreadedServer) -> Page:
    page = context.new_page()
    page.goto(f"{server.http}/doc/{DOC}")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")
    expect(page.locator("[data-field='student/name'] input, .parent-view")).to_be_attached()
    return page


def summary_value(page: Page, section: str, term: str) -> Locator:
    """A parent's summary: the value shown beside `term` in a section."""
    entry = page.locator(f".parent-view [data-section={section}] dt", has_text=term)
    # The value itself (a changed one is marked and followed by who changed it).
    return entry.locator("xpath=following-sibling::dd[1]").locator("bdi, mark").first


def test_parent_reads_a_live_summary_but_cannot_write(
    server: ThreadedServer, supabase: FakeSupabase, new_context: ContextFactory, shot: Shot
) -> None:
    therapist = open_doc(signed_in(new_context, supabase, "therapist-1", "Layla ليلى"), server)
    therapist.locator("[data-field='student/name'] input").fill("Amal")
    therapist.get_by_role("button", name="Add goal").click()
    therapist.locator("[data-list=goals] li [data-field$='/title'] textarea").fill("Reads aloud")
    parent = open_doc(signed_in(new_context, supabase, "parent-1", "Huda هدى", phone=True), server)

    # A summary to read, in the parent's language, with nothing to type into or click.
    expect(parent.locator(".read-only-banner")).to_be_visible()
    expect(summary_value(parent, "student", "Name")).to_have_text("Amal")
    expect(parent.locator(".parent-view [data-section=goals] h3")).to_contain_text("Reads aloud")
    expect(parent.locator(".parent-view [data-section=goals] h3")).to_contain_text("Not started")
    expect(parent.locator(".iep-form :is(input, textarea, select, button)")).to_have_count(0)
    # Live updates and presence both ways.
    therapist.locator("[data-field='student/grade'] input").fill("4")
    expect(summary_value(parent, "student", "Grade")).to_have_text("4")
    expect(therapist.locator("#presence-bar .person", has_text="Huda هدى")).to_be_visible()
    shot(parent, "parent-summary")

    # A write forced from the page's own script is refused by the server and goes nowhere:
    # the page drops the refused change, reloads and shows what the server holds.
    with parent.expect_navigation():
        parent.evaluate(
            "setTimeout(() => window.iepEditor.doc.getText('student/name')"
            ".insert(0, 'Changed by a viewer'))"
        )
    expect(parent.locator(".refused-banner")).to_be_visible()
    expect(summary_value(parent, "student", "Name")).to_have_text("Amal")
    shot(parent, "viewer-write-refused")
    therapist.locator("[data-field='student/grade'] input").fill("5")
    expect(summary_value(parent, "student", "Grade")).to_have_text("5")
    expect(therapist.locator("[data-field='student/name'] input")).to_have_value("Amal")
    # What the server holds, seen by a fresh profile with no local copy.
    fresh = open_doc(signed_in(new_context, supabase, "therapist-1", "Layla ليلى"), server)
    expect(fresh.locator("[data-field='student/grade'] input")).to_have_value("5")
    expect(fresh.locator("[data-field='student/name'] input")).to_have_value("Amal")

    # The next visit marks what changed since, and who changed it.
    therapist.locator("[data-list=goals] li [data-field$='/target'] textarea").fill("20 words")
    expect(therapist.locator("#save-state")).to_have_text("All changes saved")
    parent.reload()
    changed = parent.locator(".parent-view [data-section=goals] mark.changed")
    expect(changed).to_have_text("20 words")
    expect(parent.locator(".parent-view .changed-by").first).to_contain_text("Layla ليلى")
    expect(parent.locator(".parent-view [data-section=changes]")).to_contain_text("Layla ليلى")
    shot(parent, "parent-changed-since-last-visit")


def test_sign_in_form_when_no_session(server: ThreadedServer, new_context: ContextFactory) -> None:
    page = new_context().new_page()
    page.goto(f"{server.http}/doc/{DOC}")
    expect(page.locator("form.sign-in #email")).to_be_visible()
    expect(page.locator("form.sign-in #password")).to_be_visible()


def test_document_list_shows_each_person_their_role(
    server: ThreadedServer, supabase: FakeSupabase, new_context: ContextFactory, shot: Shot
) -> None:
    therapist = signed_in(
        new_context, supabase, "therapist-1", "Layla ليلى", app_role="staff"
    ).new_page()
    therapist.goto(server.http)
    entry = therapist.locator(f".documents li[data-name='{DOC}']")
    expect(entry.locator(".role")).to_have_text("editor")
    expect(therapist.locator("form", has_text="New IEP")).to_be_visible()

    parent = signed_in(new_context, supabase, "parent-1", "Huda هدى").new_page()
    parent.goto(server.http)
    row = parent.locator(f".documents li[data-name='{DOC}']")
    expect(row.locator(".role")).to_have_text("viewer")
    expect(parent.locator("form", has_text="New IEP")).to_have_count(0)
    shot(parent, "parent-list")
    expect(row.get_by_role("button", name="Archive")).to_have_count(0)  # owners only
    row.locator("a").click()
    expect(parent.locator(".read-only-banner")).to_be_visible()


def test_the_list_names_each_student_finds_them_however_spelt_and_owners_archive(
    server: ThreadedServer, supabase: FakeSupabase, new_context: ContextFactory, shot: Shot
) -> None:
    staff = bearer(supabase.token("therapist-2", app_metadata={"role": "staff"}))
    for student, title in (
        ("أحمد علي", "خطة ٢٠٢٦"),
        ("فاطمة الزهراء", "النطق"),
        ("Sara Ömer", "Speech plan"),
    ):
        created = httpx.post(
            f"{server.http}/api/documents",
            json={"student_name": student, "title": title},
            headers=staff,
        )
        assert created.status_code == 201, created.text
    page = signed_in(new_context, supabase, "therapist-2", "Mona منى", app_role="staff").new_page()
    page.goto(server.http)
    rows = page.locator(".documents li")
    # Newest change first; each row names the student, the title and who changed it.
    expect(rows.locator(".student")).to_have_text(["Sara Ömer", "فاطمة الزهراء", "أحمد علي"])
    expect(rows.first.locator(".title")).to_have_text("Speech plan")
    expect(rows.first.locator(".changed")).to_contain_text("Changed by")
    expect(rows.first.locator(".role")).to_have_text("owner")
    search = page.get_by_role("searchbox")
    # Typed without the hamza, with heh for teh marbuta, without the accent, in another case.
    for typed, found in (
        ("احمد", "أحمد علي"),
        ("فاطمه", "فاطمة الزهراء"),
        ("sara omer", "Sara Ömer"),
        ("SPEECH", "Sara Ömer"),
        ("٢٠٢٦", "أحمد علي"),
    ):
        search.fill(typed)
        expect(rows.locator(".student")).to_have_text([found])
    search.fill("nobody")
    expect(page.get_by_text("No IEP matches this search.")).to_be_visible()
    search.fill("")
    page.get_by_label("Sort").select_option(label="Student name")
    expect(rows.locator(".student")).to_have_text(["Sara Ömer", "أحمد علي", "فاطمة الزهراء"])

    sara = page.locator(".documents li", has_text="Sara Ömer")
    sara.get_by_role("button", name="Archive").click()
    expect(page.get_by_role("status")).to_contain_text("Archived: Sara Ömer")
    expect(rows).to_have_count(2)
    page.reload()
    expect(rows).to_have_count(2)
    page.get_by_role("button", name="Archived IEPs").click()
    expect(rows.locator(".student")).to_have_text(["Sara Ömer"])
    shot(page, "archived-list")
    rows.first.get_by_role("button", name="Restore").click()
    expect(rows).to_have_count(0)
    page.get_by_role("button", name="Back to current IEPs").click()
    expect(rows).to_have_count(3)
    page.get_by_role("button", name="العربية").click()
    expect(page.get_by_role("searchbox")).to_have_attribute(
        "placeholder", "ابحث باسم الطالب أو العنوان"
    )
    shot(page, "list-in-arabic")


def test_the_team_and_the_family_write_to_each_other_live_in_both_languages(
    server: ThreadedServer, supabase: FakeSupabase, new_context: ContextFactory, shot: Shot
) -> None:
    admin = bearer(supabase.admin_token("admin-1"))
    for user_id, record in (
        ("therapist-3", {"name": "Sami سامي", "language": "en"}),
        ("parent-1", {"name": "Huda هدى", "language": "ar"}),
    ):
        answer = httpx.put(f"{server.http}/api/people/{user_id}", json=record, headers=admin)
        assert answer.status_code == 200, answer.text
    joined = httpx.put(
        f"{server.http}/api/documents/{DOC}/members/therapist-3",
        json={"role": "editor"},
        headers=admin,
    )
    assert joined.status_code in (200, 201), joined.text
    layla = open_doc(signed_in(new_context, supabase, "therapist-1", "Layla ليلى"), server)
    sami = open_doc(signed_in(new_context, supabase, "therapist-3", "Sami سامي"), server)
    parent = open_doc(signed_in(new_context, supabase, "parent-1", "Huda هدى", phone=True), server)

    layla.get_by_role("button", name="Messages").click()
    sami.get_by_role("button", name="Messages").click()
    sami.get_by_label("Write a message").press_sequentially("On my way", delay=20)
    expect(layla.locator(".messages-panel .typing")).to_have_text("Sami سامي writing…")
    sami.get_by_label("Write a message").fill("")
    sami.get_by_role("button", name="Messages").click()  # closed again: read nothing yet
    layla.get_by_label("Write a message").fill("Omar read 40 words today")
    layla.get_by_role("button", name="Send").click()
    expect(layla.locator(".thread li.mine .body").last).to_have_text("Omar read 40 words today")
    # The other therapist: an unread count at once, the message when opened.
    expect(sami.locator(".messages-button .unread-badge")).to_have_text("1")
    sami.get_by_role("button", name="Messages").click()
    expect(sami.locator(".thread li .body").last).to_have_text("Omar read 40 words today")
    expect(sami.locator(".messages-button .unread-badge")).to_be_hidden()
    expect(layla.locator(".thread li.mine .delivery").last).to_contain_text("Read by Sami")

    # The parent, on a phone, in Arabic, answers from the page.
    parent.locator("#language-switch").click()
    parent.get_by_role("button", name="الرسائل").click()
    expect(parent.locator(".thread li .body").last).to_have_text("Omar read 40 words today")
    parent.get_by_label("اكتب رسالة").fill("شكراً، سنتدرب في البيت")
    parent.get_by_role("button", name="إرسال").click()
    # A photo from the family, shown to the team.
    photo = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
        b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01"
        b"\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
    )
    parent.locator(".composer input[type=file]").set_input_files(
        {"name": "homework.png", "mimeType": "image/png", "buffer": photo}
    )
    parent.get_by_role("button", name="إرسال").click()
    expect(parent.locator(".composer-problem")).to_have_text("")
    expect(parent.locator(".thread li .attachment img")).to_have_count(1)
    expect(layla.locator(".thread li.family .attachment img")).to_have_count(1)
    for page in (layla, sami):
        reply = page.locator(".thread li.family .body").locator("xpath=..").first
        expect(reply.locator(".body")).to_have_text("شكراً، سنتدرب في البيت")
        expect(reply.locator(".author")).to_have_text("Huda هدى")
    shot(layla, "thread-team-en")
    shot(parent, "thread-parent-ar")

    # The bell: Layla was told of the parent's message, in every tab; read in one, read in all.
    other_tab = open_doc(layla.context, server)
    for tab in (layla, other_tab):
        expect(tab.locator(".bell .unread-badge")).to_have_text("2")  # her reply and the photo
    layla.locator(".bell-button").click()
    expect(layla.locator(".bell-list li").first).to_contain_text("Huda هدى")
    expect(layla.locator(".bell-list")).to_contain_text("شكراً، سنتدرب في البيت")
    shot(layla, "bell-open")
    expect(other_tab.locator(".bell .unread-badge")).to_be_hidden()


def test_a_parent_on_a_phone_sets_how_they_are_reached_in_arabic(
    server: ThreadedServer, supabase: FakeSupabase, new_context: ContextFactory, shot: Shot
) -> None:
    page = signed_in(new_context, supabase, "parent-2", "Mona منى", phone=True).new_page()
    page.goto(server.http)
    page.get_by_role("link", name="Settings").click()
    # The switch is in the page's HTML before its script listens: wait for the page drawn.
    expect(page.get_by_role("heading", name="How we reach you")).to_be_visible()
    page.get_by_role("button", name="العربية").click()
    expect(page.get_by_role("heading", name="كيف نتواصل معك")).to_be_visible()
    page.get_by_label("رقم الجوال").fill("0501234567")  # without the country code
    page.get_by_label("واتساب").check()
    page.get_by_role("button", name="حفظ").click()
    expect(page.get_by_role("status")).to_have_text("يرجى تصحيح الحقول المشار إليها أدناه.")
    expect(page.get_by_label("رقم الجوال")).to_have_attribute("aria-invalid", "true")
    shot(page, "settings-problem-ar")

    page.get_by_label("رقم الجوال").fill("+966 50 123 4567")
    page.get_by_label("ساعات الهدوء").fill("22:00-06:00")
    sms_row = page.locator("[data-row-channel=sms]")
    sms_row.get_by_role("button", name="جرّبها قبل غيرها").click()  # SMS before WhatsApp
    page.get_by_role("button", name="حفظ").click()
    expect(page.get_by_role("status")).to_have_text("تم الحفظ.")
    expect(page.locator(".phone-display")).to_have_text("050 123 4567")
    # A test in the app: the bell rings.
    page.locator("[data-channel=in_app]").click()
    expect(page.get_by_role("status")).to_have_text("الرسالة التجريبية في الطريق.")
    expect(page.locator(".bell .unread-badge")).to_be_visible()
    shot(page, "settings-saved-ar")
    page.reload()
    expect(page.get_by_label("رقم الجوال")).to_have_value("+966501234567")
    expect(page.get_by_label("واتساب")).to_be_checked()
    expect(page.get_by_label("ساعات الهدوء")).to_have_value("22:00-06:00")
    expect(page.locator("[data-row-channel]").first).to_have_attribute("data-row-channel", "sms")


def test_someone_who_is_not_a_member_is_told_so_and_offered_the_way_back(
    server: ThreadedServer, supabase: FakeSupabase, new_context: ContextFactory, shot: Shot
) -> None:
    page = signed_in(new_context, supabase, "stranger-1", "Sami سامي").new_page()
    page.goto(f"{server.http}/doc/{DOC}")
    expect(page.get_by_role("alert")).to_contain_text("You don't have access to this IEP")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "refused")
    shot(page, "not-a-member")
    page.get_by_role("link", name="Back to your IEPs").click()
    expect(page.get_by_role("heading", name="Your IEPs")).to_be_visible()


def test_an_owner_shares_the_iep_by_e_mail_and_the_invited_parent_reads_it(
    server: ThreadedServer, supabase: FakeSupabase, new_context: ContextFactory, shot: Shot
) -> None:
    staff = bearer(supabase.token("therapist-2", app_metadata={"role": "staff"}))
    created = httpx.post(
        f"{server.http}/api/documents", json={"student_name": "سارة"}, headers=staff
    ).json()
    owner = signed_in(new_context, supabase, "therapist-2", "Nour نور", app_role="staff")
    page = owner.new_page()
    page.goto(f"{server.http}/doc/{created['name']}")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")

    page.get_by_role("button", name="Share").click()
    panel = page.locator(".share-panel")
    expect(panel.locator(".members li")).to_have_count(1)
    page.locator("#share-who").fill("mona@example.org")
    panel.get_by_role("button", name="Add").click()
    expect(panel.locator(".members li")).to_have_count(2)
    expect(panel.locator(".members li", has_text="mona")).to_be_visible()
    expect(panel.locator(".share-message")).to_contain_text("Invited: mona@example.org")
    assert supabase.invitations == ["mona@example.org"]
    shot(page, "share-dialog")

    # The last owner stays: removing them is refused and said.
    mine = panel.locator(".members li[data-user-id='therapist-2']")
    mine.get_by_role("button", name="Remove").click()
    expect(panel.locator(".share-message")).to_contain_text("An IEP needs an owner")
    expect(panel.locator(".members li")).to_have_count(2)

    # The invited parent signs in and reads the IEP as a summary.
    mona = next(u for u in supabase.users if u["email"] == "mona@example.org")
    parent = signed_in(new_context, supabase, mona["id"], "Mona منى").new_page()
    parent.goto(f"{server.http}/doc/{created['name']}")
    expect(summary_value(parent, "student", "Name")).to_have_text("سارة")
