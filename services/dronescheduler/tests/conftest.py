"""Fixtures: the scheduler on the session's real FerretDB, a database of the test's own."""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from dronecommon.area import ServiceArea
from dronecommon.domain import PackageSize
from dronecommon.settings import AuthSettings
from dronescheduler.main import create_app
from dronescheduler.settings import (
    BaseSpec,
    DroneClassSpec,
    DroneSchedulerSettings,
    FleetSettings,
    SchedulerMongoSettings,
)
from dronetesting.apps import app_client, wait_ready

Document = dict[str, Any]

DOWNTOWN = BaseSpec(name="downtown", latitude=47.6062, longitude=-122.3321)
NORTHGATE = BaseSpec(name="northgate", latitude=47.7063, longitude=-122.3250)
STANDARD = DroneClassSpec(name="standard", max_size=PackageSize.MEDIUM, max_weight=25, speed_mph=40)
HEAVY = DroneClassSpec(name="heavy", max_size=PackageSize.LARGE, max_weight=100, speed_mph=30)
LIGHT = DroneClassSpec(name="light", max_size=PackageSize.SMALL, max_weight=5, speed_mph=45)


def fleet(
    count: int = 20,
    classes: list[DroneClassSpec] | None = None,
    **overrides: Any,
) -> FleetSettings:
    # No self-release or clock margin unless a test asks: busy times below are the planned ones.
    values: dict[str, Any] = {
        "self_release_factor": 0,
        "self_release_seconds": 0,
        "clock_skew_margin": 0,
        **overrides,
    }
    return FleetSettings(count=count, classes=classes or [STANDARD], **values)


def area(bases: list[BaseSpec] | None = None, **overrides: Any) -> ServiceArea:
    """The service area around ``bases`` (downtown alone by default)."""
    return ServiceArea(bases=bases or [DOWNTOWN], **overrides)


def scheduler_settings(
    mongo_url: str,
    database: str,
    fleet_settings: FleetSettings | None = None,
    *,
    bases: list[BaseSpec] | None = None,
    **overrides: Any,
) -> DroneSchedulerSettings:
    mongo = SchedulerMongoSettings(url=mongo_url, database=database, server_selection_timeout=1.0)
    values: dict[str, Any] = {
        "service_area": area(bases),
        # Tokens are tested in test_access.py.
        "auth": AuthSettings(enabled=False),
        **overrides,
    }
    return DroneSchedulerSettings(
        mongo=mongo, fleet=fleet_settings or fleet(), log_json=False, **values
    )


def place(latitude: float, longitude: float) -> dict[str, float]:
    return {"latitude": latitude, "longitude": longitude, "altitude": 0.0}


PICKUP = place(47.6101, -122.3421)
DROPOFF = place(47.6205, -122.3493)


def delivery(
    delivery_id: str | None = None,
    *,
    owner: str = "myowner",
    pickup: dict[str, float] | None = None,
    dropoff: dict[str, float] | None = None,
    size: str = "Small",
    weight: float = 10,
    expedited: bool = False,
) -> dict[str, Any]:
    return {
        "deliveryId": delivery_id or str(uuid.uuid4()),
        "ownerId": owner,
        "pickup": pickup or PICKUP,
        "dropoff": dropoff or DROPOFF,
        "packageDetail": {"id": "mypackage", "size": size, "weight": weight},
        "expedited": expedited,
    }


async def put(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.put(f"/api/dronedeliveries/{body['deliveryId']}", json=body)


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


@contextlib.asynccontextmanager
async def running(settings: DroneSchedulerSettings) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process, once ready."""
    async with app_client(create_app(settings, configure_logs=False)) as client:
        ready = await wait_ready(client)
        assert ready.status_code == 200, ready.text
        yield client


@pytest.fixture
def settings(mongo_url: str, mongo_database: str) -> DroneSchedulerSettings:
    return scheduler_settings(mongo_url, mongo_database)


@pytest.fixture
async def client(settings: DroneSchedulerSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(settings) as client:
        yield client


@pytest.fixture
async def database(mongo_url: str, mongo_database: str) -> AsyncIterator[AsyncDatabase[Document]]:
    """The service's database, read and written directly (the documented layout)."""
    mongo: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url, tz_aware=True)
    try:
        yield mongo[mongo_database]
    finally:
        await mongo.close()
