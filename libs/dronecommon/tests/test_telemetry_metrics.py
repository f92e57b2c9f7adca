"""FastAPI's server telemetry as configured by ``server_telemetry``: the stable conventions'
duration histogram, one series per route and status — never one per delivery id; nothing at all
when not instrumented, whatever provider the process installed."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dronecommon.telemetry import server_telemetry
from dronetesting.apps import app_client


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """Every data point read, by metric name."""
    found: dict[str, list[Any]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


async def test_request_durations_are_kept_per_route_and_status_not_per_path() -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    app = FastAPI(telemetry=server_telemetry(instrumented=True, meter_provider=provider))

    @app.get("/api/deliveries/{delivery_id}")
    async def read(delivery_id: str) -> dict[str, str]:
        return {"id": delivery_id}

    async with app_client(app) as client:
        for n in range(5):
            assert (await client.get(f"/api/deliveries/d-{n}")).status_code == 200
        await client.get("/healthz")  # a probe: not measured (and not a route here)

    found = points(reader)
    assert "http.server.duration" not in found  # the old name, keyed by the full target
    [series] = found["http.server.request.duration"]
    assert series.count == 5
    attributes = dict(series.attributes)
    assert attributes["http.route"] == "/api/deliveries/{delivery_id}"
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    assert not [value for value in attributes.values() if "d-" in str(value)]


async def test_an_app_not_instrumented_records_nothing_even_with_a_provider_installed(
    span_exporter: InMemorySpanExporter,
) -> None:
    app = FastAPI(telemetry=server_telemetry(instrumented=False))

    @app.get("/things/{thing_id}")
    async def read(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    async with app_client(app) as client:
        assert (await client.get("/things/t-1")).status_code == 200
    assert not [s for s in span_exporter.get_finished_spans() if s.name.endswith("{thing_id}")]
