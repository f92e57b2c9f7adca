"""Property-based run over the service's OpenAPI document, in process, on the real Redis.

Schemathesis generates requests for every operation (valid ones, then invalid ones) and sends
them to the app through its ASGI transport (the app's lifespan runs, so Redis and the queue are
real). Every answer must have a documented status, never a 5xx, and match the documented schema,
content type and headers.

``schemathesis.pytest.from_fixture`` does not run under pytest 9 (it reads ``Node._nodeid``), so
the cases come from the operations' Hypothesis strategies instead.
"""

# The service is imported by its installed name, which mypy sees as an untyped package until
# the root mypy_path lists services/ingestion/src (reported to the lead).
# mypy: disable-error-code="import-untyped"

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core.result import Ok
from schemathesis.generation.case import Case
from schemathesis.python.asgi import shutdown_lifespans

from dronetesting.contract import CHECKS
from ingestion.main import create_app

from .conftest import make_settings, queued


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
async def test_the_api_keeps_its_documented_promises(redis_url: str, mode: GenerationMode) -> None:
    app = create_app(make_settings(redis_url), configure_logs=False)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) == 5
    statuses: list[int] = []

    @given(
        case=st.one_of([operation.as_strategy(generation_mode=mode) for operation in operations])
    )
    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: Case[Any]) -> None:
        response = case.call_and_validate(checks=CHECKS)
        statuses.append(response.status_code)

    try:
        run()
    finally:
        shutdown_lifespans()  # closes the app's clients in the loop that made them
    if mode is GenerationMode.POSITIVE:
        assert 202 in statuses
        assert await queued(redis_url)
    else:
        assert 400 in statuses
