"""The measurements: end to end at a constant rate, status reads, the outbound HTTP client."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .checks import api_sample_check, check_assignments, parse_time, queue_state, wait_scheduled
from .common import HTTP_BENCH, loadavg, percentile, r
from .load import OWNERS, run_child, server_child
from .profiling import py_spy, start_profilers
from .stack import BenchStack, cpu_share


def e2e(
    bench: BenchStack, *, rate: float, seconds: float, drain_timeout: float, profile: Path | None
) -> dict[str, Any]:
    """Open-loop POSTs at ``rate``, then verification. Returns the figures."""
    url = bench.url("ingestion") + "/api/deliveryrequests"
    load_before = loadavg()
    cpu_before = bench.cpu()
    window_start = time.monotonic()
    profilers = start_profilers(bench, seconds, profile) if profile else []
    spec = {"url": url, "rate": rate, "seconds": seconds, "tokens": bench.customer_tokens(OWNERS)}
    gen = run_child("open", spec, timeout=seconds + 120)
    window = time.monotonic() - window_start
    cpu_after = bench.cpu()
    load_during = loadavg()
    for proc in profilers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
    results = gen["results"]
    statuses: dict[str, int] = {}
    for item in results:
        statuses[str(item[2])] = statuses.get(str(item[2]), 0) + 1
    accepted = [item for item in results if item[2] == 202]
    ids = [item[3] for item in accepted]
    answered = {item[3]: item[1] for item in accepted}
    latencies = sorted(item[0] for item in results if item[2] == 202)
    records, _ = wait_scheduled(bench, ids, drain_timeout)
    # CPU per delivery, from the first POST until the last one was scheduled: what each
    # process costs per delivery, whatever else the (shared) machine was doing.
    cpu_drained = bench.cpu()
    cpu_ms = {
        name: r(
            (cpu_drained.get(name, 0.0) - cpu_before.get(name, 0.0)) * 1e3 / max(1, len(ids)), 2
        )
        for name in cpu_drained
    }
    cpu_ms = dict(sorted(cpu_ms.items(), key=lambda kv: -kv[1]))
    cpu_ms["total"] = r(sum(cpu_ms.values()), 2)
    scheduled = {k: v for k, v in records.items() if v.get("drone_id", v.get("droneId"))}
    created = sorted(
        parse_time(v.get("created_at", v.get("createdAt"))) for v in scheduled.values()
    )
    e2e_lat = sorted(
        parse_time(v.get("created_at", v.get("createdAt"))) - answered[k]
        for k, v in scheduled.items()
    )
    start, end = gen["wall_start"], gen["wall_start"] + seconds
    in_window = sum(1 for t in created if start <= t <= end)
    # The steady part: the second half of the window (after warm-up effects).
    half = sum(1 for t in created if start + seconds / 2 <= t <= end)
    last = created[-1] if created else start
    queue = queue_state(bench)
    checks = check_assignments(bench, scheduled)
    checks.update(api_sample_check(bench, ids, 300))
    drones = [v.get("drone_id", v.get("droneId")) for v in scheduled.values()]
    result = {
        "offered_rate": rate,
        "seconds": seconds,
        "requests": len(results),
        "statuses": statuses,
        "accepted": len(accepted),
        "scheduled": len(scheduled),
        "unscheduled": len(accepted) - len(scheduled),
        "duplicate_ids": len(ids) - len(set(ids)),
        "duplicate_drones_among_deliveries": len(drones) - len(set(drones)),
        **queue,
        **checks,
        "scheduled_per_s_window": r(in_window / seconds),
        "scheduled_per_s_second_half": r(half / (seconds / 2)),
        "scheduled_per_s_overall": r(len(created) / max(1e-9, last - start)),
        "drain_after_last_post_s": r(max(0.0, last - gen["send_end"]), 2),
        "e2e_p50_ms": r(percentile(e2e_lat, 0.5) * 1e3),
        "e2e_p99_ms": r(percentile(e2e_lat, 0.99) * 1e3),
        "e2e_max_ms": r((e2e_lat[-1] if e2e_lat else float("nan")) * 1e3),
        "ingestion_p50_ms": r(percentile(latencies, 0.5) * 1e3, 2),
        "ingestion_p99_ms": r(percentile(latencies, 0.99) * 1e3, 2),
        "ingestion_max_ms": r((latencies[-1] if latencies else float("nan")) * 1e3, 2),
        "generator_send_lag_p99_ms": r(gen["send_lag_p99_ms"], 2),
        "generator_cpu_s": r(gen["cpu_seconds"], 2),
        "cpu_cores_used_by_process": cpu_share(cpu_before, cpu_after, window),
        "cpu_ms_per_delivery": cpu_ms,
        "load_average_before": load_before,
        "load_average_after": load_during,
        "all_scheduled_exactly_once": (
            len(scheduled) == len(accepted)
            and len(ids) == len(set(ids))
            and checks["assignment_mismatches"] == 0
            and checks["drone_overlaps"] == 0
            and queue["dead_letters"] == 0
        ),
        "_ids": ids,
    }
    return result


def status_bench(
    bench: BenchStack,
    ids: list[str],
    concurrency: int,
    seconds: float,
    profile: Path | None = None,
) -> dict[str, Any]:
    base = bench.url("delivery")
    urls = [f"{base}/api/deliveries/{i}/status" for i in ids[:5000]] or [f"{base}/healthz"]
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(urls, handle)
        urls_file = handle.name
    try:
        spec = {
            "urls": [],
            "urls_file": urls_file,
            "concurrency": concurrency,
            "seconds": seconds,
            "warmup": 2.0,
            "token": bench.operator_token(),
        }
        rounds = []
        with server_child("bare") as port:
            bare_spec = {**spec, "urls": [f"http://127.0.0.1:{port}/status"]}
            bare_spec.pop("urls_file")
            for round_number in range(2):  # interleaved, twice: the machine is shared
                cpu0, t0, load = bench.cpu(), time.monotonic(), loadavg()
                spy = None
                if profile is not None and round_number == 0:
                    spy = py_spy(
                        bench.pids()["delivery"], int(seconds), profile / "delivery-status.txt"
                    )
                delivery = run_child("closed", spec, timeout=seconds + 60)
                if spy is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        spy.wait(timeout=30)
                delivery["cpu_cores_used_by_process"] = cpu_share(
                    cpu0, bench.cpu(), time.monotonic() - t0
                )
                delivery["load_average"] = load
                bare = run_child("closed", bare_spec, timeout=seconds + 60)
                bare["load_average"] = loadavg()
                rounds.append({"delivery": delivery, "bare": bare})
    finally:
        Path(urls_file).unlink(missing_ok=True)
    best = max(rounds, key=lambda x: x["delivery"]["requests_per_second"])
    ratios = [
        x["delivery"]["requests_per_second"] / max(1.0, x["bare"]["requests_per_second"])
        for x in rounds
    ]
    return {
        **best,
        "ratio": round(sum(ratios) / len(ratios), 3),
        "ratios": [round(x, 3) for x in ratios],
        "rounds": rounds,
    }


def http_client_bench(seconds: float) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = Path(handle.name)
    try:
        subprocess.run(
            [
                sys.executable,
                str(HTTP_BENCH),
                "--concurrency",
                "20",
                "--seconds",
                str(seconds),
                "--transports",
                "client,raw",
                "--rounds",
                "3",
                "--json",
                str(out),
            ],
            check=True,
            timeout=seconds * 12 + 60,
        )
        data = json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)
    summary = data["summary"]
    summary["load_average_before"] = data["load_average_before"]
    summary["all_runs"] = [
        {k: run[k] for k in ("transport", "requests_per_second", "p50_ms", "p99_ms")}
        for run in data["runs"]
    ]
    return dict(summary)
