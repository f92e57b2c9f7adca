"""The knee and beyond: step the offered rate up until it is no longer sustained, then overload.

- **Warm-up**: ``warmup`` seconds at the first rate (fills the sky with drones, warms pools).
- **Steps**: ``start``, ``start + step``, ... each for ``seconds`` (by default as long as nine
  trips in ten: :func:`step_seconds`). A step is *sustained* when
  every request was accepted, every accepted one scheduled (within its settle time) and the
  end-to-end p99 is within ``p99_limit``. The first step that is not ends the search; the knee
  is the highest sustained rate. When the very first step is not sustained the search goes down
  by ``step`` instead (a machine slower than the start rate still gets a knee), and the first
  sustained rate below it is the knee.
- **Refining**: the knee lies between the highest sustained rate and the lowest one above it that
  was not; ``refine`` more steps halve that gap each (the midpoint, rounded), so with 25/s steps
  the knee is known within about 6/s rather than 25/s.
- **Overload**: each factor x the knee (1.5 and 2 by default) for ``overload_seconds``, the queue
  drained before each. Goodput is what is scheduled per second; with admission control the
  refused requests (503 ``overloaded``) are answered at once and nothing accepted is lost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import r, say
from .fleet import Sampler
from .stack import BenchStack
from .windows import progress, sustained, window


@dataclass(frozen=True)
class Plan:
    start: float
    step: float
    seconds: float
    max_rate: float
    warmup: float
    p99_limit_ms: float
    overload_factors: Sequence[float]
    overload_seconds: float
    refine: int


def step_seconds(trips: dict[str, float]) -> float:
    """How long a knee step lasts by default: as long as nine trips in ten, rounded up to 10 s.

    A delivery's work does not end when it is scheduled: its drone confirms it at the drop-off
    and is released at home a trip later. In a step shorter than the trips, that work falls into
    the next step, and a rate looks sustained that is not once its drones come home as fast as
    they leave (30 s steps with 63 s trips put the knee at 75/s while 68/s was all the system
    held with the fleet in steady state). By the end of a step this long, most of what it
    scheduled is also done.
    """
    return max(30.0, math.ceil(trips["p90"] / 10) * 10)


def wait_drained(bench: BenchStack, timeout: float) -> float:
    """Wait until the queue holds nothing (every message handled); the seconds waited."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=bench.config.redis_port)
    began = time.monotonic()
    try:
        while time.monotonic() - began < timeout:
            if not client.xlen("queue:{deliveryrequests}"):
                break
            time.sleep(0.25)
    finally:
        client.close()
    return time.monotonic() - began


def knee_rates(plan: Plan) -> Generator[float, bool, float | None]:
    """The rates to try, in order: each is sent back whether it was sustained; returns the knee.

    Up from ``start`` by ``step`` until a rate is not sustained (down instead while the first
    is not), then ``refine`` midpoints between the knee and the lowest failed rate above it."""
    knee: float | None = None
    failed: list[float] = []
    descending = False
    tried = 0
    rate = plan.start
    while rate <= plan.max_rate + 1e-9:
        tried += 1
        if not (yield rate):
            failed.append(rate)
            if knee is None and rate - plan.step > 0 and (descending or tried == 1):
                descending = True
                rate -= plan.step
                continue
            break
        knee = rate
        if descending:
            break
        rate += plan.step
    if knee is None:
        return None
    low, high = knee, min((rate for rate in failed if rate > knee), default=knee)
    for _ in range(plan.refine):
        middle = float(round((low + high) / 2))
        if not low < middle < high:
            break
        if (yield middle):
            low = knee = middle
        else:
            high = middle
    return knee


def search(
    bench: BenchStack,
    plan: Plan,
    sampler: Sampler,
    *,
    origin: float,
    keep: Callable[[dict[str, Any]], None],
    profile: Path | None = None,
) -> dict[str, Any]:
    """Warm-up, the steps, a profiled window at the knee (``profile``), the overload runs.

    ``keep`` receives every window (its ids among them) as soon as it is measured."""
    tokens = bench.customer_tokens(50)
    settle = max(10.0, 3 * plan.p99_limit_ms / 1e3)

    def run(label: str, rate: float, seconds: float, **extra: Any) -> dict[str, Any]:
        result = window(
            bench,
            label=label,
            rate=rate,
            seconds=seconds,
            settle=extra.pop("settle", settle),
            sampler=sampler,
            tokens=tokens,
            origin=origin,
            **extra,
        )
        keep(result)
        say(progress(result))
        return result

    warmup = run("warm-up", plan.start, plan.warmup) if plan.warmup > 0 else None
    steps: list[dict[str, Any]] = []

    def step(rate: float) -> bool:
        wait_drained(bench, 60)
        result = run(f"step {len(steps) + 1}", rate, plan.seconds)
        result["sustained"] = sustained(result, plan.p99_limit_ms)
        steps.append(result)
        return bool(result["sustained"])

    rates = knee_rates(plan)
    knee: float | None = None
    try:
        rate = next(rates)
        while True:
            rate = rates.send(step(rate))
    except StopIteration as done:
        knee = done.value
    say(f"knee: {knee:g}/s sustained" if knee is not None else "knee: no step was sustained")
    profiled = None
    if profile is not None:
        wait_drained(bench, 60)
        profiled = run("profiled", knee or plan.start, plan.seconds, profile=profile)
    overload: list[dict[str, Any]] = []
    base = knee or plan.start
    for factor in plan.overload_factors:
        wait_drained(bench, 120)
        result = run(f"overload {factor:g}x", base * factor, plan.overload_seconds, settle=60.0)
        result["factor"] = factor
        result["goodput_vs_knee"] = r(result["scheduled_per_s_window"] / base, 3)
        result["goodput_second_half_vs_knee"] = r(result["scheduled_per_s_second_half"] / base, 3)
        overload.append(result)
    return {
        "knee": knee,
        "warmup": warmup,
        "steps": steps,
        "profiled": profiled,
        "overload": overload,
    }
