"""Every benchmark under ``libs/*/benchmarks`` and ``services/*/benchmarks`` runs, briefly.

A benchmark nobody runs rots: three of them had stopped working (two when bearer tokens became
the default, one measuring admission control's 503s instead of accepted requests) while their
services' tests passed. Each one here runs as a user would start it, on its own real servers,
with the smallest sizes that still exercise every path it measures, and must exit 0 with answers
that are the ones it claims to measure (no 5xx counted as throughput). The figures are not
checked: the machine decides them, and ``make bench`` reports them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dronetesting.servers import project_root

pytestmark = pytest.mark.slow

Check = Callable[[str, Any], None]


@dataclass(frozen=True)
class Bench:
    script: str
    args: tuple[str, ...]
    check: Check
    json_flag: bool = False  # the benchmark writes its result with --json <path>


def _success(statuses: dict[str, int], *allowed: str) -> None:
    assert statuses, "no requests measured"
    assert set(statuses) <= set(allowed), statuses


def _consumer(_: str, result: Any) -> None:
    assert result["applied"] == result["fixes"], result
    assert result["conflicts"] == 0, result
    assert result["ignored"] == 0, result


def _watchers(_: str, result: Any) -> None:
    assert result["events_per_second"] > 0, result
    assert result["push_delay_ms"]["p99"] > 0, result


def _status(output: str, _: Any) -> None:
    # The benchmark raises on any answer but 200; the three ways each report a rate.
    for way in ("httpx", "asgi", "redis"):
        assert f"  {way} " in output, output


def _scheduler(output: str, _: Any) -> None:
    result = json.loads(output[output.index("{") :])
    assert result["assigned"] > 0, result
    for name, row in result.items():
        if isinstance(row, dict) and "statuses" in row:
            # A busy fleet answers an assignment 503 with Retry-After: the contract's answer.
            allowed = ("201", "503") if name.startswith("assign") else ("200", "204")
            _success(row["statuses"], *allowed)


def _startup(output: str, _: Any) -> None:
    (run,) = json.loads(output[output.index("{") :])["runs"]
    (restart,) = run["restarts"]
    assert restart["leases"] == 50, restart  # each of the 50 drones' latest lease, loaded


def _ingestion(output: str, _: Any) -> None:
    assert output.count("statuses={202:") == 2, output  # exits 1 on any other answer


def _ingestion_refused(output: str, _: Any) -> None:
    assert output.count("statuses={503:") == 1, output  # exits 1 on any other answer


def _notifier(_: str, result: Any) -> None:
    # It exits with a message when an e-mail does not arrive in time; each row sent them all.
    for rows in result["rounds"].values():
        for row in rows:
            assert row["emails"] == 3 * 20, row  # three told events per delivery
            assert row["paced"]["delays_matched"] == row["paced"]["emails"], row


def _package(_: str, result: Any) -> None:
    for name, row in result["http"].items():
        expected = {"put-create": ("201",), "put-update": ("204",), "patch": ("204",)}
        _success(row["statuses"], *expected.get(name, ("200",)))


def _fleet(_: str, result: Any) -> None:
    assert result["fixes_per_s"] > 0, result
    assert result["publish_errors"] == 0, result
    assert result["late_ticks"] == 0, result


def _workflow(output: str, _: Any) -> None:
    assert output.count("messages/s") == 2, output


def _http_client(_: str, result: Any) -> None:
    for row in result["summary"].values():
        assert row["requests"] > 0, row
        assert row["errors"] == 0, row


BENCHMARKS = {
    "delivery-consumer": Bench(
        "services/delivery/benchmarks/bench_consumer.py",
        ("--drones", "100", "--fixes", "2000"),
        _consumer,
        json_flag=True,
    ),
    "delivery-watchers": Bench(
        "services/delivery/benchmarks/bench_watchers.py",
        ("--deliveries", "10", "--watchers", "20", "--clients", "1", "--seconds", "2"),
        _watchers,
        json_flag=True,
    ),
    "delivery-status": Bench(
        "services/delivery/benchmarks/bench_status.py",
        ("--seconds", "1", "--concurrency", "4", "--deliveries", "20"),
        _status,
    ),
    "dronescheduler-scheduler": Bench(
        "services/dronescheduler/benchmarks/bench_scheduler.py",
        ("--concurrency", "4", "--seconds", "1", "--short", "1", "--drones", "300"),
        _scheduler,
    ),
    "dronescheduler-startup": Bench(
        "services/dronescheduler/benchmarks/bench_startup.py",
        ("--deliveries", "100", "--drones", "50", "--restarts", "1"),
        _startup,
    ),
    "ingestion": Bench(
        "services/ingestion/benchmarks/bench_ingestion.py",
        ("--concurrency", "4", "--seconds", "1", "--warmup", "0.5"),
        _ingestion,
    ),
    "ingestion-refused": Bench(
        "services/ingestion/benchmarks/bench_ingestion.py",
        ("--refused", "--concurrency", "4", "--seconds", "1", "--warmup", "1"),
        _ingestion_refused,
    ),
    "notifier": Bench(
        "services/notifier/benchmarks/bench_notifier.py",
        ("--deliveries", "20", "--rounds", "1", "--rate", "10", "--seconds", "1"),
        _notifier,
        json_flag=True,
    ),
    "package": Bench(
        "services/package/benchmarks/bench_package.py",
        ("--concurrency", "4", "--seconds", "1", "--summary-packages", "20", "--query-sizes", "10"),
        _package,
        json_flag=True,
    ),
    "simulator-fleet": Bench(
        "services/simulator/benchmarks/bench_fleet.py",
        ("--drones", "100", "--seconds", "2"),
        _fleet,
        json_flag=True,
    ),
    "workflow-consumer": Bench(
        "services/workflow/benchmarks/bench_consumer.py",
        ("--messages", "60", "--concurrency", "4", "8"),
        _workflow,
    ),
    "http-client": Bench(
        "libs/dronecommon/benchmarks/bench_http_client.py",
        ("--concurrency", "4", "--seconds", "1", "--warmup", "0.5", "--rounds", "1"),
        _http_client,
        json_flag=True,
    ),
}


def test_every_benchmark_is_listed() -> None:
    root = project_root()
    found = {
        str(path.relative_to(root))
        for pattern in ("libs/*/benchmarks/bench_*.py", "services/*/benchmarks/bench_*.py")
        for path in root.glob(pattern)
    }
    assert found == {bench.script for bench in BENCHMARKS.values()}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_runs(name: str, tmp_path: Path) -> None:
    bench = BENCHMARKS[name]
    command = [sys.executable, bench.script, *bench.args]
    out = tmp_path / "result.json"
    if bench.json_flag:
        command += ["--json", str(out)]
    done = subprocess.run(
        command, cwd=project_root(), capture_output=True, text=True, timeout=220, check=False
    )
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    bench.check(done.stdout, json.loads(out.read_text()) if bench.json_flag else None)
