"""The ingestion service's refusals; the library answers them as problem+json.

Each says what happened to the request: nothing was scheduled unless the answer is a 202, except
after a send the queue did not confirm (:class:`QueueOutcomeUnknown`), which says that the request
may have been queued and how to retry it safely.
"""

from __future__ import annotations

from dronecommon import DomainError


class QueueUnavailable(DomainError):
    """The queue could not be reached (no connection could be opened): nothing was queued."""

    status = 503
    problem = "queue-unavailable"

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            "The delivery queue could not be reached; nothing was scheduled. Retry later.",
            retry_after=retry_after,
        )


class QueueOutcomeUnknown(DomainError):
    """The send did not complete in time, or broke off: the queue may have the message."""

    status = 503
    problem = "queue-outcome-unknown"

    def __init__(self, retry_after: int, *, operation: str, delivery_id: str, keyed: bool) -> None:
        said = "The delivery queue did not confirm the request: it may have been queued."
        extensions: dict[str, str] = {}
        if keyed:
            advice = (
                "Retrying with the same Idempotency-Key is safe: the request is scheduled at "
                "most once."
            )
        elif operation == "delivery":
            advice = (
                f"If it was, it is delivery {delivery_id} (GET /api/deliveries/{delivery_id} "
                "finds it once the workflow has it). A retry without an Idempotency-Key is a new "
                "request and may schedule a second delivery: send an Idempotency-Key, the same "
                "on every retry."
            )
            extensions["deliveryId"] = delivery_id
        else:
            advice = (
                f"Retrying the {operation} is safe: it sets the same state again, which changes "
                "nothing more."
            )
        super().__init__(f"{said} {advice}", retry_after=retry_after, extensions=extensions)


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
