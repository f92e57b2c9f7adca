"""RFC 9457 problem details for every error a service answers.

Every 4xx/5xx body is ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail`` and ``traceId``; validation failures are 400 (never FastAPI's 422) and add
``errors: [{"field": "packageInfo.size", "message": "..."}]``. Unexpected exceptions become a 500
that names nothing internal (the exception is logged with its trace id instead).
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
import pymongo.errors
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from opentelemetry import trace
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:dronedelivery:problem:"

logger = logging.getLogger("dronecommon.problems")

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")


class ProblemError(Exception):
    """Raise anywhere in a request to answer with a problem+json body."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        type_: str | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title or _phrase(status)
        self.type = type_ or "about:blank"
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def trace_id_for(scope: Scope) -> str:
    """The request's trace id: the active span's, else the inbound ``traceparent``'s, else new."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        return f"{context.trace_id:032x}"
    state = scope.setdefault("state", {})
    cached = state.get("trace_id")
    if isinstance(cached, str):
        return cached
    trace_id = secrets.token_hex(16)
    for name, value in scope.get("headers", ()):
        if name == b"traceparent":
            match = _TRACEPARENT.match(value.decode("latin-1").strip().lower())
            if match and match.group(1) != "0" * 32:
                trace_id = match.group(1)
            break
    state["trace_id"] = trace_id
    return trace_id


def problem_body(
    scope: Scope,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_,
        "title": title or _phrase(status),
        "status": status,
        "detail": detail,
        "traceId": trace_id_for(scope),
    }
    if extensions:
        body.update(extensions)
    return body


def problem_response(
    scope: Scope,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    type_: str = "about:blank",
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> Response:
    body = problem_body(scope, status, detail, title=title, type_=type_, extensions=extensions)
    return Response(
        content=orjson.dumps(body),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=dict(headers or {}),
    )


def field_path(loc: Sequence[int | str]) -> str:
    """``("body", "packageInfo", "size")`` → ``packageInfo.size``; list indexes as ``[0]``."""
    parts = list(loc)
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def _validation_errors(exc: RequestValidationError) -> tuple[str, list[dict[str, str]]]:
    errors: list[dict[str, str]] = []
    for error in exc.errors():
        kind = str(error.get("type", ""))
        if kind == "json_invalid":
            ctx = error.get("ctx") or {}
            reason = ctx.get("error", "invalid JSON") if isinstance(ctx, dict) else "invalid JSON"
            return "The request body is not valid JSON.", [
                {"field": "body", "message": f"malformed JSON: {reason}"}
            ]
        message = str(error.get("msg", "invalid value"))
        message = message.removeprefix("Value error, ")
        errors.append({"field": field_path(error.get("loc", ())), "message": message})
    return "The request is not valid: see errors.", errors


async def _problem_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request.scope,
        exc.status,
        exc.detail,
        title=exc.title,
        type_=exc.type,
        headers=exc.headers,
        extensions=exc.extensions,
    )


async def _validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    detail, errors = _validation_errors(exc)
    return problem_response(
        request.scope,
        400,
        detail,
        title="Invalid request",
        type_=PROBLEM_TYPE_BASE + "validation-error",
        extensions={"errors": errors},
    )


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=headers)
    detail = str(exc.detail) if exc.detail else _phrase(exc.status_code)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No resource at {request.url.path}."
    elif exc.status_code == 405:
        if detail == "Method Not Allowed":
            detail = f"{request.method} is not allowed on {request.url.path}."
        allowed = allowed_methods(request)
        if allowed:
            headers["Allow"] = ", ".join(allowed)
    return problem_response(request.scope, exc.status_code, detail, headers=headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at the request's path.

    Starlette's router names only the methods of the first route whose path matches, so a path
    served by several routes (``GET`` and ``PUT`` on ``/items/{id}``) would otherwise get a
    partial ``Allow`` header.
    """
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


class DependencyUnavailableError(Exception):
    """A store or downstream service cannot be reached; the client should retry later."""

    def __init__(self, dependency: str, retry_after: int = 1) -> None:
        super().__init__(f"{dependency} is unavailable")
        self.dependency = dependency
        self.retry_after = retry_after


def _unavailable(request: Request, dependency: str, retry_after: int, exc: Exception) -> Response:
    logger.warning("%s unavailable on %s %s: %s", dependency, request.method, request.url.path, exc)
    return problem_response(
        request.scope,
        503,
        f"The {dependency} is unavailable; retry later.",
        type_=PROBLEM_TYPE_BASE + "dependency-unavailable",
        headers={"Retry-After": str(retry_after)},
    )


async def _dependency_unavailable_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DependencyUnavailableError)
    return _unavailable(request, exc.dependency, exc.retry_after, exc)


async def _redis_unavailable_handler(request: Request, exc: Exception) -> Response:
    return _unavailable(request, "Redis store", 1, exc)


async def _mongo_unavailable_handler(request: Request, exc: Exception) -> Response:
    return _unavailable(request, "MongoDB store", 1, exc)


async def _unhandled_handler(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request.scope, 500, "The service failed to handle the request; it has been logged."
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem+json."""
    app.add_exception_handler(ProblemError, _problem_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(DependencyUnavailableError, _dependency_unavailable_handler)
    # A store outage is the client's cue to retry, never a 500.
    for redis_error in (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        # a fail-over, a busy or overloaded server: "not now" too
        redis.exceptions.ReadOnlyError,
        redis.exceptions.TryAgainError,
        redis.exceptions.ClusterDownError,
        redis.exceptions.MasterDownError,
        redis.exceptions.BusyLoadingError,
        redis.exceptions.OutOfMemoryError,
    ):
        app.add_exception_handler(redis_error, _redis_unavailable_handler)
    for mongo_error in (
        pymongo.errors.ConnectionFailure,  # includes AutoReconnect, NetworkTimeout, ...
        pymongo.errors.ServerSelectionTimeoutError,
        pymongo.errors.ExecutionTimeout,
        pymongo.errors.WaitQueueTimeoutError,
    ):
        app.add_exception_handler(mongo_error, _mongo_unavailable_handler)
    app.add_exception_handler(Exception, _unhandled_handler)
