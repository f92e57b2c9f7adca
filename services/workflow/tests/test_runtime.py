"""The process around the consumer: health, readiness, outbound tokens, tracing, shutdown, the
committed OpenAPI document, and ``python -m workflow`` run as a user would."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from dronecommon.auth.inbound import Authenticator
from dronetesting.apps import wait_ready
from dronetesting.openapi import assert_openapi_current
from dronetesting.servers import free_port
from dronetesting.tokens import LocalIssuer
from workflow.main import create_app
from workflow.settings import WorkflowAuthSettings, WorkflowSettings

from .conftest import (
    FakeBackends,
    Harness,
    delivery_body,
    message,
    run_workflow,
    wait_until,
    workflow_settings,
)

SERVICE_DIR = Path(__file__).resolve().parents[1]


def test_openapi_document_is_current() -> None:
    settings = WorkflowSettings(auth=WorkflowAuthSettings(enabled=False))
    assert_openapi_current(create_app(settings, configure_logs=False), SERVICE_DIR / "openapi.json")


def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKFLOW_QUEUE__MAX_CONCURRENCY", "4")
    monkeypatch.setenv("WORKFLOW_DELIVERY_URL", "http://delivery:8080")
    loaded = WorkflowSettings()
    assert loaded.port == 8005
    assert loaded.queue.max_concurrency == 4
    # Setting one queue variable keeps the workflow's other queue defaults.
    assert (loaded.queue.prefetch, loaded.queue.lock_duration) == (64, 30.0)
    assert loaded.delivery_url == "http://delivery:8080"
    assert loaded.package_url == "http://127.0.0.1:8003"
    assert loaded.dronescheduler_url == "http://127.0.0.1:8004"


async def test_health_and_readiness(workflow: Harness) -> None:
    health = await workflow.client.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = await workflow.client.get("/readyz")
    assert ready.status_code == 200
    body = ready.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {
        "queue",
        "redis",
        "receiver",
        "package",
        "dronescheduler",
        "delivery",
    }
    unknown = await workflow.client.get("/api/deliveryrequests")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


async def test_not_ready_when_redis_is_down(fake: FakeBackends) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    settings = workflow_settings(closed, fake.url, redis={"url": closed, "socket_timeout": 0.5})
    async with run_workflow(settings) as workflow:
        ready = await workflow.client.get("/readyz")
    assert ready.status_code == 503
    problem = ready.json()
    assert ready.headers["content-type"] == "application/problem+json"
    assert problem["status"] == 503
    assert problem["checks"]["redis"]["status"] == "fail"
    assert problem["checks"]["queue"]["status"] == "fail"
    assert problem["checks"]["delivery"]["status"] == "ok"
    assert "redis" in problem["detail"]


async def test_not_ready_when_a_service_is_down(redis_url: str, fake: FakeBackends) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    settings = workflow_settings(redis_url, fake.url, dronescheduler_url=down)
    async with run_workflow(settings) as workflow:
        ready = await workflow.client.get("/readyz")
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["dronescheduler"]["status"] == "fail"
    assert checks["package"]["status"] == checks["queue"]["status"] == "ok"


async def test_health_is_public_with_auth_on(
    redis_url: str, fake: FakeBackends, dev_issuer: LocalIssuer
) -> None:
    # The workflow has no routes of its own to protect: probes stay anonymous.
    settings = workflow_settings(redis_url, fake.url, auth=dev_issuer.settings.model_dump())
    async with run_workflow(settings) as workflow:
        assert (await workflow.client.get("/healthz")).status_code == 200
        assert (await workflow.client.get("/readyz")).status_code == 200
        token = await workflow.client.get("/readyz", headers=dev_issuer.headers())
        assert token.status_code == 200


async def test_outbound_calls_carry_a_token_per_service_with_its_roles(
    redis_url: str, fake: FakeBackends, dev_issuer: LocalIssuer
) -> None:
    auth = {
        "outbound_scopes": {
            "package": "api://package/.default",
            "dronescheduler": "api://dronescheduler/.default",
            "delivery": "api://delivery-internal/.default",
        },
        "dev_signing_key_file": str(dev_issuer.key_file),
        "issuer": dev_issuer.issuer.issuer,
    }
    settings = workflow_settings(redis_url, fake.url, auth=auth)
    body = delivery_body(str(uuid.uuid4()))
    body["owner"] = {"userId": "myowner", "accountId": "contoso"}
    async with run_workflow(settings) as workflow:
        await workflow.send(message("delivery", body))
        await workflow.drained()
    expected = {
        "packages": ("package", ["Packages.Write"]),
        "dronedeliveries": ("dronescheduler", ["Drones.Assign"]),
        "deliveries": ("delivery-internal", ["Deliveries.Write"]),
    }
    for collection, (audience, roles) in expected.items():
        seen = fake.headers_by_collection[collection]
        tokens = {h["authorization"].removeprefix("Bearer ") for h in seen}
        assert len(tokens) == 1, collection
        accepting = dev_issuer.settings_with(audience=audience)
        caller = await Authenticator(accepting).authenticate(tokens.pop())
        assert caller.app_id == "workflow"
        assert list(caller.roles) == roles
    # The package service is told whose package it is: the request's account.
    [package_call] = fake.headers_by_collection["packages"]
    assert package_call["dronedelivery-account-id"] == "contoso"
    assert fake.deliveries[body["deliveryId"]]["owner"] == body["owner"]


async def test_one_trace_crosses_the_queue_and_the_calls(
    workflow: Harness, fake: FakeBackends, span_exporter: InMemorySpanExporter
) -> None:
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{'ab' * 8}-01"
    await workflow.send(
        message("delivery", delivery_body(str(uuid.uuid4())), traceparent=traceparent)
    )
    await workflow.drained()
    await asyncio.sleep(0.1)
    spans = span_exporter.get_finished_spans()
    consumer = [s for s in spans if s.kind is SpanKind.CONSUMER]
    clients = [s for s in spans if s.kind is SpanKind.CLIENT and s.name in {"PUT", "GET"}]
    assert consumer
    assert {format(s.context.trace_id, "032x") for s in consumer} == {trace_id}
    assert len(clients) >= 3
    assert {format(s.context.trace_id, "032x") for s in clients} == {trace_id}
    sent = {h.get("traceparent", "").split("-")[1] for h in fake.headers}
    assert sent == {trace_id}


async def test_shutdown_abandons_work_waiting_out_a_backoff(
    redis_url: str, fake: FakeBackends
) -> None:
    settings = workflow_settings(
        redis_url, fake.url, abandon_backoff_base=60.0, abandon_backoff_max=60.0
    )
    fake.always("PUT /api/deliveries", 503)
    async with run_workflow(settings) as workflow:
        await workflow.send(message("delivery", delivery_body(str(uuid.uuid4()))))

        async def failed() -> bool:
            return fake.statuses["PUT /api/deliveries"][503] >= 2

        await wait_until(failed, 10, "a failed attempt")
        started = time.monotonic()
    # The lifespan exit did not wait out the 60 s backoff (nor the 2 s grace)...
    assert time.monotonic() - started < 1.5
    async with run_workflow(settings.model_copy(update={"package_url": "http://127.0.0.1:9"})) as w:
        # ...and the message went back on the queue for someone else.
        assert await w.queue_length() == 1


def _env(redis_url: str, downstream: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOW_", "OTEL_"))}
    env.update(
        {
            "WORKFLOW_PORT": str(port),
            "WORKFLOW_REDIS__URL": redis_url,
            "WORKFLOW_QUEUE__RECEIVE_WAIT": "0.2",
            "WORKFLOW_PACKAGE_URL": downstream,
            "WORKFLOW_DRONESCHEDULER_URL": downstream,
            "WORKFLOW_DELIVERY_URL": downstream,
            "WORKFLOW_LOG_JSON": "false",
            "WORKFLOW_AUTH__ENABLED": "false",
        }
    )
    return env


async def test_python_m_workflow_runs_and_stops_on_sigterm(
    redis_url: str, fake: FakeBackends
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workflow",
        env=_env(redis_url, fake.url, port),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await wait_ready(client, within=20, process=process)
            assert (await client.get("/healthz")).json() == {"status": "ok"}
        async with run_workflow(workflow_settings(redis_url, fake.url)) as workflow:
            # The subprocess and this in-process consumer compete for the message.
            delivery_id = str(uuid.uuid4())
            await workflow.send(message("delivery", delivery_body(delivery_id)))
            await workflow.drained()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=15)
        assert code == 0
        assert time.monotonic() - started < 5
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
