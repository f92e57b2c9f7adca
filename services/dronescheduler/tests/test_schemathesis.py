"""Property-based run of the whole OpenAPI document against the app and a real FerretDB.

See :mod:`dronetesting.contract`: positive and negative requests for every documented
operation; every answer documented, never a 5xx, matching its schema, content type and headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dronescheduler.main import create_app
from dronetesting.contract import (
    Case,
    GenerationMode,
    OpenApiSchema,
    asgi_schema,
    check_operation,
    document_cases,
)

from .conftest import HEAVY, LIGHT, STANDARD, fleet, scheduler_settings

CASES = document_cases(Path(__file__).resolve().parents[1] / "openapi.json")


@pytest.fixture
def api_schema(mongo_url: str, mongo_database: str) -> Iterator[OpenApiSchema]:
    app = create_app(
        scheduler_settings(mongo_url, mongo_database, fleet(60, classes=[LIGHT, STANDARD, HEAVY])),
        configure_logs=False,
    )
    with asgi_schema(app) as schema:  # waits for the fleet seeded in the background
        yield schema


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_answers_as_documented(
    api_schema: OpenApiSchema, method: str, path: str, mode: GenerationMode
) -> None:
    def same_ids(case: Case) -> None:
        if method == "PUT" and mode is GenerationMode.POSITIVE and isinstance(case.body, dict):
            # Path and body ids must agree: make them, so valid requests reach the scheduler.
            case.body["deliveryId"] = case.path_parameters["deliveryId"]

    check_operation(api_schema, method, path, mode, max_examples=40, prepare=same_ids)
