"""Fixtures for the delivery tests: the app on the session's real redis-server.

Helpers are fixtures (``new_delivery``, ``problem``): with ``--import-mode=importlib`` test
modules cannot import this file.

The service's modules are loaded with ``importlib`` rather than ``from delivery... import``: the
root mypy configuration puts only ``libs/dronecommon/src`` on ``mypy_path``, so ``mypy
services/delivery`` names these files ``services.delivery.src.delivery.*`` while a static
``import delivery`` would reach the same files again as ``delivery.*`` (mypy: "source file found
twice"). Once ``services/delivery/src`` is on ``mypy_path`` the tests can import normally.
"""

from __future__ import annotations

import datetime as dt
import importlib
from collections.abc import AsyncIterator, Callable
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from redis.asyncio import Redis

from dronecommon.settings import AuthSettings, RedisSettings
from dronetesting.apps import app_client
from dronetesting.problems import assert_problem
from dronetesting.tokens import dev_issuer  # noqa: F401 - a fixture

JSON = dict[str, Any]
AppFactory = Callable[..., FastAPI]


def delivery_module(name: str) -> ModuleType:
    """``delivery.<name>`` (see the module docstring for why not a plain import)."""
    return importlib.import_module(f"delivery.{name}")


@pytest.fixture
def make_app(redis_url: str) -> AppFactory:
    """Build the app on the test's Redis: ``make_app(clock=..., auth=..., **settings)``."""
    main = delivery_module("main")
    settings_module = delivery_module("settings")

    def make(
        *,
        clock: Callable[[], dt.datetime] | None = None,
        auth: AuthSettings | None = None,
        redis: RedisSettings | None = None,
        **values: Any,
    ) -> FastAPI:
        settings = settings_module.DeliverySettings(
            redis=redis or RedisSettings(url=redis_url),
            auth=auth or AuthSettings(),
            **values,
        )
        app: FastAPI = main.create_app(settings, configure_logs=False, clock=clock)
        return app

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
