"""Property-based run over the service's OpenAPI document, in process, on the real Redis.

See :mod:`dronetesting.contract`: valid and invalid requests for every documented operation,
sent to the app through its ASGI transport (its lifespan runs, so Redis and the queue are real).
Every answer must have a documented status, never a 5xx, and match the documented schema,
content type and headers. Valid requests get through (202, on the queue); invalid bodies are 400s.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis

from dronecommon.messaging.redis_streams import stream_key
from dronetesting.contract import (
    GenerationMode,
    OpenApiSchema,
    asgi_schema,
    check_operation,
    document_cases,
)
from ingestion.main import create_app

from .conftest import QUEUE, make_settings

CASES = document_cases(Path(__file__).resolve().parents[1] / "openapi.json")


@pytest.fixture
def api_schema(redis_url: str) -> Iterator[OpenApiSchema]:
    with asgi_schema(create_app(make_settings(redis_url), configure_logs=False)) as schema:
        yield schema


@pytest.mark.slow
@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_answers_as_documented(
    api_schema: OpenApiSchema, redis_url: str, method: str, path: str, mode: GenerationMode
) -> None:
    statuses = check_operation(api_schema, method, path, mode, max_examples=50)
    if method in ("POST", "PATCH") and mode is GenerationMode.NEGATIVE:
        assert statuses[400], statuses
    if (method, path, mode) == ("POST", "/api/deliveryrequests", GenerationMode.POSITIVE):
        assert statuses[202], statuses
        with Redis.from_url(redis_url) as redis:
            assert redis.xlen(stream_key(QUEUE)) > 0  # replays of a key add nothing
