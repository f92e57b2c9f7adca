"""Property-based run of the OpenAPI document (health routes, the queue view) against the app,
in process, with a real Redis behind it (see :mod:`dronetesting.contract`): every answer
documented, never a 5xx, matching its schema, content type and headers. The stand-in backends
(:class:`~.conftest.FakeBackends`) answer the downstream health probes from a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dronetesting.apps import serving_in_thread
from dronetesting.contract import (
    GenerationMode,
    OpenApiSchema,
    asgi_schema,
    check_operation,
    document_cases,
)
from workflow.main import create_app

from .conftest import FakeBackends, workflow_settings

DOCUMENT = Path(__file__).resolve().parents[1] / "openapi.json"
CASES = document_cases(DOCUMENT)


@pytest.fixture
def api_schema(redis_url: str) -> Iterator[OpenApiSchema]:
    with serving_in_thread(FakeBackends().app) as downstream:
        app = create_app(workflow_settings(redis_url, downstream), configure_logs=False)
        with asgi_schema(app) as schema:
            yield schema


def test_document_lists_health_and_the_queue_view() -> None:
    paths = json.loads(DOCUMENT.read_text())["paths"]
    assert sorted(paths) == ["/api/queue", "/healthz", "/readyz"]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_answers_as_documented(
    api_schema: OpenApiSchema, method: str, path: str, mode: GenerationMode
) -> None:
    check_operation(api_schema, method, path, mode, max_examples=5)
