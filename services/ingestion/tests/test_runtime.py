"""The service as it runs: ``python -m ingestion``, the committed OpenAPI, settings from the env."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dronecommon import SettingsError, load_settings
from dronecommon.settings import AuthSettings
from dronetesting.apps import start_service_process
from dronetesting.openapi import assert_openapi_current
from dronetesting.samples import SAMPLE_REQUEST
from dronetesting.servers import free_port
from ingestion.main import create_app
from ingestion.settings import IngestionSettings

from .conftest import queued

SERVICE_ROOT = Path(__file__).resolve().parents[1]


def _documented_app() -> Any:
    """The app as documented (the same document whether or not it checks tokens)."""
    return create_app(IngestionSettings(auth=AuthSettings(enabled=False)), configure_logs=False)


def test_the_committed_openapi_matches_the_code() -> None:
    assert_openapi_current(_documented_app(), SERVICE_ROOT / "openapi.json")


def test_the_routes_document_their_real_statuses() -> None:
    paths = _documented_app().openapi()["paths"]
    statuses = {
        (method.upper(), path): set(operation["responses"])
        for path, operations in paths.items()
        for method, operation in operations.items()
    }
    assert statuses[("POST", "/api/deliveryrequests")] == {
        "202", "400", "401", "403", "409", "413", "415", "422", "429", "503"
    }  # fmt: skip
    assert statuses[("PATCH", "/api/deliveryrequests/{deliveryId}")] == {
        "202", "400", "401", "403", "404", "409", "413", "415", "422", "503"
    }  # fmt: skip
    assert statuses[("DELETE", "/api/deliveryrequests/{deliveryId}")] == {
        "202", "400", "401", "403", "404", "409", "422", "503"
    }  # fmt: skip
    assert statuses[("GET", "/healthz")] == {"200"}
    assert statuses[("GET", "/readyz")] == {"200", "503"}


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INGESTION_PORT", "9101")
    monkeypatch.setenv("INGESTION_REDIS__URL", "redis://cache:6380/1")
    monkeypatch.setenv("INGESTION_QUEUE__TRANSPORT", "servicebus")
    monkeypatch.setenv("INGESTION_SEND_TIMEOUT", "2.5")
    settings = load_settings(IngestionSettings)
    assert settings.port == 9101
    assert settings.redis.url == "redis://cache:6380/1"
    assert settings.queue.transport == "servicebus"
    assert settings.send_timeout == 2.5
    assert IngestionSettings.service_name == "ingestion"


def test_defaults_and_bad_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("INGESTION_"):
            monkeypatch.delenv(name)
    settings = load_settings(IngestionSettings)
    assert settings.port == 8001
    assert settings.queue.transport == "redis"
    monkeypatch.setenv("INGESTION_SEND_TIMEOUT", "-1")
    with pytest.raises(SettingsError, match="INGESTION_SEND_TIMEOUT"):
        load_settings(IngestionSettings)
    monkeypatch.setenv("INGESTION_SEND_TIMEOUT", "20")
    with pytest.raises(SettingsError, match="idempotency_lease"):
        load_settings(IngestionSettings)


@pytest.mark.slow
async def test_python_m_ingestion_serves_and_stops_on_sigterm(
    redis_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "INGESTION_PORT": str(port),
        "INGESTION_REDIS__URL": redis_url,
        "INGESTION_LOG_JSON": "true",
        "INGESTION_AUTH__ENABLED": "false",
    }
    log = tmp_path / "ingestion.log"
    process = await start_service_process("ingestion", env, log, port=port)
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            response = await client.post("/api/deliveryrequests", json=SAMPLE_REQUEST)
        assert response.status_code == 202, response.text
        assert response.headers["location"].startswith("/api/deliveries/")
        assert "server" not in response.headers
        [message] = await queued(redis_url)
        assert message.body == response.json()

        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=10)
        assert code == 0, log.read_text()
        assert time.monotonic() - stopping < 5
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(line.get("http_status") == 202 for line in lines), log.read_text()
    assert "Traceback" not in log.read_text()
