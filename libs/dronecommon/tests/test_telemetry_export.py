"""Telemetry export for real, in a child process (OpenTelemetry's providers are process-global).

A service app is built with an Azure Monitor connection string (or an OTLP endpoint) that points
at a local HTTP server standing in for the ingestion endpoint / collector; the child serves one
request and stops, and the test reads what reached the local server.
"""

from __future__ import annotations

import gzip
import http.server
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

CHILD = textwrap.dedent(
    """
    import asyncio
    import os
    from typing import ClassVar
    from fastapi import APIRouter
    from pydantic import Field
    from dronecommon import ServiceSettings, create_service_app
    from dronecommon.settings import AuthSettings
    from dronetesting.apps import app_client

    class ChildSettings(ServiceSettings):
        service_name: ClassVar[str] = "exportcheck"
        # Tokens are not this file's subject (see test_auth*.py): switched off explicitly.
        auth: AuthSettings = Field(default_factory=lambda: AuthSettings(enabled=False))

    router = APIRouter()

    @router.get("/items/{item_id}")
    async def item(item_id: str) -> dict[str, str]:
        return {"id": item_id}

    async def main() -> None:
        app = create_service_app(ChildSettings(), title="exportcheck", routers=[router])
        async with app_client(app) as client:
            assert (await client.get("/items/42")).status_code == 200
            assert (await client.get("/healthz")).status_code == 200
        print("exporter=" + app.state.telemetry.exporter, flush=True)
        statsbeat = os.environ.get("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "")
        print("statsbeat_disabled=" + statsbeat)

    asyncio.run(main())
    """
)


@dataclass
class Received:
    requests: list[tuple[str, bytes]] = field(default_factory=list)


@pytest.fixture
def collector() -> Iterator[tuple[int, Received]]:
    received = Received()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            received.requests.append((self.path, body))
            payload = b'{"itemsReceived": 1, "itemsAccepted": 1, "errors": []}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()


def run_child(env: dict[str, str], timeout: float = 40) -> tuple[str, float]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OTEL_", "APPLICATIONINSIGHTS_", "EXPORTCHECK_"))
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, elapsed


@pytest.mark.slow
def test_azure_monitor_exports_request_spans(collector: tuple[int, Received]) -> None:
    port, received = collector
    stdout, _ = run_child(
        {
            "APPLICATIONINSIGHTS_CONNECTION_STRING": (
                "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                f"IngestionEndpoint=http://127.0.0.1:{port}/"
            ),
            "EXPORTCHECK_TELEMETRY__SHUTDOWN_TIMEOUT": "10",
        }
    )
    assert "exporter=azure-monitor" in stdout
    tracks = [body for path, body in received.requests if path.endswith("/track")]
    assert tracks, [path for path, _ in received.requests]
    envelopes = [envelope for body in tracks for envelope in json.loads(body)]
    requests = [e for e in envelopes if e.get("data", {}).get("baseType") == "RequestData"]
    names = {e["data"]["baseData"]["name"] for e in requests}
    assert "GET /items/{item_id}" in names
    assert not any("healthz" in name for name in names)
    assert all(e.get("iKey") == "00000000-0000-0000-0000-000000000000" for e in envelopes)
    # Statsbeat (the SDK's own usage reporting to Microsoft) is off unless asked for.
    assert "statsbeat_disabled=true" in stdout


@pytest.mark.slow
def test_otlp_exports_request_spans(collector: tuple[int, Received]) -> None:
    port, received = collector
    stdout, _ = run_child({"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert "exporter=otlp" in stdout
    traces = [body for path, body in received.requests if path == "/v1/traces"]
    assert traces
    assert b"GET /items/{item_id}" in b"".join(traces)
    assert b"healthz" not in b"".join(traces)
    assert any(path == "/v1/metrics" for path, _ in received.requests)


@pytest.mark.slow
def test_shutdown_is_bounded_when_the_collector_never_answers() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)  # accepts connections (in the backlog), never answers
        port = silent.getsockname()[1]
        stdout, elapsed = run_child(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
                "EXPORTCHECK_TELEMETRY__SHUTDOWN_TIMEOUT": "2",
            }
        )
    assert "exporter=otlp" in stdout
    assert elapsed < 15
