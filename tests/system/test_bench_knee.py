"""The benchmark's knee search (``scripts/benchmark/knee.py``): which rates it tries, in which
order, and what it calls the knee, given which of them were sustained."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import bench_module

knee = bench_module("knee")


def plan(**changes: Any) -> Any:
    fields: dict[str, Any] = {
        "start": 50.0,
        "step": 25.0,
        "seconds": 30.0,
        "max_rate": 1000.0,
        "warmup": 0.0,
        "p99_limit_ms": 2000.0,
        "overload_factors": (),
        "overload_seconds": 30.0,
        "refine": 2,
    }
    return knee.Plan(**{**fields, **changes})


def walk(search_plan: Any, holds: Callable[[float], bool]) -> tuple[list[float], float | None]:
    """Every rate the search tries when a rate is sustained iff ``holds(rate)``, and the knee."""
    rates = knee.knee_rates(search_plan)
    tried: list[float] = []
    try:
        rate = next(rates)
        while True:
            tried.append(rate)
            rate = rates.send(holds(rate))
    except StopIteration as done:
        return tried, done.value


@pytest.mark.parametrize(
    ("capacity", "refine", "tried", "found"),
    [
        # Up by 25 until 75 fails, then 62 (fails) and 56 (holds): the knee within 6/s.
        (60, 2, [50, 75, 62, 56], 56),
        (60, 0, [50, 75], 50),
        (70, 2, [50, 75, 62, 68], 68),
        (75, 1, [50, 75, 100, 88], 75),
        # The first rate fails: down by the step, then up between it and the failure.
        (40, 2, [50, 25, 38, 44], 38),
        # Nothing holds down to the last positive rate: no knee, nothing refined.
        (10, 2, [50, 25], None),
    ],
)
def test_the_search_steps_up_then_halves_the_gap_above_the_knee(
    capacity: float, refine: int, tried: list[float], found: float | None
) -> None:
    rates, result = walk(plan(refine=refine), lambda rate: rate <= capacity)
    assert rates == tried
    assert result == found


def test_a_search_sustained_up_to_its_last_rate_has_nothing_to_refine() -> None:
    rates, result = walk(plan(max_rate=100.0), lambda rate: True)
    assert rates == [50, 75, 100]
    assert result == 100


def test_a_default_step_outlasts_nine_trips_in_ten_of_the_benchmark_fleet() -> None:
    fleet = bench_module("fleet")
    trips = fleet.trip_seconds(fleet.SPEEDUP, fleet.STOP_SECONDS)
    seconds = knee.step_seconds(trips)
    assert trips["p90"] <= seconds < trips["p90"] + 10
    assert seconds % 10 == 0
    # Short trips still get steps long enough to measure a rate.
    assert knee.step_seconds({"p90": 4.0}) == 30.0
