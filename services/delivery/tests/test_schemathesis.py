"""Property-based run over the API document: no 5xx, no undocumented status, conforming answers.

See :mod:`dronetesting.contract`: the app runs in process (ASGI, lifespan included) on the
test's real Redis, positive and negative requests for every documented operation. A delivery is
created first under the id the document gives as the path example, so the document's examples
reach existing-delivery answers (200, 204, 409), not only 404s. The tracking streams
(``text/event-stream``) never end for a live delivery, so they are left to ``test_stream.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from schemathesis.python.asgi import get_client

from dronetesting.contract import (
    GenerationMode,
    OpenApiSchema,
    asgi_schema,
    check_operation,
    document_cases,
)

EXAMPLE_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
DOCUMENT = Path(__file__).resolve().parents[1] / "openapi.json"
STREAMS = {
    (method.upper(), path)
    for path, item in json.loads(DOCUMENT.read_text())["paths"].items()
    for method, operation in item.items()
    if "text/event-stream" in operation["responses"].get("200", {}).get("content", {})
}
CASES = [case for case in document_cases(DOCUMENT) if tuple(case.values[:2]) not in STREAMS]


@pytest.fixture
def api_schema(
    make_app: Callable[..., Any], new_delivery: Callable[..., Any]
) -> Iterator[OpenApiSchema]:
    app = make_app()
    with asgi_schema(app) as schema:
        with get_client(app) as client:
            created = client.put(f"/api/deliveries/{EXAMPLE_ID}", json=new_delivery(EXAMPLE_ID))
            assert created.status_code == 201, created.text
        yield schema


def test_only_the_streams_are_left_out() -> None:
    streams = {
        ("GET", "/api/deliveries/{id}/tracking"),
        ("GET", "/api/deliveries/public/{id}/tracking"),
    }
    assert streams == STREAMS


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_answers_as_documented(
    api_schema: OpenApiSchema, method: str, path: str, mode: GenerationMode
) -> None:
    check_operation(api_schema, method, path, mode, max_examples=40)
