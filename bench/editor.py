"""Edit to the other screen: how long a keystroke in one therapist's browser takes to show in
the other's, through our server, in real Chromium (Debian's, never a downloaded one).

    .venv/bin/python -m bench.editor               # 200 edits, prints JSON
    .venv/bin/python -m bench.editor --edits 50

Two browser profiles open one IEP on a fresh server (SQLite, development sign-in). Each edit
is one key typed into a goal's baseline in the first; the time runs from its beforeinput in
the first page to the moment the second page's field shows it (both read the same clock:
`performance.timeOrigin + performance.now()`), so it includes the editor's binding on both
sides, the socket, the server, and the store before the server relays.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

from bench.sessions import Server, percentile

CHROMIUM = "/usr/bin/chromium"
DOC = "centre/bench/editor"
FIELD = "[data-list=goals] li [data-field$='/baseline'] textarea"
TYPED = "يقرأ عشرين كلمة في الدقيقة reads twenty words a minute "

STAMP_KEYS = """() => {
  window.benchKeys = []
  document.addEventListener('beforeinput', () => {
    window.benchKeys.push(performance.timeOrigin + performance.now())
  }, true)
}"""
STAMP_SHOWN = """(selector) => {
  window.benchShown = []
  const field = document.querySelector(selector)
  const goals = window.iepEditor.doc.getArray('goals')
  const text = goals.get(0).get('baseline')
  // Runs after the form's own observer has written the field.
  text.observe(() => {
    window.benchShown.push([field.value.length, performance.timeOrigin + performance.now()])
  })
}"""


def open_iep(browser: Browser, server: Server, name: str) -> Page:
    context = browser.new_context()
    context.add_init_script(f"localStorage.setItem('iep-display-name', {json.dumps(name)})")
    page: Page = context.new_page()
    page.goto(f"{server.http}/doc/{DOC}")
    page.locator("#connection-status[data-state=connected]").wait_for()
    return page


def measure(edits: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        server = Server(Path(folder), {})
        server.start()
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            first = open_iep(browser, server, "Huda")
            second = open_iep(browser, server, "Omar")
            first.get_by_role("button", name="Add goal").click()
            second.locator(FIELD).wait_for()
            first.evaluate(STAMP_KEYS)
            second.evaluate(STAMP_SHOWN, FIELD)
            first.locator(FIELD).click()
            for index in range(edits):
                first.keyboard.type(TYPED[index % len(TYPED)])
                second.wait_for_function(
                    f"() => document.querySelector({FIELD!r}).value.length >= {index + 1}"
                )
            keys: list[float] = first.evaluate("window.benchKeys")
            shown: list[list[float]] = second.evaluate("window.benchShown")
        finally:
            browser.close()
            server.stop()
    first_shown: dict[int, float] = {}
    for length, at in shown:
        first_shown.setdefault(int(length), at)
    latencies = [first_shown[i + 1] - keys[i] for i in range(edits) if i + 1 in first_shown]
    return {
        "edits": edits,
        "measured": len(latencies),
        "p50_ms": round(percentile(latencies, 0.5), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "mean_ms": round(statistics.fmean(latencies), 1),
        "max_ms": round(max(latencies), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edits", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps({"edit_to_other_screen": measure(args.edits)}, indent=2))


if __name__ == "__main__":
    main()
