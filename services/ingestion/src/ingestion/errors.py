"""The service's failures as problem+json."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from dronecommon.problems import PROBLEM_TYPE_BASE, problem_response

from .service import (
    IdempotencyKeyReusedError,
    QueueUnavailableError,
    RequestInProgressError,
    StoreUnavailableError,
)


def install_error_handlers(app: FastAPI, *, retry_after: int) -> None:
    """Map the service's errors to 409, 422 and 503 answers."""
    retry = {"Retry-After": str(retry_after)}
    answers: dict[type[Exception], tuple[int, str, str, dict[str, str]]] = {
        QueueUnavailableError: (
            503,
            "queue-unavailable",
            "The delivery queue did not take the request; nothing was scheduled. Retry later.",
            retry,
        ),
        StoreUnavailableError: (
            503,
            "idempotency-store-unavailable",
            "The Idempotency-Key store did not answer; nothing was scheduled. Retry later.",
            retry,
        ),
        IdempotencyKeyReusedError: (
            422,
            "idempotency-key-reused",
            "This Idempotency-Key was already used with a different request body.",
            {},
        ),
        RequestInProgressError: (
            409,
            "request-in-progress",
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            {"Retry-After": "1"},
        ),
    }

    async def handler(request: Request, exc: Exception) -> Response:
        code, kind, detail, headers = answers[type(exc)]
        return problem_response(
            request.scope, code, detail, type_=PROBLEM_TYPE_BASE + kind, headers=headers
        )

    for error in answers:
        app.add_exception_handler(error, handler)
