"""RFC 9457 problem details for every error a service answers.

Every 4xx/5xx body is ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail`` and ``traceId``; validation failures are 400 (never FastAPI's 422) and add
``errors: [{"field": "packageInfo.size", "message": "..."}]``. Unexpected exceptions become a 500
that names nothing internal (the exception is logged with its trace id instead).

This module is the one place where errors become answers:

- a service's rules raise :class:`DomainError` subclasses (``PackageNotFound``,
  ``NoDroneAvailable``...), each naming its status and its problem type
  ``urn:dronedelivery:problem:<problem>``;
- a store that says "not now" is a 503 with ``Retry-After`` and the type
  ``urn:dronedelivery:problem:dependency-unavailable``, whichever service met it: Redis
  connection, timeout, loading, busy and fail-over errors; PyMongo connection, server selection
  and timeout errors; and Azure Cosmos DB for MongoDB throttling (error 16500, ``TooManyRequests``),
  whose ``RetryAfterMs`` becomes the ``Retry-After``. See :func:`store_outage`.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, ClassVar

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


class DomainError(Exception):
    """A rule of a service refused the request; answered as problem+json.

    Subclasses name the problem once: ``status``, ``problem`` (the type is
    ``urn:dronedelivery:problem:<problem>``) and, when it is not the status's reason phrase,
    ``title``. An instance carries the ``detail`` and may carry ``retry_after`` (seconds, sent as
    ``Retry-After``), other ``headers`` and ``extensions`` (extra members of the body).
    """

    status: ClassVar[int] = 400
    problem: ClassVar[str] = "domain-error"
    title: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not _PROBLEM_NAME.match(cls.problem):
            raise TypeError(f"{cls.__name__}.problem must match {_PROBLEM_NAME.pattern}")
        if not 400 <= cls.status <= 599:
            raise TypeError(f"{cls.__name__}.status must be a 4xx or 5xx status")

    def __init__(
        self,
        detail: str,
        *,
        retry_after: int | None = None,
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = dict(headers or {})
        if retry_after is not None:
            self.headers["Retry-After"] = str(max(1, retry_after))
        self.extensions = dict(extensions or {})

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_BASE + self.problem


_PROBLEM_NAME = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")


class ProblemError(Exception):
    """Any problem+json answer, status and type given by the raiser.

    For library code and tests; a service's own refusals are :class:`DomainError` subclasses.
    """

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


def error_response(scope: Scope, exc: ProblemError | DomainError) -> Response:
    """The problem+json answer to ``exc``, for code that runs before the app's exception
    handlers (an ASGI middleware) and must answer exactly as they would."""
    return problem_response(
        scope,
        exc.status,
        exc.detail,
        title=exc.title,
        type_=exc.type,
        headers=exc.headers,
        extensions=exc.extensions,
    )


async def _problem_error_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ProblemError | DomainError):
        raise exc
    return error_response(request.scope, exc)


async def _validation_handler(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):
        raise exc
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
    if not isinstance(exc, StarletteHTTPException):
        raise exc
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


class DependencyUnavailableError(DomainError):
    """A store or downstream service cannot be reached; the client should retry later."""

    status = 503
    problem = "dependency-unavailable"

    def __init__(self, dependency: str, retry_after: int = 1) -> None:
        super().__init__(f"The {dependency} is unavailable; retry later.", retry_after=retry_after)
        self.dependency = dependency
        self.retry_after = retry_after


# --- transient store failures ------------------------------------------------------------------

# Azure Cosmos DB for MongoDB's "request rate is large" (codeName TooManyRequests).
COSMOS_TOO_MANY_REQUESTS = 16500

_REDIS_NOT_NOW: tuple[type[redis.exceptions.RedisError], ...] = (
    redis.exceptions.ConnectionError,  # refused, reset, auth expired, pool exhausted, LOADING
    redis.exceptions.TimeoutError,
    # a fail-over or an overloaded server
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,  # MASTERDOWN too
    redis.exceptions.OutOfMemoryError,
)
_MONGO_NOT_NOW: tuple[type[pymongo.errors.PyMongoError], ...] = (
    pymongo.errors.ConnectionFailure,  # AutoReconnect, NetworkTimeout, server selection, pool wait
    pymongo.errors.ExecutionTimeout,
)
_RETRY_AFTER_MS = re.compile(r"RetryAfterMs\W{0,3}(\d+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class StoreOutage:
    """A store error that means "not now": which store, and when to try again (seconds)."""

    store: str
    retry_after: int = 1


def store_outage(exc: BaseException) -> StoreOutage | None:
    """The outage ``exc`` reports, or None when it is not a transient store failure."""
    if isinstance(exc, redis.exceptions.RedisError):
        busy = isinstance(exc, redis.exceptions.ResponseError) and str(exc).startswith("BUSY ")
        return StoreOutage("Redis store") if busy or isinstance(exc, _REDIS_NOT_NOW) else None
    if isinstance(exc, pymongo.errors.PyMongoError):
        if isinstance(exc, pymongo.errors.OperationFailure) and _cosmos_throttled(exc):
            return StoreOutage("MongoDB store", _cosmos_retry_after(exc))
        if isinstance(exc, _MONGO_NOT_NOW) or exc.timeout:
            return StoreOutage("MongoDB store")
    return None


def _cosmos_throttled(exc: pymongo.errors.OperationFailure) -> bool:
    details = exc.details or {}
    return exc.code == COSMOS_TOO_MANY_REQUESTS or details.get("codeName") == "TooManyRequests"


def _cosmos_retry_after(exc: pymongo.errors.OperationFailure) -> int:
    """Seconds to wait: Cosmos DB's ``RetryAfterMs`` (a field, or in the message), else 1."""
    milliseconds = (exc.details or {}).get("RetryAfterMs")
    if not isinstance(milliseconds, int | float):
        match = _RETRY_AFTER_MS.search(str(exc))  # the message and the server's reply
        milliseconds = int(match.group(1)) if match else 1000
    return max(1, math.ceil(milliseconds / 1000))


async def _store_error_handler(request: Request, exc: Exception) -> Response:
    outage = store_outage(exc)
    if outage is None:
        raise exc  # not an outage: a bug, answered 500 by the server-error handler
    logger.warning(
        "%s unavailable on %s %s: %s", outage.store, request.method, request.url.path, exc
    )
    return error_response(
        request.scope, DependencyUnavailableError(outage.store, outage.retry_after)
    )


async def _unhandled_handler(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request.scope, 500, "The service failed to handle the request; it has been logged."
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem+json."""
    app.add_exception_handler(DomainError, _problem_error_handler)
    app.add_exception_handler(ProblemError, _problem_error_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    # A store outage is the client's cue to retry, never a 500; other store errors are bugs.
    app.add_exception_handler(redis.exceptions.RedisError, _store_error_handler)
    app.add_exception_handler(pymongo.errors.PyMongoError, _store_error_handler)
    app.add_exception_handler(Exception, _unhandled_handler)
