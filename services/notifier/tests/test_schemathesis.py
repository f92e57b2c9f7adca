"""Property-based run of the whole OpenAPI document against the app, a real Redis and Mailpit.

See :mod:`dronetesting.contract`: positive and negative requests for every documented
operation; every answer documented, never a 5xx, matching its schema, content type and headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dronetesting.contract import (
    GenerationMode,
    OpenApiSchema,
    asgi_schema,
    check_operation,
    document_cases,
)
from dronetesting.servers import MailpitServer
from notifier.main import create_app

from .conftest import notifier_settings

CASES = document_cases(Path(__file__).resolve().parents[1] / "openapi.json")


@pytest.fixture
def api_schema(redis_url: str, mailpit: MailpitServer) -> Iterator[OpenApiSchema]:
    settings = notifier_settings(redis_url, mailpit)
    with asgi_schema(create_app(settings, configure_logs=False)) as schema:
        yield schema


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_operation_answers_as_documented(
    api_schema: OpenApiSchema, method: str, path: str, mode: GenerationMode
) -> None:
    check_operation(api_schema, method, path, mode, max_examples=30)
