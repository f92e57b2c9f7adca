"""The benchmark's tracing rows (``scripts/benchmark/tracing.py``): rounds of the same rows,
interleaved, combine into one row each, a ratio being the mean of each round's against that
round's own ``off`` row."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import bench_module

tracing = bench_module("tracing")
report = bench_module("report")


def window(scheduled: float, cpu: float, *, p99: float = 100.0, refused: int = 0) -> dict[str, Any]:
    return {
        "label": "a row",
        "offered_rate": 75.0,
        "seconds": 25.0,
        "scheduled_per_s_window": scheduled,
        "cpu_ms_per_delivery_total": cpu,
        "rejected_503": refused,
        "e2e_p99_ms": p99,
        "ingestion_p99_ms": p99 / 10,
        "cpu_ms_per_delivery": {"delivery": cpu / 2, "redis": cpu / 2},
    }


def test_ratios_are_the_mean_of_each_rounds_against_its_own_off_row() -> None:
    # The machine ran 20 % faster in the second round: both rows with it.
    runs = {
        "off": [window(100, 20), window(120, 16)],
        "default": [window(80, 25), window(102, 20, p99=900, refused=10)],
    }
    rows = tracing.combine_rounds(runs)
    default = rows["default"]
    assert default["goodput_vs_off_rounds"] == [0.8, 0.85]
    assert default["goodput_vs_off"] == pytest.approx(0.825)
    assert default["cpu_per_delivery_vs_off_rounds"] == [1.25, 1.25]
    assert default["cpu_per_delivery_vs_off"] == pytest.approx(1.25)
    # Rates and CPU averaged, the worst p99, every round kept.
    assert default["scheduled_per_s_window"] == 91
    assert default["cpu_ms_per_delivery_total"] == 22.5
    assert default["rejected_503"] == 5
    assert default["e2e_p99_ms"] == 900
    assert default["cpu_ms_per_delivery"] == {"delivery": 11.25, "redis": 11.25}
    assert [r["scheduled_per_s_window"] for r in default["rounds"]] == [80, 102]
    assert rows["off"]["goodput_vs_off"] == 1.0
    # The report shows the mean with each round's.
    text = "\n".join(
        report._tracing(
            {"tracing": {"ratio": 0.1, "rate": 75, "seconds": 25, "rounds": 2, "rows": rows}}
        )
    )
    assert "| 0.825 (0.8, 0.85) |" in text
    assert "ran 2 times, interleaved" in text


def test_one_round_is_reported_as_measured() -> None:
    rows = tracing.combine_rounds({"off": [window(90, 20)], "all": [window(45, 40)]})
    assert rows["all"]["goodput_vs_off"] == 0.5
    text = "\n".join(
        report._tracing({"tracing": {"ratio": 0.1, "rate": 75, "seconds": 25, "rows": rows}})
    )
    assert "| 0.5 |" in text
    assert "Ratios against the `off` row of this run." in text


def test_a_target_is_met_only_when_the_off_row_was_saturated_in_every_round() -> None:
    # Round 1: `off` kept up (refused nothing), so 0.95 only bounds the ratio from above.
    runs = {
        "off": [window(100, 20), window(110, 18, refused=300)],
        "default": [window(95, 21, refused=5), window(90, 21, refused=400)],
    }
    rows = tracing.combine_rounds(runs)
    assert rows["off"]["saturated_rounds"] == [False, True]
    assert rows["default"]["saturated_rounds"] == [True, True]
    spec = {"ratio": 0.1, "rate": 75, "seconds": 25, "rounds": 2, "rows": rows}
    text = "\n".join(report._tracing({"tracing": spec}))
    assert "not measured (`off` refused nothing in a round" in text
    assert "pass" not in text
    # Both rounds saturated: the verdict stands.
    runs["off"][0] = window(100, 20, refused=250)
    spec["rows"] = tracing.combine_rounds(runs)
    text = "\n".join(report._tracing({"tracing": spec}))
    assert "≥ 0.75x off: pass" in text
    # A ratio under the target fails whether or not `off` was saturated: it can only be lower.
    runs["off"][0] = window(200, 20)
    spec["rows"] = tracing.combine_rounds(runs)
    assert "≥ 0.75x off: FAIL" in "\n".join(report._tracing({"tracing": spec}))
