"""The public routes (thin: validation is in the schemas, rules in the service).

Every route is for customers (a token for the public API naming an account and a user; a service
token is 403): the caller is the owner of what it schedules, and of nothing else.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request, Response, status

from dronecommon import error_responses, from_state
from dronecommon.auth.inbound import Caller
from dronecommon.auth.policy import requires

from .runtime import State
from .schemas import (
    UUID_PATTERN,
    DeliveryRequest,
    DeliveryRequestIn,
    OperationAccepted,
    RescheduleIn,
)
from .service import IdempotencyKey, IngestionService

IDEMPOTENCY_KEY_PATTERN = r"^[!-~](?:[ -~]*[!-~])?$"


Customer = Annotated[Caller, requires(customers=True)]


async def _caller_scope(caller: Customer) -> str:
    """Whose Idempotency-Key it is: keys of different callers never meet.

    A customer's keys are its user's (the user claim, ``oid`` by default) in its account (the
    account claim, ``tid``), within the client application that obtained the token (``azp``):
    the users of one app (the web app signs in many) never share keys, nor does one user across
    two apps. With tokens off every request is the anonymous caller's.
    """
    if caller.kind != "customer":
        return "anonymous"
    who = f"customer:{caller.account_id}/{caller.user_id or caller.subject}"
    return f"app_id:{caller.app_id}|{who}" if caller.app_id else who


Ingestion = Annotated[IngestionService, from_state(State, "ingestion")]


CallerScope = Annotated[str, Depends(_caller_scope)]
DeliveryId = Annotated[
    str,
    Path(
        alias="deliveryId",
        pattern=UUID_PATTERN,
        description="The deliveryId a POST answered (a UUID)",
        examples=["3fa85f64-5717-4562-b3fc-2c963f66afa6"],
    ),
]
IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description=(
            "1..255 printable ASCII characters. A retry with the same key and the same request"
            " (JSON body; for PATCH and DELETE also the method and deliveryId) gets the first"
            " answer and enqueues nothing new; another request with the key is 422."
        ),
    ),
]


def _problem(status: int, description: str, *, retry: bool = False) -> dict[str, Any]:
    """A documented problem+json answer (with its Retry-After header when it has one)."""
    answer = {**error_responses(status)[status], "description": description}
    if retry:
        answer["headers"] = {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "string"}}
        }
    return answer


_LOCATION = {"description": "/api/deliveries/{deliveryId}", "schema": {"type": "string"}}
_INVALID = _problem(400, "Invalid request (problem+json with per-field errors)")
_UNAVAILABLE = _problem(
    503,
    "The queue or the Idempotency-Key store failed: queue-unavailable and "
    "idempotency-store-unavailable mean nothing was scheduled; queue-outcome-unknown that the "
    "request may have been queued (the detail says how to retry safely)",
    retry=True,
)
_ACCEPTED_DELIVERY: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "On the queue: the normalised request with its new deliveryId",
        "headers": {
            "Location": _LOCATION,
            "Idempotent-Replayed": {
                "description": "true when the answer is a replay for an Idempotency-Key",
                "schema": {"type": "string", "enum": ["true"]},
            },
        },
    },
    400: _problem(
        400,
        "Invalid request (per-field errors), a place outside the service area "
        "(outside-service-area) or a trip longer than the maximum (trip-too-long)",
    ),
    403: _problem(403, "ownerId is not the caller the token names (or not a customer token)"),
    413: _problem(413, "Request body larger than 64 KiB"),
    415: _problem(415, "Request body is not JSON"),
    409: _problem(409, "A request with this Idempotency-Key is being sent; retry", retry=True),
    422: _problem(422, "The Idempotency-Key was used with a different body"),
    429: _problem(
        429,
        "The account's rate of new requests (rate-limited) or its deliveries in progress "
        "(too-many-deliveries-in-progress) is at its limit; nothing was queued",
        retry=True,
    ),
    503: _problem(
        503,
        "The queue or the Idempotency-Key store did not answer, or the queue holds more work "
        "than the service admits (overloaded); nothing was done",
        retry=True,
    ),
}
_ACCEPTED_OPERATION: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "On the queue",
        "headers": {
            "Location": _LOCATION,
            "Idempotent-Replayed": _ACCEPTED_DELIVERY[202]["headers"]["Idempotent-Replayed"],
        },
    },
    400: _INVALID,
    404: _problem(404, "No delivery of the caller's has this id (nothing was queued)"),
    409: _ACCEPTED_DELIVERY[409],
    422: _problem(422, "The Idempotency-Key was used with a different request"),
    503: _UNAVAILABLE,
}
_ACCEPTED_RESCHEDULE: dict[int | str, dict[str, Any]] = {
    **_ACCEPTED_OPERATION,
    400: _problem(400, "Invalid request (per-field errors) or a place outside the service area"),
    413: _ACCEPTED_DELIVERY[413],
    415: _ACCEPTED_DELIVERY[415],
}

router = APIRouter(prefix="/api/deliveryrequests", tags=["delivery requests"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryRequest,
    summary="Schedule a delivery",
    responses=_ACCEPTED_DELIVERY,
)
async def schedule_delivery(
    body: DeliveryRequestIn,
    request: Request,
    ingestion: Ingestion,
    caller: Customer,
    scope: CallerScope,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    key = None
    if idempotency_key is not None:
        key = IdempotencyKey(caller=scope, key=idempotency_key, body=await request.json())
    accepted = await ingestion.schedule(body, caller, key)
    headers = {"Location": f"/api/deliveries/{accepted.delivery_id}"}
    if accepted.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(accepted.body, status.HTTP_202_ACCEPTED, headers, media_type="application/json")


def _operation_key(
    caller: str, key: str | None, method: str, delivery_id: str, body: Any = None
) -> IdempotencyKey | None:
    """A reschedule's or cancel's Idempotency-Key: the request is its method, target and body."""
    if key is None:
        return None
    request = {"method": method, "deliveryId": delivery_id, "body": body}
    return IdempotencyKey(caller=caller, key=key, body=request)


def _accepted(delivery_id: str, replayed: bool, response: Response) -> None:
    response.headers["Location"] = f"/api/deliveries/{delivery_id}"
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"


@router.patch(
    "/{deliveryId}",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Reschedule a delivery (at least one of the fields)",
    responses=_ACCEPTED_RESCHEDULE,
)
async def reschedule_delivery(
    delivery_id: DeliveryId,
    body: RescheduleIn,
    request: Request,
    ingestion: Ingestion,
    caller: Customer,
    scope: CallerScope,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> OperationAccepted:
    delivery_id = delivery_id.lower()
    key = None
    if idempotency_key is not None:
        parsed = await request.json()
        key = _operation_key(scope, idempotency_key, "PATCH", delivery_id, parsed)
    replayed = await ingestion.reschedule(delivery_id, body, caller, key)
    _accepted(delivery_id, replayed, response)
    return OperationAccepted(delivery_id=delivery_id, operation="reschedule")


@router.delete(
    "/{deliveryId}",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel a delivery",
    responses=_ACCEPTED_OPERATION,
)
async def cancel_delivery(
    delivery_id: DeliveryId,
    ingestion: Ingestion,
    caller: Customer,
    scope: CallerScope,
    response: Response,
    idempotency_key: IdempotencyKeyHeader = None,
) -> OperationAccepted:
    delivery_id = delivery_id.lower()
    key = _operation_key(scope, idempotency_key, "DELETE", delivery_id)
    replayed = await ingestion.cancel(delivery_id, caller, key)
    _accepted(delivery_id, replayed, response)
    return OperationAccepted(delivery_id=delivery_id, operation="cancel")


_BODY_METHODS = frozenset({"post", "put", "patch"})
