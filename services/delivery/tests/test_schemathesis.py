"""Property-based run over the API document: no 5xx, no undocumented status, conforming bodies.

The app runs in process (ASGI; schemathesis drives its lifespan) on the test's real Redis, one
test per operation. A delivery is created first under the id the document gives as the path
example, so the explicit-example phase reaches existing-delivery answers (200, 204, 409), not only
404s. The tracking streams (``text/event-stream``) never end for a live delivery, so they are left
to ``test_stream.py``. (``schemathesis.pytest.from_fixture`` is not used: with pytest 9 it fails
on the removed ``Function._nodeid``.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.python.asgi import get_client, shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

EXAMPLE_ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
DOCUMENT = json.loads((Path(__file__).resolve().parents[1] / "openapi.json").read_text())
OPERATIONS = [
    (method.upper(), path)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
    if "text/event-stream" not in operation["responses"].get("200", {}).get("content", {})
]
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_operation_conforms_to_the_document(
    make_app: Callable[..., Any], new_delivery: Callable[..., Any], method: str, path: str
) -> None:
    app = make_app()
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    with get_client(app) as client:
        created = client.put(f"/api/deliveries/{EXAMPLE_ID}", json=new_delivery(EXAMPLE_ID))
        assert created.status_code == 201, created.text
    operation = schema[path][method]
    strategy = st.one_of(
        operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
        operation.as_strategy(schemathesis.GenerationMode.NEGATIVE),
        *schema.get_strategies_from_examples(operation),
    )

    @given(case=strategy)
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def run(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(checks=CHECKS)

    try:
        run()
    finally:
        shutdown_lifespans()  # stops the app (and its telemetry consumer)
