"""Cluster mode's bench: our server on 1, 2 and 3 processes over Postgres and Redis.

    .venv/bin/python -m bench.cluster                   # fan-out 1 -> 1,500 and throughput
    .venv/bin/python -m bench.cluster --quick           # smoke run: small workloads
    .venv/bin/python -m bench.cluster --nodes 1,3 --workloads throughput

Each case gets fresh server processes on a fresh Postgres schema (the machine's Postgres,
`COLLAB_BENCH_POSTGRES_URL`, default postgresql://127.0.0.1:5432/postgres: a database is
created and dropped) and a `redis-server` of its own on a free port. The load generator is
`bench/loadgen.mjs` (raw y-websocket clients); with several nodes the readers spread round
robin, the first node owns the document and the writer sits on the last. `kill` measures the
time from SIGKILL of the owner to every client of a document synced again on the others.
Figures: JSON on stdout and `bench/results/cluster-latest.json`; a table on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from bench.run import LOADGEN, RESULTS_DIR, SERVERS, RunningServer, free_port, started

ADMIN_URL = os.environ.get("COLLAB_BENCH_POSTGRES_URL", "postgresql://127.0.0.1:5432/postgres")
FULL = {
    "fanout": {"readers": 1500, "updates": 200, "rate": 20},
    "throughput": {"rooms": 100, "updatesPerWriter": 300, "inFlight": 8},
}
QUICK = {
    "fanout": {"readers": 30, "updates": 20, "rate": 20},
    "throughput": {"rooms": 6, "updatesPerWriter": 20, "inFlight": 8},
}
# y/hub's published run (one laptop, 2026-08): 1 writer -> 1,500 observers.
YHUB = {1: (20.2, 53.2), 2: (16.4, 39.9), 3: (13.7, 41.3)}


@contextlib.contextmanager
def database() -> Iterator[str]:
    name = f"collab_bench_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(ADMIN_URL)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}"))
    finally:
        asyncio.run(admin(f'DROP DATABASE "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    port = free_port()
    binary = shutil.which("redis-server") or "redis-server"
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.kill()
        proc.wait(10)


@contextlib.contextmanager
def cluster(count: int, workdir: Path, db_url: str, redis_url: str) -> Iterator[list[Any]]:
    env = {
        "DATABASE_URL": db_url,
        "COLLAB_DB_SCHEMA": f"b_{uuid.uuid4().hex[:8]}",
        "COLLAB_REDIS_URL": redis_url,
        "COLLAB_LOG_LEVEL": "warning",
        # The load generator's clients are anonymous: no per-user cap applies to them.
    }
    spec = SERVERS["ours-memory"]
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(started(spec, workdir, env)) for _ in range(count)]


def drive(servers: Sequence[RunningServer], workload: str, params: dict[str, Any]) -> Any:
    config = {
        "workload": workload,
        "dialect": "y-websocket",
        "base": servers[0].ws_base(),
        "bases": [s.ws_base() for s in servers],
        "pid": servers[0].proc.pid,
        "pids": [s.proc.pid for s in servers],
        "timeoutSeconds": 180,
        "params": params,
    }
    completed = subprocess.run(
        ["node", str(LOADGEN), json.dumps(config)],
        cwd=LOADGEN.parent,
        capture_output=True,
        timeout=300,
        check=False,
    )
    lines = completed.stdout.decode().strip().splitlines()
    if not lines:
        return {"error": completed.stderr.decode()[-2000:]}
    return json.loads(lines[-1])


def kill_to_synced(workdir: Path, db_url: str, clients: int) -> Any:
    """SIGKILL the owner of a document with `clients` spread over three nodes; the time until
    each of its clients (moved to the survivors, as a load balancer would) is synced again."""
    with redis_server(workdir) as redis_url, cluster(3, workdir, db_url, redis_url) as servers:
        config = {
            "workload": "failover",
            "dialect": "y-websocket",
            "base": servers[0].ws_base(),
            "bases": [s.ws_base() for s in servers],
            "pid": servers[1].proc.pid,
            "pids": [s.proc.pid for s in servers[1:]],
            "timeoutSeconds": 120,
            "params": {"clients": clients, "killPid": servers[0].proc.pid},
        }
        completed = subprocess.run(
            ["node", str(LOADGEN), json.dumps(config)],
            cwd=LOADGEN.parent,
            capture_output=True,
            timeout=200,
            check=False,
        )
        lines = completed.stdout.decode().strip().splitlines()
        return json.loads(lines[-1]) if lines else {"error": completed.stderr.decode()[-2000:]}


def main(argv: Sequence[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(prog="bench.cluster")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--nodes", default="1,2,3")
    parser.add_argument("--workloads", default="fanout,throughput,kill")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "cluster-latest.json")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    node_counts = [int(n) for n in args.nodes.split(",")]
    workloads = args.workloads.split(",")
    report: dict[str, Any] = {"started": time.strftime("%Y-%m-%dT%H:%M:%S"), "results": []}
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-cluster-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    with database() as db_url:
        for workload in (w for w in workloads if w in sizes):
            for count in node_counts:
                with (
                    redis_server(workdir) as redis_url,
                    cluster(count, workdir, db_url, redis_url) as servers,
                ):
                    result = drive(servers, workload, dict(sizes[workload]))
                result["nodes"] = count
                report["results"].append(result)
                print(json.dumps(result), file=sys.stderr)
        if "kill" in workloads:
            result = kill_to_synced(workdir, db_url, 30 if args.quick else 300)
            report["results"].append(result)
            print(json.dumps(result), file=sys.stderr)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    print(json.dumps(report))
    print(table(report), file=sys.stderr)
    return report


def table(report: dict[str, Any]) -> str:
    lines = [
        "| nodes | workload | p50 / p99 ms | lost | CPU s per node | per unit |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        if r.get("workload") == "fanout":
            lost = r.get("deliveries_expected", 0) - r.get("delivered", 0)
            yhub = YHUB.get(r["nodes"])
            lines.append(
                f"| {r['nodes']} | fan-out 1 → {r.get('readers')} | {r.get('p50_ms')} / "
                f"{r.get('p99_ms')} (y/hub {yhub[0]} / {yhub[1]}) | {lost} | "
                f"{r.get('server_cpu_s_per_node')} | "
                f"{r.get('server_cpu_us_per_delivery')} µs/delivery |"
                if yhub
                else f"| {r['nodes']} | fan-out | {r.get('p50_ms')} / {r.get('p99_ms')} | {lost} | "
                f"{r.get('server_cpu_s_per_node')} | |"
            )
        elif r.get("workload") == "throughput":
            lines.append(
                f"| {r['nodes']} | throughput {r.get('rooms')} rooms: {r.get('updates_per_s')} "
                f"updates/s | | {r.get('updates_expected', 0) - r.get('updates_acknowledged', 0)}"
                f" | {r.get('server_cpu_s_per_node')} | "
                f"{r.get('server_cpu_us_per_update')} µs/update |"
            )
        elif r.get("workload") == "failover":
            lines.append(
                f"| 3 → 2 | SIGKILL of the owner, {r.get('clients')} clients: every one synced "
                f"again after p50 {r.get('p50_ms')} / max {r.get('max_ms')} ms | | | | |"
            )
        else:
            lines.append(f"| {r.get('nodes')} | error: {str(r.get('error'))[:80]} | | | | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
