"""Cost as work grows: the same fixed rate on fresh stacks as the work behind it grows.

Three rows, each on a fresh stack (tracing as in the main run) that is seeded first with past,
completed deliveries (``benchmark.past``: every record a completed delivery leaves in the stores),
then warmed up and measured at one offered rate (by default 0.8 x the knee: below capacity, so
the rows compare cost, not saturation):

- **base**: 1 workflow replica, ``small`` past deliveries;
- **2 replicas**: 2 workflow replicas, ``small`` past deliveries (what a second replica costs);
- **large**: 1 workflow replica, ``large`` past deliveries (what a fuller store costs).

Each row reports the offered and scheduled rate, the CPU per delivery (every process, and the
total), the end-to-end p99 and how long seeding took; the last two rows also as ratios against
the base row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import r, say
from .past import seed
from .stack import BenchStack
from .windows import fixed_rate

#: Past deliveries of the base row (and of the replicas row).
SMALL_PAST = 10_000


def rows_of(small: int, large: int) -> list[tuple[str, int, int]]:
    """(label, workflow replicas, past deliveries) of each row."""
    return [
        (f"1 replica, {small:,} past", 1, small),
        (f"2 replicas, {small:,} past", 2, small),
        (f"1 replica, {large:,} past", 1, large),
    ]


def growth_rows(
    *,
    env: dict[str, str],
    rate: float,
    seconds: float,
    warmup: float,
    large: int,
    small: int = SMALL_PAST,
    log: Path,
) -> dict[str, Any]:
    measured: list[dict[str, Any]] = []
    for n, (label, replicas, past) in enumerate(rows_of(small, large)):
        say(
            f"growth {label}: fresh stack, {past:,} past deliveries, {rate:g}/s for "
            f"{seconds:g} s (after {warmup:g} s)"
        )
        with BenchStack(label=f"growth-{n}", workflow_replicas=replicas, env=env, log=log) as bench:
            seeded = seed(bench.config, past)
            result = fixed_rate(bench, label=label, rate=rate, seconds=seconds, warmup=warmup)
        result.update(
            workflow_replicas=replicas, past_deliveries=past, seeding_seconds=seeded["seconds"]
        )
        measured.append(result)
    base = measured[0]
    for result in measured:
        result["cpu_per_delivery_vs_base"] = r(
            result["cpu_ms_per_delivery_total"] / max(1e-9, base["cpu_ms_per_delivery_total"]), 3
        )
        result["e2e_p99_vs_base"] = r(result["e2e_p99_ms"] / max(1e-9, base["e2e_p99_ms"]), 3)
    return {"rate": rate, "seconds": seconds, "warmup": warmup, "rows": measured}
