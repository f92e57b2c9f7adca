"""Liveness and readiness.

``GET /healthz`` does no I/O: the process is alive if it can answer. ``GET /readyz`` runs every
registered dependency check concurrently, each under its own short timeout, and answers 200
``{"status": "ready", "checks": {...}}`` or a 503 problem+json naming each failing check and its
error. A check is any ``async () -> None`` that raises when the dependency is unusable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from dronecommon.problems import PROBLEM_TYPE_BASE, problem_response

Check = Callable[[], Awaitable[object]]

HEALTH_PATHS = ("/healthz", "/readyz")


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    duration_ms: float
    error: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "ok" if self.ok else "fail",
            "durationMs": round(self.duration_ms, 1),
        }
        if self.error is not None:
            body["error"] = self.error
        return body


class ReadinessChecks:
    """The dependency checks behind ``/readyz``; services register theirs in their lifespan."""

    def __init__(self, default_timeout: float = 2.0) -> None:
        self.default_timeout = default_timeout
        self._checks: dict[str, tuple[Check, float]] = {}

    def add(self, name: str, check: Check, *, timeout: float | None = None) -> None:
        self._checks[name] = (check, timeout or self.default_timeout)

    def remove(self, name: str) -> None:
        self._checks.pop(name, None)

    @property
    def names(self) -> list[str]:
        return list(self._checks)

    async def _run(self, name: str, check: Check, limit: float) -> CheckResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(limit):
                await check()
        except TimeoutError:
            error = f"timed out after {limit:g}s"
        except Exception as exc:  # a failing dependency, whatever its error type
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            return CheckResult(name, True, (time.perf_counter() - started) * 1000)
        return CheckResult(name, False, (time.perf_counter() - started) * 1000, error)

    async def run(self) -> list[CheckResult]:
        return list(
            await asyncio.gather(
                *(
                    self._run(name, check, timeout)
                    for name, (check, timeout) in self._checks.items()
                )
            )
        )


class _Pingable(Protocol):
    def ping(self) -> Awaitable[Any]: ...


def redis_check(client: _Pingable) -> Check:
    """Readiness of a ``redis.asyncio`` client: PING."""

    async def check() -> None:
        await client.ping()

    return check


class _MongoAdmin(Protocol):
    def command(self, command: str) -> Awaitable[Any]: ...


class _MongoClient(Protocol):
    @property
    def admin(self) -> _MongoAdmin: ...


def mongo_check(client: _MongoClient) -> Check:
    """Readiness of a ``pymongo.AsyncMongoClient``: the ``ping`` command."""

    async def check() -> None:
        await client.admin.command("ping")

    return check


def health_router(checks: ReadinessChecks) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process answers (no I/O)")
    async def healthz() -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @router.get(
        "/readyz",
        summary="Readiness: every dependency answers",
        responses={
            503: {
                "description": "A dependency check failed; the body names it",
                "content": {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                },
            }
        },
    )
    async def readyz(request: Request) -> Response:
        results = await checks.run()
        body = {result.name: result.as_json() for result in results}
        failing = [result for result in results if not result.ok]
        if not failing:
            return Response(
                orjson.dumps({"status": "ready", "checks": body}), media_type="application/json"
            )
        detail = "; ".join(f"{result.name}: {result.error}" for result in failing)
        return problem_response(
            request.scope,
            503,
            f"Not ready: {detail}",
            type_=PROBLEM_TYPE_BASE + "not-ready",
            headers={"Retry-After": "5", "Cache-Control": "no-store"},
            extensions={"checks": body},
        )

    return router
