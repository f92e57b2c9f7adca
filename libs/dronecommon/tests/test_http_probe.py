"""The health-probe client against a real HTTP server on 127.0.0.1: one attempt, a breaker that
never opens, no spans, no trace context sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dronecommon.httpclient import CircuitState, TransientHTTPError, create_probe_client


@dataclass
class Target:
    """A service whose ``/healthz`` answers ``status`` (after ``delay`` seconds)."""

    url: str = ""
    status: int = 200
    delay: float = 0.0
    headers: list[dict[str, str]] = field(default_factory=list)

    async def healthz(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        await asyncio.sleep(self.delay)
        return web.json_response({}, status=self.status)


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    found = Target()
    app = web.Application()
    app.router.add_get("/healthz", found.healthz)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    found.url = f"http://{host}:{port}/healthz"
    yield found
    await runner.cleanup()


async def test_a_failing_target_gets_one_attempt_and_the_breaker_never_opens(
    target: Target,
) -> None:
    target.status = 503
    async with create_probe_client(1.0) as probe:
        for _ in range(20):
            with pytest.raises(TransientHTTPError):
                await probe.get(target.url)
        assert len(target.headers) == 20  # no retries, never refused without asking
        assert probe.circuit_state(target.url) is CircuitState.CLOSED
        target.status = 200
        assert (await probe.get(target.url)).status_code == 200


async def test_a_slow_target_fails_within_the_timeout(target: Target) -> None:
    target.delay = 2.0
    async with create_probe_client(0.3) as probe:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TransientHTTPError) as caught:
            await probe.get(target.url)
    assert caught.value.kind == "timeout"
    assert caught.value.attempts == 1
    assert asyncio.get_running_loop().time() - started < 1.5


async def test_probes_make_no_spans(target: Target, span_exporter: InMemorySpanExporter) -> None:
    async with create_probe_client(1.0) as probe:
        assert (await probe.get(target.url)).status_code == 200
    assert span_exporter.get_finished_spans() == ()
    assert "traceparent" not in {name.lower() for name in target.headers[0]}
