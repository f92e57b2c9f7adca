"""The app factory: health, readiness against a real Redis, problem+json, guards, logs, spans."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, ClassVar, Literal

import pytest
from fastapi import APIRouter, FastAPI, Request
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict
from redis.asyncio import Redis
from starlette.middleware import Middleware
from starlette.types import ASGIApp, Receive, Scope, Send

from dronecommon import (
    ProblemError,
    ServiceSettings,
    create_service_app,
    readiness,
    redis_check,
)
from dronecommon.logs import JsonFormatter
from dronecommon.problems import error_response
from dronecommon.redis import create_redis_client
from dronecommon.settings import AuthSettings, RedisSettings
from dronetesting.apps import app_client
from dronetesting.problems import assert_problem
from dronetesting.servers import RedisServer
from dronetesting.tokens import LocalIssuer


class ExampleSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_", env_nested_delimiter="__")
    service_name: ClassVar[str] = "example"
    redis: RedisSettings = Field(default_factory=RedisSettings)
    # Tokens are not this file's subject (see test_auth*.py): switched off explicitly.
    auth: AuthSettings = Field(default_factory=lambda: AuthSettings(enabled=False))


class PackageInfo(BaseModel):
    size: Literal["Small", "Medium", "Large"]
    weight: float = Field(gt=0, le=100)


class ItemIn(BaseModel):
    ownerId: str = Field(min_length=1)  # noqa: N815 - wire name
    packageInfo: PackageInfo  # noqa: N815 - wire name


def example_router() -> APIRouter:
    router = APIRouter()

    @router.post("/items", status_code=201)
    async def create(item: ItemIn, request: Request) -> dict[str, Any]:
        redis: Redis = request.state.redis
        await redis.incr("created")
        return item.model_dump()

    @router.get("/items/{item_id}")
    async def get(item_id: str) -> dict[str, str]:
        raise ProblemError(404, f"No item {item_id}.")

    @router.put("/items/{item_id}", status_code=204)
    async def replace(item_id: str, item: ItemIn) -> None:
        return None

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail")

    return router


def make_app(redis_url: str, *routers: APIRouter, **extra_checks: Callable[[], Any]) -> FastAPI:
    """The example app (its Redis client as ``request.state.redis``), with ``routers`` besides
    :func:`example_router`'s and ``extra_checks`` besides Redis's readiness."""
    settings = ExampleSettings(redis=RedisSettings(url=redis_url))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Mapping[str, Any]]:
        client = create_redis_client(settings.redis)
        readiness(app).add("redis", redis_check(client))
        for name, check in extra_checks.items():
            readiness(app).add(name, check, timeout=0.3)
        try:
            yield {"redis": client}
        finally:
            await client.aclose()

    return create_service_app(
        settings,
        title="example",
        routers=[example_router(), *routers],
        lifespan=lifespan,
        configure_logs=False,
    )


async def test_liveness_does_no_io(redis_url: str) -> None:
    async with app_client(make_app("redis://127.0.0.1:1/0")) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_follows_redis_down_and_back(redis_server_factory: Any) -> None:
    server: RedisServer = redis_server_factory()
    async with app_client(make_app(server.url)) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
        assert ready.json()["checks"]["redis"]["status"] == "ok"

        server.stop()
        refused = await client.post(
            "/items", json={"ownerId": "o", "packageInfo": {"size": "Small", "weight": 1}}
        )
        assert "Redis" in assert_problem(refused, 503)["detail"]
        assert refused.headers["retry-after"] == "1"
        down = await client.get("/readyz")
        body = assert_problem(down, 503)
        assert "redis" in body["detail"]
        assert body["checks"]["redis"]["status"] == "fail"
        assert body["checks"]["redis"]["error"]
        assert down.headers["retry-after"]

        server.start()
        statuses = []
        for _ in range(50):
            statuses.append((await client.get("/readyz")).status_code)
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.1)
        assert statuses[-1] == 200, statuses


async def test_readiness_is_bounded_when_a_check_hangs(redis_url: str) -> None:
    async def hangs() -> None:
        await asyncio.Event().wait()

    async with app_client(make_app(redis_url, downstream=hangs)) as client:
        started = asyncio.get_running_loop().time()
        response = await client.get("/readyz")
        elapsed = asyncio.get_running_loop().time() - started
    body = assert_problem(response, 503)
    assert elapsed < 2
    assert body["checks"]["downstream"]["error"] == "timed out after 0.3s"
    assert body["checks"]["redis"]["status"] == "ok"


async def test_unknown_route_and_wrong_method(redis_url: str) -> None:
    async with app_client(make_app(redis_url)) as client:
        missing = await client.get("/nowhere", headers={"Accept": "text/html"})
        wrong = await client.delete("/items")
        several = await client.delete("/items/abc")
    assert "/nowhere" in assert_problem(missing, 404)["detail"]
    assert_problem(wrong, 405)
    assert wrong.headers["allow"] == "POST"
    assert_problem(several, 405)
    assert several.headers["allow"] == "GET, PUT"  # both routes of the path, not just the first


async def test_problem_error_from_a_handler(redis_url: str) -> None:
    async with app_client(make_app(redis_url)) as client:
        response = await client.get("/items/abc")
    assert assert_problem(response, 404)["detail"] == "No item abc."


async def test_validation_errors_are_400_with_fields(redis_url: str) -> None:
    async with app_client(make_app(redis_url)) as client:
        response = await client.post(
            "/items", json={"ownerId": "", "packageInfo": {"size": "Huge", "weight": 0}}
        )
    body = assert_problem(response, 400)
    fields = {error["field"] for error in body["errors"]}
    assert fields == {"ownerId", "packageInfo.size", "packageInfo.weight"}
    assert all(error["message"] for error in body["errors"])


async def test_missing_body_and_malformed_json_are_400(redis_url: str) -> None:
    async with app_client(make_app(redis_url)) as client:
        malformed = await client.post(
            "/items", content=b'{"ownerId": ', headers={"Content-Type": "application/json"}
        )
        missing = await client.post("/items")
    assert assert_problem(malformed, 400)["errors"][0]["field"] == "body"
    assert assert_problem(missing, 400)["errors"][0]["field"] == "body"


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "application/vnd.drone+json"],
)
async def test_json_media_types_are_accepted(redis_url: str, content_type: str) -> None:
    payload = json.dumps({"ownerId": "o", "packageInfo": {"size": "Small", "weight": 1}})
    async with app_client(make_app(redis_url)) as client:
        response = await client.post(
            "/items", content=payload, headers={"Content-Type": content_type}
        )
    assert response.status_code == 201, response.text


async def test_non_json_body_is_415_and_does_nothing(redis_url: str) -> None:
    async with app_client(make_app(redis_url)) as client:
        response = await client.post(
            "/items", content=b"ownerId=o", headers={"Content-Type": "text/plain"}
        )
        untyped = await client.post("/items", content=b"{}", headers={"Content-Type": ""})
    assert_problem(response, 415)
    assert_problem(untyped, 415)
    async with Redis.from_url(redis_url) as redis:
        assert await redis.get("created") is None


async def test_form_bodies_pass_when_the_app_takes_them_still_limited() -> None:
    router = APIRouter()

    @router.post("/forms")
    async def form(request: Request) -> dict[str, str]:
        return {"body": (await request.body()).decode()}

    app = create_service_app(
        ExampleSettings(), title="forms", public_routers=[router], json_bodies=False
    )
    form_type = {"Content-Type": "application/x-www-form-urlencoded"}
    async with app_client(app) as client:
        response = await client.post("/forms", content=b"a=1&b=2", headers=form_type)
        too_big = await client.post("/forms", content=b"a=" + b"x" * 70_000, headers=form_type)
    assert response.status_code == 200
    assert response.json() == {"body": "a=1&b=2"}
    assert_problem(too_big, 413)


async def test_bodies_over_64_kib_are_413(redis_url: str) -> None:
    big = json.dumps({"ownerId": "x" * 70_000, "packageInfo": {"size": "Small", "weight": 1}})

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192].encode()

    async with app_client(make_app(redis_url)) as client:
        declared = await client.post(
            "/items", content=big, headers={"Content-Type": "application/json"}
        )
        streamed = await client.post(
            "/items", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert_problem(declared, 413)
    assert "transfer-encoding" not in declared.request.headers
    assert_problem(streamed, 413)
    assert streamed.request.headers["transfer-encoding"] == "chunked"
    async with Redis.from_url(redis_url) as redis:
        assert await redis.get("created") is None


async def test_unexpected_errors_are_500_without_internals(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with app_client(make_app(redis_url)) as client:
        response = await client.get("/boom")
    body = assert_problem(response, 500)
    assert "secret" not in response.text
    assert any(
        record.exc_info and "secret internal detail" in str(record.exc_info[1])
        for record in caplog.records
    )
    assert body["detail"]


async def test_trace_id_comes_from_traceparent(redis_url: str) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    async with app_client(make_app(redis_url)) as client:
        response = await client.get(
            "/items/x", headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"}
        )
    assert assert_problem(response, 404)["traceId"] == trace_id


async def test_one_server_span_per_request_and_none_for_health(
    redis_url: str, span_exporter: InMemorySpanExporter
) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    async with app_client(make_app(redis_url)) as client:
        await client.get("/healthz")
        await client.get("/readyz")
        response = await client.post(
            "/items",
            json={"ownerId": "o", "packageInfo": {"size": "Small", "weight": 1}},
            headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
        )
    assert response.status_code == 201
    servers = [s for s in span_exporter.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert [s.name for s in servers] == ["POST /items"]
    # The stable HTTP semantic conventions, as the HTTP client's spans have them.
    attributes = servers[0].attributes or {}
    assert attributes["http.request.method"] == "POST"
    assert attributes["http.route"] == "/items"
    assert attributes["http.response.status_code"] == 201
    assert "http.method" not in attributes  # the old names are gone
    assert "http.target" not in attributes
    assert servers[0].context is not None
    assert f"{servers[0].context.trace_id:032x}" == trace_id
    # The Redis call inside the handler is a child span of the request.
    redis_spans = [s for s in span_exporter.get_finished_spans() if s.name in {"INCR", "INCRBY"}]
    assert redis_spans
    assert redis_spans[0].context is not None
    assert redis_spans[0].context.trace_id == servers[0].context.trace_id
    # No INTERNAL span per ASGI message or per step of FastAPI's (dependencies, endpoint,
    # serialization): the request's spans are its SERVER span and the calls it made.
    kinds = {
        s.kind
        for s in span_exporter.get_finished_spans()
        if s.context is not None and f"{s.context.trace_id:032x}" == trace_id
    }
    assert kinds == {SpanKind.SERVER, SpanKind.CLIENT}


async def test_access_log_line_per_request(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="dronecommon.access")
    async with app_client(make_app(redis_url)) as client:
        await client.get("/items/abc")
        await client.get("/healthz")
    lines = [
        r for r in caplog.records if r.name == "dronecommon.access" and r.levelno == logging.INFO
    ]
    assert [(r.__dict__["http_path"], r.__dict__["http_status"]) for r in lines] == [
        ("/items/abc", 404)
    ]


def test_json_log_lines_carry_trace_ids(span_exporter: InMemorySpanExporter) -> None:
    formatter = JsonFormatter("example")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("there",), None)
    record.__dict__["deliveryId"] = "d1"
    with trace.get_tracer("test").start_as_current_span("work") as span:
        line = json.loads(formatter.format(record))
    context = span.get_span_context()
    assert line["message"] == "hello there"
    assert line["service"] == "example"
    assert line["deliveryId"] == "d1"
    assert line["traceId"] == f"{context.trace_id:032x}"
    assert line["spanId"] == f"{context.span_id:016x}"
    assert line["time"].endswith("+00:00")


async def test_openapi_documents_problems_not_422(redis_url: str) -> None:
    async with app_client(make_app(redis_url)) as client:
        schema = (await client.get("/openapi.json")).json()
    post = schema["paths"]["/items"]["post"]["responses"]
    assert "422" not in post
    assert {"400", "413", "415"} <= post.keys()
    get = schema["paths"]["/items/{item_id}"]["get"]["responses"]
    assert "413" not in get
    assert "415" not in get
    assert "Problem" in schema["components"]["schemas"]


async def test_auth_protects_routers_but_not_health_or_public_routes(
    redis_url: str, dev_issuer: LocalIssuer
) -> None:
    public = APIRouter()

    @public.get("/public/ping")
    async def ping() -> dict[str, str]:
        return {"pong": "yes"}

    settings = ExampleSettings(redis=RedisSettings(url=redis_url), auth=dev_issuer.settings)
    app = create_service_app(
        settings,
        title="example",
        routers=[example_router()],
        public_routers=[public],
        configure_logs=False,
    )
    async with app_client(app) as client:
        anonymous = await client.get("/items/abc")
        signed = await client.get("/items/abc", headers=dev_issuer.headers())
        health = await client.get("/healthz")
        open_route = await client.get("/public/ping")
    assert_problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert_problem(signed, 404)  # through auth, to the handler
    assert health.status_code == 200
    assert open_route.status_code == 200


class Closed:
    """A front door that refuses ``POST /items`` with a 503 problem, the way a handler would."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/items":
            closed = ProblemError(503, "Closed for now.", headers={"Retry-After": "3"})
            await error_response(scope, closed)(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def test_front_door_middleware_runs_after_the_guard_and_before_routes_and_tokens(
    redis_url: str, dev_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ExampleSettings(redis=RedisSettings(url=redis_url), auth=dev_issuer.settings)
    app = create_service_app(
        settings,
        title="example",
        routers=[example_router()],
        configure_logs=False,
        front_door=[Middleware(Closed)],
    )
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    async with app_client(app) as client:
        with caplog.at_level(logging.INFO, "dronecommon.access"):
            caplog.clear()
            # No token, a body no handler would take: the front door answers, as a handler would.
            refused = await client.post(
                "/items", json={"nothing": "valid"}, headers={"traceparent": traceparent}
            )
        not_json = await client.post("/items", content=b"x", headers={"Content-Type": "text/plain"})
        other = await client.put("/items/abc", json={"nothing": "valid"})  # not its door
    body = assert_problem(refused, 503)
    assert body["detail"] == "Closed for now."
    assert body["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert refused.headers["retry-after"] == "3"
    assert "POST /items 503" in [r.getMessage() for r in caplog.records]  # logged like any other
    assert_problem(not_json, 415)  # the request guard comes first
    assert_problem(other, 401)  # everything else: tokens, then routes
