"""The service as it runs: auth, readiness, a store down at start-up, OpenAPI, ``python -m``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dronecommon.settings import AuthSettings
from dronescheduler.main import create_app
from dronescheduler.settings import DroneSchedulerSettings, SchedulerMongoSettings
from dronetesting.apps import app_client, wait_ready
from dronetesting.openapi import assert_openapi_current
from dronetesting.problems import assert_problem
from dronetesting.servers import FerretDBServer, free_port
from dronetesting.tokens import LocalIssuer

from .conftest import area, delivery, fleet, put, scheduler_settings

SERVICE_ROOT = Path(__file__).resolve().parents[1]


async def test_auth_on_requires_a_service_token_with_the_route_s_role(
    mongo_url: str, mongo_database: str, dev_issuer: LocalIssuer
) -> None:
    settings = scheduler_settings(mongo_url, mongo_database, auth=dev_issuer.settings)
    async with app_client(create_app(settings, configure_logs=False)) as client:
        assert (await wait_ready(client)).status_code == 200
        body = delivery()
        path = f"/api/dronedeliveries/{body['deliveryId']}"
        anonymous = await client.put(path, json=body)
        assert_problem(anonymous, 401)
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert_problem(await client.get(path), 401)
        assert_problem(await client.delete(path), 401)
        assert_problem(
            await client.get("/api/dronedeliveries/utilization?ownerId=o&year=2024&month=1"), 401
        )
        forged = await client.get(path, headers={"Authorization": "Bearer x.y.z"})
        assert_problem(forged, 401)

        # A customer token, even an operator's, never reaches the scheduler.
        for customer in (dev_issuer.customer(), dev_issuer.customer(roles=("Operator",))):
            refused = await client.put(path, json=body, headers=customer)
            assert "customer token" in assert_problem(refused, 403)["detail"]
        workflow = dev_issuer.service("Drones.Assign", caller="workflow")
        simulator = dev_issuer.service("Drones.Fly", caller="simulator")
        # The drones read and release; they do not assign.
        assert_problem(await client.put(path, json=body, headers=simulator), 403)
        assert (await client.put(path, json=body, headers=workflow)).status_code == 201
        read = await client.get(path, headers=simulator)
        assert read.status_code == 200
        assert read.json()["deliveryId"] == body["deliveryId"]
        drone = await client.get(f"/api/drones/{read.json()['droneId']}", headers=simulator)
        assert drone.status_code == 200
        assert_problem(
            await client.patch(path, json={"pickup": body["dropoff"]}, headers=simulator), 403
        )
        assert (await client.delete(path, headers=simulator)).status_code == 204
        # Health stays public.
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/readyz")).status_code == 200


async def test_readiness_reports_a_store_that_is_down_then_recovers(tmp_path: Path) -> None:
    port = free_port()
    mongo = SchedulerMongoSettings(
        url=f"mongodb://127.0.0.1:{port}/", database="late", server_selection_timeout=0.3
    )
    settings = DroneSchedulerSettings(
        mongo=mongo,
        fleet=fleet(count=5),
        service_area=area(),
        log_json=False,
        query_timeout=0.5,
        startup_wait=0.5,
        auth=AuthSettings(enabled=False),
    )
    async with app_client(create_app(settings, configure_logs=False)) as client:
        assert (await client.get("/healthz")).status_code == 200
        down = await client.get("/readyz")
        problem = assert_problem(down, 503)
        assert "mongo" in problem["detail"]
        assert "fleet" in problem["detail"]
        assert problem["checks"]["mongo"]["status"] == "fail"
        # Requests are answered 503 with a Retry-After, never 500.
        starting = assert_problem(await put(client, delivery()), 503)
        assert starting["type"] == "urn:dronedelivery:problem:starting"
        unavailable = await client.get("/api/dronedeliveries/anything")
        assert_problem(unavailable, 503)
        assert "retry-after" in unavailable.headers

        # The store comes up: start-up is retried in the background and the service gets ready.
        with FerretDBServer(tmp_path / "late", port):
            ready = await wait_ready(client)
            assert ready.status_code == 200, ready.text
            assert ready.json()["checks"]["fleet"]["status"] == "ok"
            assert (await put(client, delivery())).status_code == 201
        # And goes away again: readiness says so, requests are 503.
        down_again = await wait_ready(client, status=503)
        assert_problem(down_again, 503)
        assert_problem(await put(client, delivery()), 503)


def test_openapi_document_is_current() -> None:
    settings = DroneSchedulerSettings(auth=AuthSettings(enabled=False))
    assert_openapi_current(
        create_app(settings, configure_logs=False), SERVICE_ROOT / "openapi.json"
    )


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRONESCHEDULER_FLEET__COUNT", "12")
    monkeypatch.setenv(
        "DRONESCHEDULER_SERVICE_AREA__BASES",
        '[{"name": "pier", "latitude": 47.6, "longitude": -122.3}]',
    )
    monkeypatch.setenv("DRONESCHEDULER_SERVICE_AREA__RADIUS_MILES", "15")
    monkeypatch.setenv("DRONESCHEDULER_MONGO__URL", "mongodb://db:27017")
    settings = DroneSchedulerSettings()
    assert settings.port == 8004
    assert settings.fleet.count == 12
    assert [base.name for base in settings.service_area.bases] == ["pier"]
    assert settings.service_area.radius_miles == 15
    assert settings.mongo.url == "mongodb://db:27017"
    assert settings.mongo.database == "dronescheduler"


@pytest.mark.slow
async def test_python_m_serves_and_stops_on_sigterm(
    mongo_url: str, mongo_database: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DRONESCHEDULER_PORT": str(port),
        "DRONESCHEDULER_MONGO__URL": mongo_url,
        "DRONESCHEDULER_MONGO__DATABASE": mongo_database,
        "DRONESCHEDULER_FLEET__COUNT": "50",
        "DRONESCHEDULER_LOG_LEVEL": "WARNING",
        "DRONESCHEDULER_AUTH__ENABLED": "false",
    }
    log = tmp_path / "service.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for below
            [sys.executable, "-m", "dronescheduler"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            # Generous: on two busy cores a start with its fleet to seed can take a while.
            deadline = time.monotonic() + 60
            answer = "no answer"
            while True:
                assert process.poll() is None, log.read_text()
                try:
                    ready = await client.get("/readyz")
                    if ready.status_code == 200:
                        break
                    answer = f"{ready.status_code} {ready.text}"
                except httpx.TransportError as exc:
                    answer = repr(exc)
                assert time.monotonic() < deadline, f"not ready in 60 s: {answer}"
                await asyncio.sleep(0.1)
            response = await put(client, delivery())
            assert response.status_code == 201
            assert response.json()["droneId"].count("-") == 2
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = await asyncio.to_thread(process.wait, 10)
        assert code == 0, log.read_text()
        assert time.monotonic() - started < 10
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
