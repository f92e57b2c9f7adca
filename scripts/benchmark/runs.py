"""The same-run baselines: status reads against a bare uvicorn app, the outbound HTTP client
(against a bare aiohttp session)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import HTTP_BENCH, loadavg
from .load import run_child, server_child
from .profiling import py_spy
from .stack import BenchStack, cpu_share


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
