"""The contract-fuzz driver: a service against its committed OpenAPI document (Schemathesis).

Every service runs it the same way, with the same checks::

    CASES = document_cases(SERVICE_ROOT / "openapi.json")

    @pytest.fixture
    def api_schema(...) -> Iterator[OpenApiSchema]:
        with asgi_schema(create_app(settings, configure_logs=False)) as schema:
            yield schema

    @pytest.mark.parametrize(("method", "path", "mode"), CASES)
    def test_operation_answers_as_documented(api_schema, method, path, mode) -> None:
        check_operation(api_schema, method, path, mode)

For each documented operation, requests that fit the document (positive, the document's own
examples included) and requests that break it (negative) are generated and sent to the app in
process (ASGI, lifespan included, real storage behind it). Every answer must be documented, never
a 5xx, and match its schema, content type and documented headers. (``schemathesis.pytest.
from_fixture`` is not used: with pytest 9 it fails on the removed ``Function._nodeid``.)
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisDeprecationWarning
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

__all__ = [
    "CHECKS",
    "Case",
    "GenerationMode",
    "OpenApiSchema",
    "asgi_schema",
    "check_operation",
    "document_cases",
]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
    response_headers_conformance,
]

Case = schemathesis.Case[Any]


def document_cases(document: Path) -> list[pytest.ParameterSet]:
    """``(method, path, mode)`` for every operation of a committed document, as pytest params.

    Operations without parameters or body (the health routes) take no input, so there is nothing
    to break: they are run with valid requests only.
    """
    paths = json.loads(document.read_text())["paths"]
    return [
        pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode.value}")
        for path, item in paths.items()
        for method, operation in item.items()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if mode is GenerationMode.POSITIVE
        or "parameters" in operation
        or "requestBody" in operation
    ]


@contextlib.contextmanager
def asgi_schema(app: FastAPI, *, ready_within: float = 10.0) -> Iterator[OpenApiSchema]:
    """The app's schema, with the app started and its ``/readyz`` answering 200.

    Work a service starts in the background at start-up (indexes, the fleet) is waited for; the
    app's shutdown runs (closing its clients) when the block ends.
    """
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        ready = schema["/readyz"]["GET"].Case()
        deadline = time.monotonic() + ready_within
        while (answer := ready.call()).status_code != 200:
            assert time.monotonic() < deadline, f"not ready in {ready_within:g}s: {answer.text}"
            time.sleep(0.05)
        yield schema
    finally:
        shutdown_lifespans()


def check_operation(
    schema: OpenApiSchema,
    method: str,
    path: str,
    mode: GenerationMode,
    *,
    max_examples: int = 50,
    prepare: Callable[[Case], None] | None = None,
) -> Counter[int]:
    """Generate requests for one operation and validate every answer against the document.

    ``prepare`` may adjust each case before it is sent (say, make a path id and a body id agree so
    valid requests get past that rule). Returns how often each status was answered.
    """
    operation = schema[path][method]
    strategy = operation.as_strategy(generation_mode=mode)
    if mode is GenerationMode.POSITIVE:
        strategy = st.one_of(strategy, *schema.get_strategies_from_examples(operation))
    statuses: Counter[int] = Counter()

    @given(case=strategy)
    @settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: Case) -> None:
        if prepare is not None:
            prepare(case)
        response = case.call_and_validate(checks=CHECKS)
        statuses[response.status_code] += 1

    with warnings.catch_warnings():
        # The app runs in Schemathesis's event-loop thread while Hypothesis draws a case here;
        # its background work (retry jitter, Redis reconnect backoff) may draw from the global
        # `random` meanwhile, which Hypothesis would take for a strategy using `random`.
        warnings.filterwarnings(
            "ignore",
            message="Do not use the `random` module inside strategies",
            category=HypothesisDeprecationWarning,
        )
        check()
    return statuses
