"""Trace context across the queue hop."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from dronetesting.apps import app_client
from dronetesting.samples import SAMPLE_REQUEST
from ingestion.main import create_app
from ingestion.settings import IngestionSettings

from .conftest import owned, queued

URL = "/api/deliveryrequests"


async def test_the_message_carries_the_request_trace(
    settings: IngestionSettings, redis_url: str, span_exporter: InMemorySpanExporter
) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    async with app_client(create_app(settings, configure_logs=False)) as client:
        response = await client.post(
            URL, json=SAMPLE_REQUEST, headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
        )
        cancel = await client.delete(f"{URL}/{await owned(redis_url)}")
    assert response.status_code == cancel.status_code == 202

    delivery, cancelled = await queued(redis_url)
    _, sent_trace_id, parent_span_id, _ = delivery.properties["traceparent"].split("-")
    assert sent_trace_id == trace_id
    assert delivery.properties["Diagnostic-Id"] == delivery.properties["traceparent"]
    # The message's parent is the service's PRODUCER span, a child of the request's SERVER span.
    spans = span_exporter.get_finished_spans()
    [producer] = [
        s
        for s in spans
        if s.kind is SpanKind.PRODUCER
        and (s.attributes or {}).get("dronedelivery.operation") == "delivery"
    ]
    assert producer.name == "deliveryrequests send"
    assert producer.context is not None
    assert f"{producer.context.span_id:016x}" == parent_span_id
    assert f"{producer.context.trace_id:032x}" == trace_id
    assert (producer.attributes or {}).get("messaging.message.id") == delivery.message_id
    [server] = [s for s in spans if s.kind is SpanKind.SERVER and s.name == "POST " + URL]
    assert producer.parent is not None
    assert server.context is not None
    assert producer.parent.span_id == server.context.span_id
    # A request without a traceparent starts its own trace, which the message carries too.
    assert cancelled.properties["traceparent"].split("-")[1] != trace_id
    assert cancelled.properties["Diagnostic-Id"] == cancelled.properties["traceparent"]
