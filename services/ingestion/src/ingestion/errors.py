"""The ingestion service's refusals; the library answers them as problem+json.

Each says what happened to the request: nothing was scheduled unless the answer is a 202.
"""

from __future__ import annotations

from dronecommon import DomainError


class QueueUnavailable(DomainError):
    """The queue did not take the message within the send timeout."""

    status = 503
    problem = "queue-unavailable"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "The delivery queue did not take the request; nothing was scheduled. Retry later.",
            retry_after=retry_after,
        )


class IdempotencyStoreUnavailable(DomainError):
    """The Idempotency-Key store did not answer."""

    status = 503
    problem = "idempotency-store-unavailable"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "The Idempotency-Key store did not answer; nothing was scheduled. Retry later.",
            retry_after=retry_after,
        )


class IdempotencyKeyReused(DomainError):
    """The key was used before with a different body."""

    status = 422
    problem = "idempotency-key-reused"

    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used with a different request body.")


class RequestInProgress(DomainError):
    """Another request with the same key is still being sent."""

    status = 409
    problem = "request-in-progress"

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed; retry shortly.",
            retry_after=1,
        )
