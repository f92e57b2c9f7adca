"""Property-based run of the OpenAPI document (health routes only) against the app, in process,
with a real Redis behind it: every answer documented, never a 5xx, matching its schema."""

# mypy: disable-error-code="import-untyped"

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from dronetesting.servers import free_port
from workflow.main import create_app

from .conftest import FakeBackends, workflow_settings

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
DOCUMENT = json.loads((Path(__file__).resolve().parents[1] / "openapi.json").read_text())
CASES = [(method.upper(), path) for path, item in DOCUMENT["paths"].items() for method in item]


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a loopback port from a thread (the test itself is synchronous)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def api_schema(redis_url: str) -> Iterator[OpenApiSchema]:
    with serving(FakeBackends().app) as downstream:
        app = create_app(workflow_settings(redis_url, downstream), configure_logs=False)
        try:
            yield schemathesis.openapi.from_asgi("/openapi.json", app)
        finally:
            shutdown_lifespans()


def test_document_lists_health_only() -> None:
    assert sorted(DOCUMENT["paths"]) == ["/healthz", "/readyz"]


@pytest.mark.parametrize(("method", "path"), CASES)
def test_operation_answers_as_documented(api_schema: OpenApiSchema, method: str, path: str) -> None:
    @given(case=api_schema[path][method].as_strategy())
    @settings(
        max_examples=5,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(checks=CHECKS)

    check()
