"""The rule that decides whether scripts/compose_checks.py may skip a check of a missing route."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checks() -> Iterator[ModuleType]:
    """The script, imported by path (scripts/ is no package); dataclasses need it in sys.modules."""
    spec = importlib.util.spec_from_file_location(
        "compose_checks", ROOT / "scripts" / "compose_checks.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def problem(status: int, detail: str) -> httpx.Response:
    body = {"type": "about:blank", "title": "Not Found", "status": status, "detail": detail}
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/problem+json"},
        request=httpx.Request("GET", "https://127.0.0.1:8443/api/deliveries/public/x/tracking"),
    )


def test_the_services_own_unknown_route_404_is_a_missing_route(checks: ModuleType) -> None:
    response = problem(404, "No resource at /api/deliveries/public/x/tracking.")
    assert checks.is_missing_route(response) is True


def test_a_404_about_the_delivery_is_not_a_missing_route(checks: ModuleType) -> None:
    assert checks.is_missing_route(problem(404, "No delivery x.")) is False


def test_the_gateways_404_fails_instead_of_skipping(checks: ModuleType) -> None:
    with pytest.raises(checks.CheckFailedError, match="gateway does not route it"):
        checks.is_missing_route(problem(404, checks.GATEWAY_404))


def test_other_statuses_are_never_skipped(checks: ModuleType) -> None:
    assert checks.is_missing_route(problem(405, "No resource at /x.")) is False
    assert checks.is_missing_route(problem(503, "No resource at /x.")) is False


def test_checks_of_components_not_built_yet_name_the_service_that_turns_them_on(
    checks: ModuleType,
) -> None:
    requires = {check.name: check.requires for check in checks.CHECKS}
    assert "webapp" in requires.values()
    assert "notifier" in requires.values()
    assert set(requires.values()) <= {"gateway", "webapp", "mailpit", "notifier", "jaeger"}
