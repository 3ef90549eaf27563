"""Call set-up time: from "Answer" pressed to audio flowing both ways, in Debian's Chromium
with its fake microphone, against `python -m iep_collab` on SQLite (development sign-in).

    .venv/bin/python -m bench.calls            # 10 calls direct, 10 through coturn if installed
    .venv/bin/python -m bench.calls --quick    # 3 of each

Each round opens two fresh browser profiles on one IEP, starts a call from one page (the API,
then the page joins it), answers the ring in the other, and stops the clock when both pages'
`getStats()` show inbound audio packets from the other. With `--turn` (on when coturn is
installed) a second server hands out TURN credentials minted from coturn's secret and makes
every call relay-only: the figure for a centre behind strict NATs. JSON on stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect, sync_playwright

from bench.sessions import Server, percentile
from tests.support.turn import turn_server

CHROMIUM = "/usr/bin/chromium"
DOC = "centre/bench/iep-2026"
AUDIO_WAIT_S = 20.0


def inbound_packets(page: Page) -> int:
    found: int = page.evaluate(
        """async () => {
            const call = window.iepCalls?.current
            if (!call) return 0
            return Object.values(await call.received()).reduce((n, r) => n + (r.packets || 0), 0)
        }"""
    )
    return found


def open_as(browser: Browser, server: Server, name: str) -> Page:
    context = browser.new_context()
    context.grant_permissions(["microphone"], origin=server.http)
    context.add_init_script(f"localStorage.setItem('iep-display-name', {json.dumps(name)})")
    page = context.new_page()
    page.goto(f"{server.http}/doc/{DOC}")
    expect(page.locator("#connection-status")).to_have_attribute("data-state", "connected")
    return page


def one_call(browser: Browser, server: Server, round_: int) -> float:
    caller = open_as(browser, server, f"Huda{round_}")
    callee = open_as(browser, server, f"Layla{round_}")
    try:
        caller.evaluate(
            """async ({ doc, me, who }) => {
                const started = await fetch(`/api/students/${doc}/calls?name=${me}`, {
                    method: 'POST', headers: { 'content-type': 'application/json' },
                    body: JSON.stringify({ invite: [who] }) })
                await window.iepCalls.join(doc, (await started.json()).call)
            }""",
            {"doc": DOC, "me": f"Huda{round_}", "who": f"dev:Layla{round_}"},
        )
        answer = callee.locator(".call-ring .call-accept")
        answer.wait_for()
        pressed = time.monotonic()
        answer.click()
        deadline = pressed + AUDIO_WAIT_S
        while inbound_packets(caller) == 0 or inbound_packets(callee) == 0:
            if time.monotonic() > deadline:
                raise RuntimeError("no audio both ways")
            time.sleep(0.02)
        return (time.monotonic() - pressed) * 1000
    finally:
        caller.context.close()
        callee.context.close()


def rounds(browser: Browser, folder: Path, env: dict[str, str], count: int) -> dict[str, Any]:
    server = Server(folder, env)
    server.start()
    try:
        times = [one_call(browser, server, n) for n in range(count)]
    finally:
        server.stop()
    return {
        "calls": count,
        "p50_ms": round(statistics.median(times), 1),
        "p90_ms": round(percentile(times, 0.9), 1),
        "max_ms": round(max(times), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--turn", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args()
    count = 3 if args.quick else args.calls
    use_turn = args.turn if args.turn is not None else shutil.which("turnserver") is not None
    report: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory() as tmp,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--use-fake-device-for-media-stream"],
        )
        folder = Path(tmp)
        (folder / "direct").mkdir()
        report["direct"] = rounds(browser, folder / "direct", {}, count)
        if use_turn:
            (folder / "relay").mkdir()
            with turn_server(folder / "relay", "bench-secret") as turn:
                env = {
                    "COLLAB_TURN_URLS": turn.url,
                    "COLLAB_TURN_SECRET": turn.secret,
                    "COLLAB_ICE_RELAY_ONLY": "true",
                }
                report["relay"] = rounds(browser, folder / "relay", env, count)
        browser.close()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
