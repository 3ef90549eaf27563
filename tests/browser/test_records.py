"""The IEP as a record in real Chromium: the History panel, the compare view and a parent's
acknowledgement page, in English and Arabic, with screenshots of each step."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ContextFactory, ThreadedServer

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]
DOC = "centre/yusuf/iep-2026"
PARENTS = {"dev:Layla": ("ليلى", "ar"), "dev:John": ("John", "en")}


def test_history_compare_and_parents_acknowledgement_in_both_languages(
    server: ThreadedServer, new_context: ContextFactory, shot: Shot
) -> None:
    page = new_context(name="Huda").new_page()
    page.goto(f"{server.http}/doc/{DOC}")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")
    page.locator("[data-field='student/name'] input").fill("Yusuf Al-Ahmad")
    page.get_by_role("button", name="Add goal").click()
    page.locator("[data-list=goals] [data-field$='/title'] textarea").fill("Reading fluency")

    page.get_by_role("button", name="History").click()
    panel = page.locator(".history-panel")
    expect(panel.locator(".session").first).to_contain_text("Huda")
    expect(panel.locator(".session").first).to_contain_text("Yusuf Al-Ahmad")
    panel.locator("input[name=version-name]").fill("Draft for the meeting")
    panel.get_by_role("button", name="Name this version").click()
    expect(panel.locator(".version")).to_contain_text("Draft for the meeting")
    shot(page, "history-panel-en")

    page.locator("[data-field='student/name'] input").fill("Yusuf Ahmad")
    panel.locator(".version [data-action=compareNow]").first.click()
    row = page.locator(".compare-view tr[data-path='student/name']")
    expect(row.locator("del")).to_have_text("Al-Ahmad")
    expect(row.locator("ins")).to_have_text("Ahmad")
    shot(page, "compare-en")

    page.locator("#language-switch").click()
    expect(page.locator(".history-toggle")).to_have_text("السجل")
    expect(page.locator(".compare-view h2")).to_have_text("مقارنة النسخ")
    shot(page, "history-and-compare-ar")

    # Restore the named version from the panel: it arrives in the form at once.
    panel.locator(".version [data-action=restore]").first.click()
    expect(page.locator("[data-field='student/name'] input")).to_have_value("Yusuf Al-Ahmad")
    page.locator(".undo-restore").click()
    expect(page.locator("[data-field='student/name'] input")).to_have_value("Yusuf Ahmad")

    # The parents (development mode: anyone is an admin of the API).
    with httpx.Client(base_url=server.http) as api:
        for user_id, (name, language) in PARENTS.items():
            api.put(
                f"/api/documents/{DOC}/members/{user_id}", json={"role": "viewer", "digest": True}
            )
            api.put(f"/api/people/{user_id}", json={"name": name, "language": language})
        version = api.get(f"/api/documents/{DOC}/versions").json()["versions"][0]
    panel.locator(f"[data-version-id='{version['id']}'] [data-action=sendToParents]").click()
    expect(panel.locator(".history-status")).to_have_text("أُرسلت إلى الأهل")
    with httpx.Client(base_url=server.http) as api:
        requests = {
            a["recipient_id"]: a["id"]
            for a in api.get(f"/api/documents/{DOC}/acknowledgements").json()["acknowledgements"]
        }

    layla = new_context(name="Layla", language="ar").new_page()
    layla.goto(f"{server.http}/ack/{requests['dev:Layla']}")
    expect(layla.locator(".ack-page h1")).to_have_text("يرجى الاطلاع على هذه الخطة")
    expect(layla.locator(".iep-readonly")).to_contain_text("Reading fluency")
    assert layla.evaluate("document.documentElement.dir") == "rtl"
    shot(layla, "acknowledge-ar")
    layla.get_by_role("button", name="لدي سؤال").click()
    layla.locator(".ack-comment").fill("هل يمكن زيادة جلسات القراءة؟")
    layla.get_by_role("button", name="إرسال").click()
    expect(layla.locator(".ack-done")).to_have_text("شكرًا لك. تم تسجيل إجابتك.")
    shot(layla, "acknowledge-ar-answered")

    john = new_context(name="John", language="en").new_page()
    john.goto(f"{server.http}/ack/{requests['dev:John']}")
    expect(john.locator(".ack-page h1")).to_have_text("Please read this IEP")
    john.get_by_role("button", name="I have read this IEP").click()
    expect(john.locator(".ack-done")).to_have_text("Thank you. Your answer is recorded.")
    shot(john, "acknowledge-en-answered")

    with httpx.Client(base_url=server.http) as api:
        answers = {
            a["recipient_id"]: (a["state"], a["comment"])
            for a in api.get(f"/api/documents/{DOC}/acknowledgements").json()["acknowledgements"]
        }
    assert answers == {
        "dev:Layla": ("question", "هل يمكن زيادة جلسات القراءة؟"),
        "dev:John": ("acknowledged", None),
    }
