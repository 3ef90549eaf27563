"""The benchmark still runs end to end and reports every figure for our server.

Timings are not asserted here (they belong to `make bench`); only that each workload completed
against our server as deployed by default (SQLite) and produced its numbers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(shutil.which("node") is None, reason="Node is not installed"),
]

FIGURES = {
    "fanout": ["p50_ms", "p99_ms", "delivered", "server_cpu_us_per_delivery"],
    "throughput": ["updates_per_s", "server_cpu_us_per_update"],
    "iep": ["updates_per_s", "server_cpu_us_per_update"],
    "connect": ["connections_per_s", "p99_ms", "server_cpu_ms_per_connection"],
    "memory": ["rss_kb_per_document"],
    "idle": ["rss_kb_per_connection", "rss_kb_per_extra_socket"],
    "storm": ["p50_ms", "p99_ms", "rss_peak_mb", "server_cpu_s"],
}


def test_quick_bench_reports_every_figure_for_our_server(tmp_path: Path) -> None:
    if not (ROOT / "bench" / "node_modules" / "ws").is_dir():
        pytest.fail("bench/node_modules is missing: run `make node-deps`")
    output = tmp_path / "bench.json"
    command = [sys.executable, "-m", "bench.run", "--quick", "--output", str(output)]
    completed = subprocess.run(
        [*command, "--servers", "ours-sqlite", "--workloads", ",".join(FIGURES)],
        cwd=ROOT,
        capture_output=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    report = json.loads(output.read_text())

    for server in ("ours-sqlite",):
        figures = report["servers"][server]
        assert figures["peak_rss_mb"] > 0
        for workload, names in FIGURES.items():
            result = figures[workload]
            assert "error" not in result, (server, result)
            for name in names:
                assert isinstance(result[name], int | float), (server, workload, name, result)
        assert figures["fanout"]["all_delivered"] is True
        assert figures["connect"]["synced_with_full_document"] == figures["connect"]["connections"]
        assert figures["idle"]["open_at_end"] == figures["idle"]["connections"]
        assert figures["storm"]["synced_with_full_document"] == figures["storm"]["joiners"]
    load = report["load_time"]
    assert "error" not in load, load
    assert load["updates_in_log"] == 300
    assert load["synced_ms"] > 0


@pytest.mark.browser
def test_editor_bench_reports_edit_to_other_screen_latency() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.editor", "--edits", "10"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    figures = json.loads(completed.stdout)["edit_to_other_screen"]
    assert figures["measured"] == 10
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]


def test_messages_bench_reports_both_figures_and_loses_no_message() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.messages", "--quick"],
        cwd=ROOT,
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    figures = json.loads(completed.stdout)
    assert figures["threads"]["messages"] == figures["threads"]["open_threads"]
    assert figures["webhook"]["in_thread"] == figures["webhook"]["webhooks"]
    for workload in ("threads", "webhook"):
        assert 0 < figures[workload]["p50_ms"] <= figures[workload]["p99_ms"]


def test_calls_bench_reports_set_up_time_direct_and_through_turn() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.calls", "--quick"],
        cwd=ROOT,
        capture_output=True,
        timeout=240,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode()[-3000:]
    figures = json.loads(completed.stdout)
    for route in ("direct", "relay"):
        assert figures[route]["calls"] == 3
        assert 0 < figures[route]["p50_ms"] <= figures[route]["max_ms"]
