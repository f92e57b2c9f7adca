"""The report: the machine it ran on, the targets, and the markdown table of ``result.md``."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
from pathlib import Path
from typing import Any

TARGETS = {
    "scheduled_per_s": 200.0,  # aim 400
    "ingestion_p99_ms": 20.0,
    "status_ratio": 0.2,
    "http_client_rps": 5000.0,
    "http_client_p99_ms": 5.0,
}


def machine() -> dict[str, Any]:
    model = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram": ram,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("pass" if ok else "FAIL")


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    main = report["e2e"]
    rows: list[tuple[str, str, str, bool | None]] = []

    def add(metric: str, target: str, measured: str, ok: bool | None) -> None:
        rows.append((metric, target, measured, ok))

    load = f"load {main['load_average_before'][0]:g}→{main['load_average_after'][0]:g}"
    add(
        f"scheduled deliveries/s: {main['seconds']:g} s open loop at {main['offered_rate']:g}/s, "
        "scheduled in the window / window",
        "≥ 200 (aim 400)",
        f"{main['scheduled_per_s_window']:g}/s (second half {main['scheduled_per_s_second_half']:g}"
        f"/s; drained {main['drain_after_last_post_s']:g} s after the last POST; {load})",
        main["scheduled_per_s_window"] >= TARGETS["scheduled_per_s"],
    )
    add(
        "accepted → scheduled exactly once; dead letters",
        "all, 0",
        f"{main['accepted']}/{main['requests']} accepted, {main['scheduled']} scheduled, "
        f"{main['duplicate_ids']} duplicates, {main['drone_overlaps']} drone overlaps, "
        f"{main['dead_letters']} dead letters",
        main["all_scheduled_exactly_once"],
    )
    add(
        "end-to-end latency (202 → delivery with its drone) p50 / p99",
        "—",
        f"{main['e2e_p50_ms']:g} / {main['e2e_p99_ms']:g} ms",
        None,
    )
    add(
        f"ingestion POST latency p50 / p99 at {main['offered_rate']:g}/s",
        "p99 ≤ 20 ms at ≥ 200/s",
        f"{main['ingestion_p50_ms']:g} / {main['ingestion_p99_ms']:g} ms ({load})",
        main["ingestion_p99_ms"] <= TARGETS["ingestion_p99_ms"],
    )
    add(
        "CPU per delivery, all processes (first POST → last scheduled)",
        "—",
        f"{main['cpu_ms_per_delivery']['total']:g} ms: "
        + ", ".join(f"{k} {v:g}" for k, v in main["cpu_ms_per_delivery"].items() if k != "total"),
        None,
    )
    status = report.get("status")
    if status:
        delivery, bare = status["delivery"], status["bare"]
        add(
            f"status GET req/s, {delivery['concurrency']} concurrent, vs bare uvicorn ASGI",
            "≥ 0.2x",
            f"{delivery['requests_per_second']:g} vs {bare['requests_per_second']:g} req/s = "
            f"{status['ratio']:.2f}x (rounds {status['ratios']}; p99 {delivery['p99_ms']:g} ms; "
            f"load {delivery['load_average'][0]:g})",
            status["ratio"] >= TARGETS["status_ratio"],
        )
    http = report.get("http_client")
    if http:
        client, raw = http["client"], http["raw"]
        add(
            "workflow HTTP client, 20 concurrent: req/s, p99 (median of 3)",
            "≥ 5,000/s, p99 ≤ 5 ms",
            f"{client['requests_per_second']:g}/s, p99 {client['p99_ms']:g} ms, "
            f"{client['client_cpu_us_per_request']:g} µs CPU/request (bare aiohttp session "
            f"{raw['requests_per_second']:g}/s, p99 {raw['p99_ms']:g} ms, "
            f"{raw['client_cpu_us_per_request']:g} µs; load {http['load_average_before'][0]:g})",
            client["requests_per_second"] >= TARGETS["http_client_rps"]
            and client["p99_ms"] <= TARGETS["http_client_p99_ms"],
        )
    tracing = report.get("tracing")
    if tracing:
        off, on = tracing["off"], tracing["on"]
        add(
            f"tracing cost, OTLP off → on ({off['seconds']:g} s at {off['offered_rate']:g}/s): "
            "scheduled/s; e2e p99; ingestion p99; CPU per delivery",
            "—",
            f"{off['scheduled_per_s_window']:g} → {on['scheduled_per_s_window']:g}/s; "
            f"{off['e2e_p99_ms']:g} → {on['e2e_p99_ms']:g} ms; "
            f"{off['ingestion_p99_ms']:g} → {on['ingestion_p99_ms']:g} ms; "
            f"{off['cpu_ms_per_delivery']['total']:g} → {on['cpu_ms_per_delivery']['total']:g} ms",
            None,
        )
    lines = [
        "# Benchmark result",
        "",
        (
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, Python {m['python']}, "
            f"{m['platform']}; {m['date']}. Load average before the main run "
            f"{main['load_average_before']}, after {main['load_average_after']}."
        ),
        f"Settings: {report['settings']}.",
        "",
        "| metric | target | measured | pass/fail |",
        "| --- | --- | --- | --- |",
    ]
    lines += [f"| {a} | {b} | {c} | {verdict(d)} |" for a, b, c, d in rows]
    lines += [
        "",
        "CPU (cores) per process during the main window: "
        + ", ".join(f"{k} {v}" for k, v in main["cpu_cores_used_by_process"].items()),
        "",
    ]
    if report.get("profiles"):
        lines += [
            "## Profiles (py-spy, share of samples by leaf frame; idle shows as the event loop)",
            "",
        ]
        for name, top in report["profiles"].items():
            lines.append(
                f"- **{name}** by library: "
                + "; ".join(f"{f} {p}%" for f, p in top["by_library"][:8])
                + ". Hottest frames: "
                + "; ".join(f"`{f}` {p}%" for f, p in top["self"][:5])
            )
        lines.append("")
    return "\n".join(lines)
