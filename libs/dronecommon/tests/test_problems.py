"""Domain errors and store outages become problem+json in one place, for every service.

Redis failures come from a real redis-server driven into each state (a read-only replica, out of
memory, busy running a script). MongoDB outages against a real server are covered by the
services' tests; here PyMongo's own exception classes are raised by a route, and Azure Cosmos DB
for MongoDB throttling (which no local server produces) is a constructed
``pymongo.errors.OperationFailure`` shaped like Cosmos DB's reply: a stand-in at the SDK boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import httpx
import pymongo.errors
import pytest
import redis.exceptions
from fastapi import APIRouter, Request
from pydantic import Field
from pydantic_settings import SettingsConfigDict
from redis.asyncio import Redis

from dronecommon import DomainError, ServiceApp, ServiceSettings, create_service_app
from dronecommon.problems import StoreOutage, store_outage
from dronecommon.settings import AuthSettings
from dronetesting.apps import app_client
from dronetesting.servers import RedisServer

UNAVAILABLE = "urn:dronedelivery:problem:dependency-unavailable"


class ProblemSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PROBLEMS_TEST_")
    service_name: ClassVar[str] = "problems-test"
    # Tokens are not this file's subject (see test_auth*.py): switched off explicitly.
    auth: AuthSettings = Field(default_factory=lambda: AuthSettings(enabled=False))


class ThingNotFound(DomainError):  # noqa: N818 - named like the services' domain errors
    status = 404
    problem = "thing-not-found"

    def __init__(self, thing_id: str) -> None:
        super().__init__(f"No thing {thing_id}.", extensions={"thingId": thing_id})


class ThingsBusy(DomainError):  # noqa: N818
    status = 503
    problem = "things-busy"
    title = "Things are busy"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert len(body["traceId"]) == 32
    return body


def app_raising(
    raises: Callable[[], BaseException] | None = None, redis_url: str | None = None
) -> ServiceApp:
    """An app whose ``GET /boom`` raises ``raises()`` and ``POST /write`` writes to Redis."""
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        assert raises is not None
        raise raises()

    @router.post("/write")
    async def write(request: Request) -> dict[str, str]:
        client: Redis = request.scope["state"]["redis"]
        await client.set("key", "value")
        return {"written": "key"}

    @asynccontextmanager
    async def lifespan(app: ServiceApp) -> AsyncIterator[Mapping[str, Any]]:
        if redis_url is None:
            yield {}
            return
        client = Redis.from_url(redis_url, socket_timeout=2)
        try:
            yield {"redis": client}
        finally:
            await client.aclose()

    return create_service_app(
        ProblemSettings(log_json=False),
        title="problems",
        routers=[router],
        lifespan=lifespan,
        configure_logs=False,
    )


async def get_boom(raises: Callable[[], BaseException]) -> httpx.Response:
    async with app_client(app_raising(raises)) as client:
        return await client.get("/boom")


# --- domain errors -------------------------------------------------------------------------------


async def test_a_domain_error_is_answered_with_its_type_status_and_extensions() -> None:
    response = await get_boom(lambda: ThingNotFound("t1"))
    body = problem(response, 404)
    assert body["type"] == "urn:dronedelivery:problem:thing-not-found"
    assert body["title"] == "Not Found"  # the status's phrase unless the class names one
    assert body["detail"] == "No thing t1."
    assert body["thingId"] == "t1"
    assert "retry-after" not in response.headers


async def test_a_domain_error_carries_its_title_and_retry_after() -> None:
    response = await get_boom(lambda: ThingsBusy("Busy; retry.", retry_after=7))
    body = problem(response, 503)
    assert body["type"] == "urn:dronedelivery:problem:things-busy"
    assert body["title"] == "Things are busy"
    assert response.headers["retry-after"] == "7"


def test_a_domain_error_must_name_a_problem_and_an_error_status() -> None:
    with pytest.raises(TypeError, match="problem"):
        type("Bad", (DomainError,), {"problem": "Not A Slug"})
    with pytest.raises(TypeError, match="status"):
        type("Fine", (DomainError,), {"problem": "fine", "status": 200})


# --- Redis, a real server in each state ----------------------------------------------------------


@dataclass
class RedisApp:
    client: httpx.AsyncClient  # the app's
    admin: Redis  # puts the server in a state
    url: str


@pytest.fixture
async def redis_app(redis_server_factory: Callable[[], RedisServer]) -> AsyncIterator[RedisApp]:
    """The app on a Redis of the test's own."""
    server = redis_server_factory()
    admin = Redis.from_url(server.url)
    try:
        async with app_client(app_raising(redis_url=server.url)) as client:
            assert (await client.post("/write")).status_code == 200
            yield RedisApp(client, admin, server.url)
    finally:
        await admin.aclose()


async def assert_redis_unavailable(response: httpx.Response) -> None:
    body = problem(response, 503)
    assert body["type"] == UNAVAILABLE
    assert "Redis" in body["detail"]
    assert response.headers["retry-after"] == "1"


async def test_a_read_only_replica_is_a_redis_outage(redis_app: RedisApp) -> None:
    client, admin = redis_app.client, redis_app.admin
    # A fail-over in progress: this server is now a replica (of a master that is not there).
    await admin.replicaof("127.0.0.1", 1)
    await assert_redis_unavailable(await client.post("/write"))
    await admin.replicaof("NO", "ONE")
    assert (await client.post("/write")).status_code == 200


async def test_out_of_memory_is_a_redis_outage(redis_app: RedisApp) -> None:
    client, admin = redis_app.client, redis_app.admin
    await admin.config_set("maxmemory-policy", "noeviction")
    await admin.config_set("maxmemory", "1")
    await assert_redis_unavailable(await client.post("/write"))
    await admin.config_set("maxmemory", "0")
    assert (await client.post("/write")).status_code == 200


async def test_a_busy_server_is_a_redis_outage(redis_app: RedisApp) -> None:
    client, admin = redis_app.client, redis_app.admin
    await admin.config_set("busy-reply-threshold", "50")
    runner = Redis.from_url(redis_app.url, socket_timeout=10)

    async def spin() -> object:
        return await runner.eval("while true do end", 0)

    script = asyncio.create_task(spin())
    try:
        await asyncio.sleep(0.3)  # past the threshold: other clients are told BUSY
        await assert_redis_unavailable(await client.post("/write"))
    finally:
        await admin.script_kill()
        with contextlib.suppress(redis.exceptions.ResponseError):
            await script
        await runner.aclose()
    assert (await client.post("/write")).status_code == 200


async def test_other_redis_errors_are_bugs() -> None:
    response = await get_boom(
        lambda: redis.exceptions.ResponseError(
            "WRONGTYPE Operation against a key holding the wrong kind of value"
        )
    )
    body = problem(response, 500)
    assert "WRONGTYPE" not in body["detail"]


# --- MongoDB: PyMongo's errors, and Cosmos DB throttling at the SDK boundary ---------------------


@pytest.mark.parametrize(
    "error",
    [
        pymongo.errors.ConnectionFailure("connection refused"),
        pymongo.errors.AutoReconnect("primary stepped down"),
        pymongo.errors.NetworkTimeout("timed out"),
        pymongo.errors.ServerSelectionTimeoutError("no server"),
        pymongo.errors.WaitQueueTimeoutError("pool exhausted"),
        pymongo.errors.ExecutionTimeout("operation exceeded time limit", code=50),
        pymongo.errors.WTimeoutError("waiting for replication timed out", code=64),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_pymongo_outages_are_503(error: pymongo.errors.PyMongoError) -> None:
    response = await get_boom(lambda: error)
    body = problem(response, 503)
    assert body["type"] == UNAVAILABLE
    assert "MongoDB" in body["detail"]
    assert response.headers["retry-after"] == "1"


def cosmos_throttled(message: str, **details: Any) -> pymongo.errors.OperationFailure:
    """What PyMongo raises when Cosmos DB for MongoDB (RU-based) throttles a request."""
    reply = {"ok": 0.0, "errmsg": message, "code": 16500, "codeName": "TooManyRequests", **details}
    return pymongo.errors.OperationFailure(message, code=16500, details=reply)


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [
        (
            cosmos_throttled(
                "Error=16500, RetryAfterMs=1500, Details='Response status code does not indicate "
                "success: TooManyRequests (429); Substatus: 3200'"
            ),
            "2",
        ),
        (cosmos_throttled("Error=16500, RetryAfterMs=12000, Details=''"), "12"),
        (cosmos_throttled("Request rate is large", RetryAfterMs=250), "1"),
        (cosmos_throttled("Request rate is large. More Request Units may be needed"), "1"),
    ],
    ids=["message-1500ms", "message-12s", "field-250ms", "no-hint"],
)
async def test_cosmos_throttling_is_503_with_its_retry_after(
    error: pymongo.errors.OperationFailure, retry_after: str
) -> None:
    response = await get_boom(lambda: error)
    body = problem(response, 503)
    assert body["type"] == UNAVAILABLE
    assert response.headers["retry-after"] == retry_after


def test_throttling_is_known_by_its_code_name_too() -> None:
    error = pymongo.errors.OperationFailure(
        "throttled", code=None, details={"ok": 0, "codeName": "TooManyRequests"}
    )
    assert store_outage(error) == StoreOutage("MongoDB store", 1)


@pytest.mark.parametrize(
    "error",
    [
        pymongo.errors.OperationFailure("unknown operator: $foo", code=2),
        pymongo.errors.DuplicateKeyError("E11000 duplicate key error", code=11000),
    ],
    ids=lambda error: type(error).__name__,
)
async def test_other_pymongo_errors_are_bugs(error: pymongo.errors.PyMongoError) -> None:
    response = await get_boom(lambda: error)
    problem(response, 500)
