"""Therapy sessions' costs: live fan-out of a schedule change, and pending reminders.

    .venv/bin/python -m bench.sessions            # both, ~2 minutes
    .venv/bin/python -m bench.sessions --quick    # smaller, ~40 s

fanout     200 sockets subscribed to one student's topic on `WS /events`; 50 changes (a
           session moved back and forth through `PATCH /api/sessions/{id}`), one at a time.
           Latency: from sending the PATCH to each socket receiving the event; p50 / p99 / max
           over every delivery, and server CPU per delivered event.
reminders  10,000 reminder jobs due together, 40 s ahead, for 10,000 parents with WhatsApp
           (rows written into the database before the server starts). Server CPU while they
           wait (25 s), then the server is stopped before they are due and started again 5 s
           after: seconds from their due time until the loopback Graph API has received all.

Our server runs as a child process (`python -m iep_collab`, SQLite, development sign-in) on
127.0.0.1; the load (Python `websockets` clients) and the Graph API stand-in share its 2
cores. Server CPU is `utime + stime` from /proc/<pid>/stat around the measured phase.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.sessions.records import JobKind, PlaceKind, TherapySession
from persistence.session_rows import SESSION_COLUMNS, session_row

STUDENT = "bench/student-1"
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Server:
    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.port = free_port()
        self.env = {
            **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")},
            "DATABASE_URL": f"sqlite:///{folder}/collab.db",
            "COLLAB_LOG_LEVEL": "warning",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "iep_collab", "--port", str(self.port)],
            cwd=self.folder,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "server.log").open("ab"),
        )
        deadline = time.monotonic() + 120  # a start after a crash may copy in a journal
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = (self.folder / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"server exited at start:\n{log}")
            try:
                urllib.request.urlopen(f"{self.http}/healthz", timeout=0.5).read()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)

    def call(self, method: str, path: str, body: Any) -> Any:
        request = urllib.request.Request(
            f"{self.http}{path}",
            data=json.dumps(body).encode(),
            method=method,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def fanout(folder: Path, sockets: int, changes: int) -> dict[str, Any]:
    server = Server(folder, {"COLLAB_QUIET_HOURS": "off"})
    server.start()
    assert server.proc is not None
    try:
        url = f"ws://127.0.0.1:{server.port}/events"
        # One development user per socket, as 200 browsers would be.
        clients = [
            await websockets.connect(f"{url}?name=u{i}", max_queue=None) for i in range(sockets)
        ]
        for client in clients:
            await client.send(json.dumps({"type": "subscribe", "topics": [f"student:{STUDENT}"]}))
        for client in clients:
            assert json.loads(await client.recv())["type"] == "subscribed"
        start = time.time() + 3 * 86400
        session = await asyncio.to_thread(
            server.call,
            "POST",
            f"/api/students/{STUDENT}/sessions",
            {
                "therapists": ["t-bench"],
                "starts_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
                "duration_minutes": 45,
                "place": {"room": "Room 1"},
                "kind": "speech",
            },
        )
        for client in clients:
            await client.recv()  # the scheduled event
        latencies: list[float] = []
        cpu_before = cpu_seconds(server.proc.pid)
        for index in range(changes):
            moved = start + (index % 2 + 1) * 3600
            body = {"starts_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moved))}
            sent = time.perf_counter()
            patch = asyncio.create_task(
                asyncio.to_thread(server.call, "PATCH", f"/api/sessions/{session['id']}", body)
            )

            async def arrival(client: websockets.ClientConnection, sent: float = sent) -> float:
                message = json.loads(await asyncio.wait_for(client.recv(), 10))
                assert message["type"] == "event"
                return time.perf_counter() - sent

            latencies += await asyncio.gather(*(arrival(c) for c in clients))
            await patch
        cpu = cpu_seconds(server.proc.pid) - cpu_before
        for client in clients:
            await client.close()
    finally:
        server.stop()
    ms = [v * 1000 for v in latencies]
    return {
        "sockets": sockets,
        "changes": changes,
        "deliveries": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "max_ms": round(max(ms), 2),
        "server_cpu_per_delivery_us": round(cpu / len(ms) * 1e6, 1),
    }


class GraphApi:
    """`POST /{version}/{phone_number_id}/messages`, counting arrivals."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.port = free_port()

    def app(self) -> Starlette:
        async def messages(request: Request) -> Response:
            await request.body()
            self.arrivals.append(time.time())
            return JSONResponse({"messages": [{"id": f"wamid.{len(self.arrivals)}"}]})

        return Starlette(routes=[Route("/v21.0/{number}/messages", messages, methods=["POST"])])


def seed_reminders(database: Path, count: int, due: float) -> None:
    """`count` students, each with one parent (WhatsApp) and one session whose 2-hour
    reminder is due at `due`; written as the API would have written them."""
    now = time.time()
    db = sqlite3.connect(database)
    with db:
        for i in range(count):
            student, parent = f"bench/student-{i}", f"p-{i}"
            db.execute(
                "INSERT INTO members (document, user_id, role, digest, created_at, updated_at) "
                "VALUES (?, ?, 'viewer', 0, ?, ?)",
                (student, parent, now, now),
            )
            db.execute(
                "INSERT INTO people (user_id, name, phone, email, language, timezone, "
                "notify_whatsapp, notify_email, notify_in_app, arabic_digits, updated_at) "
                "VALUES (?, ?, ?, NULL, ?, 'Asia/Riyadh', 1, 0, 0, 0, ?)",
                (parent, f"Parent {i}", f"+9665{i:08d}", "ar" if i % 2 else "en", now),
            )
            session = TherapySession(
                id=f"s{i:08x}",
                student_id=student,
                therapist_ids=(f"t-{i}",),
                starts_at=due + 7200,
                duration_minutes=45,
                place_kind=PlaceKind.ROOM,
                place="Room 1",
                kind="speech",
                created_at=now,
                updated_at=now,
            )
            db.execute(
                f"INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                session_row(session),
            )
            db.execute(
                "INSERT INTO session_jobs (kind, student_id, session_id, recipient_id, slot, "
                "due_at, state, created_at) VALUES (?, ?, ?, '', ?, ?, 'pending', ?)",
                (JobKind.REMINDER.value, student, session.id, f"2h@{int(due + 7200)}", due, now),
            )
    db.close()


async def reminders(folder: Path, count: int, idle_seconds: float) -> dict[str, Any]:
    graph = GraphApi()
    graph_server = uvicorn.Server(
        uvicorn.Config(graph.app(), host="127.0.0.1", port=graph.port, log_config=None)
    )
    graph_task = asyncio.create_task(graph_server.serve())
    while not graph_server.started:  # noqa: ASYNC110 (uvicorn offers no event)
        await asyncio.sleep(0.01)
    env = {
        "WHATSAPP_API_URL": f"http://127.0.0.1:{graph.port}/v21.0",
        "WHATSAPP_ACCESS_TOKEN": "bench",
        "WHATSAPP_PHONE_NUMBER_ID": "1",
        "WHATSAPP_APP_SECRET": "bench",
        "WHATSAPP_VERIFY_TOKEN": "bench",
        "WHATSAPP_DIGEST_TEMPLATE": "digest",
        "WHATSAPP_ACKNOWLEDGEMENT_TEMPLATE": "acknowledgement",
        "WHATSAPP_REMINDER_TEMPLATE": "reminder",
        "WHATSAPP_SESSION_MOVED_TEMPLATE": "moved",
        "WHATSAPP_PROGRESS_TEMPLATE": "progress",
        "COLLAB_SESSION_REMINDERS": "2h",
        "COLLAB_QUIET_HOURS": "off",
        # Meta's higher tiers allow 1,000 messages/s; the default 80/s would need 125 s.
        "COLLAB_WHATSAPP_RATE_PER_SECOND": "1000",
    }
    server = Server(folder, env)
    server.start()  # creates and migrates the database
    server.stop()
    due = time.time() + idle_seconds + 15
    seed_reminders(folder / "collab.db", count, due)
    try:
        server.start()
        assert server.proc is not None
        before = cpu_seconds(server.proc.pid)
        await asyncio.sleep(idle_seconds)
        idle_cpu = cpu_seconds(server.proc.pid) - before
        server.stop()
        await asyncio.sleep(max(0.0, due + 5 - time.time()))  # down when they fall due
        server.start()
        deadline = due + 120
        while len(graph.arrivals) < count and time.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
    finally:
        server.stop()
        graph_server.should_exit = True
        await graph_task
    return {
        "pending_reminders": count,
        "idle_seconds": idle_seconds,
        "idle_server_cpu_ms": round(idle_cpu * 1000, 1),
        "sent": len(graph.arrivals),
        "restart_after_due_seconds": 5,
        "first_sent_after_due_s": round(min(graph.arrivals) - due, 2) if graph.arrivals else None,
        "all_sent_after_due_s": round(max(graph.arrivals) - due, 2) if graph.arrivals else None,
    }


async def run(quick: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as two:
        return {
            "fanout": await fanout(Path(one), 200, 10 if quick else 50),
            "reminders": await reminders(
                Path(two), 2_000 if quick else 10_000, 10 if quick else 25
            ),
        }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench.sessions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer changes and reminders")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.quick))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
