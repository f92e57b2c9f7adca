"""Typed lifespan state: ``from_state`` aliases, and what the app factory attaches to its apps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, ClassVar, TypedDict

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import Field
from pydantic_settings import SettingsConfigDict

from dronecommon import (
    ReadinessChecks,
    ServiceApp,
    ServiceSettings,
    create_service_app,
    from_state,
    readiness,
)
from dronecommon.settings import AuthSettings
from dronetesting.apps import app_client


class StateSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="STATE_TEST_")
    service_name: ClassVar[str] = "state-test"
    # Tokens are not this file's subject (see test_auth*.py): switched off explicitly.
    auth: AuthSettings = Field(default_factory=lambda: AuthSettings(enabled=False))


class Counter:
    def __init__(self) -> None:
        self.count = 0


class State(TypedDict):
    counter: Counter
    greeting: str


Counters = Annotated[Counter, from_state(State, "counter")]
Greeting = Annotated[str, from_state(State, "greeting")]


def counting_app() -> ServiceApp:
    router = APIRouter()

    @router.post("/count")
    async def count(counter: Counters, greeting: Greeting) -> dict[str, object]:
        counter.count += 1
        return {"count": counter.count, "greeting": greeting}

    @asynccontextmanager
    async def lifespan(app: ServiceApp) -> AsyncIterator[State]:
        app.readiness.add("counter", _ok)
        yield {"counter": Counter(), "greeting": "hello"}

    return create_service_app(
        StateSettings(log_json=False),
        title="state",
        routers=[router],
        lifespan=lifespan,
        configure_logs=False,
    )


async def _ok() -> None:
    return None


async def test_routes_receive_the_lifespan_state_entries() -> None:
    async with app_client(counting_app()) as client:
        first = await client.post("/count")
        second = await client.post("/count")
        ready = await client.get("/readyz")
    assert first.json() == {"count": 1, "greeting": "hello"}
    assert second.json() == {"count": 2, "greeting": "hello"}  # one Counter for the app's life
    assert ready.json()["checks"]["counter"]["status"] == "ok"


def test_an_alias_for_a_key_the_state_does_not_declare_fails_at_once() -> None:
    with pytest.raises(KeyError, match="'countr'"):
        from_state(State, "countr")


async def test_a_route_without_the_lifespan_state_is_a_500_naming_the_key() -> None:
    app = counting_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # no lifespan run
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post("/count")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"


def test_a_service_app_carries_its_readiness_checks_and_settings() -> None:
    app = counting_app()
    assert isinstance(app.readiness, ReadinessChecks)
    assert readiness(app) is app.readiness
    assert isinstance(app.settings, StateSettings)
    with pytest.raises(TypeError, match="create_service_app"):
        readiness(FastAPI())
