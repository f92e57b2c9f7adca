"""scripts/compose_checks.py: every check runs and must pass; nothing is skipped."""

from __future__ import annotations

import importlib.util
import io
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
import yaml

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


def test_every_check_needs_a_service_of_the_compose_file(checks: ModuleType) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = set(compose["services"])
    for check in checks.CHECKS:
        assert check.requires in services, check.name
    assert {"webapp", "notifier", "mailpit", "gateway"} <= {c.requires for c in checks.CHECKS}


def test_a_component_missing_from_the_compose_file_fails_its_checks(checks: ModuleType) -> None:
    stack = checks.Stack(
        gateway="https://127.0.0.1:9",
        services=frozenset({"gateway"}) - {"gateway"},
        mailpit=None,
        smtp=None,
        jaeger=None,
        token=None,
        tls=ssl.create_default_context(),
    )
    out = io.StringIO()
    failed = checks.run_checks(stack, out)
    assert failed == [check.name for check in checks.CHECKS[:4]]  # stops at the sample request
    assert "no 'gateway' service in the compose file" in out.getvalue()
    assert "SKIP" not in out.getvalue()
