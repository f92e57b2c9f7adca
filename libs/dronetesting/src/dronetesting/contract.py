"""Property-based checks of a service against its committed OpenAPI document (Schemathesis).

For every documented operation, requests that fit the document (positive) and requests that break
it (negative) are generated and sent to the app in process (ASGI, lifespan included, real storage
behind it). Every answer must be documented, never a 5xx, and match its schema, content type and
documented headers. (``schemathesis.pytest.from_fixture`` is not used: with pytest 9 it fails on
the removed ``Function._nodeid``.)
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import schemathesis
from fastapi import FastAPI
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

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]

Case = schemathesis.Case[Any]


def document_cases(document: Path) -> list[tuple[str, str, GenerationMode]]:
    """(method, path, mode) for every operation of a committed document.

    Operations without parameters or body (the health routes) take no input, so there is nothing
    to break: they are run with valid requests only.
    """
    paths = json.loads(document.read_text())["paths"]
    return [
        (method.upper(), path, mode)
        for path, item in paths.items()
        for method, operation in item.items()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if mode is GenerationMode.POSITIVE
        or "parameters" in operation
        or "requestBody" in operation
    ]


@contextlib.contextmanager
def asgi_schema(app: FastAPI, *, ready_within: float = 10.0) -> Iterator[OpenApiSchema]:
    """The app's schema, with the app started and ``/readyz`` answering 200 (or time up)."""
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        ready = schema["/readyz"]["GET"].Case()
        deadline = time.monotonic() + ready_within
        while ready.call().status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)  # work started in the background at start-up (indexes, seeding)
        yield schema
    finally:
        shutdown_lifespans()  # runs the app's shutdown (closes its clients)


def check_operation(
    schema: OpenApiSchema,
    method: str,
    path: str,
    mode: GenerationMode,
    *,
    max_examples: int = 50,
    prepare: Callable[[Case], None] | None = None,
) -> None:
    """Generate requests for one operation and validate every answer against the document."""
    operation = schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: Case) -> None:
        if prepare is not None:
            prepare(case)
        case.call_and_validate(checks=CHECKS)

    check()
