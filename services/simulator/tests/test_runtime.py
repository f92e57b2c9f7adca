"""The process around the flights: settings, health and readiness, the control API's auth,
outbound tokens, the lease, the committed OpenAPI document, and ``python -m simulator`` killed
with ``kill -9`` and started again: every flight resumes where the clock says it is."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import httpx
import pytest

from dronetesting.apps import app_client, start_service_process
from dronetesting.openapi import assert_openapi_current
from dronetesting.servers import free_port
from dronetesting.tokens import LocalIssuer
from simulator.flight import Point, miles_between
from simulator.main import create_app
from simulator.settings import SimulatorAuthSettings, SimulatorSettings

from .conftest import (
    AUTH_HEADERS,
    World,
    make_world,
    simulator,
    simulator_settings,
    wait_for,
)

SERVICE_DIR = Path(__file__).resolve().parents[1]


def test_openapi_document_is_current() -> None:
    settings = SimulatorSettings(auth=SimulatorAuthSettings(enabled=False))
    assert_openapi_current(create_app(settings, configure_logs=False), SERVICE_DIR / "openapi.json")


def test_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATOR_TELEMETRY_STREAM__TRANSPORT", "eventhubs")
    monkeypatch.setenv("SIMULATOR_SPEED_FACTOR", "100")
    loaded = SimulatorSettings()
    assert loaded.port == 8006
    assert loaded.telemetry_stream.transport == "eventhubs"
    assert loaded.speed_factor == 100
    assert (loaded.telemetry_interval, loaded.handling_seconds) == (1.0, 60.0)
    assert loaded.auth.dev_roles == {
        "delivery": ["Deliveries.Confirm"],
        "dronescheduler": ["Drones.Fly"],
    }
    assert loaded.events_group == "simulator"


async def test_health_readiness_and_a_missing_scheduler(world: World) -> None:
    async with simulator(world) as client:
        health = await client.get("/healthz")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        ready = (await client.get("/readyz")).json()
        assert set(ready["checks"]) == {"redis", "events", "telemetry", "dronescheduler", "pilot"}
        fleet = (await client.get("/api/fleet")).json()
        assert fleet["inFlight"] == 0
        assert fleet["byPhase"] == dict.fromkeys(
            ["ToPickup", "AtPickup", "ToDropoff", "AtDropoff", "Returning"], 0
        )
        missing = await client.get("/api/fleet/downtown-standard-00001")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
    closed = f"http://127.0.0.1:{free_port()}"
    settings = simulator_settings(world.redis_url, world.delivery_url, closed)
    async with app_client(create_app(settings, configure_logs=False)) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert "dronescheduler" in response.json()["detail"]


async def test_one_simulator_flies_the_other_takes_over_when_it_stops(world: World) -> None:
    settings = simulator_settings(world.redis_url, world.delivery_url, world.scheduler_url)
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(simulator(world))
        async with app_client(create_app(settings, configure_logs=False)) as second:
            await asyncio.sleep(1.0)
            assert (await second.get("/api/fleet")).json()["leading"] is False
            assert (await second.get("/readyz")).status_code == 200  # a standby is healthy
            assert (await first.get("/api/fleet")).json()["leading"] is True
            await stack.aclose()  # the first one stops and gives the lease up

            async def leading() -> bool:
                return bool((await second.get("/api/fleet")).json()["leading"])

            await wait_for(leading, within=10, what="the standby to take over")
            plan = await world.schedule(confirmation="None")

            async def completed() -> bool:
                return await world.stage(plan["deliveryId"]) == "Completed"

            await wait_for(completed, within=30, what="the standby to fly the delivery")


async def test_with_auth_the_control_api_needs_the_role_and_calls_carry_tokens(
    redis_url: str, mongo_url: str, mongo_database: str, dev_issuer: LocalIssuer
) -> None:
    services = dev_issuer.settings
    # The test stands in for the workflow: it assigns drones and writes deliveries.
    AUTH_HEADERS[id(services)] = dev_issuer.service("Drones.Assign", "Deliveries.Write")
    async with make_world(redis_url, mongo_url, mongo_database, services) as world:
        scope = f"api://{dev_issuer.audience}/.default"
        own = SimulatorAuthSettings(
            **dev_issuer.settings_with(
                outbound_scopes={"delivery": scope, "dronescheduler": scope},
                dev_signing_key_file=str(dev_issuer.key_file),
            ).model_dump(exclude={"dev_roles"})
        )
        settings = simulator_settings(
            world.redis_url, world.delivery_url, world.scheduler_url, auth=own
        )
        async with app_client(create_app(settings, configure_logs=False)) as client:
            assert (await client.get("/api/fleet")).status_code == 401
            no_role = await client.get("/api/fleet", headers=dev_issuer.service())
            assert no_role.status_code == 403
            customer = dev_issuer.customer(roles=("Fleet.Control",))
            assert (await client.get("/api/fleet", headers=customer)).status_code == 403
            operator = dev_issuer.service("Fleet.Control", caller="ops")
            assert (await client.get("/api/fleet", headers=operator)).status_code == 200
            assert (await client.get("/readyz")).status_code == 200
            plan = await world.schedule(confirmation="None")

            async def completed() -> bool:
                return await world.stage(plan["deliveryId"]) == "Completed"

            await wait_for(completed, within=30, what="a confirmation sent with a token")

            async def released() -> bool:
                body = await world.assignment(plan["deliveryId"])
                return bool(body["status"] == "Released")

            await wait_for(released, within=30, what="a release sent with a token")


SPEED = 30


@pytest.mark.slow
async def test_python_m_simulator_killed_and_restarted_resumes_each_flight(
    world: World, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "SIMULATOR_PORT": str(port),
        "SIMULATOR_REDIS__URL": world.redis_url,
        "SIMULATOR_DELIVERY_URL": world.delivery_url,
        "SIMULATOR_DRONESCHEDULER_URL": world.scheduler_url,
        "SIMULATOR_SPEED_FACTOR": str(SPEED),
        "SIMULATOR_HANDLING_SECONDS": "0.5",
        "SIMULATOR_TELEMETRY_INTERVAL": "0.2",
        "SIMULATOR_LEADER_TTL": "1.5",
        "SIMULATOR_EVENTS_START_AT_LATEST": "false",
        "SIMULATOR_LOG_JSON": "false",
        "SIMULATOR_AUTH__ENABLED": "false",
    }
    process = await start_service_process("simulator", env, tmp_path / "first.log", port=port)
    base = f"http://127.0.0.1:{port}"
    try:
        plan = await world.schedule()
        drone = plan["droneId"]

        async def well_on_its_way() -> bool:
            return len(await world.fixes(drone)) >= 15

        await wait_for(well_on_its_way, within=20, what="the drone to fly for a while")
        async with httpx.AsyncClient(base_url=base) as client:
            route = (await client.get(f"/api/fleet/{drone}")).json()["route"]
        process.send_signal(signal.SIGKILL)
        await process.wait()
        before = (await world.fixes(drone))[-1]
        count = len(await world.fixes(drone))

        process = await start_service_process("simulator", env, tmp_path / "second.log", port=port)

        async def reporting_again() -> bool:
            return len(await world.fixes(drone)) > count

        await wait_for(reporting_again, within=20, what="the restarted simulator to fly")
        after = next(f for f in (await world.fixes(drone))[count:])
        async with httpx.AsyncClient(base_url=base) as client:
            resumed = (await client.get(f"/api/fleet/{drone}")).json()["route"]
        # The same route, recomputed from the stored state (not a new flight from the base) ...
        assert resumed == route
        assert after.seq > before.seq
        # ... and the drone is where the clock says: no further than it can fly meanwhile.
        gap = (after.at - before.at).total_seconds()
        assert gap > 1.0
        assert after.phase.value in ("ToPickup", "AtPickup", "ToDropoff")
        flown = miles_between(
            Point(before.latitude, before.longitude), Point(after.latitude, after.longitude)
        )
        assert flown <= (gap + 0.5) * 40 * SPEED * 1.2 * 1.1 / 3600

        async def completed() -> bool:
            return await world.stage(plan["deliveryId"]) == "Completed"

        await wait_for(completed, within=40, what="the resumed flight to deliver")
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "Traceback" not in (tmp_path / "second.log").read_text()
