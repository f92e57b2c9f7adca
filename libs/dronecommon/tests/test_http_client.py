"""The outbound HTTP client against a real HTTP server on 127.0.0.1.

The upstream is an aiohttp web server started per test on a free port; its routes play the
failure modes (503 with ``Retry-After``, a flaky endpoint, slow answers, 4xx) and it records every
request it receives, so attempts are counted where they land. Connection refusal uses a port nobody
listens on. What misbehaving servers send (bytes after a response, oversized headers, a dripping
body) is played by raw TCP servers in ``test_http_raw_server.py``.
Waits are kept tiny (backoff of milliseconds, Retry-After capped at tenths of a second).
(Longer than 400 lines: every behaviour here shares the one steerable upstream server above them.)
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry import trace
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from dronecommon.httpclient import (
    CircuitOpenError,
    CircuitState,
    ResilientClient,
    Response,
    TransientHTTPError,
    create_http_client,
)
from dronecommon.settings import HttpClientSettings
from dronetesting.apps import running_server

# -- the upstream server -------------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """A real HTTP server whose behaviour the test steers."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    flaky: Counter[str] = field(default_factory=Counter)
    healthy: bool = True
    delay: float = 0.0

    def hits(self, path: str) -> int:
        return sum(1 for request in self.seen if request.path == path)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/echo", self._echo)
        app.router.add_route("*", "/status/{code}", self._status)
        app.router.add_route("*", "/flaky/{key}", self._flaky)
        app.router.add_route("*", "/slow", self._slow)
        app.router.add_route("*", "/toggle", self._toggle)
        app.router.add_route("*", "/drop", self._drop)
        return app

    async def _seen(self, request: web.Request) -> None:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path, dict(request.headers), body))

    async def _echo(self, request: web.Request) -> web.Response:
        await self._seen(request)
        return web.json_response(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "body": (await request.read()).decode(),
            }
        )

    async def _status(self, request: web.Request) -> web.Response:
        await self._seen(request)
        headers = {}
        if "retry_after" in request.query:
            headers["Retry-After"] = request.query["retry_after"]
        return web.json_response({}, status=int(request.match_info["code"]), headers=headers)

    async def _flaky(self, request: web.Request) -> web.Response:
        """Fail ``fail`` times with ``status`` (and ``Retry-After``), then answer 200."""
        await self._seen(request)
        key = request.match_info["key"]
        self.flaky[key] += 1
        if self.flaky[key] <= int(request.query.get("fail", "2")):
            headers = {}
            if "retry_after" in request.query:
                headers["Retry-After"] = request.query["retry_after"]
            if "retry_in" in request.query:  # as an HTTP-date
                when = datetime.now(UTC) + timedelta(seconds=float(request.query["retry_in"]))
                headers["Retry-After"] = format_datetime(when, usegmt=True)
            status = int(request.query.get("status", "503"))
            return web.json_response({"attempt": self.flaky[key]}, status=status, headers=headers)
        return web.json_response({"attempt": self.flaky[key]})

    async def _slow(self, request: web.Request) -> web.Response:
        await self._seen(request)
        await asyncio.sleep(float(request.query.get("delay", "5")))
        return web.json_response({"slow": True})

    async def _drop(self, request: web.Request) -> web.Response:
        """Hang up without answering."""
        await self._seen(request)
        assert request.transport is not None
        request.transport.abort()
        return web.Response()

    async def _toggle(self, request: web.Request) -> web.Response:
        await self._seen(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        return web.json_response({}, status=200 if self.healthy else 503)


async def _start(upstream: Upstream) -> web.AppRunner:
    runner = web.AppRunner(
        upstream.app(), access_log=None, shutdown_timeout=0.1, handler_cancellation=True
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    upstream.url = f"http://{host}:{port}"
    return runner


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    server = Upstream()
    runner = await _start(server)
    yield server
    await runner.cleanup()


@pytest.fixture
async def other_upstream() -> AsyncIterator[Upstream]:
    server = Upstream()
    runner = await _start(server)
    yield server
    await runner.cleanup()


def closed_port_url() -> str:
    """A loopback URL nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- clients -------------------------------------------------------------------------------------

FAST: dict[str, Any] = {
    "connect_timeout": 0.5,
    "read_timeout": 0.5,
    "retries": 3,
    "backoff_base": 0.001,
    "backoff_max": 0.005,
    "retry_after_max": 0.05,
    "breaker_failure_threshold": 5,
    "breaker_reset_timeout": 0.2,
}


class Clients:
    """Makes clients for the test's upstream and closes them afterwards."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.made: list[ResilientClient] = []

    def __call__(
        self,
        *,
        base_url: str | None = None,
        budget: float | None = None,
        token_provider: Callable[[], Awaitable[str]] | None = None,
        **settings: Any,
    ) -> ResilientClient:
        client = create_http_client(
            HttpClientSettings(**{**FAST, **settings}),
            base_url=self.upstream.url if base_url is None else base_url,
            name="upstream",
            budget=budget,
            token_provider=token_provider,
        )
        self.made.append(client)
        return client


@pytest.fixture
async def clients(upstream: Upstream) -> AsyncIterator[Clients]:
    made = Clients(upstream)
    yield made
    for client in made.made:
        await client.aclose()


# -- the API shape -------------------------------------------------------------------------------


async def test_get_returns_a_response(clients: Clients, upstream: Upstream) -> None:
    async with clients() as client:
        response = await client.get("/echo", params={"a": "1"})

    assert isinstance(response, Response)
    assert response.status_code == 200
    assert response.json() == {"method": "GET", "path": "/echo", "query": {"a": "1"}, "body": ""}
    assert str(response.url) == f"{upstream.url}/echo?a=1"
    assert response.elapsed > timedelta(0)
    assert response.reason_phrase == "OK"
    assert response.headers["content-type"].startswith("application/json")
    assert response.is_success


async def test_body_methods_send_json(clients: Clients, upstream: Upstream) -> None:
    client = clients(base_url=upstream.url + "/")
    for method in (client.put, client.post, client.patch):
        response = await method("echo", json={"x": 1})
        assert json.loads(response.json()["body"]) == {"x": 1}
    assert [seen.method for seen in upstream.seen] == ["PUT", "POST", "PATCH"]
    assert upstream.seen[0].headers["Content-Type"] == "application/json"


async def test_absolute_urls_bypass_base_url(clients: Clients, other_upstream: Upstream) -> None:
    response = await clients().delete(f"{other_upstream.url}/echo")
    assert response.json()["method"] == "DELETE"
    assert other_upstream.hits("/echo") == 1


async def test_a_closed_client_refuses_calls(clients: Clients) -> None:
    client = clients()
    await client.aclose()
    await client.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await client.get("/echo")


# -- retries -------------------------------------------------------------------------------------


async def test_flaky_get_is_retried_until_it_succeeds(clients: Clients, upstream: Upstream) -> None:
    response = await clients().get("/flaky/a", params={"fail": "2"})

    assert response.status_code == 200
    assert response.json() == {"attempt": 3}
    assert upstream.hits("/flaky/a") == 3


@pytest.mark.parametrize("status", [408, 429, 502, 504])
async def test_other_transient_statuses_are_retried(
    clients: Clients, upstream: Upstream, status: int
) -> None:
    response = await clients().get("/flaky/s", params={"fail": "1", "status": str(status)})
    assert response.status_code == 200
    assert upstream.hits("/flaky/s") == 2


async def test_retry_after_in_seconds_is_honoured_up_to_the_cap(
    clients: Clients, upstream: Upstream
) -> None:
    client = clients(retry_after_max=0.3)
    started = time.perf_counter()
    response = await client.get("/flaky/r", params={"fail": "1", "retry_after": "1"})
    elapsed = time.perf_counter() - started

    assert response.status_code == 200
    assert upstream.hits("/flaky/r") == 2
    assert 0.3 <= elapsed < 0.9  # waited the capped Retry-After, not the millisecond backoff


async def test_retry_after_as_an_http_date_is_honoured(
    clients: Clients, upstream: Upstream
) -> None:
    client = clients(retry_after_max=0.3)
    started = time.perf_counter()
    response = await client.get("/flaky/d", params={"fail": "1", "retry_in": "3"})

    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.29


async def test_exhausted_retries_raise_a_transient_error_with_the_response(
    clients: Clients, upstream: Upstream
) -> None:
    client = clients(retries=2, retry_after_max=0.01)
    with pytest.raises(TransientHTTPError) as caught:
        await client.get("/status/503", params={"retry_after": "7"})

    error = caught.value
    assert type(error) is TransientHTTPError
    assert error.kind == "status"
    assert error.status_code == 503
    assert error.retry_after == 7.0  # the server's value, for the caller's own scheduling
    assert error.attempts == 3
    assert upstream.hits("/status/503") == 3


async def test_500_is_transient_but_not_retried(clients: Clients, upstream: Upstream) -> None:
    with pytest.raises(TransientHTTPError) as caught:
        await clients().get("/status/500")
    assert caught.value.status_code == 500
    assert caught.value.attempts == 1
    assert upstream.hits("/status/500") == 1


async def test_a_read_timeout_is_transient_and_retried(
    clients: Clients, upstream: Upstream
) -> None:
    client = clients(read_timeout=0.1, retries=1)
    started = time.perf_counter()
    with pytest.raises(TransientHTTPError) as caught:
        await client.get("/slow", params={"delay": "2"})

    assert caught.value.kind == "timeout"
    assert caught.value.response is None
    assert upstream.hits("/slow") == 2
    assert time.perf_counter() - started < 1.0


async def test_connection_refused_is_transient_and_retried(clients: Clients) -> None:
    client = clients(base_url=closed_port_url(), retries=2)
    with pytest.raises(TransientHTTPError) as caught:
        await client.get("/echo")

    assert caught.value.kind == "connect"
    assert caught.value.attempts == 3
    assert isinstance(caught.value.__cause__, aiohttp.ClientConnectorError)


async def test_a_dropped_connection_is_a_transient_network_failure(
    clients: Clients, upstream: Upstream
) -> None:
    client = clients(retries=1)
    with pytest.raises(TransientHTTPError) as caught:
        await client.get("/drop")
    assert caught.value.kind == "network"
    assert caught.value.attempts == 2


async def test_post_is_not_retried(clients: Clients, upstream: Upstream) -> None:
    with pytest.raises(TransientHTTPError) as caught:
        await clients().post("/flaky/p", params={"fail": "1"}, json={})
    assert caught.value.status_code == 503
    assert upstream.hits("/flaky/p") == 1


async def test_post_that_timed_out_is_not_retried(clients: Clients, upstream: Upstream) -> None:
    with pytest.raises(TransientHTTPError) as caught:
        await clients(read_timeout=0.1).post("/slow", params={"delay": "2"}, json={})
    assert caught.value.kind == "timeout"
    assert upstream.hits("/slow") == 1


async def test_post_with_an_idempotency_key_is_retried(
    clients: Clients, upstream: Upstream
) -> None:
    response = await clients().post(
        "/flaky/k", params={"fail": "1"}, json={"x": 1}, headers={"Idempotency-Key": "abc"}
    )
    assert response.status_code == 200
    assert upstream.hits("/flaky/k") == 2
    assert [seen.body for seen in upstream.seen] == [b'{"x":1}', b'{"x":1}']


async def test_the_caller_can_override_idempotency(clients: Clients, upstream: Upstream) -> None:
    client = clients()
    response = await client.post("/flaky/yes", params={"fail": "1"}, idempotent=True)
    assert response.status_code == 200
    assert upstream.hits("/flaky/yes") == 2

    with pytest.raises(TransientHTTPError):
        await client.put("/flaky/no", params={"fail": "1"}, idempotent=False)
    assert upstream.hits("/flaky/no") == 1


async def test_a_streamed_body_is_never_replayed(clients: Clients, upstream: Upstream) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"once"

    with pytest.raises(TransientHTTPError):
        await clients().put("/flaky/stream", params={"fail": "1"}, content=body())
    assert upstream.hits("/flaky/stream") == 1
    assert upstream.seen[0].body == b"once"


# -- the per-call budget -------------------------------------------------------------------------


async def test_no_retry_when_the_wait_would_overrun_the_budget(
    clients: Clients, upstream: Upstream
) -> None:
    client = clients(retry_after_max=5.0, budget=0.5)
    started = time.perf_counter()
    with pytest.raises(TransientHTTPError) as caught:
        await client.get("/status/503", params={"retry_after": "1"})

    assert time.perf_counter() - started < 0.3
    assert caught.value.retry_after == 1.0
    assert upstream.hits("/status/503") == 1


async def test_the_budget_bounds_a_slow_call(clients: Clients, upstream: Upstream) -> None:
    client = clients(read_timeout=5.0)
    started = time.perf_counter()
    with pytest.raises(TransientHTTPError) as caught:
        await client.get("/slow", params={"delay": "3"}, budget=0.2)

    assert caught.value.kind == "timeout"
    assert time.perf_counter() - started < 0.6


async def test_a_spent_budget_sends_nothing(clients: Clients, upstream: Upstream) -> None:
    with pytest.raises(TransientHTTPError) as caught:
        await clients().get("/echo", budget=0)
    assert caught.value.kind == "timeout"
    assert caught.value.attempts == 0
    assert upstream.seen == []


async def test_a_per_call_timeout_overrides_the_default(
    clients: Clients, upstream: Upstream
) -> None:
    client = clients(read_timeout=5.0, retries=0)
    started = time.perf_counter()
    with pytest.raises(TransientHTTPError):
        await client.get("/slow", params={"delay": "3"}, timeout=0.1)
    assert time.perf_counter() - started < 0.6


# -- the circuit breaker -------------------------------------------------------------------------


async def test_4xx_is_returned_not_retried_and_does_not_trip_the_breaker(
    clients: Clients, upstream: Upstream
) -> None:
    client = clients(breaker_failure_threshold=2)
    for _ in range(5):
        response = await client.get("/status/400")
        assert response.status_code == 400
    assert (await client.get("/status/404")).status_code == 404

    assert upstream.hits("/status/400") == 5
    assert client.circuit_state() is CircuitState.CLOSED


async def test_back_pressure_with_retry_after_does_not_trip_the_breaker(
    clients: Clients, upstream: Upstream
) -> None:
    # "No drone free, retry in 30 s" is a healthy target shedding load: the call fails as
    # transient (to be retried later) but other calls to the target must still go through.
    client = clients(retries=0, breaker_failure_threshold=2)
    for _ in range(4):
        with pytest.raises(TransientHTTPError) as shed:
            await client.get("/status/503", params={"retry_after": "30"})
        assert shed.value.retry_after == 30
    assert client.circuit_state() is CircuitState.CLOSED
    for _ in range(2):
        with pytest.raises(TransientHTTPError):
            await client.get("/status/503")  # a bare 503 is a failure of the target
    assert client.circuit_state() is CircuitState.OPEN


async def test_breaker_opens_fails_fast_probes_and_closes(
    clients: Clients, upstream: Upstream
) -> None:
    client = clients(retries=0, breaker_failure_threshold=2, breaker_reset_timeout=0.3)
    upstream.healthy = False
    for _ in range(2):
        with pytest.raises(TransientHTTPError) as failed:
            await client.get("/toggle")
        assert type(failed.value) is TransientHTTPError
    assert client.circuit_state() is CircuitState.OPEN

    # Open: fail fast, nothing reaches the server.
    with pytest.raises(CircuitOpenError) as fast:
        await client.get("/toggle")
    assert fast.value.kind == "circuit_open"
    assert fast.value.retry_after is not None
    assert 0 < fast.value.retry_after <= 0.3
    assert isinstance(fast.value, TransientHTTPError)
    assert upstream.hits("/toggle") == 2

    # Half-open after the reset timeout: one probe goes through, the others still fail fast.
    upstream.healthy = True
    upstream.delay = 0.2
    await asyncio.sleep(0.35)
    assert client.circuit_state() is CircuitState.HALF_OPEN
    probe = asyncio.create_task(client.get("/toggle"))
    await asyncio.sleep(0.05)
    with pytest.raises(CircuitOpenError):
        await client.get("/toggle")
    assert (await probe).status_code == 200
    assert upstream.hits("/toggle") == 3

    # Closed again.
    assert client.circuit_state() is CircuitState.CLOSED
    upstream.delay = 0
    assert (await client.get("/toggle")).status_code == 200


async def test_a_failed_probe_opens_the_breaker_again(clients: Clients, upstream: Upstream) -> None:
    client = clients(retries=0, breaker_failure_threshold=1, breaker_reset_timeout=0.1)
    with pytest.raises(TransientHTTPError):
        await client.get("/status/503")
    await asyncio.sleep(0.15)
    with pytest.raises(TransientHTTPError) as probe:
        await client.get("/status/503")
    assert type(probe.value) is TransientHTTPError
    with pytest.raises(CircuitOpenError):
        await client.get("/status/503")
    assert upstream.hits("/status/503") == 2


async def test_a_cancelled_probe_hands_its_slot_back(clients: Clients, upstream: Upstream) -> None:
    client = clients(retries=0, breaker_failure_threshold=1, breaker_reset_timeout=0.1)
    with pytest.raises(TransientHTTPError):
        await client.get("/status/503")
    await asyncio.sleep(0.15)

    probe = asyncio.create_task(client.get("/slow", params={"delay": "5"}))
    await asyncio.sleep(0.05)
    with pytest.raises(CircuitOpenError):
        await client.get("/echo")
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert client.circuit_state() is CircuitState.HALF_OPEN

    assert (await client.get("/echo")).status_code == 200  # the next call probes
    assert client.circuit_state() is CircuitState.CLOSED


async def test_connection_failures_trip_the_breaker(clients: Clients) -> None:
    client = clients(base_url=closed_port_url(), retries=5, breaker_failure_threshold=2)
    with pytest.raises(CircuitOpenError) as caught:
        await client.get("/echo")
    assert caught.value.attempts == 2  # two refused attempts opened it; the third failed fast
    assert isinstance(caught.value.__cause__, TransientHTTPError)
    assert caught.value.__cause__.kind == "connect"


async def test_the_breaker_is_per_target_host(
    clients: Clients, upstream: Upstream, other_upstream: Upstream
) -> None:
    client = clients(retries=0, breaker_failure_threshold=1)
    with pytest.raises(TransientHTTPError):
        await client.get("/status/503")
    assert client.circuit_state() is CircuitState.OPEN

    response = await client.get(f"{other_upstream.url}/echo")
    assert response.status_code == 200
    assert client.circuit_state(other_upstream.url) is CircuitState.CLOSED


# -- tracing and identity ------------------------------------------------------------------------


def _traceparent(seen: Seen) -> tuple[str, str]:
    version, trace_id, span_id, flags = seen.headers["traceparent"].split("-")
    assert version == "00"
    assert int(flags, 16) & 0x01  # sampled
    return trace_id, span_id


async def test_a_client_span_is_the_child_of_the_callers_and_its_context_travels(
    clients: Clients, upstream: Upstream, span_exporter: InMemorySpanExporter
) -> None:
    client = clients()
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("outer") as outer:
        await client.get("/echo")

    spans = [s for s in span_exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert len(spans) == 1
    span = spans[0]
    assert span.parent is not None
    assert span.parent.span_id == outer.get_span_context().span_id
    assert span.context is not None
    trace_id, span_id = _traceparent(upstream.seen[0])
    assert trace_id == f"{outer.get_span_context().trace_id:032x}"
    assert span_id == f"{span.context.span_id:016x}"  # the server's parent is the client span
    assert span.name == "GET"
    assert span.attributes is not None
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["url.full"] == f"{upstream.url}/echo"


async def test_each_attempt_is_its_own_client_span(
    clients: Clients, upstream: Upstream, span_exporter: InMemorySpanExporter
) -> None:
    await clients().get("/flaky/t", params={"fail": "1"})

    spans = [s for s in span_exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert len(spans) == 2
    first, second = spans
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["http.response.status_code"] == 503
    assert first.attributes["error.type"] == "503"
    assert first.status.status_code is trace.StatusCode.ERROR
    assert second.attributes["http.request.resend_count"] == 1
    assert second.attributes["http.response.status_code"] == 200
    sent = [_traceparent(seen)[1] for seen in upstream.seen]
    assert sent == [f"{s.context.span_id:016x}" for s in spans if s.context is not None]


async def test_global_httpx_and_aiohttp_instrumentation_is_not_doubled(
    clients: Clients, upstream: Upstream, span_exporter: InMemorySpanExporter
) -> None:
    # Instrument only what is not instrumented yet, and undo only that.
    mine = [
        instrumentor
        for instrumentor in (HTTPXClientInstrumentor(), AioHttpClientInstrumentor())
        if not instrumentor.is_instrumented_by_opentelemetry
    ]
    for instrumentor in mine:
        instrumentor.instrument()
    try:
        await clients().get("/echo")
    finally:
        for instrumentor in mine:
            instrumentor.uninstrument()

    spans = [s for s in span_exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    assert len(spans) == 1
    assert spans[0].instrumentation_scope is not None
    assert spans[0].instrumentation_scope.name == "dronecommon.httpclient"


async def test_the_bearer_token_is_fetched_for_each_attempt(
    clients: Clients, upstream: Upstream
) -> None:
    tokens = iter(["t1", "t2"])

    async def token() -> str:
        return next(tokens)

    await clients(token_provider=token).get("/flaky/auth", params={"fail": "1"})
    assert [seen.headers["Authorization"] for seen in upstream.seen] == ["Bearer t1", "Bearer t2"]


async def test_an_explicit_authorization_header_wins(clients: Clients, upstream: Upstream) -> None:
    async def token() -> str:
        raise AssertionError("not called")

    await clients(token_provider=token).get("/echo", headers={"Authorization": "Basic eA=="})
    assert upstream.seen[0].headers["Authorization"] == "Basic eA=="


async def test_no_authorization_without_a_token_provider(
    clients: Clients, upstream: Upstream
) -> None:
    await clients().get("/echo")
    assert "Authorization" not in upstream.seen[0].headers


# -- an ASGI app on a loopback server ------------------------------------------------------------


async def test_an_asgi_app_served_on_loopback_is_called_like_any_server() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # lifespan: nothing to start
        await send({"type": "http.response.start", "status": 503, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with running_server(app) as url:
        client = create_http_client(HttpClientSettings(**FAST), base_url=url, name="package")
        async with client:
            with pytest.raises(TransientHTTPError) as caught:
                await client.get("/api/packages/1")
    assert caught.value.attempts == 4


# -- the local pool ------------------------------------------------------------------------------


async def test_a_full_local_pool_fails_as_pool_without_tripping_the_breaker(
    clients: Clients, upstream: Upstream
) -> None:
    client = clients(max_connections=1, connect_timeout=0.1, retries=0, breaker_failure_threshold=1)
    busy = asyncio.create_task(client.get("/slow", params={"delay": "0.3"}))
    await asyncio.sleep(0.05)
    with pytest.raises(TransientHTTPError) as caught:
        await client.get("/echo")
    assert caught.value.kind == "pool"
    assert client.circuit_state() is CircuitState.CLOSED
    assert (await busy).status_code == 200
    assert (await client.get("/echo")).status_code == 200


async def test_calls_wait_in_line_for_a_connection(clients: Clients, upstream: Upstream) -> None:
    client = clients(max_connections=2, connect_timeout=2.0)
    responses = await asyncio.gather(*(client.get("/echo", params={"n": str(n)}) for n in range(8)))
    assert sorted(int(r.json()["query"]["n"]) for r in responses) == list(range(8))


async def test_a_cancelled_call_waiting_for_a_connection_leaves_the_line(
    clients: Clients, upstream: Upstream
) -> None:
    client = clients(max_connections=1, connect_timeout=2.0)
    busy = asyncio.create_task(client.get("/slow", params={"delay": "0.2"}))
    await asyncio.sleep(0.05)
    waiting = asyncio.create_task(client.get("/echo"))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert (await busy).status_code == 200
    assert (await client.get("/echo")).status_code == 200
