"""Library spans only inside sampled work (``traced_only_if_sampled``): a request or a queue
message whose span is not sampled runs with the Redis and PyMongo instrumentation suppressed, a
sampled one keeps its child spans; the HTTP server metrics without
``http.server.active_requests``; and, without instrumentation, the caller's ``traceparent``
attached for the request (``TraceContextMiddleware``)."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import APIRouter, FastAPI, Request
from opentelemetry import trace
from opentelemetry.instrumentation.utils import is_instrumentation_enabled
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from dronecommon.messaging import ReceivedMessage
from dronecommon.messaging.redis_streams import RedisStreamSender
from dronecommon.telemetry import (
    ACTIVE_REQUESTS,
    TraceContextMiddleware,
    instrument_libraries,
    server_telemetry,
)
from dronetesting.apps import app_client

from .redis_queue import QUEUE, message, receiver, running, wait_until
from .test_app import make_app
from .test_telemetry_metrics import points

SAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
NOT_SAMPLED = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


def counting_router(seen: list[bool]) -> APIRouter:
    """``POST /count``: one Redis INCR (INCRBY on the wire); ``seen`` gets whether the
    instrumentation was on."""
    router = APIRouter()

    @router.post("/count")
    async def count(request: Request) -> dict[str, int]:
        seen.append(is_instrumentation_enabled())
        return {"count": await request.state.redis.incr("counted")}

    return router


def trace_ids(exporter: InMemorySpanExporter, name: str) -> set[str]:
    return {
        f"{span.context.trace_id:032x}"
        for span in exporter.get_finished_spans()
        if span.name == name and span.context is not None
    }


async def test_a_request_not_sampled_makes_no_library_spans(
    redis_url: str, span_exporter: InMemorySpanExporter
) -> None:
    instrument_libraries()
    seen: list[bool] = []
    async with app_client(make_app(redis_url, counting_router(seen))) as client:
        for traceparent in (SAMPLED, NOT_SAMPLED):
            response = await client.post("/count", headers={"traceparent": traceparent})
            assert response.status_code == 200
    assert seen == [True, False]
    assert trace_ids(span_exporter, "INCRBY") == {SAMPLED.split("-")[1]}
    assert trace_ids(span_exporter, "POST /count") == {SAMPLED.split("-")[1]}


async def test_a_message_not_sampled_is_handled_without_library_spans(
    redis_url: str, redis: Redis, sender: RedisStreamSender, span_exporter: InMemorySpanExporter
) -> None:
    instrument_libraries()
    seen: dict[str, bool] = {}

    async def handle(msg: ReceivedMessage) -> None:
        seen[msg.message_id] = is_instrumentation_enabled()
        await redis.incr(f"handled:{msg.message_id}")
        await msg.complete()

    await sender.send(message("sampled", traceparent=SAMPLED))
    await sender.send(message("unsampled", traceparent=NOT_SAMPLED))
    async with running(receiver(redis_url), handle):
        await wait_until(lambda: len(seen) == 2)
    assert seen == {"m-sampled": True, "m-unsampled": False}
    assert trace_ids(span_exporter, "INCRBY") == {SAMPLED.split("-")[1]}
    assert trace_ids(span_exporter, f"{QUEUE} process") == {SAMPLED.split("-")[1]}


async def test_active_requests_are_not_recorded_and_durations_are() -> None:
    reader = InMemoryMetricReader()
    app = FastAPI(
        telemetry=server_telemetry(
            instrumented=True, meter_provider=MeterProvider(metric_readers=[reader])
        )
    )

    @app.get("/ping")
    async def ping() -> dict[str, bool]:
        return {"ok": True}

    async with app_client(app) as client:
        for _ in range(3):
            assert (await client.get("/ping")).status_code == 200

    found = points(reader)
    assert ACTIVE_REQUESTS not in found
    [series] = found["http.server.request.duration"]
    assert series.count == 3


async def test_trace_context_middleware_attaches_the_callers_trace() -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        context = trace.get_current_span().get_span_context()
        seen.append(f"{context.trace_id:032x}" if context.is_valid else "none")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    app = TraceContextMiddleware(inner)
    trace_id = "5bf92f3577b34da6a3ce929d0e0e4736"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        await client.get("/", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"})
        await client.get("/")
    assert seen == [trace_id, "none"]
    assert not trace.get_current_span().get_span_context().is_valid  # detached afterwards
