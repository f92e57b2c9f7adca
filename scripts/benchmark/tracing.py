"""The cost of tracing: the same load on fresh stacks, four ways.

- ``off``: no exporter, nothing instrumented (an inbound ``traceparent`` is still honoured);
- ``default``: the charts' default, parent-based ratio sampling at the charts' ratio, OTLP/HTTP;
- ``all``: every span recorded and exported (ratio 1), OTLP/HTTP;
- ``azure-monitor``: the Azure Monitor distro at the charts' ratio (its own sampler: one
  decision per trace id, the same in every service).

Exports go to a local sink (``load.serve_sink``) that reads and discards them, so the rows
measure what the services pay. The Azure Monitor row's connection string points at that sink
(``IngestionEndpoint=http://127.0.0.1:<port>/``); statsbeat, live metrics and offline storage
are off (the services' defaults) and only the environment's resource detector runs (no Azure VM
metadata lookup), so nothing leaves the machine. Each row is offered the same rate, well above
what the system sustains (admission control keeps the backlog bounded), so its goodput is its
capacity: the ratios against the ``off`` row are the throughput tracing costs. That holds only
for a round whose rows refused requests: an ``off`` row that refused nothing kept up, its
capacity is above the offered rate, and the ratios against it are upper bounds, which the report
does not count as meeting a target (``saturated_rounds``). The rows run ``--tracing-rounds``
times, interleaved; a row's ratio is the mean of its rounds' ratios.
"""

from __future__ import annotations

import re
from pathlib import Path
from statistics import mean
from typing import Any

from dronetesting.stack import SERVICE_PORTS

from .common import ROOT, r, say
from .stack import BenchStack
from .windows import fixed_rate

ROWS = ("off", "default", "all", "azure-monitor")
#: Where the charts set the production sampling ratio (the same in every chart).
CHART_VALUES = ROOT / "charts" / "ingestion" / "values.yaml"
FALLBACK_RATIO = 0.1


def chart_sampling_ratio() -> float:
    """The sampling ratio every chart sets (``<PREFIX>TELEMETRY__SAMPLING_RATIO``)."""
    found = re.search(
        r'^\s*INGESTION_TELEMETRY__SAMPLING_RATIO:\s*"?([0-9.]+)"?',
        CHART_VALUES.read_text(),
        re.MULTILINE,
    )
    return float(found.group(1)) if found else FALLBACK_RATIO


def sampling_env(ratio: float) -> dict[str, str]:
    return {f"{name.upper()}_TELEMETRY__SAMPLING_RATIO": f"{ratio:g}" for name in SERVICE_PORTS}


def row_env(row: str, ratio: float, sink_port: int) -> dict[str, str]:
    """The environment of a row (added to every service's)."""
    none = {"OTEL_EXPORTER_OTLP_ENDPOINT": "", "APPLICATIONINSIGHTS_CONNECTION_STRING": ""}
    otlp = {
        **none,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_METRIC_EXPORT_INTERVAL": "10000",
    }
    if row == "off":
        return none
    if row == "default":
        return {**otlp, **sampling_env(ratio)}
    if row == "all":
        return {**otlp, **sampling_env(1.0)}
    if row == "azure-monitor":
        connection = (
            "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            f"IngestionEndpoint=http://127.0.0.1:{sink_port}/;"
            f"LiveEndpoint=http://127.0.0.1:{sink_port}/"
        )
        return {
            **none,
            "APPLICATIONINSIGHTS_CONNECTION_STRING": connection,
            "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
            **sampling_env(ratio),
        }
    raise ValueError(row)


def tracing_rows(
    *,
    base_env: dict[str, str],
    rows: tuple[str, ...],
    ratio: float,
    sink_port: int,
    rate: float,
    seconds: float,
    warmup: float,
    rounds: int,
    workflow_replicas: int,
    log: Path,
) -> dict[str, Any]:
    """Every row on a fresh stack, ``rounds`` times over, the rows interleaved (off, default, …,
    then again): the VM's speed drifts by tens of percent within minutes, and a row measured
    once beside an ``off`` row measured a minute earlier carries that drift in its ratio."""
    runs: dict[str, list[dict[str, Any]]] = {row: [] for row in rows}
    for number in range(1, rounds + 1):
        for row in rows:
            env = {**base_env, **row_env(row, ratio, sink_port)}
            say(
                f"tracing {row} (round {number}/{rounds}): fresh stack, {rate:g}/s for "
                f"{seconds:g} s (after {warmup:g} s)"
            )
            with BenchStack(
                label=f"trace-{row}", workflow_replicas=workflow_replicas, env=env, log=log
            ) as bench:
                runs[row].append(
                    fixed_rate(
                        bench, label=f"tracing {row}", rate=rate, seconds=seconds, warmup=warmup
                    )
                )
    return {
        "ratio": ratio,
        "rate": rate,
        "seconds": seconds,
        "rounds": rounds,
        "rows": combine_rounds(runs),
    }


def combine_rounds(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each row's rounds as one: rates, refusals and CPU averaged, the worst p99s, and the ratios
    to ``off`` as the mean of each round's against that round's own ``off`` (``*_rounds``: each
    round's). Only what is combined is at the top; every round's window is under ``rounds``."""
    off = runs.get("off")
    combined: dict[str, dict[str, Any]] = {}
    for row, results in runs.items():
        first = results[0]
        row_result: dict[str, Any] = {
            "label": first["label"],
            "offered_rate": first["offered_rate"],
            "seconds": first["seconds"],
            "rounds": results,
        }
        for key in ("scheduled_per_s_window", "cpu_ms_per_delivery_total", "rejected_503"):
            row_result[key] = r(mean(result[key] for result in results), 1)
        for key in ("e2e_p99_ms", "ingestion_p99_ms"):
            row_result[key] = max(result[key] for result in results)
        # A round whose row refused nothing kept up: its goodput is not its capacity.
        row_result["saturated_rounds"] = [result["rejected_503"] > 0 for result in results]
        processes = {name for result in results for name in result["cpu_ms_per_delivery"]}
        row_result["cpu_ms_per_delivery"] = {
            name: r(mean(result["cpu_ms_per_delivery"].get(name, 0.0) for result in results), 2)
            for name in sorted(processes)
        }
        if off:
            for key, field in (
                ("goodput_vs_off", "scheduled_per_s_window"),
                ("cpu_per_delivery_vs_off", "cpu_ms_per_delivery_total"),
            ):
                per_round = [
                    result[field] / max(1e-9, baseline[field])
                    for result, baseline in zip(results, off, strict=True)
                ]
                row_result[f"{key}_rounds"] = [r(value, 3) for value in per_round]
                row_result[key] = r(mean(per_round), 3)
        combined[row] = row_result
    return combined
