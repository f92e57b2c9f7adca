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


class OwnerMismatch(DomainError):
    """The body's ownerId is not the caller the token names."""

    status = 403
    problem = "owner-mismatch"

    def __init__(self, owner_id: str, user_id: str) -> None:
        super().__init__(
            f"ownerId {owner_id!r} is not the caller: the token names user {user_id!r}. "
            "Leave ownerId out (it is taken from the token) or send your own.",
            extensions={"errors": [{"field": "ownerId", "message": "must be the token's user"}]},
        )


class OwnerRequired(DomainError):
    """No token names the owner (tokens are off) and the body names none."""

    status = 400
    problem = "validation-error"
    title = "Invalid request"

    def __init__(self) -> None:
        super().__init__(
            "ownerId is required when the request carries no token that names the owner.",
            extensions={"errors": [{"field": "ownerId", "message": "Field required"}]},
        )


class OutsideServiceArea(DomainError):
    """A pickup or drop-off lies outside the service area."""

    status = 400
    problem = "outside-service-area"

    def __init__(self, places: list[tuple[str, str]], radius_miles: float) -> None:
        names = " and ".join(field for field, _ in places)
        super().__init__(
            f"{names} {'is' if len(places) == 1 else 'are'} outside the service area "
            f"(within {radius_miles:g} miles of a drone base); nothing was scheduled.",
            extensions={
                "errors": [{"field": field, "message": message} for field, message in places]
            },
        )


class TripTooLong(DomainError):
    """No drone could fly base -> pickup -> drop-off -> base within the longest trip allowed."""

    status = 400
    problem = "trip-too-long"

    def __init__(self, miles: float, max_miles: float) -> None:
        super().__init__(
            f"The shortest trip for this pickup and drop-off (from a drone base, to both, and "
            f"back) is {miles:,.1f} miles; no trip may be longer than {max_miles:g} miles. "
            "Nothing was scheduled.",
            extensions={
                "errors": [
                    {"field": "dropOffLocation", "message": "too far from the pickup"},
                ]
            },
        )


class DeliveryNotFound(DomainError):
    """No delivery of the caller's has this id (or it is someone else's: not revealed)."""

    status = 404
    problem = "delivery-not-found"

    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"No delivery {delivery_id}.")


class RateLimited(DomainError):
    """The account sent new delivery requests faster than its rate."""

    status = 429
    problem = "rate-limited"

    def __init__(self, retry_after: int, per_minute: float, burst: int) -> None:
        super().__init__(
            f"This account may send {per_minute:g} new delivery requests a minute (up to "
            f"{burst} at once); nothing was scheduled. Retry in {retry_after} s.",
            retry_after=retry_after,
        )


class TooManyInProgress(DomainError):
    """The account has as many deliveries in progress as it may."""

    status = 429
    problem = "too-many-deliveries-in-progress"

    def __init__(self, count: int, retry_after: int) -> None:
        super().__init__(
            f"This account has {count} deliveries in progress, its limit; nothing was "
            "scheduled. Retry once one of them is completed or cancelled.",
            retry_after=retry_after,
        )


class Overloaded(DomainError):
    """The queue holds more work than the front door admits (``admission.py``)."""

    status = 503
    problem = "overloaded"
    title = "Overloaded"

    def __init__(self, backlog: int, drain_rate: float, limit_seconds: float, retry_after: int):
        if drain_rate > 0:
            held = f"about {backlog / drain_rate:.1f} s of work ({backlog} messages)"
        else:
            held = f"{backlog} messages and is not draining"
        super().__init__(
            f"The delivery queue holds {held}; this service admits up to {limit_seconds:g} s "
            f"of work. Nothing was queued. Retry in {retry_after} s.",
            retry_after=retry_after,
        )
