"""Fixtures: the real delivery service and drone scheduler on loopback sockets (real Redis and
FerretDB behind them), and the simulator with a fast fleet, in process or as a process.

The tests play the workflow's part (assign a drone at the scheduler, create the delivery with it,
cancel, reschedule) with the same calls it makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from delivery.main import create_app as create_delivery
from delivery.settings import DeliverySettings
from dronecommon.area import ServiceArea
from dronecommon.domain import PackageSize
from dronecommon.fixes import Fix
from dronecommon.fixes.redis_streams import decode_entry
from dronecommon.settings import AuthSettings, RedisSettings
from dronecommon.streams import StreamEntry
from dronescheduler.main import create_app as create_scheduler
from dronescheduler.settings import (
    BaseSpec,
    DroneClassSpec,
    DroneSchedulerSettings,
    FleetSettings,
    SchedulerMongoSettings,
)
from dronetesting.apps import app_client, running_server, wait_ready
from simulator.main import create_app as create_simulator
from simulator.settings import SimulatorSettings

JSON = dict[str, Any]
# Headers the test's own clients send to services built with these auth settings (by id).
AUTH_HEADERS: dict[int, dict[str, str]] = {}
BASE = BaseSpec(name="downtown", latitude=47.6062, longitude=-122.3321)
STANDARD = DroneClassSpec(name="standard", max_size=PackageSize.MEDIUM, max_weight=25, speed_mph=40)
# About three miles north of the base, then three miles east.
PICKUP = {"latitude": 47.6497, "longitude": -122.3321, "altitude": 0.0}
DROPOFF = {"latitude": 47.6497, "longitude": -122.2676, "altitude": 0.0}


def simulator_settings(
    redis_url: str, delivery: str, scheduler: str, **values: Any
) -> SimulatorSettings:
    """A fast fleet: 40 mph x 100, half a second at each stop, a fix every 0.2 s."""
    base: JSON = {
        "redis": RedisSettings(url=redis_url),
        "delivery_url": delivery,
        "dronescheduler_url": scheduler,
        "speed_factor": 100,
        "handling_seconds": 0.5,
        "telemetry_interval": 0.2,
        "ticks_per_interval": 2,
        "leader_ttl": 2.0,
        "events_start_at_latest": False,
        "log_json": False,
        "auth": {"enabled": False},
    }
    return SimulatorSettings(**{**base, **values})


@dataclass
class World:
    redis: Redis
    delivery: httpx.AsyncClient
    scheduler: httpx.AsyncClient
    delivery_url: str
    scheduler_url: str
    redis_url: str

    async def schedule(
        self, *, confirmation: str = "Picture", delivery_id: str | None = None
    ) -> JSON:
        """What the workflow does for a new request: a drone, then the delivery with it."""
        delivery_id = delivery_id or str(uuid.uuid4())
        request = {
            "deliveryId": delivery_id,
            "ownerId": "owner-1",
            "pickup": PICKUP,
            "dropoff": DROPOFF,
            "packageDetail": {"id": "p-1", "size": "Small", "weight": 2},
            "expedited": False,
        }
        assigned = await self.scheduler.put(f"/api/dronedeliveries/{delivery_id}", json=request)
        assert assigned.status_code == 201, assigned.text
        plan: JSON = assigned.json()
        body = {
            "id": delivery_id,
            "owner": {"userId": "owner-1", "accountId": "owner-1"},
            "pickup": PICKUP,
            "dropoff": DROPOFF,
            "confirmationRequired": confirmation,
            "droneId": plan["droneId"],
            "pickupETA": plan["pickupETA"],
            "deliveryETA": plan["deliveryETA"],
        }
        created = await self.delivery.put(f"/api/deliveries/{delivery_id}", json=body)
        assert created.status_code == 201, created.text
        return plan

    async def cancel(self, delivery_id: str) -> None:
        """The workflow's cancel: release the drone, cancel the delivery."""
        released = await self.scheduler.delete(f"/api/dronedeliveries/{delivery_id}")
        assert released.status_code == 204
        cancelled = await self.delivery.delete(f"/api/deliveries/{delivery_id}")
        assert cancelled.status_code == 204

    async def reschedule(self, delivery_id: str, dropoff: JSON) -> None:
        replanned = await self.scheduler.patch(
            f"/api/dronedeliveries/{delivery_id}", json={"dropoff": dropoff}
        )
        assert replanned.status_code == 200, replanned.text
        plan = replanned.json()
        patch = {
            "dropoff": dropoff,
            "droneId": plan["droneId"],
            "pickupETA": plan["pickupETA"],
            "deliveryETA": plan["deliveryETA"],
        }
        patched = await self.delivery.patch(f"/api/deliveries/{delivery_id}", json=patch)
        assert patched.status_code == 204, patched.text

    async def stage(self, delivery_id: str) -> str:
        response = await self.delivery.get(f"/api/deliveries/{delivery_id}/status")
        stage: str = response.json()["stage"]
        return stage

    async def assignment(self, delivery_id: str) -> JSON:
        response = await self.scheduler.get(f"/api/dronedeliveries/{delivery_id}")
        body: JSON = response.json()
        return body

    async def fixes(self, drone_id: str | None = None) -> list[Fix]:
        """Every fix on the telemetry stream (of one drone), in stream order."""
        entries: Any = await self.redis.xrange("telemetry:fixes")
        found: list[Fix] = []
        for entry_id, fields in entries:
            decoded = {k.decode(): v.decode() for k, v in fields.items()}
            found += decode_entry(StreamEntry(entry_id.decode(), decoded))
        return [f for f in found if drone_id is None or f.drone_id == drone_id]


async def wait_for(
    condition: Callable[[], Awaitable[bool]], within: float = 30.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


@pytest.fixture
async def world(redis_url: str, mongo_url: str, mongo_database: str) -> AsyncIterator[World]:
    async with make_world(redis_url, mongo_url, mongo_database) as found:
        yield found


def backend_apps(
    redis_url: str, mongo_url: str, mongo_database: str, auth: AuthSettings | None = None
) -> tuple[FastAPI, FastAPI]:
    """The real delivery service and drone scheduler the simulator calls (a small fleet;
    ``auth``: both check bearer tokens, none by default)."""
    auth = auth or AuthSettings(enabled=False)
    delivery_settings = DeliverySettings(
        redis=RedisSettings(url=redis_url), log_json=False, auth=auth
    )
    scheduler_settings = DroneSchedulerSettings(
        mongo=SchedulerMongoSettings(url=mongo_url, database=mongo_database),
        fleet=FleetSettings(count=4, classes=[STANDARD]),
        service_area=ServiceArea(bases=[BASE]),
        log_json=False,
        auth=auth,
    )
    return (
        create_delivery(delivery_settings, configure_logs=False),
        create_scheduler(scheduler_settings, configure_logs=False),
    )


@contextlib.asynccontextmanager
async def make_world(
    redis_url: str, mongo_url: str, mongo_database: str, auth: AuthSettings | None = None
) -> AsyncIterator[World]:
    """The delivery service and the drone scheduler on loopback sockets (``auth``: both check
    bearer tokens; the test clients then send ``auth_headers``)."""
    auth = auth or AuthSettings(enabled=False)
    delivery_app, scheduler_app = backend_apps(redis_url, mongo_url, mongo_database, auth)
    redis = Redis.from_url(redis_url)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(redis.aclose)
        delivery_url = await stack.enter_async_context(running_server(delivery_app))
        scheduler_url = await stack.enter_async_context(running_server(scheduler_app))
        headers = AUTH_HEADERS.get(id(auth), {})
        delivery = await stack.enter_async_context(
            httpx.AsyncClient(base_url=delivery_url, headers=headers)
        )
        scheduler = await stack.enter_async_context(
            httpx.AsyncClient(base_url=scheduler_url, headers=headers)
        )
        await wait_ready(scheduler, within=20)
        yield World(redis, delivery, scheduler, delivery_url, scheduler_url, redis_url)


@contextlib.asynccontextmanager
async def simulator(world: World, **values: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings = simulator_settings(
        world.redis_url, world.delivery_url, world.scheduler_url, **values
    )
    async with app_client(create_simulator(settings, configure_logs=False)) as client:
        await wait_ready(client, within=20)
        await wait_for(lambda: _leading(client), within=20, what="the simulator to fly")
        yield client


async def _leading(client: httpx.AsyncClient) -> bool:
    response = await client.get("/api/fleet")
    return response.status_code == 200 and bool(response.json()["leading"])


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
