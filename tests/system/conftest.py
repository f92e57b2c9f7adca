"""The whole system for end-to-end tests: Redis, FerretDB and the five services as real processes
on loopback ports (``dronetesting.stack``), plus a tiny OTLP/HTTP collector that records spans.

Bearer tokens are on, as in ``make run``: tests call as customers (``System.customer``) or, to
read or arrange what no customer may, as a service identity holding the role
(``System.service``), with tokens from the stack's development issuer.

One stack serves the whole session (starting it costs most of the suite's time). Tests that stop
or kill a process start it again before they end, so every test finds the full stack running.
Process output goes to ``<tmp>/stack.log``; a failing test prints its tail.
"""

from __future__ import annotations

import gzip
import importlib
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from redis.asyncio import Redis

from dronecommon.auth.devissuer import SERVICE_AUDIENCES, DevIssuer
from dronetesting.servers import free_port, project_root
from dronetesting.stack import SERVICE_PORTS, Stack, StackConfig

QUEUE_STREAM = "queue:{deliveryrequests}"
DEAD_LETTER_STREAM = "queue:{deliveryrequests}:deadletter"

# Settings for the whole stack (each service reads only its own prefix).
STACK_ENV = {
    # Short locks so a killed consumer's messages are taken over within seconds.
    "WORKFLOW_QUEUE__LOCK_DURATION": "3",
    "WORKFLOW_QUEUE__RECEIVE_WAIT": "0.5",
    "WORKFLOW_SHUTDOWN_GRACE": "5",
    # Spans reach the collector within about a second.
    "OTEL_BSP_SCHEDULE_DELAY": "300",
    "OTEL_METRIC_EXPORT_INTERVAL": "60000",
    # Hundreds of requests a second from one account: the limits are tested on their own.
    "INGESTION_LIMITS__REQUESTS_PER_MINUTE": "1000000",
    "INGESTION_LIMITS__BURST": "100000",
    "INGESTION_LIMITS__MAX_IN_PROGRESS": "1000000",
}


@dataclass
class Collector:
    """An OTLP/HTTP endpoint that keeps (service name, trace id, span name) of every span."""

    port: int
    spans: list[tuple[str, str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def services_in(self, trace_id: str) -> set[str]:
        with self.lock:
            return {service for service, trace, _ in self.spans if trace == trace_id}

    def record(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        found = []
        for resource_spans in request.resource_spans:
            service = next(
                (
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ),
                "?",
            )
            for scope_spans in resource_spans.scope_spans:
                found += [(service, s.trace_id.hex(), s.name) for s in scope_spans.spans]
        with self.lock:
            self.spans.extend(found)


def _collector_handler(collector: Collector) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            if self.path == "/v1/traces":
                collector.record(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@dataclass
class System:
    stack: Stack
    collector: Collector
    log: Path
    issuer: DevIssuer

    def url(self, service: str) -> str:
        return self.stack.config.url(service)

    def customer(
        self, user: str = "myowner", account: str = "contoso", *roles: str
    ) -> dict[str, str]:
        """Headers with a customer's token for the public API (what `make token` prints)."""
        token = self.issuer.mint_customer(account=account, user=user, roles=roles)
        return {"Authorization": f"Bearer {token}"}

    def service(self, service: str, *roles: str, caller: str = "system-test") -> dict[str, str]:
        """Headers with a service identity's token for ``service``, holding ``roles``."""
        token = self.issuer.mint(
            audience=SERVICE_AUDIENCES[service],
            subject=caller,
            azp=caller,
            oid=caller,
            roles=roles,
        )
        return {"Authorization": f"Bearer {token}"}

    @property
    def redis_url(self) -> str:
        return self.stack.config.redis_url

    def restart(self, name: str, timeout: float = 60.0) -> None:
        """Start a stopped/killed process again (``workflow-1`` is replica 1) and wait for it."""
        service, _, replica = name.partition("-")
        process = self.stack.processes.get(name)
        if process is not None:
            if process.alive:
                return
            process.wait(10)
        self.stack.start_service(service, replica=int(replica or 0))
        self.stack.wait_ready(timeout)

    def reconfigure(self, name: str, env: dict[str, str | None], timeout: float = 60.0) -> None:
        """Stop ``name``, change the stack's extra environment (None removes), start it again."""
        process = self.stack.processes[name]
        process.signal(signal.SIGTERM)
        if process.wait(20) is None:
            process.signal(signal.SIGKILL)
            process.wait(10)
        for key, value in env.items():
            if value is None:
                self.stack.config.extra_env.pop(key, None)
            else:
                self.stack.config.extra_env[key] = value
        self.restart(name, timeout)

    def log_lines(self, containing: str) -> list[str]:
        return [
            line for line in self.log.read_text(errors="replace").splitlines() if containing in line
        ]

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def bench_module(name: str) -> ModuleType:
    """A module of the benchmark (``scripts/benchmark``), which is no package of the workspace."""
    scripts = str(project_root() / "scripts")
    if scripts not in sys.path:
        sys.path.insert(0, scripts)
    return importlib.import_module(f"benchmark.{name}")


@pytest.fixture(scope="session")
def collector() -> Iterator[Collector]:
    found = Collector(free_port())
    server = ThreadingHTTPServer(("127.0.0.1", found.port), _collector_handler(found))
    thread = threading.Thread(target=server.serve_forever, name="otlp-collector", daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def system(tmp_path_factory: pytest.TempPathFactory, collector: Collector) -> Iterator[System]:
    data_dir = tmp_path_factory.mktemp("stack")
    config = StackConfig(
        data_dir=data_dir,
        redis_port=free_port(),
        mongo_port=free_port(),
        mailpit_smtp_port=free_port(),
        mailpit_http_port=free_port(),
        ports={service: free_port() for service in SERVICE_PORTS},
        replica_ports={"workflow-1": free_port()},
        workflow_replicas=2,
        extra_env={**STACK_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url},
    )
    log_path = data_dir / "stack.log"
    log: IO[str] = log_path.open("w", buffering=1)
    stack = Stack(config, out=log)
    started = time.monotonic()
    try:
        try:
            stack.start(timeout=120)
        except BaseException:
            stack.stop(grace=10)
            raise
        log.write(f"stack ready in {time.monotonic() - started:.1f}s\n")
        found = System(stack, collector, log_path, config.dev_issuer())
        yield found
    finally:
        stack.stop(grace=15)
        log.close()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    async with httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) as client:
        yield client


@pytest.fixture
async def redis(system: System) -> AsyncIterator[Redis]:
    client = Redis.from_url(system.redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    funcargs = getattr(item, "funcargs", {})
    if report.failed and "system" in funcargs:
        system = funcargs["system"]
        if isinstance(system, System):
            report.sections.append(("stack log (tail)", system.log_tail()))
    return report
