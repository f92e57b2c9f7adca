"""One measured window: an open loop at a constant rate, then what became of every request.

The generator (its own process) POSTs at ``rate`` for ``seconds`` whatever the answers. Then the
window waits up to ``settle`` seconds for every accepted request to be scheduled (its delivery
record in the delivery service's store) and measures: answers by status, scheduled per second,
end-to-end latency (the 202's arrival to the record's creation, one clock), ingestion latency
(from the intended send time), CPU per process, and a per-second series for the plots.
"""

from __future__ import annotations

import collections
import contextlib
import subprocess
import time
from pathlib import Path
from typing import Any

from .checks import parse_time, wait_scheduled
from .common import loadavg, percentile, r, say
from .fleet import Sampler
from .load import OWNERS, run_child
from .profiling import start_profilers
from .stack import BenchStack, cpu_share

#: Requests answered 503 ``overloaded`` by ingestion's admission control (not an error).
OVERLOADED = "urn:dronedelivery:problem:overloaded"


def window(
    bench: BenchStack,
    *,
    label: str,
    rate: float,
    seconds: float,
    settle: float,
    sampler: Sampler | None = None,
    tokens: list[str] | None = None,
    origin: float | None = None,
    profile: Path | None = None,
) -> dict[str, Any]:
    """Measure one window; ``origin`` (wall time) is where the series' time axis starts."""
    url = bench.url("ingestion") + "/api/deliveryrequests"
    tokens = tokens if tokens is not None else bench.customer_tokens(OWNERS)
    load_before = loadavg()
    cpu_before = bench.cpu()
    started = time.monotonic()
    profilers = start_profilers(bench, seconds, profile) if profile else []
    spec = {"url": url, "rate": rate, "seconds": seconds, "tokens": tokens}
    gen = run_child("open", spec, timeout=seconds + 120)
    elapsed = time.monotonic() - started
    cpu_after = bench.cpu()
    for proc in profilers:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)

    results = gen["results"]
    statuses: collections.Counter[str] = collections.Counter(str(item[2]) for item in results)
    accepted = [item for item in results if item[2] == 202]
    ids = [item[3] for item in accepted]
    answered = {item[3]: item[1] for item in accepted}
    ingestion = sorted(item[0] for item in accepted)
    refusals = [item for item in results if item[2] == 503 and item[3] == OVERLOADED]
    refused = sorted(item[0] for item in refusals)
    records, _ = wait_scheduled(bench, ids, settle)
    cpu_settled = bench.cpu()

    created = {
        delivery_id: parse_time(str(record.get("created_at") or record.get("createdAt")))
        for delivery_id, record in records.items()
        if record.get("drone_id", record.get("droneId"))
    }
    e2e = sorted(created[k] - answered[k] for k in created)
    start = gen["wall_start"]
    end = start + seconds
    in_window = sum(1 for t in created.values() if start <= t <= end)
    second_half = sum(1 for t in created.values() if start + seconds / 2 <= t <= end)
    scheduled = len(created)
    per_delivery = {
        name: r((cpu_settled.get(name, 0.0) - cpu_before.get(name, 0.0)) * 1e3 / max(1, scheduled))
        for name in cpu_settled
    }
    per_delivery = dict(sorted(per_delivery.items(), key=lambda kv: -kv[1]))
    cores = cpu_share(cpu_before, cpu_after, elapsed)
    late = len(accepted) - scheduled
    result: dict[str, Any] = {
        "label": label,
        "offered_rate": rate,
        "seconds": seconds,
        "wall_start": start,
        "requests": len(results),
        "statuses": dict(statuses),
        "accepted": len(accepted),
        "rejected_503": len(refusals),
        "errors": len(results) - len(accepted) - len(refusals),
        "error_kinds": dict(
            collections.Counter(
                f"{item[2]} {item[3]}"
                for item in results
                if item[2] != 202 and not (item[2] == 503 and item[3] == OVERLOADED)
            ).most_common(5)
        ),
        "scheduled": scheduled,
        "late": late,
        "duplicate_ids": len(ids) - len(set(ids)),
        "scheduled_per_s_window": r(in_window / seconds),
        "scheduled_per_s_second_half": r(second_half / (seconds / 2)),
        "e2e_p50_ms": r(percentile(e2e, 0.5) * 1e3),
        "e2e_p99_ms": r(percentile(e2e, 0.99) * 1e3),
        "e2e_max_ms": r((e2e[-1] if e2e else float("nan")) * 1e3),
        "ingestion_p50_ms": r(percentile(ingestion, 0.5) * 1e3, 2),
        "ingestion_p99_ms": r(percentile(ingestion, 0.99) * 1e3, 2),
        "refused_p99_ms": r(percentile(refused, 0.99) * 1e3, 2),
        "generator_send_lag_p99_ms": r(gen["send_lag_p99_ms"], 2),
        "cpu_cores_by_process": cores,
        "cpu_cores_total": r(sum(cores.values()), 2),
        "cpu_ms_per_delivery": per_delivery,
        "cpu_ms_per_delivery_total": r(sum(per_delivery.values()), 2),
        "load_average_before": load_before,
        "series": _series(answered, created, origin if origin is not None else start),
        "_ids": ids,
    }
    if sampler is not None:
        result.update(sampler.summary(start, end))
    return result


def fixed_rate(
    bench: BenchStack, *, label: str, rate: float, seconds: float, warmup: float
) -> dict[str, Any]:
    """On a fresh stack: ``warmup`` seconds at ``rate`` (pools, caches, drones in the air), then
    the measured window; its result without the ids and the series."""
    tokens = bench.customer_tokens(OWNERS)
    if warmup > 0:
        window(bench, label="warm-up", rate=rate, seconds=warmup, settle=30, tokens=tokens)
    result = window(bench, label=label, rate=rate, seconds=seconds, settle=60, tokens=tokens)
    result.pop("_ids")
    result.pop("series")
    say(progress(result))
    return result


def _series(
    answered: dict[str, float], created: dict[str, float], origin: float
) -> list[list[float]]:
    """Per second of acceptance: ``[t (s from origin), scheduled, p50 ms, p99 ms]``."""
    buckets: dict[int, list[float]] = collections.defaultdict(list)
    for delivery_id, at in created.items():
        buckets[int(answered[delivery_id] - origin)].append(at - answered[delivery_id])
    series = []
    for second in sorted(buckets):
        values = sorted(buckets[second])
        series.append(
            [
                float(second),
                float(len(values)),
                r(percentile(values, 0.5) * 1e3),
                r(percentile(values, 0.99) * 1e3),
            ]
        )
    return series


def sustained(result: dict[str, Any], p99_limit_ms: float) -> bool:
    """Every request accepted and scheduled in time, end-to-end p99 within the limit."""
    return bool(
        result["requests"] > 0
        and result["accepted"] == result["requests"]
        and result["late"] == 0
        and result["duplicate_ids"] == 0
        and result["e2e_p99_ms"] <= p99_limit_ms
    )


def progress(result: dict[str, Any]) -> str:
    """The line a window prints when it ends."""
    air = result.get("drones_in_air_mean")
    return (
        f"{result['label']}: {result['offered_rate']:g}/s offered → "
        f"{result['scheduled_per_s_window']:g}/s scheduled, e2e p99 "
        f"{result['e2e_p99_ms']:g} ms, ingestion p99 {result['ingestion_p99_ms']:g} ms, "
        f"lost/late {result['late']}, refused {result['rejected_503']}, errors "
        f"{result['errors']}, CPU {result['cpu_cores_total']:g} cores "
        f"({result['cpu_ms_per_delivery_total']:g} ms/delivery)"
        + (f", drones in the air {air:,.0f}" if air is not None else "")
    )
