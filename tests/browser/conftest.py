"""Debian's headless Chromium (never a downloaded browser) against a server on loopback.

The server runs in a thread with its own event loop, so the synchronous Playwright API can
drive the browser from the test while the server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright
from starlette.applications import Starlette

from collab_server.serving import server_config
from collab_server.settings import Settings, load_settings
from iep_collab.composition import build_app
from integrations.settings import NotificationSettings
from tests.support.servers import ROOT, free_port
from tests.support.tokens import FakeSupabase, fake_supabase

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
WAIT_MS = 10_000


@dataclass
class ThreadedServer:
    app: Starlette
    port: int
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def start_server(
    settings: Settings, port: int | None = None, notifications: NotificationSettings | None = None
) -> ThreadedServer:
    """The real composition root (`build_app`), served on a loopback port (default: free)."""
    app = build_app(settings, notifications)
    port = port or free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.02)
    return ThreadedServer(app, port, server, thread)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (make browser-deps)")
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    launched = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


ContextFactory = Callable[..., BrowserContext]


@pytest.fixture
def new_context(browser: Browser) -> Iterator[ContextFactory]:
    """A fresh browser profile (own storage, own IndexedDB), closed after the test."""
    opened: list[BrowserContext] = []

    def open_context(
        *,
        name: str | None = None,
        language: str = "en",
        storage: Sequence[tuple[str, str]] = (),
        phone: bool = False,
    ) -> BrowserContext:
        if phone:  # a parent's phone: narrow, touch
            context = browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
            )
        else:
            context = browser.new_context(viewport={"width": 1100, "height": 900})
        context.set_default_timeout(WAIT_MS)
        values = [("iep-ui-language", language), *storage]
        if name is not None:
            values.append(("iep-display-name", name))
        # Only a tab's first load: reloads keep what the page itself stored or removed.
        seed = "".join(
            f"localStorage.setItem({json.dumps(k)}, {json.dumps(v)});" for k, v in values
        )
        script = (
            "if (location.protocol === 'http:' && !sessionStorage.getItem('seeded')) "
            f"{{ {seed} sessionStorage.setItem('seeded', '1'); }}"
        )
        context.add_init_script(script)
        # Page errors end up in the test's output, where a failure can be read.
        context.on(
            "page", lambda page: page.on("pageerror", lambda error: print("pageerror:", error))
        )
        context.on("console", lambda message: print("console:", message.type, message.text))
        opened.append(context)
        return context

    yield open_context
    for context in opened:
        context.close()


@pytest.fixture(scope="module")
def supabase() -> Iterator[FakeSupabase]:
    """Sign-in as Supabase issues it (tokens, JWKS), on loopback, for a module's server."""
    with fake_supabase() as running:
        yield running


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Page, str], None]:
    """Save a screenshot as a test artifact: test-artifacts/browser/<test>/<nn>-<step>.png."""
    folder = ARTIFACTS / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    counter = iter(range(1, 100))

    def take(page: Page, step: str) -> None:
        # From the top, so the sticky header is not drawn over the middle of the page.
        page.evaluate("window.scrollTo(0, 0)")
        page.screenshot(path=str(folder / f"{next(counter):02d}-{step}.png"), full_page=True)

    return take


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadedServer]:
    """The server in development mode (names only) on its own SQLite file, per test module."""
    database = tmp_path_factory.mktemp("development") / "collab.db"
    running = start_server(load_settings({}, database_url=f"sqlite:///{database}"))
    yield running
    running.stop()


def open_doc(context: BrowserContext, server: ThreadedServer, doc: str) -> Page:
    """One IEP in a new tab, connected and with its form drawn."""
    page = context.new_page()
    page.goto(f"{server.http}/doc/{doc}")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")
    expect(page.locator("[data-list=goals]")).to_be_attached()
    return page
