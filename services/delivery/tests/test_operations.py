"""Health, outages, telemetry, the committed OpenAPI document and a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from redis.asyncio import Redis

from delivery.main import create_app
from delivery.settings import DeliverySettings
from dronecommon.settings import AuthSettings, RedisSettings
from dronetesting.apps import app_client
from dronetesting.openapi import assert_openapi_current
from dronetesting.servers import RedisServer, free_port

JSON = dict[str, Any]
BASE = "/api/deliveries"
SERVICE_ROOT = Path(__file__).resolve().parents[1]


async def test_health_and_readiness_when_redis_is_up(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["checks"]["redis"]["status"] == "ok"


async def test_readiness_and_routes_answer_503_when_redis_is_unreachable(
    make_app: Callable[..., Any], new_delivery: Callable[..., JSON], problem: Callable[..., JSON]
) -> None:
    closed = RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0", socket_timeout=0.5)
    async with app_client(make_app(redis=closed)) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = problem(await client.get("/readyz"), 503)
        assert "redis" in ready["detail"]
        assert ready["checks"]["redis"]["status"] == "fail"
        for response in (
            await client.get(f"{BASE}/d-1"),
            await client.get(f"{BASE}/d-1/status"),
            await client.put(f"{BASE}/d-1", json=new_delivery("d-1")),
            await client.delete(f"{BASE}/d-1"),
            await client.get(f"{BASE}/summary?ownerId=o&year=2025&month=1"),
        ):
            problem(response, 503)
            assert response.headers["retry-after"] == "1"


async def test_service_recovers_when_redis_comes_back(
    make_app: Callable[..., Any],
    redis_server_factory: Callable[[], RedisServer],
    new_delivery: Callable[..., JSON],
) -> None:
    server = redis_server_factory()
    settings = RedisSettings(url=server.url, socket_timeout=0.5)
    async with app_client(make_app(redis=settings)) as client:
        assert (await client.put(f"{BASE}/d-2", json=new_delivery("d-2"))).status_code == 201
        server.stop()
        assert (await client.get("/readyz")).status_code == 503
        assert (await client.get(f"{BASE}/d-2")).status_code == 503
        server.start()  # the same port, an empty store (no persistence)
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get(f"{BASE}/d-2")).status_code == 404
        # The Lua scripts are loaded again into the new server (NOSCRIPT handled).
        assert (await client.put(f"{BASE}/d-2", json=new_delivery("d-2"))).status_code == 201
        assert (await client.delete(f"{BASE}/d-2")).status_code == 204


async def test_writes_to_a_read_only_replica_answer_503(
    make_app: Callable[..., Any],
    redis_server_factory: Callable[[], RedisServer],
    new_delivery: Callable[..., JSON],
    problem: Callable[..., JSON],
) -> None:
    """During a fail-over the client may still reach the old primary, now a replica."""
    primary, replica = redis_server_factory(), redis_server_factory()
    async with Redis.from_url(replica.url) as admin:
        await admin.replicaof("127.0.0.1", str(primary.port))
    async with app_client(make_app(redis=RedisSettings(url=replica.url))) as client:
        body = problem(await client.put(f"{BASE}/d-5", json=new_delivery("d-5")), 503)
        assert body["type"].endswith("dependency-unavailable")
        assert (await client.get(f"{BASE}/d-5")).status_code == 404  # reads still answer


async def test_requests_are_traced_into_redis(
    # Before the client: Redis is instrumented only if spans are recorded when the app is built.
    span_exporter: InMemorySpanExporter,
    client: httpx.AsyncClient,
    new_delivery: Callable[..., JSON],
) -> None:
    await client.put(f"{BASE}/d-4", json=new_delivery("d-4"))
    span_exporter.clear()
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = await client.get(
        f"{BASE}/d-4/status", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
    )
    assert response.status_code == 200
    spans = span_exporter.get_finished_spans()
    servers = [s for s in spans if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == ["GET /api/deliveries/{id}/status"]
    reads = [s for s in spans if s.name == "HMGET"]
    assert reads
    assert reads[0].context is not None
    assert f"{reads[0].context.trace_id:032x}" == trace_id


def _documented_app() -> Any:
    """The app as documented: the document is the same whether or not it checks tokens."""
    settings = DeliverySettings(auth=AuthSettings(enabled=False))
    return create_app(settings, configure_logs=False)


def test_openapi_document_is_current() -> None:
    assert_openapi_current(_documented_app(), SERVICE_ROOT / "openapi.json")


def test_openapi_documents_the_real_statuses() -> None:
    document = _documented_app().openapi()
    paths = document["paths"]

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    auth = {"401", "403"}  # every route but the public view: documented whether or not checked
    body = {"413", "415"}
    item = "/api/deliveries/{id}"
    assert statuses(item, "put") == {"201", "204", "400", "409", "503"} | auth | body
    assert statuses(item, "get") == {"200", "400", "404", "503"} | auth
    assert statuses(item, "patch") == {"204", "400", "404", "409", "503"} | auth | body
    assert statuses(item, "delete") == {"204", "400", "404", "409", "503"} | auth
    for action in ("/confirmations", "/notifymerequests"):
        assert statuses(item + action, "post") == {"204", "400", "404", "409", "503"} | auth | body
    assert statuses(item + "/owner", "get") == {"200", "400", "404", "503"} | auth
    assert statuses("/api/deliveries/summary", "get") == {"200", "400", "404", "503"} | auth
    for owned in (item + "/status", item + "/history", item + "/tracking"):
        assert statuses(owned, "get") == {"200", "400", "404", "503"} | auth
    for public in ("/api/deliveries/public/{id}", "/api/deliveries/public/{id}/tracking"):
        assert statuses(public, "get") == {"200", "400", "404", "503"}
    for stream in (item + "/tracking", "/api/deliveries/public/{id}/tracking"):
        assert set(paths[stream]["get"]["responses"]["200"]["content"]) == {"text/event-stream"}
    assert "422" not in str(document)


@pytest.mark.slow
async def test_python_m_delivery_serves_and_stops_on_sigterm(
    redis_url: str, new_delivery: Callable[..., JSON]
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DELIVERY_PORT": str(port),
        "DELIVERY_REDIS__URL": redis_url,
        "DELIVERY_LOG_LEVEL": "WARNING",
        "DELIVERY_AUTH__ENABLED": "false",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "delivery",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert process.returncode is None, "the service exited"
                assert time.monotonic() < deadline, "not ready within 30 s"
                await asyncio.sleep(0.1)
            created = await client.put(f"{BASE}/proc-1", json=new_delivery("proc-1"))
            assert created.status_code == 201
            status = await client.get(f"{BASE}/proc-1/status")
            assert status.json()["stage"] == "Created"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=10)
        assert code == 0
        assert time.monotonic() - started < 5
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        assert process.stderr is not None
        await process.stderr.read()


async def test_python_m_delivery_refuses_bad_settings_naming_the_variable() -> None:
    env = {**os.environ, "DELIVERY_RETENTION_SECONDS": "soon"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "delivery",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 2
    assert b"DELIVERY_RETENTION_SECONDS" in stderr
