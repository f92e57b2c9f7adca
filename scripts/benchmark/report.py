"""The report: the machine it ran on, the targets, and ``report.md`` (its plots embedded)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
from pathlib import Path
from typing import Any

from .fleet import IN_AIR_FLOOR

TARGETS = {
    "knee_per_s": 400.0,
    "goodput_vs_knee": 0.9,
    "tracing_default_vs_off": 0.75,
    "tracing_all_vs_off": 0.5,
    "cpu_ms_per_delivery": 5.0,
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


def _air(w: dict[str, Any]) -> str:
    if "drones_in_air_mean" not in w:
        return "—"
    low, high = w["drones_in_air_min"], w["drones_in_air_max"]
    return f"{w['drones_in_air_mean']:,.0f} ({low:,.0f}-{high:,.0f})"


def _window_row(w: dict[str, Any], status: str) -> str:
    return (
        f"| {w['label']} | {w['offered_rate']:g} | {w['scheduled_per_s_window']:g} "
        f"({w['scheduled_per_s_second_half']:g}) | {w['e2e_p50_ms']:g} / {w['e2e_p99_ms']:g} | "
        f"{w['ingestion_p99_ms']:g} | {w['accepted']} / {w['rejected_503']} / {w['errors']} | "
        f"{w['late']} | {w['cpu_cores_total']:g} | {w['cpu_ms_per_delivery_total']:g} | "
        f"{_air(w)} | {status} |"
    )


WINDOW_HEADER = [
    (
        "| window | offered/s | scheduled/s (second half) | e2e p50 / p99 ms | ingestion p99 ms "
        "| accepted / refused / errors | late | CPU cores | CPU ms per delivery | drones in the "
        "air, mean (min-max) | |"
    ),
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
]


def _refining(plan: dict[str, Any]) -> str:
    refine = plan.get("refine", 0)
    if not refine:
        return ""
    return f", then {refine} more halving the gap between the knee and the rate above it"


def _knee(report: dict[str, Any]) -> list[str]:
    knee = report["knee"]
    plan = knee["plan"]
    found = knee["knee"]
    lines = [
        "## The knee",
        "",
        (
            f"Offered rate stepped from {plan['start']:g}/s by {plan['step']:g}/s, "
            f"{plan['seconds']:g} s a step (after {plan['warmup']:g} s of warm-up at the first "
            f"rate), until a step was not sustained (down by the step instead while the first "
            f"rate is not){_refining(plan)}, sustained meaning every request accepted and "
            "scheduled, "
            f"end-to-end p99 ≤ {plan['p99_limit_ms'] / 1e3:g} s. Tracing at the production "
            f"default (ratio {report['settings']['sampling_ratio']:g}, OTLP to a local sink)."
        ),
        "",
        (
            f"**Highest sustained rate: {found:g} deliveries/s**"
            if found is not None
            else "**No step was sustained.**"
        ),
        "",
        *WINDOW_HEADER,
    ]
    if knee.get("warmup"):
        lines.append(_window_row(knee["warmup"], "warm-up"))
    lines.extend(
        _window_row(w, "sustained" if w["sustained"] else "**not sustained**")
        for w in knee["steps"]
    )
    if knee.get("profiled"):
        lines.append(_window_row(knee["profiled"], "profiled (py-spy)"))
    lines.append("")
    base = found or plan["start"]
    if knee["overload"]:
        lines += [
            "## Overload (admission control on)",
            "",
            (
                f"Goodput must stay within 10 % of the knee ({base:g}/s) and latency bounded; "
                "refused requests are 503 `overloaded` with `Retry-After`, nothing queued."
            ),
            "",
            *WINDOW_HEADER,
        ]
        for w in knee["overload"]:
            ok = w["goodput_vs_knee"] >= TARGETS["goodput_vs_knee"] and w["late"] == 0
            lines.append(
                _window_row(
                    w,
                    f"goodput {w['goodput_vs_knee']:g}x the knee (second half "
                    f"{w['goodput_second_half_vs_knee']:g}x), refused p99 "
                    f"{w['refused_p99_ms']:g} ms: {verdict(ok)}",
                )
            )
        lines.append("")
    return lines


def _background(report: dict[str, Any]) -> list[str]:
    fleet = report["fleet"]
    trips = fleet["trip_seconds_slowest_class"]
    windows = [*report["knee"]["steps"], *report["knee"]["overload"]]
    peaks = [w["drones_in_air_max"] for w in windows if "drones_in_air_max" in w]
    lows = [w["drones_in_air_min"] for w in report["knee"]["steps"] if "drones_in_air_min" in w]
    at_knee = [
        w["drones_in_air_mean"]
        for w in report["knee"]["steps"]
        if w.get("sustained") and w["offered_rate"] == report["knee"].get("knee")
        if "drones_in_air_mean" in w
    ]
    floor = ""
    if at_knee:
        met = "met" if at_knee[-1] >= IN_AIR_FLOOR else "not met"
        floor = (
            f" At the knee {at_knee[-1]:,.0f} drones were in the air on average (the floor: "
            f"{IN_AIR_FLOOR:,}, {met})."
        )
    return [
        "## Background load",
        "",
        (
            "The fleet simulator flies every scheduled delivery (base → pickup → drop-off → "
            f"base), each drone reporting a fix every {fleet['telemetry_interval_s']:g} s, "
            "confirming the delivery at the drop-off and released at home. Time-lapse: cruise "
            f"speeds x{fleet['speedup']:g} (scheduler and simulator alike), "
            f"{fleet['stop_seconds']:g} s at each stop, so a trip lasts {trips['median']:g} s at "
            f"the median ({trips['p90']:g} s p90, {trips['max']:g} s at most; slowest class, "
            f"{trips.get('max_in_the_worst_wind', trips['max']):g} s in the worst wind) and drones "
            "come home. The "
            f"fleet of {fleet['fleet_size']:,} drones cannot run dry below "
            f"{fleet['rate_the_fleet_sustains_at_least']:,.0f} deliveries/s; "
            + (
                f"at most {max(peaks):,.0f} were in the air at once, at least "
                f"{min(lows):,.0f} during every step."
                if peaks and lows
                else "drones in the air were not sampled."
            )
            + floor
        ),
        (
            "One request in ten asks to be told by e-mail: the notifier sends its notices over "
            "SMTP to Mailpit, both in the stack and counted in the CPU figures."
        ),
        "",
    ]


def _checks(report: dict[str, Any]) -> list[str]:
    v = report["knee"]["verify"]
    return [
        "## Exactly once",
        "",
        (
            f"{verdict(v['all_scheduled_exactly_once'])}: {v['accepted']:,} accepted, "
            f"{v['scheduled']:,} scheduled ({v['lost']} lost), {v['duplicate_ids']} duplicate "
            f"ids, {v['assignment_mismatches']} assignment mismatches, {v['drone_overlaps']} "
            f"drones double-booked, {v['dead_letters']} dead letters, {v['api_ok']}/"
            f"{v['api_checked']} read back through the API."
        ),
        "",
    ]


def _tracing(report: dict[str, Any]) -> list[str]:
    tracing = report.get("tracing")
    if not tracing:
        return []
    rows = tracing["rows"]
    described = {
        "off": "no exporter",
        "default": f"parent-based ratio {tracing['ratio']:g}, OTLP/HTTP",
        "all": "every span (ratio 1), OTLP/HTTP",
        "azure-monitor": f"Azure Monitor distro, ratio {tracing['ratio']:g}",
    }
    limits = {"default": TARGETS["tracing_default_vs_off"], "all": TARGETS["tracing_all_vs_off"]}
    lines = [
        "## Tracing cost",
        "",
        (
            f"Fresh stack per row, {tracing['rate']:g}/s offered for {tracing['seconds']:g} s "
            "(well above capacity, so goodput is capacity: a row that refused nothing kept up, "
            "and its capacity is higher; a target is met only when the `off` row refused "
            "requests in every round); exports to a local sink. "
            f"{_rounds_said(tracing.get('rounds', 1))}"
        ),
        "",
        (
            "| row | tracing | scheduled/s | vs off | refused | CPU ms per delivery | vs off "
            "| e2e p99 ms | ingestion p99 ms | target |"
        ),
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    off_saturated = all(rows.get("off", {}).get("saturated_rounds", [True]))
    for name, w in rows.items():
        ratio = w.get("goodput_vs_off")
        target = "—"
        if name in limits and ratio is not None:
            met = ratio >= limits[name]
            outcome = verdict(met)
            if met and not off_saturated:  # a ratio under the target can only be lower still
                outcome = (
                    "not measured (`off` refused nothing in a round: it kept up, so the ratio "
                    "is an upper bound)"
                )
            target = f"≥ {limits[name]:g}x off: {outcome}"
        lines.append(
            f"| {name} | {described.get(name, name)} | {w['scheduled_per_s_window']:g} | "
            f"{_with_rounds(w, 'goodput_vs_off')} | {w['rejected_503']:g} | "
            f"{w['cpu_ms_per_delivery_total']:g} | "
            f"{_with_rounds(w, 'cpu_per_delivery_vs_off')} | {w['e2e_p99_ms']:g} | "
            f"{w['ingestion_p99_ms']:g} | {target} |"
        )
    lines.append("")
    return lines


def _rounds_said(rounds: int) -> str:
    if rounds <= 1:
        return "Ratios against the `off` row of this run."
    return (
        f"The rows ran {rounds} times, interleaved (off, default, …, then again); figures are "
        "means over the rounds (p99s the worst), a ratio the mean of each round's against that "
        "round's `off` row (each round's in brackets)."
    )


def _with_rounds(row: dict[str, Any], key: str) -> str:
    """A ratio, with each round's in brackets when there were several."""
    value = row.get(key)
    if value is None:
        return "—"
    rounds = row.get(f"{key}_rounds") or []
    if len(rounds) < 2:
        return f"{value:g}"
    return f"{value:g} ({', '.join(f'{x:g}' for x in rounds)})"


def _growth(report: dict[str, Any]) -> list[str]:
    growth = report.get("growth")
    if not growth:
        return []
    lines = [
        "## Cost as work grows",
        "",
        (
            f"Fresh stack per row, seeded with past completed deliveries (every record one leaves "
            f"in the stores, `benchmark.past`), then {growth['warmup']:g} s of warm-up and "
            f"{growth['seconds']:g} s measured at {growth['rate']:g}/s offered. CPU per "
            "scheduled delivery over every process; ratios against the first row."
        ),
        "",
        (
            "| row | workflow replicas | past deliveries | seeding s | offered/s | scheduled/s "
            "| CPU ms per delivery | vs first | e2e p99 ms | vs first | refused / late |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines.extend(
        f"| {w['label']} | {w['workflow_replicas']} | {w['past_deliveries']:,} | "
        f"{w['seeding_seconds']:g} | {w['offered_rate']:g} | "
        f"{w['scheduled_per_s_window']:g} | {w['cpu_ms_per_delivery_total']:g} | "
        f"{w['cpu_per_delivery_vs_base']:g} | {w['e2e_p99_ms']:g} | "
        f"{w['e2e_p99_vs_base']:g} | {w['rejected_503']} / {w['late']} |"
        for w in growth["rows"]
    )
    lines += ["", "CPU ms per delivery by process:", ""]
    lines += [
        f"- {w['label']}: "
        + ", ".join(f"{k} {v:g}" for k, v in w["cpu_ms_per_delivery"].items() if v)
        for w in growth["rows"]
    ]
    return [*lines, ""]


def _baselines(report: dict[str, Any]) -> list[str]:
    lines = []
    status = report.get("status")
    if status:
        lines.append(
            "- `GET /api/deliveries/{id}/status`, closed loop, "
            f"{status['delivery']['concurrency']} concurrent: "
            f"{status['delivery']['requests_per_second']:g} req/s (p99 "
            f"{status['delivery']['p99_ms']:g} ms) vs a bare uvicorn endpoint "
            f"{status['bare']['requests_per_second']:g} req/s = {status['ratio']:g}x "
            f"(rounds {status['ratios']}; target ≥ {TARGETS['status_ratio']:g}x: "
            f"{verdict(status['ratio'] >= TARGETS['status_ratio'])})"
            + (
                f", measured once the fleet had landed (waited {status['waited_for_landing_s']:g} "
                "s)."
                if "waited_for_landing_s" in status
                else "."
            )
        )
    http = report.get("http_client")
    if http:
        client, raw = http["client"], http["raw"]
        ok = (
            client["requests_per_second"] >= TARGETS["http_client_rps"]
            and client["p99_ms"] <= TARGETS["http_client_p99_ms"]
        )
        lines.append(
            f"- The workflow's HTTP client, 20 concurrent (median of 3): "
            f"{client['requests_per_second']:g}/s, p99 {client['p99_ms']:g} ms, "
            f"{client['client_cpu_us_per_request']:g} µs CPU a request; a bare aiohttp session "
            f"{raw['requests_per_second']:g}/s, p99 {raw['p99_ms']:g} ms (target ≥ 5,000/s, "
            f"p99 ≤ 5 ms: {verdict(ok)})."
        )
    return ["## Same-run baselines", "", *lines, ""] if lines else []


def _cpu_at_knee(report: dict[str, Any]) -> list[str]:
    steps = [w for w in report["knee"]["steps"] if w.get("sustained")]
    if not steps:
        return []
    w = steps[-1]
    total = w["cpu_ms_per_delivery_total"]
    return [
        "## Where the CPU goes (at the knee)",
        "",
        (
            f"{total:g} ms of CPU per scheduled delivery over all processes (target ≤ "
            f"{TARGETS['cpu_ms_per_delivery']:g} ms: "
            f"{verdict(total <= TARGETS['cpu_ms_per_delivery'])}): "
            + ", ".join(f"{k} {v:g}" for k, v in w["cpu_ms_per_delivery"].items())
            + ". Cores busy during the step: "
            + ", ".join(f"{k} {v:g}" for k, v in w["cpu_cores_by_process"].items())
            + "."
        ),
        "",
    ]


def _profiles(report: dict[str, Any]) -> list[str]:
    if not report.get("profiles"):
        return []
    lines = [
        "## Profiles (py-spy, share of samples by leaf frame; idle shows as the event loop)",
        "",
    ]
    for name, top in report["profiles"].items():
        lines.append(
            f"- **{name}** ({top['busy_share'][0][1]}% of samples busy) by library: "
            + "; ".join(f"{f} {p}%" for f, p in top["by_library"][:8])
            + ". Hottest frames: "
            + "; ".join(f"`{f}` {p}%" for f, p in top["self"][:5])
        )
    return [*lines, ""]


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Benchmark report",
        "",
        (
            f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram']} RAM, Python {m['python']}, "
            f"{m['platform']}. Run {m['date']}, {report['duration_s']:,.0f} s. "
            f"Settings: {report['settings']['summary']}."
        ),
        "",
    ]
    if "knee" in report:
        lines += [*_background(report), *_knee(report), *_checks(report), *_cpu_at_knee(report)]
    lines += [*_tracing(report), *_growth(report), *_baselines(report), *_profiles(report)]
    if "knee" in report:
        lines += [
            "## Plots",
            "",
            "![End-to-end latency over time, per step](latency.png)",
            "",
            "![Scheduled per second and p99 against the offered rate](throughput.png)",
            "",
            "![CPU per process per delivery](cpu.png)",
            "",
        ]
    return "\n".join(lines)
