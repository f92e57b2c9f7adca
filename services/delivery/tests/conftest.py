"""Fixtures for the delivery tests: the app on the session's real redis-server.

Helpers are fixtures: ``make_app``, ``new_delivery`` (a valid PUT body), ``problem`` (the kit's
:func:`~dronetesting.problems.assert_problem`), ``fleet`` (fixes on the real telemetry stream),
``fast`` (a quick consumer), ``clock`` and ``flying`` (the app on that clock, its consumer quick).
The telemetry tests' flight (``START``, ``PICKUP``, ``DROPOFF``, ``HOME``, ``PLAN``, ``t``,
``miles``, ``create``, ``get``) and the contract tests' helpers (``CONFIRMATION``, ``put``) are
imported from here: ``from .conftest import ...``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from delivery.main import create_app
from delivery.settings import DeliverySettings, FixStreamSettings
from dronecommon.domain import Location, distance_miles, format_utc
from dronecommon.fixes import Fix, Phase
from dronecommon.fixes.redis_streams import RedisFixPublisher
from dronecommon.settings import AuthSettings, RedisSettings
from dronetesting.apps import app_client
from dronetesting.clocks import FakeUtcClock
from dronetesting.problems import assert_problem

JSON = dict[str, Any]
AppFactory = Callable[..., FastAPI]


@pytest.fixture
def make_app(redis_url: str) -> AppFactory:
    """Build the app on the test's Redis: ``make_app(clock=..., auth=..., **settings)``."""

    def make(
        *,
        clock: Callable[[], dt.datetime] | None = None,
        auth: AuthSettings | None = None,
        redis: RedisSettings | None = None,
        **values: Any,
    ) -> FastAPI:
        settings = DeliverySettings(
            redis=redis or RedisSettings(url=redis_url),
            auth=auth or AuthSettings(enabled=False),
            **values,
        )
        return create_app(settings, configure_logs=False, clock=clock)

    return make


@pytest.fixture
async def client(make_app: AppFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_app()) as http:
        yield http


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client on the same Redis, to look at the keys the service wrote."""
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


def delivery_body(delivery_id: str, **changes: Any) -> JSON:
    """A valid PUT body, as the workflow sends it."""
    body: JSON = {
        "id": delivery_id,
        "owner": {"userId": "owner-1", "accountId": "account-1"},
        "pickup": {"latitude": 47.60, "longitude": -122.33, "altitude": 0},
        "dropoff": {"latitude": 47.70, "longitude": -122.20, "altitude": 0},
        "deadline": "before noon",
        "expedited": True,
        "confirmationRequired": "None",
        "droneId": "drone-7",
    }
    body.update(changes)
    return body


@pytest.fixture
def new_delivery() -> Callable[..., JSON]:
    return delivery_body


@pytest.fixture
def problem() -> Callable[..., JSON]:
    """``problem(response, status, fields={...})``: assert an RFC 9457 answer, return its body."""
    return assert_problem


FIXES_STREAM = "telemetry:fixes"


@dataclass
class Fleet:
    """Publishes fixes on the real telemetry stream, as the simulator does, and waits until the
    delivery service's consumer group has read and acknowledged all of them."""

    redis: Redis
    publisher: RedisFixPublisher
    drone_id: str = "drone-7"
    seq: int = 0

    def fix(
        self,
        delivery_id: str | None,
        at: dt.datetime,
        phase: Phase,
        latitude: float,
        longitude: float,
        *,
        speed_mph: float = 40.0,
        altitude: float = 100.0,
        seq: int | None = None,
        drone_id: str | None = None,
    ) -> Fix:
        if seq is None:
            self.seq += 1
            seq = self.seq
        return Fix(
            drone_id=drone_id or self.drone_id,
            delivery_id=delivery_id,
            at=at,
            seq=seq,
            latitude=latitude,
            longitude=longitude,
            altitude=altitude,
            speed_mph=speed_mph,
            heading_deg=10.0,
            battery_pct=90.0,
            phase=phase,
        )

    async def publish(self, *fixes: Fix) -> None:
        """Publish (once the consumer group exists: it starts at the newest entry) and wait
        until every fix is consumed."""
        await self.drained()
        await self.publisher.publish(list(fixes))
        await self.drained()

    async def drained(self, group: str = "delivery", within: float = 10.0) -> None:
        deadline = time.monotonic() + within
        while True:
            found: list[Any] = []
            if await self.redis.exists(FIXES_STREAM):
                groups: Any = await self.redis.xinfo_groups(FIXES_STREAM)
                found = [g for g in groups if g["name"] == group]
            if found and found[0]["lag"] == 0 and found[0]["pending"] == 0:
                return
            assert time.monotonic() < deadline, f"the {group} group did not catch up: {found}"
            await asyncio.sleep(0.02)


@pytest.fixture
async def fleet(redis: Redis) -> Fleet:
    return Fleet(redis, RedisFixPublisher(redis, stream=FIXES_STREAM))


def fast_settings(**values: Any) -> dict[str, Any]:
    """Settings for apps whose consumer should react within milliseconds."""
    return {"telemetry_stream": FixStreamSettings(receive_wait=0.05), **values}


@pytest.fixture
def fast() -> Callable[..., dict[str, Any]]:
    """``make_app(**fast(live=...))``: a consumer that reads every 50 ms."""
    return fast_settings


# The flight of the telemetry tests: a delivery planned at START, its pickup ten minutes and its
# drop-off thirty minutes later, flown by a drone from HOME.

BASE = "/api/deliveries"
START = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)
PICKUP = {"latitude": 47.60, "longitude": -122.33, "altitude": 0.0}
DROPOFF = {"latitude": 47.70, "longitude": -122.20, "altitude": 0.0}
HOME = (47.55, -122.33)  # the drone's base, about 3.5 miles south of the pickup
PLAN = {"pickupETA": format_utc(START + dt.timedelta(minutes=10)),
        "deliveryETA": format_utc(START + dt.timedelta(minutes=30))}  # fmt: skip


#: The app's clock, moved by the test: ``clock.at(seconds)`` (or ``minutes=``) after START.
Clock = FakeUtcClock


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


Flying = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def flying(make_app: AppFactory, clock: Clock) -> Flying:
    """``async with flying(**settings) as client``: the app on ``clock``, its consumer quick."""

    def open_app(**values: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return app_client(make_app(clock=clock, **fast_settings(**values)))

    return open_app


def t(seconds: float) -> dt.datetime:
    return START + dt.timedelta(seconds=seconds)


def loc(latitude: float, longitude: float, altitude: float = 0.0) -> Location:
    return Location(latitude=latitude, longitude=longitude, altitude=altitude)


def miles(a: tuple[float, float] | JSON, b: tuple[float, float] | JSON) -> float:
    def point(p: tuple[float, float] | JSON) -> Location:
        return loc(*p) if isinstance(p, tuple) else Location.model_validate(p)

    return distance_miles(point(a), point(b))


async def get(client: httpx.AsyncClient, path: str) -> Any:
    """GET under BASE, which must answer 200; its JSON body."""
    response = await client.get(BASE + path)
    assert response.status_code == 200, response.text
    return response.json()


async def create(client: httpx.AsyncClient, name: str, **changes: Any) -> None:
    """PUT the delivery ``name`` on the flight's pickup, drop-off and plan."""
    body = delivery_body(name, pickup=PICKUP, dropoff=DROPOFF, **PLAN) | changes
    assert (await client.put(f"{BASE}/{name}", json=body)).status_code == 201


# The contract tests' helpers: the fixtures' types, a valid confirmation and a PUT of a body.

Problem = Callable[..., JSON]
NewDelivery = Callable[..., JSON]

CONFIRMATION: JSON = {
    "dateTime": "2025-05-08T20:30:00Z",
    "geoCoordinates": {"latitude": 47.70, "longitude": -122.20, "altitude": 3},
    "confirmationType": "Picture",
    "confirmationBlob": "aGVsbG8=",
}


async def put(
    client: httpx.AsyncClient, body: JSON, delivery_id: str | None = None
) -> httpx.Response:
    return await client.put(f"{BASE}/{delivery_id or body['id']}", json=body)
