"""`make bench`: our server and its peers side by side, in one run, as JSON.

Every workload of every run gets a fresh server process on 127.0.0.1, and the servers take
turns workload by workload, so a noisy neighbour hurts everyone alike. Each is driven by
`bench/loadgen.mjs`, one Node process per workload. Server CPU and memory are read from
/proc/<pid> by the load generator around the measured phase only. The figures are medians over
the runs; every run is kept under "each_run".

    .venv/bin/python -m bench.run                  # full: 5 runs, every server (~10 minutes)
    .venv/bin/python -m bench.run --quick          # smoke run: small workloads, 1 run
    .venv/bin/python -m bench.run --servers ours-memory,hocuspocus --runs 1
    .venv/bin/python -m bench.run --profile-dir /tmp/prof   # py-spy flame graphs of ours
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
LOADGEN = BENCH_DIR / "loadgen.mjs"
RESULTS_DIR = BENCH_DIR / "results"
START_TIMEOUT_SECONDS = 30.0
_INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")
STOP_TIMEOUT_SECONDS = 20.0

Result = dict[str, Any]


@dataclass(frozen=True)
class Profile:
    """Workload sizes: `full` is what the README table reports, `quick` only proves it runs."""

    runs: int
    fanout: Mapping[str, int]
    throughput: Mapping[str, int]
    iep: Mapping[str, int]
    connect: Mapping[str, int]
    memory: Mapping[str, int]
    idle: Mapping[str, int]
    storm: Mapping[str, int]
    load_updates: int
    cold_loads: int


FULL = Profile(
    runs=5,
    fanout={"readers": 50, "updates": 2000, "rate": 200},
    throughput={"rooms": 100, "updatesPerWriter": 600, "inFlight": 8},
    iep={"rooms": 100, "updatesPerWriter": 600, "inFlight": 8},
    connect={"connections": 1000, "documents": 200, "documentBytes": 50_000, "inFlight": 50},
    memory={"documents": 500, "documentBytes": 1000},
    idle={"connections": 10_000, "documents": 1000, "documentBytes": 1000, "inFlight": 50},
    storm={"joiners": 150, "documentBytes": 20_000_000},
    load_updates=10_000,
    cold_loads=3,
)
QUICK = Profile(
    runs=1,
    fanout={"readers": 5, "updates": 60, "rate": 200},
    throughput={"rooms": 5, "updatesPerWriter": 20, "inFlight": 8},
    iep={"rooms": 5, "updatesPerWriter": 20, "inFlight": 8},
    connect={"connections": 40, "documents": 8, "documentBytes": 50_000, "inFlight": 20},
    memory={"documents": 30, "documentBytes": 1000},
    idle={"connections": 200, "documents": 20, "documentBytes": 1000, "inFlight": 50},
    storm={"joiners": 5, "documentBytes": 1_000_000},
    load_updates=300,
    cold_loads=1,
)


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server and address its documents."""

    name: str
    dialect: str  # "y-websocket" or "hocuspocus" (document name inside every frame)
    command: Callable[[int], list[str]]
    ws_prefix: str  # ws://127.0.0.1:<port> + prefix + document name
    health_path: str
    env: Callable[[Path], dict[str, str]] = field(default=lambda _: {})
    is_ours: bool = False


def _ours_command(port: int) -> list[str]:
    return [sys.executable, "-m", "iep_collab", "--port", str(port)]


def _node_command(script: str) -> Callable[[int], list[str]]:
    return lambda port: ["node", str(BENCH_DIR / "peers" / script), str(port)]


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in (
        ServerSpec(
            "ours-sqlite",
            "y-websocket",
            _ours_command,
            "/sync/",
            "/healthz",
            env=lambda tmp: {"DATABASE_URL": f"sqlite:///{tmp}/collab.db"},
            is_ours=True,
        ),
        ServerSpec(
            "ours-memory",
            "y-websocket",
            _ours_command,
            "/sync/",
            "/healthz",
            env=lambda _: {"DATABASE_URL": "memory://"},
            is_ours=True,
        ),
        ServerSpec("hocuspocus", "hocuspocus", _node_command("hocuspocus.mjs"), "/", "/"),
        ServerSpec("y-websocket", "y-websocket", _node_command("y-websocket.mjs"), "/", "/"),
    )
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    spec: ServerSpec
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.spec.ws_prefix}"

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        raise RuntimeError("no VmHWM in /proc status")


def _wait_healthy(server: RunningServer) -> None:
    url = f"http://127.0.0.1:{server.port}{server.spec.health_path}"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            log = server.log_path.read_text(errors="replace")
            raise RuntimeError(f"{server.spec.name} exited at start:\n{log}")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(url, timeout=1) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"{server.spec.name} did not answer {url} in {START_TIMEOUT_SECONDS} s")


@contextlib.contextmanager
def started(
    spec: ServerSpec, workdir: Path, extra_env: Mapping[str, str] | None = None
) -> Iterator[RunningServer]:
    """Start a server in `workdir` (its data lives there) and stop it with SIGTERM on exit."""
    port = free_port()
    log_path = workdir / f"{spec.name}-{port}.log"
    # Only the basics pass through: a developer's DATABASE_URL, SUPABASE_* or COLLAB_* settings
    # must not change what is measured.
    inherited = {key: os.environ[key] for key in _INHERITED_ENV if key in os.environ}
    env = {**inherited, **spec.env(workdir), **(extra_env or {})}
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            spec.command(port), cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = RunningServer(spec, port, proc, log_path)
    try:
        _wait_healthy(server)
        yield server
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT_SECONDS)


def drive(
    server: RunningServer,
    workload: str,
    params: Mapping[str, Any],
    timeout_seconds: float = 120,
    profile_dir: Path | None = None,
) -> Result:
    """Run one workload of the load generator against `server`; returns its JSON figures."""
    config = {
        "workload": workload,
        "dialect": server.spec.dialect,
        "base": server.ws_base(),
        "pid": server.proc.pid,
        "timeoutSeconds": timeout_seconds,
        "params": dict(params),
    }
    with _py_spy(server, workload, profile_dir):
        completed = subprocess.run(
            ["node", str(LOADGEN), json.dumps(config)],
            cwd=BENCH_DIR,
            capture_output=True,
            timeout=timeout_seconds + 60,
            check=False,
        )
    lines = completed.stdout.decode().strip().splitlines()
    if not lines:
        stderr = completed.stderr.decode()[-2000:]
        return {"workload": workload, "error": f"load generator printed nothing: {stderr}"}
    result: Result = json.loads(lines[-1])
    return result


@contextlib.contextmanager
def _py_spy(server: RunningServer, workload: str, profile_dir: Path | None) -> Iterator[None]:
    """Sample our server with py-spy while a workload runs, as collapsed stacks.

    One recorder only: a second one cannot attach (ptrace) and most of its samples fail.
    """
    profiled = ("fanout", "throughput", "iep", "connect")
    if profile_dir is None or not server.spec.is_ours or workload not in profiled:
        yield
        return
    profile_dir.mkdir(parents=True, exist_ok=True)
    py_spy = Path(sys.executable).with_name("py-spy")
    output = profile_dir / f"{server.spec.name}-{workload}.txt"
    command = [str(py_spy), "record", "--native", "--format", "raw", "--rate", "250"]
    command += ["--pid", str(server.proc.pid), "--output", str(output)]
    with output.with_suffix(".log").open("wb") as log:
        recorder = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on interrupt
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait(5)


DEFAULT_WORKLOADS = ("memory", "fanout", "throughput", "iep", "connect")
# Capacity: minutes and gigabytes each at full size, so asked for by name (`--workloads`).
CAPACITY_WORKLOADS = ("idle", "storm")
WORKLOAD_TIMEOUT_SECONDS = {"idle": 240.0, "storm": 300.0}
WORKLOADS = DEFAULT_WORKLOADS + CAPACITY_WORKLOADS


def subscribe_parents(server: RunningServer, stamp: str, rooms: int) -> None:
    """Ours: every IEP of the `iep` workload gets a parent who receives digests, through the
    API as a centre would (development mode: the API treats the caller as an admin)."""
    base = f"http://127.0.0.1:{server.port}"

    def put(path: str, body: Mapping[str, Any]) -> None:
        request = urllib.request.Request(
            base + path,
            data=json.dumps(body).encode(),
            method="PUT",
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    for room in range(rooms):
        parent = f"p-bench-{room}"
        put(f"/api/people/{parent}", {"name": f"ولي أمر {room}", "language": "ar"})
        put(
            f"/api/documents/iep/bench-{stamp}-{room}/members/{parent}",
            {"role": "viewer", "digest": True},
        )


def measure(
    spec: ServerSpec,
    workload: str,
    params: Mapping[str, Any],
    workdir: Path,
    profile_dir: Path | None,
) -> Result:
    """One workload against a fresh process of one server."""
    with started(spec, workdir) as server:
        if workload == "iep":
            stamp = f"{os.getpid()}-{time.time_ns()}"
            params = {**params, "stamp": stamp}
            if spec.is_ours:
                subscribe_parents(server, stamp, int(params["rooms"]))
        timeout = WORKLOAD_TIMEOUT_SECONDS.get(workload, 120.0)
        result = drive(server, workload, params, timeout, profile_dir)
        result["peak_rss_mb"] = server.peak_rss_mb()
    return result


def one_round(
    chosen: Sequence[ServerSpec],
    profile: Profile,
    run_index: int,
    workdir: Path,
    profile_dir: Path | None,
    *,
    workloads: Sequence[str] = DEFAULT_WORKLOADS,
) -> dict[str, Result]:
    """Every workload against every server, a workload at a time, each on a fresh process.

    The servers take turns within seconds of each other, in an order that rotates each run:
    this VM's speed drifts over minutes, and a whole run of one server before the next let
    that drift decide which server looked faster.
    """
    order = [chosen[(run_index + i) % len(chosen)] for i in range(len(chosen))]
    runs: dict[str, Result] = {spec.name: {} for spec in chosen}
    for workload in workloads:
        for spec in order:
            print(f"run {run_index + 1}: {workload}: {spec.name}", file=sys.stderr, flush=True)
            place = workdir / f"{spec.name}-{run_index}-{workload}"
            place.mkdir()
            run = runs[spec.name]
            run.setdefault("loadavg_1m_before", os.getloadavg()[0])
            params = getattr(profile, workload)
            run[workload] = measure(spec, workload, params, place, profile_dir)
    for run in runs.values():
        run["peak_rss_mb"] = max(run[workload].pop("peak_rss_mb", 0.0) for workload in workloads)
    return runs


def load_time(profile: Profile, workdir: Path) -> Result:
    """Ours only: a document whose log holds N updates, loaded cold after a restart."""
    spec = SERVERS["ours-sqlite"]
    # No snapshot may fold the log away: the point is to replay all of it.
    env = {"COLLAB_COMPACT_MAX_UPDATES": "100000000", "COLLAB_COMPACT_MAX_BYTES": "1000000000"}
    # Writing the log as fast as possible is set-up here, not abuse: lift the per-socket rate.
    env |= {"COLLAB_RATE_MESSAGES_PER_SECOND": "1000000", "COLLAB_RATE_MESSAGE_BURST": "1000000"}
    name = "load-time"
    with started(spec, workdir, env) as server:
        written = drive(
            server, "prewrite", {"name": name, "updates": profile.load_updates, "inFlight": 50}
        )
    if "error" in written:
        return {"error": written["error"]}
    loads = []
    for _ in range(profile.cold_loads):
        with started(spec, workdir, env) as server:
            loads.append(drive(server, "coldsync", {"name": name}))
    errors = [load["error"] for load in loads if "error" in load]
    if errors:
        return {"error": errors[0]}
    times = [load["synced_ms"] for load in loads]
    return {
        "updates_in_log": written["updates"],
        "document_bytes": loads[-1]["step2_bytes"],
        "synced_ms": round(statistics.median(times), 2),
        "synced_ms_each": times,
    }


def median_figures(runs: Sequence[Result]) -> Result:
    """Median of every numeric figure across runs; a figure with any error is reported as such."""
    first = runs[0]
    merged: Result = {}
    for key, value in first.items():
        values = [run.get(key) for run in runs]
        if isinstance(value, dict):
            merged[key] = median_figures([v for v in values if isinstance(v, dict)])
        elif isinstance(value, bool):
            merged[key] = all(values)
        elif isinstance(value, int | float):
            numbers = [v for v in values if isinstance(v, int | float)]
            merged[key] = round(statistics.median(numbers), 3) if numbers else None
        else:
            merged[key] = value
    errors = [run["error"] for run in runs if "error" in run]
    if errors:
        merged["error"] = errors[0]
    return merged


def machine() -> Result:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    node = subprocess.run(["node", "--version"], capture_output=True, check=False)
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "node": node.stdout.decode().strip(),
        # Others share this machine: a high load average explains noisy latencies.
        "loadavg_1m_at_start": os.getloadavg()[0],
    }


TABLE_ROWS: list[tuple[str, str, str, str]] = [
    ("fan-out p50 / p99 ms", "fanout", "p50_ms", "p99_ms"),
    ("fan-out all delivered", "fanout", "all_delivered", ""),
    ("fan-out server CPU per delivery, µs", "fanout", "server_cpu_us_per_delivery", ""),
    ("throughput, updates/s", "throughput", "updates_per_s", ""),
    ("throughput server CPU per update, µs", "throughput", "server_cpu_us_per_update", ""),
    ("IEP documents (parents get digests), updates/s", "iep", "updates_per_s", ""),
    (
        "IEP server CPU per update, all deferred work included, µs",
        "iep",
        "server_cpu_us_per_update",
        "",
    ),
    ("connect, connections/s", "connect", "connections_per_s", ""),
    ("connect p99 time to synced, ms", "connect", "p99_ms", ""),
    ("connect server CPU per connection, ms", "connect", "server_cpu_ms_per_connection", ""),
    ("RSS per idle document (one idle socket), KB", "memory", "rss_kb_per_document", ""),
    (
        "idle sockets: RSS per connection (documents included), KB",
        "idle",
        "rss_kb_per_connection",
        "",
    ),
    ("join storm p50 / p99 time to step 2, ms", "storm", "p50_ms", "p99_ms"),
    ("join storm server RSS peak / CPU s", "storm", "rss_peak_mb", "server_cpu_s"),
]


def markdown_table(report: Result) -> str:
    servers: dict[str, Result] = report["servers"]
    names = list(servers)
    lines = ["| workload | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for label, workload, first, second in TABLE_ROWS:
        if not any(workload in servers[name] for name in names):
            continue
        cells = []
        for name in names:
            figures = servers[name].get(workload, {})
            if "error" in figures:
                cells.append("error")
                continue
            cell = str(figures.get(first, "n/a"))
            if second:
                cell += " / " + str(figures.get(second, "n/a"))
            cells.append(cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    peaks = [str(servers[name].get("peak_rss_mb", "n/a")) for name in names]
    lines.append("| server RSS peak, MB | " + " | ".join(peaks) + " |")
    load = report.get("load_time")
    if load and "error" not in load:
        lines.append(
            f"\nLoad of a document with {load['updates_in_log']:,} updates in its log "
            f"(ours, SQLite, after a restart): {load['synced_ms']} ms to synced."
        )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small workloads, one run")
    parser.add_argument("--runs", type=int, default=None, help="runs per server (median)")
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated subset of {', '.join(SERVERS)}",
    )
    parser.add_argument("--no-load-time", action="store_true", help="skip the cold-load figure")
    parser.add_argument(
        "--workloads",
        default=",".join(DEFAULT_WORKLOADS),
        help=f"comma-separated subset of {', '.join(WORKLOADS)} (default: all but "
        f"{', '.join(CAPACITY_WORKLOADS)})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS_DIR / "latest.json",
        help="also write the JSON here (default bench/results/latest.json)",
    )
    parser.add_argument(
        "--profile-dir", type=Path, default=None, help="py-spy our server during fan-out/connect"
    )
    args = parser.parse_args(argv)
    unknown = set(args.servers.split(",")) - set(SERVERS)
    if unknown:
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    unknown = set(args.workloads.split(",")) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> Result:
    args = parse_args(argv)
    profile = QUICK if args.quick else FULL
    runs = args.runs or profile.runs
    chosen = [SERVERS[name] for name in args.servers.split(",")]
    per_server: dict[str, list[Result]] = {spec.name: [] for spec in chosen}
    with tempfile.TemporaryDirectory(prefix="collab-bench-") as tmp:
        for run_index in range(runs):
            results = one_round(
                chosen,
                profile,
                run_index,
                Path(tmp),
                args.profile_dir,
                workloads=args.workloads.split(","),
            )
            for name, run in results.items():
                per_server[name].append(run)
        report: Result = {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "profile": "quick" if args.quick else "full",
            "runs": runs,
            "servers": {name: median_figures(results) for name, results in per_server.items()},
        }
        if not args.no_load_time and "ours-sqlite" in per_server:
            print("load time: ours-sqlite", file=sys.stderr, flush=True)
            workdir = Path(tmp) / "load-time"
            workdir.mkdir()
            report["load_time"] = load_time(profile, workdir)
    report["each_run"] = per_server
    text = json.dumps(report, indent=2, ensure_ascii=False)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    print(markdown_table(report), file=sys.stderr)
    print(text)
    return report


if __name__ == "__main__":
    main()
