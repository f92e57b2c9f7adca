"""Fixtures for the delivery tests: the app on the session's real redis-server.

Helpers are fixtures: ``make_app``, ``new_delivery`` (a valid PUT body) and ``problem`` (the
kit's :func:`~dronetesting.problems.assert_problem`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from delivery.main import create_app
from delivery.settings import DeliverySettings
from dronecommon.settings import AuthSettings, RedisSettings
from dronetesting.apps import app_client
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
