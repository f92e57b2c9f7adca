"""``python -m <service> --help`` explains the service and exits 0 without serving."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dronetesting.stack import SERVICE_PORTS


def run_help(module: str, **env: str) -> subprocess.CompletedProcess[str]:
    # Serving would block until a signal: the time-out turns that into a failure.
    return subprocess.run(
        [sys.executable, "-m", module, "--help"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


# Beside the shared ones, a few of each service's own variables.
OWN_SETTINGS = {
    "ingestion": ["INGESTION_QUEUE__TRANSPORT", "INGESTION_IDEMPOTENCY_TTL"],
    "delivery": ["DELIVERY_REDIS__URL", "DELIVERY_RETENTION_SECONDS"],
    "package": ["PACKAGE_MONGO__URL", "PACKAGE_QUERY_TIMEOUT"],
    "dronescheduler": ["DRONESCHEDULER_FLEET__COUNT", "DRONESCHEDULER_MONGO__DATABASE"],
    "workflow": ["WORKFLOW_PACKAGE_URL", "WORKFLOW_QUEUE__MAX_CONCURRENCY"],
    "simulator": ["SIMULATOR_SPEED_FACTOR", "SIMULATOR_TELEMETRY_INTERVAL"],
    "notifier": ["NOTIFIER_EMAIL__SMTP__PORT", "NOTIFIER_OUTBOX__MAX_ATTEMPTS"],
    "webapp": ["WEBAPP_SIGNIN__MODE", "WEBAPP_TILES_URL", "WEBAPP_SESSION__SECRET_KEY"],
}


@pytest.mark.parametrize("service", sorted(SERVICE_PORTS))
def test_help_prints_usage_variables_and_docs_then_exits_0(service: str) -> None:
    prefix = service.upper()
    port = SERVICE_PORTS[service]
    # A broken setting does not stop --help: it reads no configuration.
    result = run_help(service, **{f"{prefix}_PORT": "not-a-port"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert out.startswith(f"usage: python -m {service} [-h]")
    assert f"{prefix}_PORT" in out
    assert f"{prefix}_LOG_LEVEL" in out
    assert f"{prefix}_AUTH__ENABLED" in out
    assert f"http://127.0.0.1:{port}/docs" in out
    assert f"http://127.0.0.1:{port}/redoc" in out
    assert f"services/{service}/README.md" in out
    for name in OWN_SETTINGS[service]:
        assert name in out


def test_deadletters_help_names_its_queue_settings() -> None:
    result = run_help("workflow.deadletters")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m workflow.deadletters")
    for text in ("list", "replay", "WORKFLOW_QUEUE__TRANSPORT", "WORKFLOW_REDIS__URL"):
        assert text in result.stdout
    assert "WORKFLOW_HTTP__" not in result.stdout


def test_an_unknown_argument_is_refused_with_status_2() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "package", "--serve-forever"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "unrecognized arguments: --serve-forever" in result.stderr
