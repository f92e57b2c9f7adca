"""Property-based run of the control API's OpenAPI document against the simulator, in process,
on the real Redis (see :mod:`dronetesting.contract`): every answer documented, never a 5xx,
matching its schema, content type and headers. The real delivery service and drone scheduler
answer from loopback sockets, so the simulator gets ready as it does in the stack."""

from __future__ import annotations

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
from simulator.main import create_app

from .conftest import backend_apps, simulator_settings

CASES = document_cases(Path(__file__).resolve().parents[1] / "openapi.json")


@pytest.fixture
def api_schema(redis_url: str, mongo_url: str, mongo_database: str) -> Iterator[OpenApiSchema]:
    delivery, scheduler = backend_apps(redis_url, mongo_url, mongo_database)
    with (
        serving_in_thread(delivery) as delivery_url,
        serving_in_thread(scheduler) as scheduler_url,
    ):
        settings = simulator_settings(redis_url, delivery_url, scheduler_url)
        with asgi_schema(create_app(settings, configure_logs=False), ready_within=20) as schema:
            yield schema


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_answers_as_documented(
    api_schema: OpenApiSchema, method: str, path: str, mode: GenerationMode
) -> None:
    check_operation(api_schema, method, path, mode, max_examples=40)
