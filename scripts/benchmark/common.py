"""What every part of the benchmark uses: paths, percentiles, the load average, progress lines."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "scripts" / "bench.py"  # the command; load generators run as its children
REPORTS = ROOT / "reports" / "bench"
HTTP_BENCH = ROOT / "libs" / "dronecommon" / "benchmarks" / "bench_http_client.py"


def percentile(ordered: Sequence[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def r(value: float, digits: int = 1) -> float:
    return round(value, digits) if value == value else value  # NaN stays NaN


def loadavg() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def say(text: str) -> None:
    sys.stdout.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stdout.flush()
