"""Pytest fixtures shared by every package's tests: the ``dronetesting`` plugin, registered by
entry point (nothing to import).

Servers are real: ``redis-server``, FerretDB and Mailpit run as child processes on free loopback
ports in temporary folders and are stopped at the end of the session (or test, for the factories).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dronetesting.servers import FerretDBServer, MailpitServer, RedisServer
from dronetesting.tokens import dev_issuer

__all__ = ["dev_issuer"]  # re-exported as a fixture


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One real redis-server for the session."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session's Redis, emptied before the test."""
    import redis

    redis_server.start()  # a test may have stopped it
    with redis.Redis.from_url(redis_server.url) as client:
        client.flushall()
    return redis_server.url


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[Callable[[], RedisServer]]:
    """Fresh redis-servers owned by one test (to stop and start them at will)."""
    servers: list[RedisServer] = []

    def make() -> RedisServer:
        server = RedisServer(tmp_path / f"redis-{len(servers)}")
        servers.append(server)
        server.start()
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def ferretdb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FerretDBServer]:
    """One real FerretDB (MongoDB wire protocol on SQLite) for the session."""
    with FerretDBServer(tmp_path_factory.mktemp("ferretdb")) as server:
        yield server


@pytest.fixture
def mongo_url(ferretdb_server: FerretDBServer) -> str:
    """The session's FerretDB."""
    ferretdb_server.start()
    return ferretdb_server.url


@pytest.fixture
def mongo_database() -> str:
    """A database name of the test's own, so tests never see each other's documents."""
    return f"t{uuid.uuid4().hex[:16]}"


@pytest.fixture(scope="session")
def mailpit_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MailpitServer]:
    """One real Mailpit (SMTP and its HTTP API on free ports) for the session."""
    with MailpitServer(tmp_path_factory.mktemp("mailpit")) as server:
        yield server


@pytest.fixture
def mailpit(mailpit_server: MailpitServer) -> MailpitServer:
    """The session's Mailpit, running (a test may have stopped it) and emptied before the test.

    Its API: ``GET {url}/api/v1/messages`` lists messages, ``GET {url}/api/v1/message/{ID}`` reads
    one (``Subject``, ``To``, ``MessageID``, ``Text``, ``HTML``).
    """
    import httpx

    mailpit_server.start()
    httpx.delete(f"{mailpit_server.url}/api/v1/messages", timeout=10).raise_for_status()
    return mailpit_server


_SPAN_EXPORTER: InMemorySpanExporter | None = None


@pytest.fixture
def span_exporter() -> InMemorySpanExporter:
    """Spans finished during the test, from a process-wide in-memory tracer provider.

    OpenTelemetry allows one global tracer provider per process; the first use installs it and
    every later test gets the same exporter, emptied.
    """
    global _SPAN_EXPORTER
    if _SPAN_EXPORTER is None:
        _SPAN_EXPORTER = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_SPAN_EXPORTER))
        trace.set_tracer_provider(provider)
    _SPAN_EXPORTER.clear()
    return _SPAN_EXPORTER
