"""Property-based run of the whole OpenAPI document against the app and a real FerretDB.

See :mod:`dronetesting.contract`: positive and negative requests for every documented
operation; every answer documented, never a 5xx, matching its schema, content type and headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dronecommon.settings import AuthSettings, MongoSettings
from dronetesting.contract import (
    GenerationMode,
    OpenApiSchema,
    asgi_schema,
    check_operation,
    document_cases,
)
from package.main import create_app
from package.settings import PackageSettings

CASES = document_cases(Path(__file__).resolve().parents[1] / "openapi.json")


@pytest.fixture
def api_schema(mongo_url: str, mongo_database: str) -> Iterator[OpenApiSchema]:
    settings = PackageSettings(
        mongo=MongoSettings(url=mongo_url, database=mongo_database),
        log_json=False,
        auth=AuthSettings(enabled=False),
    )
    with asgi_schema(create_app(settings, configure_logs=False)) as schema:
        yield schema


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_answers_as_documented(
    api_schema: OpenApiSchema, method: str, path: str, mode: GenerationMode
) -> None:
    check_operation(api_schema, method, path, mode, max_examples=50)
