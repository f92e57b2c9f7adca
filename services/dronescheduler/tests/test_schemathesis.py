"""Property-based run of the whole OpenAPI document against the app and a real FerretDB.

For every documented operation Schemathesis generates requests that fit the document (positive)
and requests that break it (negative) and calls the app in process (ASGI, lifespan included, real
storage behind it). Every answer must be documented, never a 5xx, and match its schema, content
type and documented headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from dronescheduler.main import create_app

from .conftest import HEAVY, LIGHT, STANDARD, fleet, scheduler_settings

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]
DOCUMENT = json.loads((Path(__file__).resolve().parents[1] / "openapi.json").read_text())
# Health routes take no input, so there is nothing to break: they are run with valid requests only.
CASES = [
    (method.upper(), path, mode)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode is GenerationMode.POSITIVE or "parameters" in operation or "requestBody" in operation
]


@pytest.fixture
def api_schema(mongo_url: str, mongo_database: str) -> Iterator[OpenApiSchema]:
    app = create_app(
        scheduler_settings(mongo_url, mongo_database, fleet(60, classes=[LIGHT, STANDARD, HEAVY])),
        configure_logs=False,
    )
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        ready = schema["/readyz"]["GET"].Case()
        for _ in range(200):  # the fleet is seeded in the background at start-up
            if ready.call().status_code == 200:
                break
            time.sleep(0.05)
        yield schema
    finally:
        shutdown_lifespans()  # runs the app's shutdown (closes its MongoDB client)


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_answers_as_documented(
    api_schema: OpenApiSchema, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: schemathesis.Case[Any]) -> None:
        if method == "PUT" and mode is GenerationMode.POSITIVE and isinstance(case.body, dict):
            # Path and body ids must agree: make them, so valid requests reach the scheduler.
            case.body["deliveryId"] = case.path_parameters["deliveryId"]
        case.call_and_validate(checks=CHECKS)

    check()
