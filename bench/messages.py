"""Messages' costs: a team member's message reaching another's open page, and the WhatsApp
webhook's answer time.

    .venv/bin/python -m bench.messages            # both, ~1 minute
    .venv/bin/python -m bench.messages --quick    # smaller

threads  200 open threads: 200 students, each with one team page subscribed to its topic on
         `WS /events`; a therapist writes 200 messages (`POST /api/students/{id}/thread`), one
         thread after another. Latency: from sending the POST to the other page receiving the
         message; p50 / p99 / max, and server CPU per message.
webhook  500 signed `messages` webhooks from a parent (text, as Meta posts them), 8 in flight:
         the time to the 200 answer (the message is stored first, processed after), p50 /
         p99 / max; then that every message reached the child's thread.

Our server runs as a child process (`python -m iep_collab`, SQLite, development sign-in, the
WhatsApp webhook configured) on 127.0.0.1; the load shares its 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench.sessions import Server, cpu_seconds, percentile
from tests.support.whatsapp import inbound_message, signature

APP_SECRET = "bench-app-secret"
PARENT_PHONE = "+966500000099"
WHATSAPP = {
    "WHATSAPP_API_URL": "http://127.0.0.1:9/v21.0",  # nothing is sent in these workloads
    "WHATSAPP_ACCESS_TOKEN": "bench-token",
    "WHATSAPP_PHONE_NUMBER_ID": "1234567890",
    "WHATSAPP_APP_SECRET": APP_SECRET,
    "WHATSAPP_VERIFY_TOKEN": "bench-verify",
    "WHATSAPP_DIGEST_TEMPLATE": "iep_digest",
    "WHATSAPP_ACKNOWLEDGEMENT_TEMPLATE": "iep_ack",
    "COLLAB_QUIET_HOURS": "off",
}


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
    }


async def threads(folder: Path, count: int) -> dict[str, Any]:
    server = Server(folder, WHATSAPP)
    server.start()
    assert server.proc is not None
    try:
        url = f"ws://127.0.0.1:{server.port}/events"
        students = [f"bench/student-{i}" for i in range(count)]
        pages = [await websockets.connect(f"{url}?name=team{i}") for i in range(count)]
        for page, student in zip(pages, students, strict=True):
            await page.send(json.dumps({"type": "subscribe", "topics": [f"student:{student}"]}))
        for page in pages:
            assert json.loads(await page.recv())["type"] == "subscribed"
        latencies: list[float] = []
        # Each student's own therapist writes (one person may write 30 messages in 10 minutes).
        async with httpx.AsyncClient(base_url=server.http) as http:
            await http.post(
                f"/api/students/{students[0]}/thread?name=Huda", json={"body": "warm-up"}
            )
            await pages[0].recv()
            cpu_before = cpu_seconds(server.proc.pid)
            for index in range(count):
                page, student = pages[index], students[index]
                body = {"body": f"Omar read {index} words today"}
                sent = time.perf_counter()
                answer = await http.post(
                    f"/api/students/{student}/thread?name=therapist{index}", json=body
                )
                answer.raise_for_status()
                while True:
                    event = json.loads(await asyncio.wait_for(page.recv(), 10))
                    if event.get("kind") == "thread.message":
                        break
                latencies.append(time.perf_counter() - sent)
            cpu = cpu_seconds(server.proc.pid) - cpu_before
        for page in pages:
            await page.close()
    finally:
        server.stop()
    return {
        "open_threads": count,
        "messages": len(latencies),
        **summary(latencies),
        "server_cpu_per_message_us": round(cpu / len(latencies) * 1e6, 1),
    }


def webhook_body(message_id: str, text: str) -> bytes:
    content = {"type": "text", "text": {"body": text}}
    return inbound_message(PARENT_PHONE, message_id, content, timestamp=str(int(time.time())))


async def count_messages(http: httpx.AsyncClient, student: str) -> int:
    """Every message in the student's thread, page by page."""
    found = 0
    params = {"name": "admin"}
    while True:
        answer = await http.get(f"/api/students/{student}/thread", params=params)
        page = answer.json()["messages"]
        found += len(page)
        if len(page) < 50:
            return found
        params = {"name": "admin", "before": str(page[-1]["id"])}


async def webhook(folder: Path, count: int, in_flight: int = 8) -> dict[str, Any]:
    server = Server(folder, WHATSAPP)
    server.start()
    student = "bench/student-w"
    try:
        parent = {"name": "ليلى", "language": "ar", "phone": PARENT_PHONE}
        server.call("PUT", "/api/people/p-bench?name=admin", parent)
        server.call(
            "PUT", f"/api/documents/{student}/members/p-bench?name=admin", {"role": "viewer"}
        )
        times: list[float] = []
        gate = asyncio.Semaphore(in_flight)
        async with httpx.AsyncClient(base_url=server.http) as http:

            async def post(index: int) -> None:
                body = webhook_body(f"wamid.bench{index:06d}", f"رسالة رقم {index}")
                signed = signature(body, APP_SECRET)
                headers = {"content-type": "application/json", "x-hub-signature-256": signed}
                async with gate:
                    sent = time.perf_counter()
                    answer = await http.post("/webhooks/whatsapp", content=body, headers=headers)
                    times.append(time.perf_counter() - sent)
                answer.raise_for_status()

            await asyncio.gather(*(post(i) for i in range(count)))
            stored = 0
            deadline = time.monotonic() + 60
            while stored < count and time.monotonic() < deadline:
                stored = await count_messages(http, student)
                if stored < count:
                    await asyncio.sleep(0.2)
    finally:
        server.stop()
    return {"webhooks": count, "in_flight": in_flight, **summary(times), "in_thread": stored}


async def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        return {
            "threads": await threads(Path(one), 50 if quick else 200),
            "webhook": await webhook(Path(two), 100 if quick else 500),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.quick)), indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
