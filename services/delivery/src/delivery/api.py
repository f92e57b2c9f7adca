"""The delivery routes: thin HTTP over :class:`~delivery.service.DeliveryService`.

``internal`` routes are for the other services (bearer token required when auth is on): every
write, the full delivery with its owner, the owner and the summaries. ``public`` routes are what
clients reach through the gateway without a service token: the public view of a delivery (no
owner, contacts or proof of delivery), its status and its tracking history.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator

from dronecommon import error_responses, from_state
from dronecommon.auth.inbound import AnyCaller
from dronecommon.notifyme import NotifyMeRequest

from .records import DeliveryRecord
from .runtime import State
from .schemas import (
    ID_PATTERN,
    MAX_TEXT,
    Confirmation,
    Delivery,
    DeliveryIn,
    DeliveryPage,
    DeliveryPatch,
    DeliveryStatus,
    OwnedDelivery,
    Owner,
    PublicDelivery,
    Summary,
    TrackingEvent,
    not_reserved,
)
from .service import DeliveryService

PREFIX = "/api/deliveries"

Deliveries = Annotated[DeliveryService, from_state(State, "deliveries")]
DeliveryId = Annotated[
    str,
    Path(
        pattern=ID_PATTERN,
        max_length=128,
        description="1..128 of A-Z a-z 0-9 . _ ~ - (first a letter or digit); "
        "not 'summary' or 'public'",
        examples=["3fa85f64-5717-4562-b3fc-2c963f66afa6"],
    ),
    AfterValidator(not_reserved),
]

NO_CONTENT: dict[int | str, dict[str, Any]] = {204: {"description": "Done"}}


def _public_view(record: DeliveryRecord, status: DeliveryStatus) -> dict[str, Any]:
    return {
        "id": record.id,
        "pickup": record.pickup,
        "dropoff": record.dropoff,
        "deadline": record.deadline,
        "expedited": record.expedited,
        "confirmation_required": record.confirmation_required,
        "drone_id": record.drone_id,
        "pickup_eta": record.plan.pickup_eta,
        "delivery_eta": record.plan.delivery_eta,
        "stage": status.stage,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    }


def delivery_view(record: DeliveryRecord, status: DeliveryStatus) -> Delivery:
    return Delivery(
        **_public_view(record, status),
        owner=record.owner,
        notify_me_requests=record.notify_me_requests,
        confirmation=record.confirmation,
    )


internal = APIRouter(prefix=PREFIX, tags=["deliveries"])
public = APIRouter(prefix=PREFIX, tags=["tracking"])


@internal.get(
    "",
    summary="The caller's deliveries, newest first",
    description="The owner is the token's user (`oid`); an Operator may name another with "
    "`ownerId` (anyone else: 403). Without a token (auth off) `ownerId` is required. A token "
    "naming an account (`tid`) sees that account's deliveries only. `nextCursor` fetches the "
    "next page (the last page may come back empty).",
    responses=error_responses(400, 403, 503),
)
async def owned(
    deliveries: Deliveries,
    caller: AnyCaller,
    owner_id: Annotated[
        str | None, Query(alias="ownerId", min_length=1, max_length=MAX_TEXT)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> DeliveryPage:
    found, next_cursor = await deliveries.owned(caller, owner_id, limit, cursor)
    items = [
        OwnedDelivery(**delivery_view(record, status).model_dump(), status=status)
        for record, status in found
    ]
    return DeliveryPage(items=items, next_cursor=next_cursor)


# Declared before "/{id}" so that "summary" is never taken for an id.
@internal.get(
    "/summary",
    summary="How many deliveries an owner created in a UTC month",
    responses=error_responses(400, 503),
)
async def summary(
    deliveries: Deliveries,
    owner_id: Annotated[str, Query(alias="ownerId", min_length=1, max_length=MAX_TEXT)],
    year: Annotated[int, Query(ge=1, le=9999)],
    month: Annotated[int, Query(ge=1, le=12)],
) -> Summary:
    return Summary(count=await deliveries.summary(owner_id, year, month))


@internal.put(
    "/{id}",
    status_code=201,
    response_model=Delivery,
    summary="Create a delivery (idempotent)",
    response_description="Created; Location names the delivery",
    responses={
        204: {"description": "The same delivery already exists (a replay)"},
        **error_responses(400, 409, 413, 415, 503),
    },
)
async def create(
    id: DeliveryId, body: DeliveryIn, deliveries: Deliveries, response: Response
) -> Delivery | Response:
    if body.id is not None and body.id != id:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "id"),
                    "msg": f"must equal the id in the path ({id!r})",
                    "input": body.id,
                }
            ]
        )
    created = await deliveries.create(id, body)
    if created is None:
        return Response(status_code=204)
    response.headers["Location"] = f"{PREFIX}/{id}"
    return delivery_view(*created)


@internal.get(
    "/{id}",
    summary="A delivery, with its owner",
    responses=error_responses(400, 404, 503),
)
async def get(id: DeliveryId, deliveries: Deliveries) -> Delivery:
    return delivery_view(*await deliveries.get(id))


@internal.get(
    "/{id}/owner",
    summary="Who owns a delivery",
    responses=error_responses(400, 404, 503),
)
async def owner(id: DeliveryId, deliveries: Deliveries) -> Owner:
    record, _ = await deliveries.get(id)
    return record.owner


@internal.patch(
    "/{id}",
    status_code=204,
    summary="Reschedule a delivery (optionally with the drone's new timing)",
    responses={**NO_CONTENT, **error_responses(400, 404, 409, 413, 415, 503)},
)
async def reschedule(id: DeliveryId, patch: DeliveryPatch, deliveries: Deliveries) -> None:
    await deliveries.reschedule(id, patch)


@internal.delete(
    "/{id}",
    status_code=204,
    summary="Cancel a delivery (idempotent)",
    responses={**NO_CONTENT, **error_responses(400, 404, 409, 503)},
)
async def cancel(id: DeliveryId, deliveries: Deliveries) -> None:
    await deliveries.cancel(id)


@internal.post(
    "/{id}/notifymerequests",
    status_code=204,
    summary="Ask to be notified about a delivery",
    responses={**NO_CONTENT, **error_responses(400, 404, 409, 413, 415, 503)},
)
async def notify_me(id: DeliveryId, body: NotifyMeRequest, deliveries: Deliveries) -> None:
    await deliveries.notify_me(id, body)


@internal.post(
    "/{id}/confirmations",
    status_code=204,
    summary="Confirm a delivery (completes it; idempotent for the same confirmation)",
    responses={**NO_CONTENT, **error_responses(400, 404, 409, 413, 415, 503)},
)
async def confirm(id: DeliveryId, body: Confirmation, deliveries: Deliveries) -> None:
    await deliveries.confirm(id, body)


# Public: registered ahead of the internal routes (see main.py), so "/public/{id}" is never
# taken for "/{id}/owner" and the like.
@public.get(
    "/public/{id}",
    summary="A delivery as anyone may see it",
    responses=error_responses(400, 404, 503),
)
async def get_public(id: DeliveryId, deliveries: Deliveries) -> PublicDelivery:
    record, status = await deliveries.get(id)
    return PublicDelivery(**_public_view(record, status))


@public.get(
    "/{id}/status",
    summary="Where a delivery is and when it will arrive",
    responses=error_responses(400, 404, 503),
)
async def status(id: DeliveryId, deliveries: Deliveries) -> DeliveryStatus:
    return await deliveries.status(id)


@public.get(
    "/{id}/history",
    summary="A delivery's tracking events, oldest first",
    responses=error_responses(400, 404, 503),
)
async def history(id: DeliveryId, deliveries: Deliveries) -> list[TrackingEvent]:
    return await deliveries.history(id)
