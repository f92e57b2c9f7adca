"""Trace context across the queue hop, and bearer-token auth on the routes."""

from __future__ import annotations

import uuid

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from dronetesting.apps import app_client
from dronetesting.problems import assert_problem
from dronetesting.samples import SAMPLE_REQUEST
from dronetesting.tokens import LocalIssuer
from ingestion.main import create_app
from ingestion.settings import IngestionSettings

from .conftest import make_settings, queued

URL = "/api/deliveryrequests"


async def test_the_message_carries_the_request_trace(
    settings: IngestionSettings, redis_url: str, span_exporter: InMemorySpanExporter
) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    async with app_client(create_app(settings, configure_logs=False)) as client:
        response = await client.post(
            URL, json=SAMPLE_REQUEST, headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
        )
        cancel = await client.delete(f"{URL}/{uuid.uuid4()}")
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


async def test_routes_need_a_token_when_auth_is_on(redis_url: str, dev_issuer: LocalIssuer) -> None:
    settings = make_settings(redis_url, auth=dev_issuer.settings)
    async with app_client(create_app(settings, configure_logs=False)) as client:
        for response in (
            await client.post(URL, json=SAMPLE_REQUEST),
            await client.delete(f"{URL}/{uuid.uuid4()}"),
            await client.patch(f"{URL}/{uuid.uuid4()}", json={"deadline": "x"}),
            await client.post(
                URL, json=SAMPLE_REQUEST, headers={"Authorization": "Bearer nonsense"}
            ),
        ):
            assert_problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")
        assert await queued(redis_url) == []

        accepted = await client.post(URL, json=SAMPLE_REQUEST, headers=dev_issuer.headers())
        assert accepted.status_code == 202, accepted.text
        cancelled = await client.delete(f"{URL}/{uuid.uuid4()}", headers=dev_issuer.headers())
        assert cancelled.status_code == 202
        # Health stays public.
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200
    assert len(await queued(redis_url)) == 2


async def test_idempotency_keys_belong_to_their_caller(
    redis_url: str, dev_issuer: LocalIssuer
) -> None:
    settings = make_settings(redis_url, auth=dev_issuer.settings)
    alice = dev_issuer.headers(azp="alice-app") | {"Idempotency-Key": "shared-key"}
    bob = dev_issuer.headers(azp="bob-app") | {"Idempotency-Key": "shared-key"}
    async with app_client(create_app(settings, configure_logs=False)) as client:
        first = await client.post(URL, json=SAMPLE_REQUEST, headers=alice)
        other_caller = await client.post(
            URL, json={**SAMPLE_REQUEST, "ownerId": "bob"}, headers=bob
        )
        replay = await client.post(URL, json=SAMPLE_REQUEST, headers=alice)
    assert first.status_code == other_caller.status_code == replay.status_code == 202
    assert replay.content == first.content
    assert other_caller.json()["deliveryId"] != first.json()["deliveryId"]
    assert len(await queued(redis_url)) == 2


def test_the_routes_document_401_and_403(dev_issuer: LocalIssuer) -> None:
    app = create_app(
        make_settings("redis://unused", auth=dev_issuer.settings), configure_logs=False
    )
    paths = app.openapi()["paths"]
    for operation in (paths[URL]["post"], paths[URL + "/{deliveryId}"]["delete"]):
        assert {"401", "403"} <= set(operation["responses"])
    assert "401" not in paths["/healthz"]["get"]["responses"]
