"""The service app factory: everything a service needs that is not its business.

``create_service_app(settings, title=..., routers=[...], lifespan=...)`` returns a FastAPI app with
liveness/readiness, problem+json for every error, the body-size and JSON content-type guard, JSON
access logs with trace ids, OpenTelemetry and (when ``settings.auth.enabled``) bearer-token
checks on the service's routers. Nothing happens at import time: services expose
``create_app(settings=None)`` and run under ``uvicorn --factory``.

A service's lifespan receives the app (a :class:`ServiceApp`), creates its clients, registers
readiness checks with ``app.readiness.add(...)`` and yields its state, a ``TypedDict`` whose
entries handlers receive through ``Annotated`` aliases (:func:`dronecommon.state.from_state`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.params import Depends as DependsParam
from starlette.middleware import Middleware

from dronecommon.apidocs import install_docs
from dronecommon.edge import NOT_AT_EDGE
from dronecommon.health import HEALTH_PATHS, ReadinessChecks, health_router
from dronecommon.logs import configure_logging
from dronecommon.middleware import DEFAULT_MAX_BODY, AccessLogMiddleware, RequestGuardMiddleware
from dronecommon.problems import PROBLEM_JSON, install_problem_handlers
from dronecommon.server import settle_heap
from dronecommon.settings import ServiceSettings
from dronecommon.telemetry import (
    SampledRequestMiddleware,
    Telemetry,
    TraceContextMiddleware,
    configure_telemetry,
    server_telemetry,
)


class ServiceApp(FastAPI):
    """A FastAPI app built by :func:`create_service_app`, with what the factory attached."""

    def __init__(
        self,
        *,
        settings: ServiceSettings,
        readiness: ReadinessChecks,
        telemetry: Telemetry,
        **options: Any,
    ) -> None:
        instrumented = settings.telemetry.instrument and telemetry.recording
        super().__init__(telemetry=server_telemetry(instrumented=instrumented), **options)
        self.instrumented = instrumented
        self.settings = settings
        self.readiness = readiness
        self.telemetry = telemetry
        # Also on app.state, for code that looks there.
        self.state.settings = settings
        self.state.readiness = readiness
        self.state.telemetry = telemetry


ServiceLifespan = Callable[[ServiceApp], AbstractAsyncContextManager[Mapping[str, Any] | None]]

PROBLEM_RESPONSE: dict[str, Any] = {
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}


def readiness(app: FastAPI) -> ReadinessChecks:
    """The app's readiness checks (register a service's dependencies here)."""
    if not isinstance(app, ServiceApp):
        raise TypeError("readiness checks belong to apps built by create_service_app")
    return app.readiness


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries documenting problem+json answers."""
    return {
        status: {"description": _DESCRIPTIONS.get(status, "Error"), **PROBLEM_RESPONSE}
        for status in statuses
    }


_DESCRIPTIONS = {
    400: "Invalid request (problem+json with per-field errors)",
    401: "Missing or invalid bearer token",
    403: "The caller is not allowed",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Request body too large",
    415: "Request body is not JSON",
    422: "Semantically invalid request",
    503: "A dependency is unavailable; retry after the Retry-After delay",
}


def create_service_app(
    settings: ServiceSettings,
    *,
    title: str,
    version: str = "0.1.0",
    description: str = "",
    routers: Sequence[APIRouter] = (),
    public_routers: Sequence[APIRouter] = (),
    internal_routers: Sequence[APIRouter] = (),
    lifespan: ServiceLifespan | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    configure_logs: bool = True,
    json_bodies: bool = True,
    front_door: Sequence[Middleware] = (),
) -> ServiceApp:
    """Build a service app.

    ``routers`` require a valid caller token when auth is on (their routes add their policies,
    :mod:`dronecommon.auth.policy`); ``public_routers`` never do. ``internal_routers`` are
    protected like ``routers`` and, first of all, answer 404 to requests that came through the
    public gateway (:mod:`dronecommon.edge`).
    ``json_bodies=False`` lets request bodies of other media types through the request guard (a
    web app's forms); their size is still limited.
    ``front_door``: a service's own ASGI middleware, run in this order after the request guard
    and before routing, authentication and the body: checks that must cost a refused request as
    little as possible (the ingestion's admission control). Their answers are logged and traced
    like any other.
    """
    service_name = type(settings).service_name
    if configure_logs:
        configure_logging(service_name, settings.log_level, json=settings.log_json)
    telemetry = configure_telemetry(settings.telemetry, service_name=service_name, version=version)
    checks = ReadinessChecks()

    @asynccontextmanager
    async def app_lifespan(_: FastAPI) -> AsyncIterator[dict[str, Any]]:
        state: dict[str, Any] = {"settings": settings}
        try:
            if lifespan is None:
                settle_heap()
                yield state
            else:
                async with lifespan(app) as service_state:
                    state.update(service_state or {})
                    settle_heap()
                    yield state
        finally:
            telemetry.shutdown()

    app = ServiceApp(
        settings=settings,
        readiness=checks,
        telemetry=telemetry,
        title=title,
        version=version,
        description=description,
        lifespan=app_lifespan,
        docs_url=None,  # FastAPI's pages load from a CDN; install_docs serves them locally
        redoc_url=None,
    )

    install_problem_handlers(app)
    install_docs(app)
    app.include_router(health_router(checks))
    dependencies = _auth_dependencies(settings) if routers or internal_routers else []
    # Public routers first: their fixed paths (``/things/public/{id}``) must win over a protected
    # router's templates (``/things/{id}/owner``). Protected routes document 401/403 whether or
    # not this instance enforces auth, so the committed document is the production one.
    for router in public_routers:
        app.include_router(router)
    for router in routers:
        app.include_router(router, dependencies=dependencies, responses=error_responses(401, 403))
    for router in internal_routers:
        app.include_router(
            router,
            dependencies=[NOT_AT_EDGE, *dependencies],
            responses=error_responses(401, 403),
        )
    _add_problem_schema(app)

    # Middleware: the last added runs first. Telemetry wraps everything, then the access log,
    # then the request guard (so a 413/415 is logged and traced too), then the front door's own.
    for middleware in reversed(front_door):
        app.add_middleware(middleware.cls, *middleware.args, **middleware.kwargs)
    app.add_middleware(RequestGuardMiddleware, max_body=max_body, json_only=json_bodies)
    app.add_middleware(AccessLogMiddleware, quiet_paths=HEALTH_PATHS)
    if app.instrumented:  # FastAPI's own telemetry (server_telemetry) makes the server span
        app.add_middleware(SampledRequestMiddleware)
    else:
        app.add_middleware(TraceContextMiddleware)
    return app


def _auth_dependencies(settings: ServiceSettings) -> list[DependsParam]:
    """Authentication for the protected routers: the validated caller, or the anonymous one when
    tokens are switched off (so route policies always find a caller, and fail closed without)."""
    from dronecommon.auth.inbound import auth_dependency

    return [Depends(auth_dependency(settings.auth))]


def _documented(status: int) -> dict[str, Any]:
    return {"description": _DESCRIPTIONS[status], **PROBLEM_RESPONSE}


def _is_fastapi_validation(response: Any) -> bool:
    """FastAPI's automatic 422 (not a 422 a route documents for a reason of its own)."""
    if not isinstance(response, dict):
        return False
    content = response.get("content", {}).get("application/json", {})
    return bool(content.get("schema", {}).get("$ref", "").endswith("/HTTPValidationError"))


def _add_problem_schema(app: FastAPI) -> None:
    """Declare the ``Problem`` schema referenced by documented error responses."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = original()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = {
            "type": "object",
            "description": "RFC 9457 problem details",
            "required": ["type", "title", "status", "detail", "traceId"],
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "traceId": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
            },
        }
        # FastAPI documents its own 422 for validation; this API answers those with 400. Any
        # operation with a request body can also be refused by the request guard (413, 415).
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.get("responses", {})
                if _is_fastapi_validation(responses.get("422")):
                    del responses["422"]
                    responses.setdefault("400", _documented(400))
                if "requestBody" in operation:
                    responses.setdefault("413", _documented(413))
                    responses.setdefault("415", _documented(415))
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
