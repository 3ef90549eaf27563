"""Voice calls in Debian's Chromium with its fake microphone: a therapist rings a parent, who
answers in Arabic on her phone; audio flows both ways (each side's getStats() shows inbound
packets rising), mute stops it, hang-up and rejoin work; three people hear each other; a
relay-only call goes through a real coturn with credentials we minted, and expired ones are
refused; a blocked microphone says what to do."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect
from pydantic import SecretStr

from collab_server.settings import load_settings
from integrations.calls.ice import turn_credentials
from integrations.settings import load_notification_settings
from tests.browser.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ContextFactory,
    ThreadedServer,
    start_server,
)
from tests.browser.test_read_only import signed_in
from tests.support.tokens import (
    SERVICE_ROLE_KEY,
    FakeSupabase,
    auth_settings,
    bearer,
)
from tests.support.turn import TurnServer, turn_server

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]
DOC = "centre/noor/iep-2026"
PEOPLE = {
    "therapist-1": ("Layla ليلى", "en", "owner"),
    "therapist-2": ("Sami سامي", "en", "editor"),
    "parent-1": ("Huda هدى", "ar", "viewer"),
}
AUDIO_WAIT_S = 20.0


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium with its fake microphone (a tone); the page still asks for permission."""
    launched = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        headless=True,
        args=[*CHROMIUM_ARGS, "--use-fake-device-for-media-stream"],
    )
    yield launched
    launched.close()


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer]:
    with turn_server(tmp_path_factory.mktemp("turn"), "shared-secret-for-tests") as running:
        yield running


def centre(
    folder: Path, supabase: FakeSupabase, turn: TurnServer, *, relay_only: bool
) -> ThreadedServer:
    base = load_settings({}, database_url=f"sqlite:///{folder / 'collab.db'}")
    settings = auth_settings(
        base,
        supabase,
        supabase_anon_key="anon-key-for-tests",
        supabase_service_key=SecretStr(SERVICE_ROLE_KEY),
    )
    calls = load_notification_settings(
        {
            "COLLAB_TURN_URLS": turn.url,
            "COLLAB_TURN_SECRET": turn.secret,
            "COLLAB_ICE_RELAY_ONLY": "true" if relay_only else "false",
        }
    )
    running = start_server(settings, notifications=calls)
    admin = bearer(supabase.admin_token("admin-1"))
    for user_id, (name, language, role) in PEOPLE.items():
        person = {"name": name, "language": language}
        answer = httpx.put(f"{running.http}/api/people/{user_id}", json=person, headers=admin)
        assert answer.status_code == 200, answer.text
        answer = httpx.put(
            f"{running.http}/api/documents/{DOC}/members/{user_id}",
            json={"role": role},
            headers=admin,
        )
        assert answer.status_code in (200, 201), answer.text
    return running


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, supabase: FakeSupabase, turn: TurnServer
) -> Iterator[ThreadedServer]:
    running = centre(tmp_path_factory.mktemp("calls"), supabase, turn, relay_only=False)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def relay_server(
    tmp_path_factory: pytest.TempPathFactory, supabase: FakeSupabase, turn: TurnServer
) -> Iterator[ThreadedServer]:
    running = centre(tmp_path_factory.mktemp("relay"), supabase, turn, relay_only=True)
    yield running
    running.stop()


def person(
    new_context: ContextFactory,
    supabase: FakeSupabase,
    server: ThreadedServer,
    user_id: str,
    *,
    microphone: bool = True,
) -> Page:
    name, language, role = PEOPLE[user_id]
    context: BrowserContext = signed_in(
        new_context, supabase, user_id, name, phone=role == "viewer"
    )
    if microphone:
        context.grant_permissions(["microphone"], origin=server.http)
    page = context.new_page()
    page.goto(f"{server.http}/doc/{DOC}")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")
    if language == "ar":
        page.locator("#language-switch").click()
    return page


def ring(caller: Page, *names: str, in_thread: bool = False) -> float:
    """Press Call (on the page, or in the student's thread), pick the people, ring them; when
    the ring was pressed."""
    if in_thread:
        caller.locator(".messages-panel .call-button").click()
    else:
        caller.locator(".doc-toolbar .call-button").click()
    dialog = caller.locator(".call-dialog")
    for name in names:
        dialog.locator(".call-person", has_text=name).locator("input").check()
    pressed = time.monotonic()
    dialog.locator(".call-start").click()
    return pressed


def heard(page: Page) -> dict[str, Any]:
    """Audio received in this tab, per person: packets, bytes, and the candidate type used."""
    found: dict[str, Any] = page.evaluate(
        """async () => {
            const call = window.iepCalls?.current
            if (!call) return {}
            const byName = {}
            for (const r of Object.values(await call.received())) byName[r.name] = r
            return byName
        }"""
    )
    return found


def until(check: Callable[[], Any], what: str, timeout: float = AUDIO_WAIT_S) -> Any:
    """Poll a condition the page shows (audio is only visible by asking again)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.2)


def audio_rising(page: Page, name: str) -> dict[str, Any]:
    """Wait until packets from `name` arrive and keep arriving."""
    first = until(lambda: heard(page).get(name, {}).get("packets"), f"audio from {name}")
    return until(
        lambda: (h := heard(page).get(name)) and h["packets"] > first and h,
        f"more audio from {name}",
    )


def audio_stopped(page: Page, name: str) -> None:
    """Wait until no packet from `name` arrived for a whole second."""

    def still() -> bool:
        before = heard(page)[name]["packets"]
        time.sleep(1.0)
        return bool(heard(page)[name]["packets"] == before)

    until(still, f"silence from {name}")


def test_a_therapist_calls_a_parent_who_answers_in_arabic_mutes_leaves_and_rejoins(
    server: ThreadedServer, supabase: FakeSupabase, new_context: ContextFactory, shot: Shot
) -> None:
    layla = person(new_context, supabase, server, "therapist-1")
    huda = person(new_context, supabase, server, "parent-1")

    layla.get_by_role("button", name="Messages").click()
    layla.locator(".messages-panel .call-button").click()
    # Who has the IEP open now is marked: Huda is reading it on her phone.
    here = layla.locator(".call-dialog .call-person", has_text="Huda هدى")
    expect(here.locator(".call-here")).to_have_text("on this IEP now")
    layla.locator(".call-dialog").get_by_role("button", name="Cancel").click()
    pressed = ring(layla, "Huda هدى", in_thread=True)
    expect(layla.locator(".call-bar .call-status")).to_have_text(
        "Waiting for the others to answer…"
    )
    ringing = huda.locator(".call-ring")
    expect(ringing).to_contain_text("Layla ليلى يتصل بخصوص")
    shot(huda, "ringing-ar")
    ringing.get_by_role("button", name="رد").click()
    audio_rising(huda, "Layla ليلى")
    audio_rising(layla, "Huda هدى")
    print(f"call set-up, ring pressed to audio both ways: {time.monotonic() - pressed:.2f} s")
    expect(layla.locator(".call-people li")).to_have_text("Huda هدى")
    expect(huda.locator(".call-bar")).to_have_attribute("dir", "rtl")
    # Chromium's fake microphone beeps: each side sees the other speaking when it does.
    expect(huda.locator(".call-people li.speaking")).to_contain_text("يتحدث")
    expect(layla.locator(".call-people li.speaking")).to_contain_text("speaking")
    shot(layla, "in-call-en")
    shot(huda, "in-call-ar")

    # Mute sends nothing at all; the other side sees it, then hears her again.
    layla.get_by_role("button", name="Mute").click()
    audio_stopped(huda, "Layla ليلى")
    expect(huda.locator(".call-people li")).to_contain_text("مكتوم")
    layla.get_by_role("button", name="Unmute").click()
    audio_rising(huda, "Layla ليلى")

    # Huda leaves; Layla waits; Huda comes back into the same call.
    huda.get_by_role("button", name="إنهاء").click()
    expect(layla.locator(".call-people li")).to_have_count(0)
    expect(layla.locator(".call-status")).to_have_text("Waiting for the others to answer…")
    huda.get_by_role("button", name="عُد إلى المكالمة").click()
    audio_rising(layla, "Huda هدى")
    audio_rising(huda, "Layla ليلى")
    # The signalling socket drops (a blip): the page comes back and the audio with it.
    layla.evaluate("window.iepCalls.current.socket.close()")
    audio_rising(layla, "Huda هدى")
    audio_rising(huda, "Layla ليلى")

    # A network change: Layla's side restarts ICE; new credentials are negotiated through our
    # socket and the call goes on (no new peers, no drop).
    ufrag = """() => {
        const [peer] = window.iepCalls.current.peers.values()
        return /a=ice-ufrag:(\\S+)/.exec(peer.pc.remoteDescription.sdp)[1]
    }"""
    before = huda.evaluate(ufrag)
    layla.evaluate("[...window.iepCalls.current.peers.values()][0].pc.restartIce()")
    until(lambda: huda.evaluate(ufrag) != before, "an ICE restart to reach Huda")
    audio_rising(huda, "Layla ليلى")
    audio_rising(layla, "Huda هدى")

    # A second call while she is in one is offered, never forced: she declines and stays.
    sami = person(new_context, supabase, server, "therapist-2")
    ring(sami, "Huda هدى")
    second = huda.locator(".call-ring")
    expect(second).to_contain_text("الرد ينهي مكالمتك الحالية")
    second.get_by_role("button", name="رفض").click()
    expect(sami.locator(".call-notice")).to_have_text("Huda هدى declined the call.")
    audio_rising(huda, "Layla ليلى")
    sami.get_by_role("button", name="Hang up").click()

    layla.get_by_role("button", name="Hang up").click()
    expect(huda.locator(".call-people li")).to_have_count(0)


def test_three_people_hear_each_other_and_a_closed_tab_leaves_the_call(
    server: ThreadedServer, supabase: FakeSupabase, new_context: ContextFactory
) -> None:
    layla = person(new_context, supabase, server, "therapist-1")
    sami = person(new_context, supabase, server, "therapist-2")
    ring(layla, "Sami سامي", "Huda هدى")
    # Huda opens the page after the ring (from the push, say): it is still ringing there.
    huda = person(new_context, supabase, server, "parent-1")
    sami.locator(".call-ring").get_by_role("button", name="Answer").click()
    huda.locator(".call-ring").get_by_role("button", name="رد").click()
    for page, others in (
        (layla, ("Sami سامي", "Huda هدى")),
        (sami, ("Layla ليلى", "Huda هدى")),
        (huda, ("Layla ليلى", "Sami سامي")),
    ):
        for other in others:
            audio_rising(page, other)
    sami.close()  # the tab is gone: the others see him leave at once
    for page in (layla, huda):
        expect(page.locator(".call-people li")).to_have_count(1, timeout=5_000)
    audio_rising(layla, "Huda هدى")


def test_a_relay_only_call_goes_through_coturn_and_expired_credentials_are_refused(
    relay_server: ThreadedServer,
    supabase: FakeSupabase,
    turn: TurnServer,
    new_context: ContextFactory,
) -> None:
    layla = person(new_context, supabase, relay_server, "therapist-1")
    huda = person(new_context, supabase, relay_server, "parent-1")
    ring(layla, "Huda هدى")
    huda.locator(".call-ring").get_by_role("button", name="رد").click()
    assert audio_rising(huda, "Layla ليلى")["via"] == "relay"
    assert audio_rising(layla, "Huda هدى")["via"] == "relay"

    # The same TURN server, credentials minted the same way: fresh ones give a relay address,
    # ones that expired a minute ago are refused by coturn itself.
    gather = """async (server) => {
        const pc = new RTCPeerConnection({ iceServers: [server], iceTransportPolicy: 'relay' })
        const found = { relay: 0, errors: [] }
        pc.addEventListener('icecandidateerror', (e) => found.errors.push(e.errorCode))
        pc.createDataChannel('probe')
        const done = new Promise((resolve) => pc.addEventListener('icegatheringstatechange',
            () => pc.iceGatheringState === 'complete' && resolve()))
        pc.addEventListener('icecandidate', (e) => {
            if (e.candidate && e.candidate.type === 'relay') found.relay += 1
        })
        await pc.setLocalDescription(await pc.createOffer())
        await done
        pc.close()
        return found
    }"""
    now = int(time.time())
    for expires_at, relays in ((now + 600, True), (now - 60, False)):
        username, credential = turn_credentials(turn.secret, "therapist-1", expires_at)
        server = {"urls": turn.url, "username": username, "credential": credential}
        found = layla.evaluate(gather, server)
        assert (found["relay"] > 0) is relays, found
        if not relays:
            assert 401 in found["errors"], found


def test_a_blocked_microphone_says_what_to_do(
    server: ThreadedServer, supabase: FakeSupabase, new_context: ContextFactory
) -> None:
    huda = person(new_context, supabase, server, "parent-1", microphone=False)
    huda.locator(".doc-toolbar .call-button").click()
    huda.locator(".call-dialog .call-person", has_text="Layla ليلى").locator("input").check()
    huda.locator(".call-dialog .call-start").click()
    expect(huda.locator(".call-notice")).to_contain_text("الميكروفون محجوب لهذا الموقع")
    expect(huda.locator(".call-bar")).to_have_count(0)
