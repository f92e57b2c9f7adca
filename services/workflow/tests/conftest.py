"""Fixtures for the workflow's tests: real Redis (queue and pending store) and a stand-in for the
three downstream services.

The downstream services are replaced by :class:`FakeBackends`, a small in-memory app served by
uvicorn on a real loopback socket. It implements the routes the workflow calls with the agreed
semantics (201/200/204/404/409 as the contract and its extensions define them) and can be told to
fail, so the workflow's classification, retries, compensation and ordering rules can be tested
without the other services. The system tests (``tests/system``) run the real ones.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from redis.asyncio import Redis

from dronecommon.messaging import (
    MessageSender,
    OutgoingMessage,
    create_dead_letter_store,
    create_sender,
)
from dronecommon.messaging.redis_streams import RedisDeadLetterStore, dead_letter_key, stream_key
from dronetesting.apps import app_client, running_server
from dronetesting.samples import sample_request
from workflow.main import create_app
from workflow.settings import WorkflowSettings

QUEUE = "deliveryrequests"


def delivery_body(delivery_id: str, **changes: Any) -> dict[str, Any]:
    return sample_request(deliveryId=delivery_id, **changes)


def message(
    operation: str, body: dict[str, Any] | bytes, *, message_id: str | None = None, **props: str
) -> OutgoingMessage:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    delivery_id = body.get("deliveryId", "x") if isinstance(body, dict) else "x"
    return OutgoingMessage(
        body=raw,
        message_id=message_id or f"{delivery_id}:{operation}:{time.monotonic_ns()}",
        properties={"operation": operation, **props},
    )


async def wait_until(
    predicate: Callable[[], Awaitable[bool]], within: float = 10.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


def _iso(at: dt.datetime) -> str:
    return at.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class FakeBackends:
    """package + dronescheduler + delivery in memory, with failure injection."""

    def __init__(self) -> None:
        self.packages: dict[str, dict[str, Any]] = {}
        self.assignments: dict[str, dict[str, Any]] = {}
        self.released: set[str] = set()
        self.deliveries: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.statuses: defaultdict[str, Counter[int]] = defaultdict(Counter)
        self.headers: list[dict[str, str]] = []
        self.headers_by_collection: defaultdict[str, list[dict[str, str]]] = defaultdict(list)
        self.max_weight = 100.0
        # The drone scheduler refuses a re-plan to a drop-off south of this latitude (too long
        # a trip for the delivery's drone), as the real one does with its trip limit.
        self.southmost = 47.45
        self.refusals: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self.next_drone = 0
        self.delay = 0.0
        self.url = ""
        # "METHOD /api/<collection>" -> statuses to answer before behaving (consumed in order),
        # or a permanent status with `always`.
        self._scripted: dict[str, list[int]] = {}
        self._always: dict[str, int] = {}
        # "METHOD /api/<collection>" -> a coroutine awaited once, before the next such call is
        # answered (to interleave other work with a call in flight).
        self._before: dict[str, Callable[[], Awaitable[None]]] = {}
        self.app = self._build()

    # -- control -----------------------------------------------------------------------------

    def fail(self, route: str, *statuses: int) -> None:
        self._scripted[route] = list(statuses)

    def always(self, route: str, status: int | None) -> None:
        if status is None:
            self._always.pop(route, None)
        else:
            self._always[route] = status

    def before(self, route: str, hook: Callable[[], Awaitable[None]]) -> None:
        self._before[route] = hook

    def active(self) -> dict[str, dict[str, Any]]:
        """Assignments not released."""
        return {k: v for k, v in self.assignments.items() if k not in self.released}

    # -- app ---------------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI()
        fake = self

        @app.get("/healthz")
        async def healthz() -> dict[str, str]:
            return {"status": "ok"}

        @app.api_route("/api/{collection}/{item}", methods=["GET", "PUT", "PATCH", "DELETE"])
        async def route(collection: str, item: str, request: Request) -> Response:
            key = f"{request.method} /api/{collection}"
            fake.calls[key] += 1
            fake.headers.append(dict(request.headers))
            fake.headers_by_collection[collection].append(dict(request.headers))
            if fake.delay:
                await asyncio.sleep(fake.delay)
            hook = fake._before.pop(key, None)
            if hook is not None:
                await hook()
            scripted = fake._scripted.get(key)
            status = scripted.pop(0) if scripted else fake._always.get(key)
            if status is not None:
                fake.statuses[key][status] += 1
                headers = {"Retry-After": "0"} if status in (429, 503) else {}
                return JSONResponse(
                    {"title": "scripted", "status": status, "detail": f"scripted {status}"},
                    status_code=status,
                    headers=headers,
                    media_type="application/problem+json",
                )
            body = await request.json() if request.method in ("PUT", "PATCH") else None
            handler = getattr(fake, f"_{collection}_{request.method.lower()}")
            response: Response = await handler(item, body)
            fake.statuses[key][response.status_code] += 1
            return response

        @app.post("/api/{collection}/{item}/{part}")
        async def post(collection: str, item: str, part: str, request: Request) -> Response:
            key = f"POST /api/{collection}/{part}"
            fake.calls[key] += 1
            scripted = fake._scripted.get(key)
            status = scripted.pop(0) if scripted else fake._always.get(key)
            if status is not None:
                fake.statuses[key][status] += 1
                return JSONResponse({"detail": f"scripted {status}"}, status_code=status)
            handler = getattr(fake, f"_{collection}_{part}_post")
            response: Response = await handler(item, await request.json())
            fake.statuses[key][response.status_code] += 1
            return response

        return app

    # -- package -----------------------------------------------------------------------------

    async def _packages_put(self, item: str, body: dict[str, Any]) -> Response:
        if not isinstance(body.get("weight"), int | float) or body["weight"] <= 0:
            return JSONResponse({"detail": "weight"}, status_code=400)
        created = item not in self.packages
        self.packages[item] = body
        return Response(status_code=201 if created else 204)

    # -- drone scheduler ---------------------------------------------------------------------

    def _plan(self, delivery_id: str, drone: str, body: dict[str, Any]) -> dict[str, Any]:
        now = dt.datetime.now(dt.UTC)
        pickup = body.get("pickup", {}).get("latitude", 0)
        return {
            "deliveryId": delivery_id,
            "droneId": drone,
            "pickupETA": _iso(now + dt.timedelta(minutes=10 + abs(pickup) % 1)),
            "deliveryETA": _iso(now + dt.timedelta(minutes=30)),
        }

    async def _dronedeliveries_put(self, item: str, body: dict[str, Any]) -> Response:
        if item in self.released:
            return JSONResponse({"detail": "released"}, status_code=409)
        if item in self.assignments:
            return JSONResponse(self.assignments[item]["plan"], status_code=200)
        if body["packageDetail"]["weight"] > self.max_weight:
            return JSONResponse({"detail": "no drone can carry it"}, status_code=422)
        self.next_drone += 1
        plan = self._plan(item, f"drone-{self.next_drone}", body)
        self.assignments[item] = {"request": body, "plan": plan}
        return JSONResponse(plan, status_code=201)

    async def _dronedeliveries_patch(self, item: str, body: dict[str, Any]) -> Response:
        if item in self.released:
            return JSONResponse({"detail": "released"}, status_code=409)
        if item not in self.assignments:
            return JSONResponse({"detail": "unknown"}, status_code=404)
        dropoff = body.get("dropoff")
        if dropoff is not None and dropoff["latitude"] < self.southmost:
            return JSONResponse(
                {
                    "type": "urn:dronedelivery:problem:trip-too-long",
                    "title": "Unprocessable Content",
                    "status": 422,
                    "detail": "The trip would be at least 60.8 miles; no trip may be longer "
                    "than 50 miles.",
                },
                status_code=422,
                media_type="application/problem+json",
            )
        assignment = self.assignments[item]
        assignment["request"].update(body)
        assignment["plan"] = self._plan(item, assignment["plan"]["droneId"], body)
        return JSONResponse(assignment["plan"], status_code=200)

    async def _dronedeliveries_get(self, item: str, body: None) -> Response:
        if item not in self.assignments:
            return JSONResponse({"detail": "unknown"}, status_code=404)
        return JSONResponse(self.assignments[item]["plan"])

    async def _dronedeliveries_delete(self, item: str, body: None) -> Response:
        if item in self.assignments:
            self.released.add(item)
        return Response(status_code=204)

    # -- delivery ----------------------------------------------------------------------------

    async def _deliveries_get(self, item: str, body: None) -> Response:
        if item not in self.deliveries:
            return JSONResponse({"detail": "unknown"}, status_code=404)
        return JSONResponse(self.deliveries[item])

    async def _deliveries_put(self, item: str, body: dict[str, Any]) -> Response:
        if body.get("id") != item:
            return JSONResponse({"detail": "id"}, status_code=400)
        existing = self.deliveries.get(item)
        if existing is None:
            self.deliveries[item] = {**body, "stage": "Created", "created": body}
            return Response(status_code=201)
        if existing["created"] == body and existing["stage"] == "Created":
            return Response(status_code=204)
        return JSONResponse({"detail": "different"}, status_code=409)

    async def _deliveries_patch(self, item: str, body: dict[str, Any]) -> Response:
        existing = self.deliveries.get(item)
        if existing is None:
            return JSONResponse({"detail": "unknown"}, status_code=404)
        if existing["stage"] in ("Completed", "Cancelled"):
            return JSONResponse({"detail": "terminal"}, status_code=409)
        existing.update(body)
        existing["stage"] = "Rescheduled"
        if "pickup" in body or "dropoff" in body:
            existing.pop("refusedChange", None)
        return Response(status_code=204)

    async def _deliveries_refusals_post(self, item: str, body: dict[str, Any]) -> Response:
        existing = self.deliveries.get(item)
        if existing is None:
            return JSONResponse({"detail": "unknown"}, status_code=404)
        if existing["stage"] in ("Completed", "Cancelled"):
            return JSONResponse({"detail": "terminal"}, status_code=409)
        if existing.get("refusedChange") != body:
            self.refusals[item].append(body)
        existing["refusedChange"] = body
        return Response(status_code=204)

    async def _deliveries_delete(self, item: str, body: None) -> Response:
        existing = self.deliveries.get(item)
        if existing is None:
            return JSONResponse({"detail": "unknown"}, status_code=404)
        if existing["stage"] == "Completed":
            return JSONResponse({"detail": "completed"}, status_code=409)
        existing["stage"] = "Cancelled"
        return Response(status_code=204)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBackends]:
    backends = FakeBackends()
    async with running_server(backends.app) as url:
        backends.url = url
        yield backends


def workflow_settings(redis_url: str, downstream: str, **overrides: Any) -> WorkflowSettings:
    values: dict[str, Any] = {
        "redis": {"url": redis_url},
        "queue": {
            "name": QUEUE,
            "receive_wait": 0.1,
            "lock_duration": 5.0,
            "max_concurrency": 8,
            "prefetch": 8,
            "max_delivery_count": 5,
            "readiness_timeout": 1.0,
        },
        "http": {
            "connect_timeout": 0.5,
            "read_timeout": 2.0,
            "retries": 1,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
            "retry_after_max": 0.1,
            "breaker_failure_threshold": 1000,
        },
        "package_url": downstream,
        "dronescheduler_url": downstream,
        "delivery_url": downstream,
        "abandon_backoff_base": 0.05,
        "abandon_backoff_max": 0.2,
        "shutdown_grace": 2.0,
        "log_json": False,
        "auth": {"enabled": False},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(values.get(key), dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return WorkflowSettings(**values)


class Harness:
    """A running workflow (in this event loop) with a sender and the queue's Redis."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        sender: MessageSender,
        redis: Redis,
        dead_letters: RedisDeadLetterStore,
        redis_url: str,
    ) -> None:
        self.redis_url = redis_url
        self.client = client
        self.sender = sender
        self.redis = redis
        self.dead_letters = dead_letters

    async def send(self, *messages: OutgoingMessage) -> None:
        await self.sender.send_many(list(messages))

    async def queue_length(self) -> int:
        return int(await self.redis.xlen(stream_key(QUEUE)))

    async def dead_letter_count(self) -> int:
        return int(await self.redis.xlen(dead_letter_key(QUEUE)))

    async def drained(self, within: float = 10.0) -> None:
        async def empty() -> bool:
            return await self.queue_length() == 0

        await wait_until(empty, within, "the queue to drain")


@asynccontextmanager
async def run_workflow(settings: WorkflowSettings) -> AsyncIterator[Harness]:
    redis_url = settings.redis.url
    app = create_app(settings, configure_logs=False)
    async with (
        app_client(app) as client,
        create_sender(settings.queue, redis_url=redis_url) as sender,
    ):
        redis = Redis.from_url(redis_url)
        store = create_dead_letter_store(settings.queue, redis_url=redis_url)
        assert isinstance(store, RedisDeadLetterStore)
        try:
            yield Harness(client, sender, redis, store, redis_url)
        finally:
            await store.close()
            await redis.aclose()


@pytest.fixture
async def workflow(redis_url: str, fake: FakeBackends) -> AsyncIterator[Harness]:
    async with run_workflow(workflow_settings(redis_url, fake.url)) as harness:
        yield harness
