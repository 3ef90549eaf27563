"""The sessions page and the goals' progress charts in Chromium: live across two browsers,
in English and in Arabic (right to left)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from collab_server.settings import load_settings
from tests.browser.conftest import ContextFactory, ThreadedServer, start_server
from tests.integrations.sessions.conftest import OMAR, seed

pytestmark = pytest.mark.browser

THERAPIST = "dev:Huda"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    folder: Path = tmp_path_factory.mktemp("sessions")
    settings = load_settings({}, database_url=f"sqlite:///{folder}/collab.db")
    asyncio.run(seed(settings))  # two IEPs with goals, as the editor would have saved them
    running = start_server(settings)
    yield running
    running.stop()


def next_week() -> dt.date:
    today = dt.date.today()
    return today + dt.timedelta(days=7 - today.weekday())  # next Monday


def schedule(server: ThreadedServer, day: dt.date, hour: int, **fields: object) -> dict:
    starts = dt.datetime.combine(day, dt.time(hour), dt.timezone(dt.timedelta(hours=3)))
    body = {
        "therapists": [THERAPIST],
        "starts_at": starts.isoformat(),
        "duration_minutes": 45,
        "place": {"room": "Room 3"},
        "kind": "speech",
        "goals": ["g-read"],
        **fields,
    }
    response = httpx.post(f"{server.http}/api/students/{OMAR}/sessions", json=body)
    assert response.status_code == 201, response.text
    created: dict = response.json()
    return created


def patch(server: ThreadedServer, session: dict, **body: object) -> None:
    response = httpx.patch(f"{server.http}/api/sessions/{session['id']}", json=body)
    assert response.status_code == 200, response.text


def open_week(new_context: ContextFactory, server: ThreadedServer, language: str) -> Page:
    context = new_context(name="Huda", language=language)
    page = context.new_page()
    page.goto(f"{server.http}/sessions?week={next_week().isoformat()}")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")
    return page


def test_the_week_updates_live_in_every_open_browser(
    server: ThreadedServer, new_context: ContextFactory, shot: Callable[[Page, str], None]
) -> None:
    english = open_week(new_context, server, "en")
    arabic = open_week(new_context, server, "ar")
    expect(arabic.locator("html")).to_have_attribute("dir", "rtl")

    tuesday = next_week() + dt.timedelta(days=1)
    session = schedule(server, tuesday, 10)
    card = f'[data-session="{session["id"]}"]'
    for page in (english, arabic):
        expect(page.locator(card)).to_be_visible(timeout=1000)  # within a second, no reload
        expect(page.locator(card)).to_contain_text("Omar")
    expect(arabic.locator(card)).to_contain_text("مجدولة")
    shot(english, "scheduled-en")
    shot(arabic, "scheduled-ar")

    # Confirmed in one browser, seen in the other.
    english.locator(card).get_by_role("button", name="Confirm").click()
    expect(arabic.locator(card)).to_have_attribute("data-status", "confirmed", timeout=1000)
    expect(arabic.locator(card)).to_contain_text("مؤكدة")

    # Moved to Thursday and then cancelled by someone else: both screens follow.
    thursday = next_week() + dt.timedelta(days=3)
    patch(server, session, starts_at=dt.datetime.combine(thursday, dt.time(11), dt.UTC).isoformat())
    thursday_column = ".week-day >> nth=3"
    for page in (english, arabic):
        expect(page.locator(thursday_column).locator(card)).to_be_visible(timeout=1000)
    patch(server, session, status="cancelled")
    for page in (english, arabic):
        expect(page.locator(card)).to_have_attribute("data-status", "cancelled", timeout=1000)
    shot(english, "moved-cancelled-en")
    shot(arabic, "moved-cancelled-ar")


def test_the_goal_chart_follows_completed_sessions(
    server: ThreadedServer, new_context: ContextFactory, shot: Callable[[Page, str], None]
) -> None:
    day = next_week() + dt.timedelta(days=14)
    first = schedule(server, day, 9)
    patch(
        server,
        first,
        status="completed",
        measurements=[{"goal": "g-read", "value": 38, "unit": "wcpm"}],
    )

    pages = []
    for language in ("en", "ar"):
        page = new_context(name="Layla", language=language).new_page()
        page.goto(f"{server.http}/doc/{OMAR}")
        chart = page.locator('[data-goal="g-read"]')
        expect(chart.locator(".chart-point")).to_have_count(1)
        expect(chart.locator(".chart-target")).to_have_count(1)
        expect(chart).to_contain_text("Reading fluency")
        pages.append(page)
    expect(pages[1].locator("#goal-progress h2")).to_have_text("التقدّم نحو الأهداف")

    second = schedule(server, day, 11)
    patch(
        server,
        second,
        status="completed",
        measurements=[{"goal": "g-read", "value": 44, "unit": "wcpm"}],
    )
    for page, language in zip(pages, ("en", "ar"), strict=True):
        chart = page.locator('[data-goal="g-read"]')
        expect(chart.locator(".chart-point")).to_have_count(2, timeout=2000)
        expect(chart.locator(".chart-legend")).to_contain_text("44")
        shot(page, f"goal-chart-{language}")
